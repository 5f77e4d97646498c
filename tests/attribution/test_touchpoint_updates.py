"""Touchpoints that change: an order's own touchpoints follow the order, in-app browsers only
count for views without a referrer, and a recompute applies the current channel rules."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from storeloop.attribution.touchpoints import derive_touchpoints
from storeloop.db import session_scope
from storeloop.models import Order, Touchpoint
from storeloop.runtime import Runtime
from tests.attribution.test_service import attribute_all, credits, page
from tests.factories.attribution import (
    add_code,
    add_influencer,
    add_order,
    days_before,
    set_settings,
    stored_event,
)
from tests.factories.workspaces import WorkspaceKeys

INSTAGRAM_APP = "Mozilla/5.0 (iPhone) Mobile/15E148 Instagram 302.0.0.23.114"


def touchpoint_rows(runtime: Runtime, workspace_id: uuid.UUID) -> list[tuple[Any, ...]]:
    with runtime.session_factory() as session:
        return [
            (row.dedupe_key, row.kind, row.channel, row.order_id)
            for row in session.scalars(
                select(Touchpoint)
                .where(Touchpoint.workspace_id == workspace_id)
                .order_by(Touchpoint.dedupe_key)
            )
        ]


def touchpoint_ids(runtime: Runtime, workspace_id: uuid.UUID) -> dict[str, uuid.UUID]:
    with runtime.session_factory() as session:
        return {
            row.dedupe_key: row.id
            for row in session.scalars(
                select(Touchpoint).where(Touchpoint.workspace_id == workspace_id)
            )
        }


def change_order(runtime: Runtime, order_id: uuid.UUID, **values: Any) -> None:
    with session_scope(runtime.session_factory) as session:
        order = session.get(Order, order_id)
        assert order is not None
        for name, value in values.items():
            setattr(order, name, value)
        order.attribution_stale = True


def test_order_touchpoints_follow_the_order(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    ws = workspace.id
    with session_scope(runtime.session_factory) as session:
        ana = add_influencer(session, ws, "Ana")
        add_code(session, ws, "ANA10", influencer=ana)
        order_id = add_order(
            session,
            ws,
            anonymous_id="o1",
            discount_codes=["ana10"],
            marketing={"utm_source": "google", "utm_medium": "cpc"},
        ).id
    attribute_all(runtime, ws)
    landing, code = f"order:{order_id}:landing", f"order:{order_id}:code:ANA10"
    assert touchpoint_rows(runtime, ws) == [
        (code, "discount_code", "Influencer", order_id),
        (landing, "shop_landing", "Paid Search", order_id),
    ]
    landing_id = touchpoint_ids(runtime, ws)[landing]

    # The shop corrects the order: the code is gone, the landing was an email.
    change_order(
        runtime,
        order_id,
        discount_codes=[],
        marketing={"utm_source": "newsletter", "utm_medium": "email"},
    )
    attribute_all(runtime, ws)
    assert touchpoint_rows(runtime, ws) == [(landing, "shop_landing", "Email", order_id)]
    assert touchpoint_ids(runtime, ws) == {landing: landing_id}
    assert credits(runtime, order_id, "last_click") == [("Email", Decimal(1), Decimal("100.0000"))]

    change_order(runtime, order_id, marketing={})
    attribute_all(runtime, ws)
    assert touchpoint_rows(runtime, ws) == []
    assert credits(runtime, order_id, "last_click") == [("Direct", Decimal(1), Decimal("100.0000"))]


def test_in_app_browsers_count_only_for_views_without_a_referrer(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    ws = workspace.id
    events = [
        # A view with no referrer at all inside the app: the app is the referrer.
        stored_event(
            ws,
            {"type": "screen", "context": {"userAgent": INSTAGRAM_APP}},
            timestamp=days_before(5),
            anonymous_id="iab",
        ),
        # Navigating inside the shop in the app's browser: no new contact.
        stored_event(
            ws,
            page("https://shop.example/p/2", "https://shop.example/", userAgent=INSTAGRAM_APP),
            timestamp=days_before(4),
            anonymous_id="iab",
        ),
        # An action, not a landing.
        stored_event(
            ws,
            {
                "type": "track",
                "event": "Product Viewed",
                "context": {"userAgent": INSTAGRAM_APP, "page": {"url": "https://shop.example/"}},
            },
            timestamp=days_before(3),
            anonymous_id="iab",
        ),
        # Google search opened in the app's browser: the referrer says Organic Search.
        stored_event(
            ws,
            page("https://shop.example/p/3", "https://www.google.com/", userAgent=INSTAGRAM_APP),
            timestamp=days_before(2),
            anonymous_id="iab",
        ),
    ]
    with session_scope(runtime.session_factory) as session:
        derive_touchpoints(session, ws, runtime.keyring.cipher(ws), events)
    assert touchpoint_rows(runtime, ws) == sorted(
        [
            (f"event:{events[0].id}", "referrer", "Organic Social", None),
            (f"event:{events[3].id}", "referrer", "Organic Search", None),
        ]
    )


def test_recompute_applies_the_current_channel_rules(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    ws = workspace.id
    tagged = stored_event(
        ws,
        page("https://shop.example/?utm_source=spring_news&utm_medium=blast"),
        timestamp=days_before(3),
        anonymous_id="r1",
    )
    ad = stored_event(
        ws, page("https://shop.example/?gclid=abc"), timestamp=days_before(2), anonymous_id="r1"
    )
    app = stored_event(
        ws,
        {"type": "page", "context": {"userAgent": INSTAGRAM_APP}},
        timestamp=days_before(1),
        anonymous_id="r1",
    )
    with session_scope(runtime.session_factory) as session:
        derive_touchpoints(session, ws, runtime.keyring.cipher(ws), [tagged, ad, app])
        order_id = add_order(session, ws, anonymous_id="r1").id
    attribute_all(runtime, ws)

    def channels() -> dict[str, str]:
        return {row[0]: row[2] for row in touchpoint_rows(runtime, ws)}

    before = {
        f"event:{tagged.id}": "Referral",
        f"event:{ad.id}": "Paid Search",
        f"event:{app.id}": "Organic Social",
    }
    assert channels() == before
    assert credits(runtime, order_id, "first_click") == [
        ("Referral", Decimal(1), Decimal("100.0000"))
    ]

    with session_scope(runtime.session_factory) as session:
        set_settings(
            session, ws, channel_rules=[{"match": {"source": "spring_news"}, "channel": "Email"}]
        )
    # Another workspace's recompute changes nothing here.
    denied = client.post("/api/v1/attribution/recompute", headers=other_workspace.bearer)
    assert denied.json() == {"orders_marked": 0, "touchpoints_reclassified": 0}
    assert channels() == before
    with runtime.session_factory() as session:
        order = session.get(Order, order_id)
        assert order is not None
        assert order.attribution_stale is False

    response = client.post("/api/v1/attribution/recompute", headers=workspace.bearer)
    assert response.json() == {"orders_marked": 1, "touchpoints_reclassified": 1}
    # The click id and the in-app browser are not stored: those channels are kept.
    assert channels() == {**before, f"event:{tagged.id}": "Email"}
    attribute_all(runtime, ws)
    assert credits(runtime, order_id, "first_click") == [("Email", Decimal(1), Decimal("100.0000"))]

    with session_scope(runtime.session_factory) as session:
        set_settings(session, ws, channel_rules=[])
    response = client.post("/api/v1/attribution/recompute", headers=workspace.bearer)
    assert response.json() == {"orders_marked": 1, "touchpoints_reclassified": 1}
    assert channels() == before
