"""Pure validation rules: skew correction, e-commerce properties, ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from storeloop.ingestion.validation import (
    InvalidEvent,
    Limits,
    corrected_timestamp,
    normalize_message,
)

RECEIVED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def normalize(raw: dict, **kwargs):  # type: ignore[no-untyped-def]
    return normalize_message(
        raw, received_at=RECEIVED, fallback_message_id="fallback", limits=Limits(), **kwargs
    )


def test_skew_correction_follows_segment() -> None:
    device = RECEIVED + timedelta(hours=3)
    assert corrected_timestamp(
        device - timedelta(seconds=30), device, RECEIVED
    ) == RECEIVED - timedelta(seconds=30)
    assert corrected_timestamp(None, device, RECEIVED) == RECEIVED
    assert corrected_timestamp(
        RECEIVED - timedelta(days=1), None, RECEIVED
    ) == RECEIVED - timedelta(days=1)


def test_order_completed_is_read_into_typed_fields() -> None:
    event = normalize(
        {
            "type": "track",
            "event": "Order Completed",
            "userId": 42,
            "timestamp": "2026-11-22T11:00:00Z",
            "properties": {
                "order_id": 1001,
                "total": "59.80",
                "revenue": 50,
                "currency": "eur",
                "products": [{"sku": "A", "price": 25, "quantity": 2}],
            },
        }
    )
    assert (event.user_id, event.order_id, event.revenue, event.currency) == (
        "42",
        "1001",
        Decimal("50"),
        "EUR",
    )
    assert event.message_id == "fallback"
    assert event.timestamp == datetime(2026, 11, 22, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("properties", "code", "field"),
    [
        ({"total": 5}, "missing_field", "properties.order_id"),
        (
            {"order_id": "1", "currency": "euro"},
            "invalid_ecommerce_property",
            "properties.currency",
        ),
        ({"order_id": "1", "products": {}}, "invalid_ecommerce_property", "properties.products"),
        (
            {"order_id": "1", "products": [{"quantity": 1.5}]},
            "invalid_ecommerce_property",
            "properties.products[0].quantity",
        ),
        (
            {"order_id": "1", "products": [{"price": "free"}]},
            "invalid_ecommerce_property",
            "properties.products[0].price",
        ),
        ({"order_id": "1", "total": True}, "invalid_ecommerce_property", "properties.total"),
        ({"order_id": "1", "coupon": 10}, "invalid_ecommerce_property", "properties.coupon"),
        ({"order_id": "1", "total": 1e20}, "invalid_ecommerce_property", "properties.total"),
    ],
)
def test_order_properties_are_checked(properties: dict, code: str, field: str) -> None:
    with pytest.raises(InvalidEvent) as excinfo:
        normalize(
            {"type": "track", "event": "Order Completed", "userId": "u", "properties": properties}
        )
    assert (excinfo.value.rejection.code, excinfo.value.rejection.field) == (code, field)


@pytest.mark.parametrize(
    ("raw", "code", "field"),
    [
        ({"type": "track", "userId": "u"}, "missing_field", "event"),
        ({"type": "alias", "userId": "u"}, "missing_field", "previousId"),
        ({"type": "alias", "anonymousId": "a", "previousId": "p"}, "missing_field", "userId"),
        ({"type": "group", "userId": "u"}, "missing_field", "groupId"),
        ({"type": "track", "event": "x", "userId": "a\x00b"}, "invalid_string", "userId"),
        ({"type": "track", "event": "x", "userId": "u" * 256}, "invalid_string", "userId"),
        ({"type": "track", "event": "x", "userId": True}, "wrong_type", "userId"),
        (
            {"type": "track", "event": "x", "userId": "u", "timestamp": "2999-01-01T00:00:00Z"},
            "timestamp_out_of_range",
            "timestamp",
        ),
        (
            {"type": "track", "event": "x", "userId": "u", "timestamp": 1234},
            "invalid_timestamp",
            "timestamp",
        ),
        ({"type": "track", "event": "x", "userId": "u", "context": "web"}, "wrong_type", "context"),
    ],
)
def test_common_fields_are_checked(raw: dict, code: str, field: str) -> None:
    with pytest.raises(InvalidEvent) as excinfo:
        normalize(raw)
    assert (excinfo.value.rejection.code, excinfo.value.rejection.field) == (code, field)


def test_product_viewed_accepts_numeric_strings_and_ignores_unknown_events() -> None:
    viewed = normalize(
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": "a",
            "properties": {"price": "19.90"},
        }
    )
    assert viewed.order_id is None
    custom = normalize(
        {
            "type": "track",
            "event": "Wishlist Shared",
            "anonymousId": "a",
            "properties": {"total": "lots"},
        }
    )
    assert custom.event == "Wishlist Shared"
