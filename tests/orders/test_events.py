"""Orders derived from e-commerce spec events sent through the tracking API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from storeloop.db import session_scope
from storeloop.derivation import StoredEvent
from storeloop.kit.timeutil import as_utc
from storeloop.models import QuarantinedEvent, Refund
from storeloop.orders.tasks import derive_orders
from storeloop.runtime import Runtime
from tests.factories.events import order_completed, track
from tests.factories.orders import counts, make_order, order_row
from tests.factories.workspaces import WorkspaceKeys


def _send(client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, *messages: Any) -> None:
    response = client.post(
        "/v1/batch", json={"batch": list(messages)}, headers=workspace.basic_auth
    )
    assert response.status_code == 200, response.text
    runtime.processor.drain()
    runtime.derivations.drain()


def test_order_completed_event_becomes_an_order_with_lines(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    message = order_completed(order_id="E-1", total=59.8)
    message["userId"] = "customer-9"
    message["context"] = {
        "campaign": {"source": "instagram", "medium": "social", "name": "spring"},
        "page": {
            "url": "https://shop.example/checkout?sl_click=ck-1",
            "referrer": "https://l.instagram.com/",
        },
    }
    message["properties"]["coupon"] = "SPRING10"
    _send(client, runtime, workspace, message)
    order = order_row(runtime, workspace.id, "E-1")
    assert (order.source, order.status, order.currency, order.total) == (
        "event",
        "paid",
        "EUR",
        Decimal("59.80"),
    )
    assert order.subtotal == Decimal("59.80")
    assert order.profile_id is not None
    assert order.anonymous_id == message["anonymousId"]
    assert order.discount_codes == ["SPRING10"]
    assert order.marketing == {
        "utm_source": "instagram",
        "utm_medium": "social",
        "utm_campaign": "spring",
        "click_id": "ck-1",
        "anonymous_id": message["anonymousId"],
        "referrer": "https://l.instagram.com/",
        "landing_page": "https://shop.example/checkout?sl_click=ck-1",
    }
    detail = client.get(f"/api/v1/orders/{order.id}", headers=workspace.bearer).json()
    assert [
        (line["sku"], line["quantity"], Decimal(line["unit_price"])) for line in detail["lines"]
    ] == [("sku-1", 2, Decimal("29.90"))]
    # Delivered again (an SDK retry with the same messageId) and derived again: one order.
    _send(client, runtime, workspace, message)
    assert counts(runtime, workspace.id)["orders"] == 1
    assert counts(runtime, workspace.id)["lines"] == 1


def test_refund_and_cancel_events(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    _send(client, runtime, workspace, order_completed(order_id="E-2", total=100))
    partial = track("Order Refunded", properties={"order_id": "E-2", "total": 30})
    _send(client, runtime, workspace, partial)
    order = order_row(runtime, workspace.id, "E-2")
    assert (order.refunded_total, order.status) == (Decimal("30.00"), "partially_refunded")
    # No amount: the rest of the order is refunded.
    _send(client, runtime, workspace, track("Order Refunded", properties={"order_id": "E-2"}))
    order = order_row(runtime, workspace.id, "E-2")
    assert (order.refunded_total, order.status) == (Decimal("100.00"), "refunded")
    assert counts(runtime, workspace.id)["refunds"] == 2

    _send(client, runtime, workspace, order_completed(order_id="E-3", total=20))
    _send(client, runtime, workspace, track("Order Cancelled", properties={"order_id": "E-3"}))
    assert order_row(runtime, workspace.id, "E-3").status == "cancelled"


def test_checkout_started_is_not_an_order(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    _send(
        client,
        runtime,
        workspace,
        track("Checkout Started", properties={"order_id": "E-4", "total": 10}),
    )
    # Without an order id (the usual case) and with a coupon: neither an order nor a problem.
    _send(client, runtime, workspace, track("Checkout Started", properties={"value": 10}))
    _send(client, runtime, workspace, track("Coupon Applied", properties={"coupon": "ANA10"}))
    assert counts(runtime, workspace.id)["orders"] == 0
    assert counts(runtime, workspace.id)["quarantine"] == 0


def test_an_event_never_overwrites_a_platform_orders_money(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    make_order(runtime, workspace.id, "P-1", total="80.00", source="shopify")
    message = order_completed(order_id="P-1", total=1.0)
    message["context"] = {"campaign": {"source": "newsletter"}}
    _send(client, runtime, workspace, message)
    # A refund event for a platform order is ignored: the platform reports its own refunds.
    _send(
        client,
        runtime,
        workspace,
        track("Order Refunded", properties={"order_id": "P-1", "total": 80}),
    )
    order = order_row(runtime, workspace.id, "P-1")
    assert (order.source, order.total, order.status, order.refunded_total) == (
        "shopify",
        Decimal("80.00"),
        "paid",
        Decimal("0.00"),
    )
    # ...but it fills the marketing fields the platform did not know.
    assert order.marketing == {"utm_source": "newsletter", "anonymous_id": message["anonymousId"]}
    assert order.anonymous_id == message["anonymousId"]


def test_order_updated_without_amounts_keeps_the_order(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    _send(client, runtime, workspace, order_completed(order_id="E-5", total=42))
    bare = track("Order Updated", properties={"order_id": "E-5"})
    _send(client, runtime, workspace, bare)
    assert order_row(runtime, workspace.id, "E-5").total == Decimal("42.00")
    changed = track("Order Updated", properties={"order_id": "E-5", "total": 40, "currency": "EUR"})
    _send(client, runtime, workspace, changed)
    assert order_row(runtime, workspace.id, "E-5").total == Decimal("40.00")


# -- derived directly, as the derivation runner hands events over (again) ----------------------

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _stored(
    workspace: WorkspaceKeys,
    event: str,
    properties: dict[str, Any],
    *,
    at: datetime = T0,
    message_id: str | None = None,
    context: dict[str, Any] | None = None,
) -> StoredEvent:
    document: dict[str, Any] = {"type": "track", "event": event, "properties": properties}
    if context is not None:
        document["context"] = context
    return StoredEvent(
        id=uuid.uuid4(),
        workspace_id=workspace.id,
        message_id=message_id or str(uuid.uuid4()),
        type="track",
        event=event,
        anonymous_id="anon-1",
        user_id=None,
        profile_id=None,
        timestamp=at,
        document=document,
    )


def _derive(runtime: Runtime, workspace: WorkspaceKeys, *events: StoredEvent) -> None:
    with session_scope(runtime.session_factory) as session:
        derive_orders(session, workspace.id, runtime.keyring.cipher(workspace.id), list(events))


def _quarantined(runtime: Runtime, workspace: WorkspaceKeys) -> list[tuple[str, str, str | None]]:
    with runtime.session_factory() as session:
        rows = session.execute(
            select(QuarantinedEvent.source, QuarantinedEvent.reason, QuarantinedEvent.field)
            .where(QuarantinedEvent.workspace_id == workspace.id)
            .order_by(QuarantinedEvent.id)
        ).all()
    return [(row[0], row[1], row[2]) for row in rows]


def test_order_updated_keeps_what_it_does_not_carry(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    completed = _stored(
        workspace,
        "Order Completed",
        {
            "order_id": "U-1",
            "total": 50,
            "subtotal": 45,
            "shipping": 5,
            "currency": "EUR",
            "coupon": "ANA10",
            "products": [{"sku": "s-1", "price": 22.5, "quantity": 2}],
        },
        context={
            "page": {
                "url": "https://shop.example/landing?utm_source=ig",
                "referrer": "https://l.instagram.com/",
            }
        },
    )
    _derive(runtime, workspace, completed)
    later = T0 + timedelta(days=2)
    # A status update two days later: a new total, nothing else.
    _derive(
        runtime,
        workspace,
        _stored(workspace, "Order Updated", {"order_id": "U-1", "total": 55}, at=later),
    )
    order = order_row(runtime, workspace.id, "U-1")
    assert order.total == Decimal("55.00")
    assert as_utc(order.placed_at) == T0
    assert as_utc(order.source_updated_at) == later
    assert (order.currency, order.subtotal, order.shipping) == (
        "EUR",
        Decimal("45.00"),
        Decimal("5.00"),
    )
    assert order.discount_codes == ["ANA10"]
    assert order.landing_page == "https://shop.example/landing?utm_source=ig"
    assert order.referrer == "https://l.instagram.com/"
    detail = client.get(f"/api/v1/orders/{order.id}", headers=workspace.bearer).json()
    assert [(line["sku"], line["quantity"]) for line in detail["lines"]] == [("s-1", 2)]
    # An update that carries a coupon (even an empty one) does change the codes.
    _derive(
        runtime,
        workspace,
        _stored(
            workspace,
            "Order Updated",
            {"order_id": "U-1", "total": 55, "coupon": ""},
            at=later + timedelta(hours=1),
        ),
    )
    assert order_row(runtime, workspace.id, "U-1").discount_codes == []


def test_replayed_refund_without_amount_keeps_its_amount(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    completed = _stored(
        workspace, "Order Completed", {"order_id": "R-1", "total": 100, "currency": "EUR"}
    )
    partial = _stored(
        workspace, "Order Refunded", {"order_id": "R-1", "total": 30}, at=T0 + timedelta(hours=1)
    )
    rest = _stored(workspace, "Order Refunded", {"order_id": "R-1"}, at=T0 + timedelta(hours=2))
    _derive(runtime, workspace, completed, partial, rest)
    order = order_row(runtime, workspace.id, "R-1")
    assert (order.refunded_total, order.status) == (Decimal("100.00"), "refunded")
    # The runner hands the same events over again (a retried batch): nothing changes.
    _derive(runtime, workspace, completed, partial, rest)
    _derive(runtime, workspace, rest)
    order = order_row(runtime, workspace.id, "R-1")
    assert (order.refunded_total, order.status) == (Decimal("100.00"), "refunded")
    with runtime.session_factory() as session:
        amounts = session.scalars(
            select(Refund.amount)
            .where(Refund.workspace_id == workspace.id)
            .order_by(Refund.refunded_at)
        ).all()
    assert [Decimal(amount) for amount in amounts] == [Decimal("30.00"), Decimal("70.00")]


@pytest.mark.parametrize("bad_quantity", ["two", -1, 1.5, "1e400", [2], True])
def test_a_bad_quantity_quarantines_the_event_once(
    runtime: Runtime, workspace: WorkspaceKeys, bad_quantity: object
) -> None:
    event = _stored(
        workspace,
        "Order Completed",
        {
            "order_id": "Q-1",
            "total": 10,
            "currency": "EUR",
            "products": [{"sku": "s", "price": 5, "quantity": bad_quantity}],
        },
    )
    good = _stored(workspace, "Order Completed", {"order_id": "Q-2", "total": 3, "currency": "EUR"})
    # Raises nothing: the runner does not retry it, and the other events are derived.
    _derive(runtime, workspace, event, good)
    _derive(runtime, workspace, event)
    assert _quarantined(runtime, workspace) == [
        ("order_event", "invalid_quantity", "properties.products[0].quantity")
    ]
    assert counts(runtime, workspace.id)["orders"] == 1
    assert order_row(runtime, workspace.id, "Q-2").total == Decimal("3.00")


def test_whole_quantities_written_as_float_or_text_are_read(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    products = [
        {"sku": "a", "price": 1, "quantity": 2.0},
        {"sku": "b", "price": 1, "quantity": "3"},
        {"sku": "c", "price": 1},
    ]
    _derive(
        runtime,
        workspace,
        _stored(
            workspace,
            "Order Completed",
            {"order_id": "Q-3", "currency": "EUR", "products": products},
        ),
    )
    assert order_row(runtime, workspace.id, "Q-3").subtotal == Decimal("6.00")
    assert _quarantined(runtime, workspace) == []


def test_an_order_event_without_currency_is_refused_not_stored_as_usd(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    _derive(
        runtime, workspace, _stored(workspace, "Order Completed", {"order_id": "C-1", "total": 9})
    )
    _derive(
        runtime,
        workspace,
        _stored(workspace, "Order Completed", {"order_id": "C-2", "total": 9, "currency": "€"}),
    )
    assert counts(runtime, workspace.id)["orders"] == 0
    assert _quarantined(runtime, workspace) == [
        ("order_event", "missing_currency", "properties.currency"),
        ("order_event", "invalid_currency", "properties.currency"),
    ]
    # An update of a stored order that does not repeat the currency keeps the stored one.
    _derive(
        runtime,
        workspace,
        _stored(workspace, "Order Completed", {"order_id": "C-3", "total": 9, "currency": "gbp"}),
        _stored(
            workspace, "Order Updated", {"order_id": "C-3", "total": 8}, at=T0 + timedelta(hours=1)
        ),
    )
    order = order_row(runtime, workspace.id, "C-3")
    assert (order.currency, order.total) == ("GBP", Decimal("8.00"))
