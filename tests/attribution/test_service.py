"""Touchpoint derivation and order attribution against the database (both backends)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session

from storeloop.attribution import service
from storeloop.attribution.repository import AttributionRepository
from storeloop.attribution.service import attribute_stale_orders
from storeloop.attribution.touchpoints import derive_touchpoints
from storeloop.db import session_scope
from storeloop.kit.timeutil import as_utc
from storeloop.models import AttributionCredit, Order, Touchpoint
from storeloop.runtime import Runtime
from tests.factories.attribution import (
    PLACED,
    add_click,
    add_code,
    add_influencer,
    add_link,
    add_order,
    add_profile,
    add_touchpoint,
    days_before,
    set_settings,
    stored_event,
)
from tests.factories.workspaces import WorkspaceKeys


def attribute_all(runtime: Runtime, workspace_id: uuid.UUID) -> None:
    """Attribute the stale orders of one workspace (never another test's rows)."""
    for _ in range(100):
        with session_scope(runtime.session_factory) as session:
            if not attribute_stale_orders(session, runtime.keyring, workspace_id):
                return
    raise AssertionError("attribution did not finish")


def credits(
    runtime: Runtime, order_id: uuid.UUID, model: str
) -> list[tuple[str, Decimal, Decimal]]:
    with runtime.session_factory() as session:
        rows = session.scalars(
            select(AttributionCredit)
            .where(AttributionCredit.order_id == order_id, AttributionCredit.model == model)
            .order_by(AttributionCredit.position)
        )
        return [
            (row.channel, Decimal(row.credit).quantize(Decimal("1e-12")), Decimal(row.revenue))
            for row in rows
        ]


def all_credit_rows(runtime: Runtime, order_id: uuid.UUID) -> list[tuple[Any, ...]]:
    with runtime.session_factory() as session:
        rows = session.scalars(
            select(AttributionCredit)
            .where(AttributionCredit.order_id == order_id)
            .order_by(AttributionCredit.model, AttributionCredit.position)
        )
        return [
            (
                row.model,
                row.position,
                row.touchpoint_id,
                row.channel,
                row.influencer_id,
                row.campaign_id,
                Decimal(row.credit).quantize(Decimal("1e-12")),
                Decimal(row.revenue),
            )
            for row in rows
        ]


def page(url: str, referrer: str = "", **context: Any) -> dict[str, Any]:
    return {"type": "page", "context": {"page": {"url": url, "referrer": referrer}, **context}}


def touchpoints_of(session: Session, workspace_id: uuid.UUID) -> list[Touchpoint]:
    return list(
        session.scalars(
            select(Touchpoint)
            .where(Touchpoint.workspace_id == workspace_id)
            .order_by(Touchpoint.occurred_at, Touchpoint.dedupe_key)
        )
    )


def test_touchpoints_derived_from_events_idempotently(
    runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        ana = add_influencer(session, ws, "Ana")
        link = add_link(session, ws, influencer=ana)
        human = add_click(session, link, days_before(5), anonymous_id="anon-1")
        bot = add_click(session, link, days_before(4), is_bot=True)
        foreign_link = add_link(session, other_workspace.id)
        foreign = add_click(session, foreign_link, days_before(3))
        code = add_code(session, ws, "ANA10", influencer=ana)
        events = [
            stored_event(
                ws,
                {
                    "type": "page",
                    "context": {
                        "storeloop": {"click_id": str(human.id)},
                        "page": {"url": "https://shop.example/", "referrer": ""},
                    },
                },
                timestamp=days_before(5),
                anonymous_id="anon-1",
            ),
            stored_event(
                ws,
                {"type": "page", "context": {"storeloop": {"click_id": str(bot.id)}}},
                timestamp=days_before(4),
                anonymous_id="anon-1",
            ),
            # Another workspace's click id: no click touchpoint, its UTM tags still count.
            stored_event(
                ws,
                page(
                    f"https://shop.example/?utm_source=klaviyo&utm_medium=email&sl_click={foreign.id}"
                ),
                timestamp=days_before(3),
                anonymous_id="anon-1",
            ),
            stored_event(
                ws,
                page("https://shop.example/p/1", "https://www.google.com/"),
                timestamp=days_before(2),
                anonymous_id="anon-1",
            ),
            # An Instagram in-app browser sends no referrer: the app is the contact.
            stored_event(
                ws,
                page(
                    "https://shop.example/p/3",
                    userAgent="Mozilla/5.0 (iPhone) Mobile/15E148 Instagram 302.0.0.23.114",
                ),
                timestamp=days_before(1.5),
                anonymous_id="anon-1",
            ),
            # Internal navigation: nothing.
            stored_event(
                ws,
                page("https://shop.example/p/2", "https://shop.example/"),
                timestamp=days_before(2),
                anonymous_id="anon-1",
            ),
            stored_event(
                ws,
                {"type": "track", "event": "Coupon Applied", "properties": {"coupon": "ana10"}},
                timestamp=days_before(1),
                anonymous_id="anon-1",
            ),
            stored_event(
                ws,
                {"type": "track", "event": "Coupon Applied", "properties": {"coupon": "NOPE"}},
                timestamp=days_before(1),
                anonymous_id="anon-1",
            ),
        ]
        cipher = runtime.keyring.cipher(ws)
        derive_touchpoints(session, ws, cipher, events)
        derive_touchpoints(session, ws, cipher, events)  # again: nothing stored twice
        rows = touchpoints_of(session, ws)
        assert [(row.kind, row.channel, row.is_bot, as_utc(row.occurred_at)) for row in rows] == [
            ("click", "Influencer", False, days_before(5)),
            ("click", "Influencer", True, days_before(4)),
            ("utm", "Email", False, days_before(3)),
            ("referrer", "Organic Search", False, days_before(2)),
            ("referrer", "Organic Social", False, days_before(1.5)),
            ("discount_code", "Influencer", False, days_before(1)),
        ]
        assert rows[0].click_id == human.id
        assert rows[0].influencer_id == ana.id
        assert rows[0].dedupe_key == f"click:{human.id}"
        assert rows[5].discount_code_id == code.id
        assert {row.anonymous_id for row in rows} == {"anon-1"}
        assert touchpoints_of(session, other_workspace.id) == []


def test_attribution_window_bots_direct_and_refunds(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        ana = add_influencer(session, ws, "Ana")
        add_touchpoint(session, ws, "Email", days_before(40), anonymous_id="v1")
        add_touchpoint(session, ws, "Organic Social", days_before(10), anonymous_id="v1")
        add_touchpoint(session, ws, "Direct", days_before(6), anonymous_id="v1")
        add_touchpoint(session, ws, "Influencer", days_before(5), anonymous_id="v1", influencer=ana)
        add_touchpoint(session, ws, "Paid Search", days_before(1), anonymous_id="v1", is_bot=True)
        add_touchpoint(session, ws, "Email", days_before(3), anonymous_id="someone-else")
        order = add_order(session, ws, total="120", refunded_total="30", anonymous_id="v1")
        order_id = order.id
    attribute_all(runtime, ws)
    net = Decimal("90.0000")
    assert credits(runtime, order_id, "last_click") == [("Influencer", Decimal(1), net)]
    assert credits(runtime, order_id, "first_click") == [("Organic Social", Decimal(1), net)]
    assert credits(runtime, order_id, "linear") == [
        ("Organic Social", Decimal("0.5"), Decimal("45.0000")),
        ("Influencer", Decimal("0.5"), Decimal("45.0000")),
    ]
    assert credits(runtime, order_id, "position_based") == credits(runtime, order_id, "linear")
    for model in ("markov", "shapley", "time_decay"):
        lines = credits(runtime, order_id, model)
        assert [line[0] for line in lines] == ["Organic Social", "Influencer"]
        assert sum(line[1] for line in lines) == Decimal(1)
        assert sum(line[2] for line in lines) == net
    with runtime.session_factory() as session:
        stored = session.get(Order, order_id)
        assert stored is not None
        assert stored.attribution_stale is False
        assert stored.attributed_at is not None


def test_lookback_setting_and_time_decay_half_life(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        set_settings(session, ws, lookback_days=7, time_decay_half_life_days=1.0)
        add_touchpoint(session, ws, "Email", days_before(8), anonymous_id="v2")
        add_touchpoint(session, ws, "Organic Social", days_before(2), anonymous_id="v2")
        add_touchpoint(session, ws, "Referral", days_before(1), anonymous_id="v2")
        order_id = add_order(session, ws, total="30", anonymous_id="v2").id
    attribute_all(runtime, ws)
    # Half-life 1 day: weights 1/4 and 1/2 -> 1/3 and 2/3.
    assert credits(runtime, order_id, "time_decay") == [
        ("Organic Social", Decimal("0.333333333333"), Decimal("10.0000")),
        ("Referral", Decimal("0.666666666667"), Decimal("20.0000")),
    ]


def test_discount_code_precedence_on_and_off(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        ana = add_influencer(session, ws, "Ana")
        add_code(session, ws, "ANA10", influencer=ana)
        add_touchpoint(session, ws, "Email", days_before(2), anonymous_id="v3")
        with_rule = add_order(session, ws, anonymous_id="v3", discount_codes=["ana10"]).id
    attribute_all(runtime, ws)
    assert credits(runtime, with_rule, "first_click") == [
        ("Influencer", Decimal(1), Decimal("100.0000"))
    ]
    with session_scope(runtime.session_factory) as session:
        set_settings(session, ws, discount_code_precedence=False)
        stored = session.get(Order, with_rule)
        assert stored is not None
        stored.attribution_stale = True
    attribute_all(runtime, ws)
    assert credits(runtime, with_rule, "first_click") == [
        ("Email", Decimal(1), Decimal("100.0000"))
    ]
    assert credits(runtime, with_rule, "last_click") == [
        ("Influencer", Decimal(1), Decimal("100.0000"))
    ]
    with runtime.session_factory() as session:
        code_touches = [row for row in touchpoints_of(session, ws) if row.kind == "discount_code"]
        assert [(row.dedupe_key, row.order_id) for row in code_touches] == [
            (f"order:{with_rule}:code:ANA10", with_rule)
        ]


def test_order_marketing_fields_become_touchpoints(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        order_id = add_order(
            session,
            ws,
            anonymous_id="v4",
            marketing={"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "spring"},
            landing_page="/products/x?utm_source=google&utm_medium=cpc&gclid=abc",
        ).id
        no_signal = add_order(session, ws, anonymous_id="v5").id
    attribute_all(runtime, ws)
    assert credits(runtime, order_id, "last_click") == [
        ("Paid Search", Decimal(1), Decimal("100.0000"))
    ]
    for model in ("last_click", "markov"):
        assert credits(runtime, no_signal, model) == [("Direct", Decimal(1), Decimal("100.0000"))]


def test_merged_profiles_share_one_journey(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        live = add_profile(session, ws)
        old = add_profile(session, ws, merged_into=live.id)
        add_touchpoint(session, ws, "Organic Social", days_before(3), profile_id=old.id)
        add_touchpoint(session, ws, "Email", days_before(1), profile_id=live.id)
        order_id = add_order(session, ws, profile_id=live.id).id
    attribute_all(runtime, ws)
    assert [line[0] for line in credits(runtime, order_id, "linear")] == [
        "Organic Social",
        "Email",
    ]


def test_reattribution_is_idempotent(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        ana = add_influencer(session, ws, "Ana")
        link = add_link(session, ws, influencer=ana)
        click = add_click(session, link, days_before(2), anonymous_id="v6")
        add_touchpoint(session, ws, "Email", days_before(4), anonymous_id="v6")
        add_touchpoint(session, ws, "Organic Social", days_before(9), anonymous_id="v7")
        order_id = add_order(
            session, ws, total="59.99", anonymous_id="v6", marketing={"click_id": str(click.id)}
        ).id
    attribute_all(runtime, ws)
    first = all_credit_rows(runtime, order_id)
    assert len({row[0] for row in first}) == 7
    with runtime.session_factory() as session:
        touchpoint_count = len(touchpoints_of(session, ws))
    for _ in range(2):
        with session_scope(runtime.session_factory) as session:
            stored = session.get(Order, order_id)
            assert stored is not None
            stored.attribution_stale = True
        attribute_all(runtime, ws)
        assert all_credit_rows(runtime, order_id) == first
    with runtime.session_factory() as session:
        assert len(touchpoints_of(session, ws)) == touchpoint_count


def test_a_failing_order_is_set_aside_and_the_rest_progress(
    runtime: Runtime, workspace: WorkspaceKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        add_touchpoint(session, ws, "Email", days_before(1), anonymous_id="v8")
        broken = add_order(session, ws, anonymous_id="v8").id
        fine = add_order(session, ws, anonymous_id="v8").id
    real = service.credit_rows

    def failing(order: Order, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        if order.id == broken:
            raise RuntimeError("boom")
        return real(order, *args, **kwargs)

    monkeypatch.setattr(service, "credit_rows", failing)
    attribute_all(runtime, ws)
    with runtime.session_factory() as session:
        stored = session.get(Order, broken)
        assert stored is not None
        assert (stored.attribution_stale, stored.attributed_at) == (False, None)
    assert credits(runtime, broken, "last_click") == []
    assert credits(runtime, fine, "last_click") == [("Email", Decimal(1), Decimal("100.0000"))]


def test_an_order_changed_during_attribution_stays_stale(
    runtime: Runtime, workspace: WorkspaceKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        add_touchpoint(session, ws, "Email", days_before(1), anonymous_id="v9")
        order_id = add_order(session, ws, total="50", anonymous_id="v9").id
    attribute_all(runtime, ws)
    with session_scope(runtime.session_factory) as session:
        stored = session.get(Order, order_id)
        assert stored is not None
        stored.attribution_stale = True
    real = service.credit_rows

    def refund_arrives(order: Order, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        rows = real(order, *args, **kwargs)
        # What the orders service does when a refund lands while attribution is running.
        session = object_session(order)
        assert session is not None
        session.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(refunded_total=Decimal(20), updated_at=PLACED + timedelta(days=1))
            .execution_options(synchronize_session=False)
        )
        return rows

    monkeypatch.setattr(service, "credit_rows", refund_arrives)
    with session_scope(runtime.session_factory) as session:
        # The order changed meanwhile: its flag stays set, so no flag was cleared.
        assert attribute_stale_orders(session, runtime.keyring, ws) == 0
    with runtime.session_factory() as session:
        stored = session.get(Order, order_id)
        assert stored is not None
        assert stored.attribution_stale is True
    monkeypatch.setattr(service, "credit_rows", real)
    attribute_all(runtime, ws)
    assert credits(runtime, order_id, "last_click") == [("Email", Decimal(1), Decimal("30.0000"))]


def test_learned_weights_follow_reclassified_channels(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    """A recompute after new channel rules renames channels without adding rows: the learned
    weights must be learned again, not reused under the old channel names."""
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        add_touchpoint(session, ws, "Email", days_before(3), anonymous_id="r1")
        add_touchpoint(session, ws, "Referral", days_before(1), anonymous_id="r1")
        both = add_order(session, ws, anonymous_id="r1").id
        add_touchpoint(session, ws, "Referral", days_before(2), anonymous_id="r2")
        add_order(session, ws, anonymous_id="r2")
        add_touchpoint(session, ws, "Email", days_before(2), anonymous_id="r3")
    attribute_all(runtime, ws)
    before = {model: credits(runtime, both, model) for model in ("markov", "shapley")}
    assert [line[0] for line in before["markov"]] == ["Email", "Referral"]
    assert 0 < before["markov"][0][1] < 1

    with session_scope(runtime.session_factory) as session:
        set_settings(
            session, ws, channel_rules=[{"match": {"source": "newsletter"}, "channel": "SMS"}]
        )
        assert service.recompute(session, ws).touchpoints_reclassified == 2
    attribute_all(runtime, ws)
    for model, lines in before.items():
        renamed = [("SMS" if name == "Email" else name, *rest) for name, *rest in lines]
        assert credits(runtime, both, model) == renamed, model


def test_a_growing_workspace_learns_its_weights_again_by_shares(
    runtime: Runtime, workspace: WorkspaceKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Learning reads every journey: a large workspace is learned again once its touchpoints,
    orders and merges changed by a share (here a tenth), or when the weights are too old, not
    on every batch."""
    monkeypatch.setattr(service, "LEARN_ALWAYS_BELOW", 20)
    monkeypatch.setattr(service, "RELEARN_GROWTH", 0.1)
    monkeypatch.setattr(service, "FINGERPRINT_REST", 0)
    learned: list[int] = []
    real = service.learn_weights

    def counting(repository: Any, rules: Any) -> Any:
        learned.append(repository.fingerprint().rows)
        return real(repository, rules)

    monkeypatch.setattr(service, "learn_weights", counting)
    ws = workspace.id

    def add(touchpoints: int, visitor: str) -> None:
        with session_scope(runtime.session_factory) as session:
            for _ in range(touchpoints):
                add_touchpoint(session, ws, "Email", days_before(2), anonymous_id=visitor)
            add_order(session, ws, anonymous_id=visitor)
        attribute_all(runtime, ws)

    add(29, "g0")
    assert learned == [30]
    add(1, "g1")  # 32 rows: under a tenth more than 30
    assert learned == [30]
    add(1, "g2")  # 34 rows
    assert learned == [30, 34]
    # Old enough, but not yet rested: a learning that took long waits LEARNING_REST times that.
    monkeypatch.setattr(service, "WEIGHTS_MAX_AGE_SECONDS", 0.0)
    monkeypatch.setattr(service, "LEARNING_REST", 1e9)
    add(0, "g3")
    assert learned == [30, 34]
    monkeypatch.setattr(service, "LEARNING_REST", 0)
    add(0, "g3")
    assert learned == [30, 34, 36]
    monkeypatch.setattr(service, "LEARN_ALWAYS_BELOW", 1_000)
    monkeypatch.setattr(service, "WEIGHTS_MAX_AGE_SECONDS", 900.0)
    add(0, "g4")  # a small workspace: learned again on any change
    assert learned == [30, 34, 36, 37]
    # A large workspace's rows are counted again only after resting: until then, not even a
    # growth by half is seen.
    monkeypatch.setattr(service, "LEARN_ALWAYS_BELOW", 20)
    monkeypatch.setattr(service, "FINGERPRINT_REST", 1e9)
    counted = 0
    fingerprint = AttributionRepository.fingerprint

    def counting_fingerprint(repository: AttributionRepository) -> Any:
        nonlocal counted
        counted += 1
        return fingerprint(repository)

    monkeypatch.setattr(AttributionRepository, "fingerprint", counting_fingerprint)
    add(20, "g5")
    assert (learned, counted) == ([30, 34, 36, 37], 0)


def test_a_channel_change_without_saved_settings_still_counts(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    """The revision is the workspace's: a store that never saved settings still has none."""
    ws = workspace.id
    for expected in (1, 2):
        with session_scope(runtime.session_factory) as session:
            touchpoint = add_touchpoint(session, ws, "Email", days_before(1), anonymous_id="c1")
            repository = AttributionRepository(session, ws)
            repository.set_touchpoint_channels({touchpoint.id: "SMS"})
            assert repository.channels_revision() == expected
    with runtime.session_factory() as session:
        assert service.get_store_settings(session, ws).updated_at is None
