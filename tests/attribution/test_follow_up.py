"""The attribution follow-up against the database (both backends): what it credits, what it
sets aside, how many flags it reports, how it batches and how workers share the work."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from storeloop.attribution import models, service
from storeloop.attribution.repository import stale_orders
from storeloop.attribution.service import attribute_stale_orders, mark_profile_orders_stale
from storeloop.db import session_scope
from storeloop.models import AttributionCredit, Order, Touchpoint
from storeloop.runtime import Runtime
from tests.attribution.test_service import attribute_all, credits
from tests.factories.attribution import (
    add_click,
    add_code,
    add_influencer,
    add_link,
    add_order,
    add_profile,
    add_touchpoint,
    days_before,
)
from tests.factories.workspaces import WorkspaceKeys, make_workspace


def order_state(runtime: Runtime, order_id: uuid.UUID) -> tuple[bool, bool]:
    """(attribution_stale, has attributed_at) of an order."""
    with runtime.session_factory() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order.attribution_stale, order.attributed_at is not None


def mark_stale(runtime: Runtime, *order_ids: uuid.UUID) -> None:
    with session_scope(runtime.session_factory) as session:
        for order_id in order_ids:
            order = session.get(Order, order_id)
            assert order is not None
            order.attribution_stale = True


def stale_count(runtime: Runtime) -> int:
    with runtime.session_factory() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Order).where(Order.attribution_stale.is_(True))
            )
            or 0
        )


def test_cancelled_orders_earn_no_revenue(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        add_touchpoint(session, ws, "Email", days_before(1), anonymous_id="c1")
        cancelled = add_order(session, ws, total="80", anonymous_id="c1", status="cancelled").id
        refunded = add_order(session, ws, total="80", refunded_total="100", anonymous_id="c1").id
        paid = add_order(session, ws, total="80", refunded_total="30", anonymous_id="c1").id
    attribute_all(runtime, ws)
    for model in models.MODELS:
        assert credits(runtime, cancelled, model) == [("Email", Decimal(1), Decimal("0.0000"))]
        assert credits(runtime, refunded, model) == [("Email", Decimal(1), Decimal("0.0000"))]
        assert credits(runtime, paid, model) == [("Email", Decimal(1), Decimal("50.0000"))]


def test_a_failing_reattribution_drops_the_old_credits(
    runtime: Runtime, workspace: WorkspaceKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        add_touchpoint(session, ws, "Email", days_before(1), anonymous_id="f1")
        broken = add_order(session, ws, anonymous_id="f1").id
        fine = add_order(session, ws, anonymous_id="f1").id
    attribute_all(runtime, ws)
    assert credits(runtime, broken, "last_click") == [("Email", Decimal(1), Decimal("100.0000"))]
    mark_stale(runtime, broken, fine)
    real = service.credit_rows

    def failing(order: Order, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        if order.id == broken:
            raise RuntimeError("boom")
        return real(order, *args, **kwargs)

    monkeypatch.setattr(service, "credit_rows", failing)
    with session_scope(runtime.session_factory) as session:
        assert attribute_stale_orders(session, runtime.keyring, ws) == 2
    assert order_state(runtime, broken) == (False, False)
    for model in models.MODELS:
        assert credits(runtime, broken, model) == []
    assert credits(runtime, fine, "last_click") == [("Email", Decimal(1), Decimal("100.0000"))]
    assert order_state(runtime, fine) == (False, True)


def test_a_failing_workspace_does_not_block_the_others(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing_ws = make_workspace(runtime, name="Failing store").id
    healthy_ws = make_workspace(runtime, name="Healthy store").id
    with session_scope(runtime.session_factory) as session:
        add_touchpoint(session, healthy_ws, "Referral", days_before(1), anonymous_id="w2")
        failing_order = add_order(
            session, failing_ws, anonymous_id="w1", marketing={"utm_source": "newsletter"}
        ).id
        healthy_order = add_order(session, healthy_ws, anonymous_id="w2").id
    attribute_all(runtime, failing_ws)  # credits that must not survive the failure below
    assert credits(runtime, failing_order, "last_click") == [
        ("Email", Decimal(1), Decimal("100.0000"))
    ]
    with session_scope(runtime.session_factory) as session:
        order = session.get(Order, failing_order)
        assert order is not None
        order.marketing = {"utm_source": "google", "utm_medium": "cpc"}
        order.attribution_stale = True
    real = service.cached_weights

    def weights(repository: Any, rules: Any) -> Any:
        if repository.workspace_id == failing_ws:
            # A database error: on PostgreSQL it aborts the transaction up to a savepoint.
            repository.session.execute(text("SELECT no_such_column FROM orders"))
        return real(repository, rules)

    monkeypatch.setattr(service, "cached_weights", weights)
    # Across workspaces (as the runner calls it): every call reports exactly the flags it
    # cleared, whatever other stale orders the database holds.
    for _ in range(20):
        if (
            not order_state(runtime, failing_order)[0]
            and not order_state(runtime, healthy_order)[0]
        ):
            break
        before = stale_count(runtime)
        with session_scope(runtime.session_factory) as session:
            cleared = attribute_stale_orders(session, runtime.keyring)
        assert cleared == before - stale_count(runtime)
    assert order_state(runtime, failing_order) == (False, False)
    assert credits(runtime, failing_order, "last_click") == []
    # The failed workspace's half-done work was rolled back: its touchpoints are as they were.
    with runtime.session_factory() as session:
        assert [
            (row.kind, row.channel)
            for row in session.scalars(
                select(Touchpoint).where(Touchpoint.workspace_id == failing_ws)
            )
        ] == [("shop_landing", "Email")]
    assert order_state(runtime, healthy_order) == (False, True)
    assert credits(runtime, healthy_order, "last_click") == [
        ("Referral", Decimal(1), Decimal("100.0000"))
    ]


def test_profile_merge_marks_the_family_orders_stale(
    runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        live = add_profile(session, ws)
        folded = add_profile(session, ws, merged_into=live.id)
        stranger = add_profile(session, ws)
        live_order = add_order(session, ws, profile_id=live.id).id
        folded_order = add_order(session, ws, profile_id=folded.id).id
        stranger_order = add_order(session, ws, profile_id=stranger.id).id
    attribute_all(runtime, ws)
    with session_scope(runtime.session_factory) as session:
        # Another workspace's call names the same profiles: nothing of this workspace changes.
        assert mark_profile_orders_stale(session, other_workspace.id, [folded.id]) == 0
    assert [order_state(runtime, order)[0] for order in (live_order, folded_order)] == [
        False,
        False,
    ]
    with session_scope(runtime.session_factory) as session:
        assert mark_profile_orders_stale(session, ws, [folded.id]) == 2
        assert mark_profile_orders_stale(session, ws, []) == 0
    assert order_state(runtime, live_order) == (True, True)
    assert order_state(runtime, folded_order) == (True, True)
    assert order_state(runtime, stranger_order) == (False, True)


def test_credits_read_back_sum_to_one_per_order_and_model(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    ws = workspace.id
    channels = ["Email", "Organic Social", "Paid Search", "Referral", "Affiliate", "SMS"]
    order_ids: list[uuid.UUID] = []
    with session_scope(runtime.session_factory) as session:
        for index in range(7):
            visitor = f"sum-{index}"
            for position in range(index):
                add_touchpoint(
                    session,
                    ws,
                    channels[(index + position) % len(channels)],
                    days_before(1 + position * 1.7 + index / 10),
                    anonymous_id=visitor,
                )
            total = ["33.33", "0.07", "100", "19.99", "1234.56", "7", "0.01"][index]
            order_ids.append(add_order(session, ws, total=total, anonymous_id=visitor).id)
    attribute_all(runtime, ws)
    with runtime.session_factory() as session:
        read: dict[tuple[uuid.UUID, str], list[Decimal]] = defaultdict(list)
        for order_id, model, credit in session.execute(
            select(AttributionCredit.order_id, AttributionCredit.model, AttributionCredit.credit)
            .where(AttributionCredit.workspace_id == ws)
            .order_by(AttributionCredit.order_id, AttributionCredit.model)
        ):
            read[(order_id, model)].append(credit)
        summed = {
            (order_id, model): Decimal(str(total)).quantize(models.CREDIT_QUANTUM)
            for order_id, model, total in session.execute(
                select(
                    AttributionCredit.order_id,
                    AttributionCredit.model,
                    func.sum(AttributionCredit.credit),
                )
                .where(AttributionCredit.workspace_id == ws)
                .group_by(AttributionCredit.order_id, AttributionCredit.model)
            )
        }
    expected = {(order_id, model) for order_id in order_ids for model in models.MODELS}
    assert set(read) == expected
    assert {key: sum(values, Decimal(0)) for key, values in read.items()} == dict.fromkeys(
        expected, Decimal(1)
    )
    assert summed == dict.fromkeys(expected, Decimal(1))


@contextmanager
def counted_statements(runtime: Runtime) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(runtime.engine, "before_cursor_execute", count)


def _orders_with_everything(session: Session, workspace_id: uuid.UUID, count: int) -> None:
    """Orders each with a merged profile, an anonymous id, a code, a click and a landing."""
    ana = add_influencer(session, workspace_id, "Ana")
    link = add_link(session, workspace_id, influencer=ana)
    add_code(session, workspace_id, "ANA10", influencer=ana)
    for index in range(count):
        live = add_profile(session, workspace_id)
        folded = add_profile(session, workspace_id, merged_into=live.id)
        add_touchpoint(session, workspace_id, "Email", days_before(3), profile_id=folded.id)
        add_touchpoint(session, workspace_id, "Referral", days_before(2), anonymous_id=f"b{index}")
        click = add_click(session, link, days_before(1), anonymous_id=f"b{index}")
        add_order(
            session,
            workspace_id,
            profile_id=live.id,
            anonymous_id=f"b{index}",
            discount_codes=["ana10"],
            marketing={"click_id": str(click.id)},
        )
        add_order(
            session,
            workspace_id,
            anonymous_id=f"b{index}",
            landing_page="/?utm_source=google&utm_medium=cpc",
        )


def test_a_batch_costs_the_same_queries_for_2_orders_as_for_24(runtime: Runtime) -> None:
    small = make_workspace(runtime, name="Small store").id
    large = make_workspace(runtime, name="Large store").id
    with session_scope(runtime.session_factory) as session:
        _orders_with_everything(session, small, 1)
        _orders_with_everything(session, large, 12)
    counts: list[int] = []
    for workspace_id, orders in ((small, 2), (large, 24)):
        with (
            counted_statements(runtime) as statements,
            session_scope(runtime.session_factory) as session,
        ):
            assert attribute_stale_orders(session, runtime.keyring, workspace_id) == orders
        counts.append(len(statements))
    assert counts[0] == counts[1]


def test_workers_skip_the_orders_another_worker_holds(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    if runtime.engine.dialect.name != "postgresql":
        pytest.skip("row locks with SKIP LOCKED are PostgreSQL's")
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        first = add_order(session, ws, anonymous_id="lock").id
        second = add_order(session, ws, anonymous_id="lock").id
    with runtime.session_factory() as holder, runtime.session_factory() as other:
        assert stale_orders(holder, 1, ws) == [(ws, first)]
        assert stale_orders(other, 10, ws) == [(ws, second)]
        holder.rollback()
        other.rollback()
        assert stale_orders(other, 10, ws) == [(ws, first), (ws, second)]
        other.rollback()
    assert order_state(runtime, first) == (True, False)
    assert order_state(runtime, second) == (True, False)
