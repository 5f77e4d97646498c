"""Orders derived from e-commerce spec events sent through the tracking API."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient

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
    assert counts(runtime, workspace.id)["orders"] == 0


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
