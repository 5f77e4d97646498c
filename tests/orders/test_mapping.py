"""Platform payloads mapped to normalised orders: pure functions on the real example payloads."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from storeloop.integrations import shopify, woocommerce
from storeloop.integrations.common import signature_matches
from storeloop.orders.schemas import InvalidPayload
from tests.factories.orders import (
    SHOPIFY_ORDER_ID,
    WEBHOOKS,
    php_json,
    shopify_payload,
    sign,
    woocommerce_payload,
)


def test_shopify_order_ids_are_exact_strings_and_money_exact() -> None:
    order = shopify.order_input(
        orjson.loads((WEBHOOKS / "shopify" / "orders_create.json").read_bytes())
    )
    assert order.external_id == SHOPIFY_ORDER_ID
    assert order.currency == "USD"
    assert (order.subtotal, order.discount_total, order.shipping, order.tax, order.total) == (
        Decimal("414.95"),
        Decimal("20.00"),
        Decimal("10.00"),
        Decimal("0.00"),
        Decimal("404.95"),
    )
    # The example order was cancelled (cancelled_at set, financial_status voided).
    assert order.status == "cancelled"
    assert order.placed_at == datetime(2022, 1, 1, 0, 0, tzinfo=UTC)
    assert order.source_channel == "web"
    assert [
        (line.sku, line.product_id, line.quantity, line.unit_price) for line in order.lines
    ] == [
        ("SKU2006-001", "788032119674292900", 1, Decimal("89.99")),
        ("LENS-PROTECT-2YR", None, 1, Decimal("19.99")),
        ("CASE-LEATHER-PREM", None, 1, Decimal("24.99")),
        ("SKU2006-020", "788032119674292900", 1, Decimal("159.99")),
        ("SKU2006-035", "788032119674292900", 1, Decimal("119.99")),
    ]
    assert order.customer is not None
    assert order.customer.external_id == "115310627314723950"
    assert order.customer.email == "jon@example.com"


def test_shopify_ids_beyond_2_53_keep_every_digit() -> None:
    payload = shopify_payload("orders_create")
    body = orjson.dumps(payload).replace(b"820982911946154500", b"820982911946154508")
    assert shopify.order_input(orjson.loads(body)).external_id == "820982911946154508"


def test_shopify_refund_is_the_money_returned() -> None:
    refund = shopify.refund_input(shopify_payload("refunds_create"))
    assert refund.external_id == "890088186047892400"
    assert refund.amount == Decimal("85.00")  # two successful refund transactions, 75 + 10
    assert refund.reason == "Things were damaged"
    assert shopify.refund_order_id(shopify_payload("refunds_create")) == SHOPIFY_ORDER_ID


def test_shopify_marketing_from_landing_site_referrer_and_note_attributes() -> None:
    payload = shopify_payload("orders_create")
    payload["landing_site"] = (
        "/products/sunglasses?utm_source=instagram&utm_medium=social&sl_click=0196abc"
    )
    payload["referring_site"] = "https://l.instagram.com/"
    payload["note_attributes"] = [
        {"name": "sl_aid", "value": "anon-42"},
        {"name": "utm_campaign", "value": "spring"},
        {"name": "gift_message", "value": "Love, Jon (555-1234)"},
    ]
    order = shopify.order_input(payload)
    assert order.anonymous_id == "anon-42"
    assert order.landing_page == payload["landing_site"]
    assert order.referrer == "https://l.instagram.com/"
    assert order.marketing == {
        "utm_source": "instagram",
        "utm_medium": "social",
        "click_id": "0196abc",
        "utm_campaign": "spring",
        # Only known keys: the gift message (personal data) is not kept.
        "note_attributes": {"sl_aid": "anon-42", "utm_campaign": "spring"},
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": None}, "id"),
        ({"id": 1.5}, "id"),
        ({"total_price": "12,00"}, "total_price"),
        ({"currency": "dollars"}, "currency"),
        ({"updated_at": "yesterday"}, "updated_at"),
        ({"line_items": "many"}, "line_items"),
    ],
)
def test_shopify_invalid_payload_names_the_field(change: dict[str, object], field: str) -> None:
    payload = {**shopify_payload("orders_create"), **change}
    with pytest.raises(InvalidPayload) as raised:
        shopify.order_input(payload)
    assert raised.value.field == field


def test_woocommerce_order_mapping() -> None:
    order = woocommerce.order_input(woocommerce_payload())
    assert order.external_id == "727"
    assert order.status == "paid"  # processing
    assert (order.subtotal, order.discount_total, order.shipping, order.tax, order.total) == (
        Decimal("18.00"),
        Decimal("0.00"),
        Decimal("10.00"),
        Decimal("1.35"),
        Decimal("29.35"),
    )
    assert order.placed_at == datetime(2017, 3, 22, 19, 28, 2, tzinfo=UTC)
    assert order.source_updated_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    assert [
        (line.sku, line.product_id, line.quantity, line.unit_price) for line in order.lines
    ] == [
        (None, "93", 2, Decimal("3.0000")),
        ("Bar3", "22", 1, Decimal("12.0000")),
    ]
    assert order.customer is not None
    assert order.customer.external_id is None  # customer_id 0: a guest
    assert order.customer.email == "john.doe@example.com"


def test_woocommerce_attribution_meta_and_refunds() -> None:
    payload = woocommerce_payload()
    payload["meta_data"] += [
        {"id": 1, "key": "_wc_order_attribution_source_type", "value": "utm"},
        {"id": 2, "key": "_wc_order_attribution_utm_source", "value": "tiktok"},
        {"id": 3, "key": "_wc_order_attribution_utm_medium", "value": "influencer"},
        {"id": 4, "key": "_wc_order_attribution_utm_campaign", "value": "(none)"},
        {"id": 5, "key": "_wc_order_attribution_referrer", "value": "https://www.tiktok.com/"},
        {
            "id": 6,
            "key": "_wc_order_attribution_session_entry",
            "value": "https://example.com/?sl_click=c-9",
        },
        {"id": 7, "key": "_sl_aid", "value": "anon-7"},
    ]
    payload["refunds"] = [{"id": 726, "reason": "", "total": "-10.00"}]
    order = woocommerce.order_input(payload)
    assert order.marketing == {
        "utm_source": "tiktok",
        "utm_medium": "influencer",
        "source_type": "utm",
        "referrer": "https://www.tiktok.com/",
        "landing_page": "https://example.com/?sl_click=c-9",
        "click_id": "c-9",
    }
    assert order.anonymous_id == "anon-7"
    assert [(r.external_id, r.amount) for r in order.refunds] == [("726", Decimal("10.00"))]


def test_signature_is_over_the_raw_php_json_bytes() -> None:
    body = php_json(woocommerce_payload())
    assert b"\\/" in body
    header = sign("s3cret", body)
    assert signature_matches(b"s3cret", body, header)
    # The same document re-serialised without the escapes is other bytes: no match.
    assert not signature_matches(b"s3cret", orjson.dumps(orjson.loads(body)), header)
    assert not signature_matches(b"other", body, header)
    assert not signature_matches(b"s3cret", body, None)
