"""Shopify and WooCommerce webhooks end to end: signatures, dedupe, ordering, refunds."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from storeloop.runtime import Runtime
from tests.factories.orders import (
    SHOPIFY_ORDER_ID,
    counts,
    order_row,
    php_json,
    set_webhook_secret,
    shopify_headers,
    shopify_payload,
    woocommerce_headers,
    woocommerce_payload,
)
from tests.factories.queries import quarantine_reasons
from tests.factories.workspaces import WorkspaceKeys

SECRET = "shpss_test_secret"
WOO_SECRET = "woo secret with spaces"
NOTHING = {"orders": 0, "lines": 0, "refunds": 0, "deliveries": 0, "quarantine": 0}


@pytest.fixture
def shop(runtime: Runtime, workspace: WorkspaceKeys) -> WorkspaceKeys:
    set_webhook_secret(runtime, workspace.id, "shopify", SECRET)
    set_webhook_secret(runtime, workspace.id, "woocommerce", WOO_SECRET)
    return workspace


def _post_shopify(
    client: TestClient,
    workspace: WorkspaceKeys,
    payload: dict[str, Any],
    topic: str,
    webhook_id: str | None = None,
) -> Any:
    body = orjson.dumps(payload)
    return client.post(
        f"/webhooks/shopify/{workspace.id}",
        content=body,
        headers=shopify_headers(SECRET, body, topic, webhook_id),
    )


def _paid(payload: dict[str, Any], updated_at: str) -> dict[str, Any]:
    """The example order, not cancelled, paid, last updated at ``updated_at``."""
    result = copy.deepcopy(payload)
    result.update(
        cancelled_at=None, cancel_reason=None, financial_status="paid", updated_at=updated_at
    )
    return result


@pytest.mark.parametrize(
    ("topic", "name"),
    [
        ("orders/create", "orders_create"),
        ("orders/updated", "orders_updated"),
        ("orders/paid", "orders_paid"),
        ("orders/cancelled", "orders_cancelled"),
    ],
)
def test_each_shopify_order_topic_stores_the_order(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys, topic: str, name: str
) -> None:
    response = _post_shopify(client, shop, shopify_payload(name), topic)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "applied"
    order = order_row(runtime, shop.id, SHOPIFY_ORDER_ID)
    assert order.source == "shopify"
    assert order.total == Decimal("404.95")
    assert order.subtotal == Decimal("414.95")
    assert order.discount_total == Decimal("20.00")
    assert order.shipping == Decimal("10.00")
    assert order.status == "cancelled"
    assert order.customer_external_id == "115310627314723950"
    assert order.customer_email_index is not None
    assert order.profile_id is not None
    # Personal data is sealed: the email is nowhere in clear on the row.
    assert b"jon@example.com" not in (order.customer_sealed or b"")
    assert counts(runtime, shop.id) == {**NOTHING, "orders": 1, "lines": 5, "deliveries": 1}
    detail = client.get(f"/api/v1/orders/{order.id}", headers=shop.bearer).json()
    assert detail["external_id"] == SHOPIFY_ORDER_ID
    assert detail["customer"]["email"] == "jon@example.com"
    assert detail["lines"][0]["sku"] == "SKU2006-001"
    assert Decimal(detail["lines"][0]["unit_price"]) == Decimal("89.99")


def test_wrong_or_missing_signature_is_401_and_stores_nothing(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    body = orjson.dumps(shopify_payload("orders_create"))
    url = f"/webhooks/shopify/{shop.id}"
    headers = shopify_headers("not the secret", body, "orders/create")
    wrong = client.post(url, content=body, headers=headers)
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_signature"
    missing = {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"}
    assert client.post(url, content=body, headers=missing).status_code == 401
    # A body changed after signing.
    good = shopify_headers(SECRET, body, "orders/create")
    tampered = body.replace(b'"404.95"', b'"4.95"')
    assert client.post(url, content=tampered, headers=good).status_code == 401
    assert counts(runtime, shop.id) == NOTHING


def test_a_workspace_without_secret_or_unknown_is_401(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    body = orjson.dumps(shopify_payload("orders_create"))
    headers = shopify_headers(SECRET, body, "orders/create")
    for url in (
        f"/webhooks/shopify/{workspace.id}",
        "/webhooks/shopify/0196f0a0-0000-7000-8000-000000000000",
        "/webhooks/shopify/not-a-uuid",
    ):
        response = client.post(url, content=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_signature"
    assert counts(runtime, workspace.id) == NOTHING


def test_signed_with_workspace_a_secret_posted_to_b_is_401(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    set_webhook_secret(runtime, other_workspace.id, "shopify", "b's own secret")
    body = orjson.dumps(shopify_payload("orders_create"))
    response = client.post(
        f"/webhooks/shopify/{other_workspace.id}",
        content=body,
        headers=shopify_headers(SECRET, body, "orders/create"),
    )
    assert response.status_code == 401
    assert counts(runtime, other_workspace.id) == NOTHING
    assert counts(runtime, shop.id) == NOTHING


def test_duplicate_delivery_and_redelivered_order_make_one_order(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    payload = shopify_payload("orders_create")
    first = _post_shopify(client, shop, payload, "orders/create", webhook_id="wh-1")
    again = _post_shopify(client, shop, payload, "orders/create", webhook_id="wh-1")
    assert (first.json()["status"], again.json()["status"]) == ("applied", "duplicate")
    # The same order under another delivery id (orders/paid after orders/create).
    other = _post_shopify(client, shop, payload, "orders/paid", webhook_id="wh-2")
    assert other.json()["status"] == "applied"
    assert counts(runtime, shop.id) == {**NOTHING, "orders": 1, "lines": 5, "deliveries": 2}


def test_out_of_order_deliveries_resolved_by_updated_at(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    base = shopify_payload("orders_updated")
    newer = _paid(base, "2022-01-02T10:00:00-05:00")
    newer["total_price"] = "380.00"
    older = _paid(base, "2022-01-01T10:00:00-05:00")
    assert _post_shopify(client, shop, newer, "orders/updated").json()["status"] == "applied"
    assert _post_shopify(client, shop, older, "orders/create").json()["status"] == "stale"
    order = order_row(runtime, shop.id, SHOPIFY_ORDER_ID)
    assert order.total == Decimal("380.00")
    assert order.status == "paid"


def test_partial_then_full_refund(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    order = _paid(shopify_payload("orders_paid"), "2022-01-01T10:00:00-05:00")
    _post_shopify(client, shop, order, "orders/paid")
    refund = shopify_payload("refunds_create")
    response = _post_shopify(client, shop, refund, "refunds/create", webhook_id="r-1")
    assert response.json()["status"] == "applied"
    row = order_row(runtime, shop.id, SHOPIFY_ORDER_ID)
    assert (row.refunded_total, row.status) == (Decimal("85.00"), "partially_refunded")
    # The same refund delivered again under a new id: still one refund.
    _post_shopify(client, shop, refund, "refunds/create", webhook_id="r-2")
    assert counts(runtime, shop.id)["refunds"] == 1
    rest = copy.deepcopy(refund)
    rest["id"] = 890088186047892401
    rest["transactions"] = [{"kind": "refund", "status": "success", "amount": "319.95"}]
    _post_shopify(client, shop, rest, "refunds/create")
    row = order_row(runtime, shop.id, SHOPIFY_ORDER_ID)
    assert (row.refunded_total, row.status) == (Decimal("404.95"), "refunded")
    assert row.attribution_stale is True


def test_refund_before_its_order_is_acknowledged_and_applied_from_the_order(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    refund = shopify_payload("refunds_create")
    assert _post_shopify(client, shop, refund, "refunds/create").json()["status"] == "unknown_order"
    order = _paid(shopify_payload("orders_updated"), "2022-01-03T10:00:00-05:00")
    order["refunds"] = [refund]
    _post_shopify(client, shop, order, "orders/updated")
    row = order_row(runtime, shop.id, SHOPIFY_ORDER_ID)
    assert (row.refunded_total, row.status) == (Decimal("85.00"), "partially_refunded")


def test_checkout_and_unknown_topics_are_acknowledged_without_an_order(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    checkout = _post_shopify(client, shop, shopify_payload("checkouts_create"), "checkouts/create")
    assert checkout.json()["status"] == "ignored"
    other = _post_shopify(client, shop, {"id": 1}, "customers/create")
    assert (other.status_code, other.json()["status"]) == (200, "ignored")
    assert counts(runtime, shop.id) == {**NOTHING, "deliveries": 1}


def test_invalid_payload_is_422_and_quarantined(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    payload = shopify_payload("orders_create")
    payload["total_price"] = "lots"
    response = _post_shopify(client, shop, payload, "orders/create")
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "total_price"
    assert response.json()["error"]["code"] == "invalid_order_payload"
    assert quarantine_reasons(runtime, shop.id) == [("invalid_amount", "total_price")]
    assert counts(runtime, shop.id) == {**NOTHING, "quarantine": 1}
    # The raw body is kept (sealed) for replay, visible through the quarantine API.
    items = client.get("/api/v1/quarantine", headers=shop.bearer).json()["items"]
    assert [item["source"] for item in items] == ["shopify"]
    assert items[0]["payload"]["total_price"] == "lots"

    not_json = b"{not json"
    response = client.post(
        f"/webhooks/shopify/{shop.id}",
        content=not_json,
        headers=shopify_headers(SECRET, not_json, "orders/create"),
    )
    assert response.status_code == 422
    assert counts(runtime, shop.id)["quarantine"] == 2


def test_woocommerce_ping_is_answered_and_stores_nothing(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    response = client.post(
        f"/webhooks/woocommerce/{workspace.id}",
        content=b"webhook_id=12",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert counts(runtime, workspace.id) == NOTHING


def test_woocommerce_order_with_attribution_meta_and_refund(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    payload = woocommerce_payload()
    payload["meta_data"] += [
        {"id": 1, "key": "_wc_order_attribution_source_type", "value": "utm"},
        {"id": 2, "key": "_wc_order_attribution_utm_source", "value": "instagram"},
        {"id": 3, "key": "_wc_order_attribution_utm_campaign", "value": "spring"},
        {
            "id": 4,
            "key": "_wc_order_attribution_session_entry",
            "value": "https://example.com/shop/",
        },
        {"id": 5, "key": "_sl_click", "value": "click-1"},
    ]
    body = php_json(payload)
    url = f"/webhooks/woocommerce/{shop.id}"
    created = client.post(
        url, content=body, headers=woocommerce_headers(WOO_SECRET, body, "order.created")
    )
    assert created.status_code == 200, created.text
    order = order_row(runtime, shop.id, "727")
    assert (order.source, order.status, order.total, order.tax) == (
        "woocommerce",
        "paid",
        Decimal("29.35"),
        Decimal("1.35"),
    )
    assert order.marketing == {
        "utm_source": "instagram",
        "utm_campaign": "spring",
        "source_type": "utm",
        "landing_page": "https://example.com/shop/",
        "click_id": "click-1",
    }
    assert order.landing_page == "https://example.com/shop/"

    payload["date_modified_gmt"] = "2017-03-23T10:00:00"
    payload["refunds"] = [{"id": 726, "reason": "", "total": "-10.00"}]
    body = php_json(payload)
    updated = client.post(
        url, content=body, headers=woocommerce_headers(WOO_SECRET, body, "order.updated")
    )
    assert updated.json()["status"] == "applied"
    order = order_row(runtime, shop.id, "727")
    assert (order.refunded_total, order.status) == (Decimal("10.00"), "partially_refunded")
    assert counts(runtime, shop.id) == {
        **NOTHING,
        "orders": 1,
        "lines": 2,
        "refunds": 1,
        "deliveries": 2,
    }


def test_woocommerce_signature_must_match_the_raw_bytes(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    body = php_json(woocommerce_payload())
    reserialised = orjson.dumps(orjson.loads(body))
    response = client.post(
        f"/webhooks/woocommerce/{shop.id}",
        content=reserialised,
        headers=woocommerce_headers(WOO_SECRET, body, "order.created"),
    )
    assert response.status_code == 401
    assert counts(runtime, shop.id) == NOTHING


def test_woocommerce_duplicate_delivery_and_invalid_payload(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    url = f"/webhooks/woocommerce/{shop.id}"
    body = php_json(woocommerce_payload())
    headers = woocommerce_headers(WOO_SECRET, body, "order.created", delivery_id="d-1")
    assert client.post(url, content=body, headers=headers).json()["status"] == "applied"
    assert client.post(url, content=body, headers=headers).json()["status"] == "duplicate"
    assert counts(runtime, shop.id) == {**NOTHING, "orders": 1, "lines": 2, "deliveries": 1}

    broken = woocommerce_payload()
    broken["id"] = 728
    broken["status"] = "teleported"
    body = php_json(broken)
    response = client.post(
        url, content=body, headers=woocommerce_headers(WOO_SECRET, body, "order.updated")
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "status"
    assert quarantine_reasons(runtime, shop.id) == [("invalid_status", "status")]
    assert counts(runtime, shop.id) == {
        **NOTHING,
        "orders": 1,
        "lines": 2,
        "deliveries": 1,
        "quarantine": 1,
    }


def test_secret_set_through_the_settings_api_verifies_webhooks(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    response = client.patch(
        "/api/v1/settings",
        json={"shopify_webhook_secret": "from-the-settings-api"},
        headers=workspace.bearer,
    )
    assert response.status_code == 200, response.text
    body = orjson.dumps(shopify_payload("orders_create"))
    accepted = client.post(
        f"/webhooks/shopify/{workspace.id}",
        content=body,
        headers=shopify_headers("from-the-settings-api", body, "orders/create"),
    )
    assert accepted.status_code == 200, accepted.text
    assert counts(runtime, workspace.id)["orders"] == 1


def test_retries_of_a_refused_delivery_make_one_quarantine_entry(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    payload = shopify_payload("orders_create")
    payload["total_price"] = "lots"
    for _ in range(3):
        # Shopify retries a failed delivery under the same X-Shopify-Webhook-Id.
        response = _post_shopify(client, shop, payload, "orders/create", webhook_id="wh-bad-1")
        assert response.status_code == 422
    assert quarantine_reasons(runtime, shop.id) == [("invalid_amount", "total_price")]
    assert counts(runtime, shop.id) == {**NOTHING, "quarantine": 1}
    # Another delivery (another id) of a bad payload is another entry.
    _post_shopify(client, shop, payload, "orders/create", webhook_id="wh-bad-2")
    assert counts(runtime, shop.id) == {**NOTHING, "quarantine": 2}


def test_landing_page_and_referrer_keep_no_personal_query_data(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    order = _paid(shopify_payload("orders_create"), "2022-01-01T10:00:00-05:00")
    order["landing_site"] = (
        "/products/scarf?email=jane%40example.com&customer_token=t0k&utm_source=newsletter"
        "&utm_campaign=spring&sl_click=ck-9&fbclid=F1"
    )
    order["referring_site"] = "https://mail.example.com/inbox?user=jane%40example.com#msg-1"
    _post_shopify(client, shop, order, "orders/create")
    row = order_row(runtime, shop.id, SHOPIFY_ORDER_ID)
    kept = "/products/scarf?utm_source=newsletter&utm_campaign=spring&sl_click=ck-9&fbclid=F1"
    assert row.landing_page == kept
    assert row.referrer == "https://mail.example.com/inbox"
    assert row.marketing["landing_page"] == kept
    assert row.marketing["referrer"] == "https://mail.example.com/inbox"
    assert (row.marketing["utm_source"], row.marketing["click_id"]) == ("newsletter", "ck-9")
    assert "jane" not in orjson.dumps(row.marketing).decode()


def test_free_text_refund_notes_are_not_stored(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    order = _paid(shopify_payload("orders_paid"), "2022-01-01T10:00:00-05:00")
    _post_shopify(client, shop, order, "orders/paid")
    refund = shopify_payload("refunds_create")
    assert refund["note"] == "Things were damaged"
    _post_shopify(client, shop, refund, "refunds/create")
    detail = client.get(
        f"/api/v1/orders/{order_row(runtime, shop.id, SHOPIFY_ORDER_ID).id}",
        headers=shop.bearer,
    ).json()
    assert [(r["amount"], r["reason"]) for r in detail["refunds"]] == [("85.0000", None)]


def test_woocommerce_subtotal_is_the_sum_of_line_subtotals(
    client: TestClient, runtime: Runtime, shop: WorkspaceKeys
) -> None:
    payload = woocommerce_payload()
    # 3 for 10.00: the unit price 3.3333 times 3 would make 9.9999.
    payload["line_items"][0].update(quantity=3, subtotal="10.00", total="10.00", price=3.3333)
    payload["line_items"][1].update(quantity=7, subtotal="1.00", total="1.00", price=0.142857)
    body = php_json(payload)
    url = f"/webhooks/woocommerce/{shop.id}"
    client.post(url, content=body, headers=woocommerce_headers(WOO_SECRET, body, "order.created"))
    assert order_row(runtime, shop.id, str(payload["id"])).subtotal == Decimal("11.00")
