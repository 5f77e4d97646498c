"""The request path's quick verdict on one message: "certainly valid", or "ask the validator".

msgspec checks the types of the envelope's fields (and of e-commerce properties) in C; a few
Python comparisons do the rest. The answer is only ever a shortcut: ``False`` sends the message
to ``normalize_message``, which decides and words the error, so codes, fields and messages are
exactly the validator's. Soundness is the one rule: ``True`` must imply that ``normalize_message``
accepts the message (tests/ingestion/test_fastpath.py checks this with generated messages).

The body itself is still parsed by orjson: msgspec skips fields a Struct does not declare without
validating them (invalid UTF-8, numbers beyond float range), so only orjson's parse can promise
the worker, which parses the same body with orjson, the same events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
import orjson
from msgspec import Meta

from storeloop.ingestion.validation import (
    ECOMMERCE_EVENTS,
    EVENTS_REQUIRING_ORDER_ID,
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MESSAGE_TYPES,
    MONEY_FIELDS,
    Limits,
    _depth_ok,
    corrected_timestamp,
)
from storeloop.kit.timeutil import as_utc

# Below this magnitude a number needs no Decimal to know it is a storable amount after rounding
# (kit.money allows 11 integer digits).
_SAFE_MAGNITUDE = 1e10
_SAFE_INT = 10**13

# The validator's limits as msgspec constraints, checked in C. Stricter is fine (the validator
# decides then): integer ids beyond int64, float ids, quantities written as floats.
Id = (
    Annotated[str, Meta(max_length=MAX_ID_LENGTH)] | Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
)
Name = Annotated[str, Meta(max_length=MAX_NAME_LENGTH)]
Money = Annotated[float, Meta(gt=-_SAFE_MAGNITUDE, lt=_SAFE_MAGNITUDE)]
Quantity = Annotated[int, Meta(ge=0, lt=_SAFE_INT)]


class _Message(msgspec.Struct):
    """The fields the validator reads; anything else in a message passes through unchecked."""

    type: str | None = None
    messageId: Id | None = None
    userId: Id | None = None
    anonymousId: Id | None = None
    event: Name | None = None
    name: Name | None = None
    category: Name | None = None
    groupId: Id | None = None
    previousId: Id | None = None
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    integrations: dict[str, Any] | None = None
    timestamp: str | None = None
    originalTimestamp: str | None = None
    sentAt: str | None = None


class _Product(msgspec.Struct):
    product_id: Id | None = None
    sku: Id | None = None
    price: Money | None = None
    quantity: Quantity | None = None


class _Order(msgspec.Struct):
    order_id: Id | None = None
    total: Money | None = None
    revenue: Money | None = None
    subtotal: Money | None = None
    shipping: Money | None = None
    tax: Money | None = None
    discount: Money | None = None
    value: Money | None = None
    price: Money | None = None
    currency: str | None = None
    coupon: str | None = None
    products: list[_Product] | None = None
    # The properties of a Product event are themselves a product.
    product_id: Id | None = None
    sku: Id | None = None
    quantity: Quantity | None = None


assert set(MONEY_FIELDS) <= set(_Order.__struct_fields__), "a money field is not checked"
# Build the types' validators now: a mistake in them must fail at import, not turn every message
# into a silent fallback (certainly_valid catches ValueError, which msgspec raises for both).
msgspec.convert({}, _Message)
msgspec.convert({"products": [{}]}, _Order)


def _present(value: str | int | None) -> bool:
    return value is not None and value != ""


def _timestamp(raw: str | None) -> datetime | None:
    """The parsed timestamp; raises ValueError/OverflowError where the validator would refuse."""
    if raw is None or raw == "":
        return None
    return as_utc(datetime.fromisoformat(raw.strip()))


def _commerce_ok(name: str, properties: dict[str, Any] | None) -> bool:
    order = msgspec.convert(properties or {}, _Order)
    if name in EVENTS_REQUIRING_ORDER_ID and not _present(order.order_id):
        return False
    currency = order.currency
    return not currency or (len(currency) == 3 and currency.isascii() and currency.isalpha())


def certainly_valid(
    raw: Any,
    *,
    received_at: datetime,
    limits: Limits,
    forced_type: str | None,
    batch_sent_at: datetime | None,
) -> bool:
    """True only when ``normalize_message`` would accept ``raw`` with the same arguments."""
    if type(raw) is not dict:
        return False
    try:
        encoded = orjson.dumps(raw)
        # Depth cannot exceed the number of brackets: the walk runs only for bracket-rich events.
        brackets = encoded.count(b"{") + encoded.count(b"[")
        if brackets > limits.max_json_depth and not _depth_ok(raw, limits.max_json_depth):
            return False
        if len(encoded) > limits.max_event_bytes:
            return False
        # orjson writes NUL as \\u0000: one scan clears every string of the event at once, and
        # most events hold no escape at all (memchr for a backslash is quicker than the search).
        if encoded.find(b"\\") >= 0 and b"\\u0000" in encoded:
            return False
        message = msgspec.convert(raw, _Message)
        kind = forced_type if forced_type is not None else message.type
        if kind not in MESSAGE_TYPES:
            return False
        has_user = _present(message.userId)
        if not has_user and not _present(message.anonymousId):
            return False
        if kind == "track":
            if not message.event:
                return False
        elif kind == "group":
            if not _present(message.groupId):
                return False
        elif kind == "alias" and not (has_user and _present(message.previousId)):
            return False
        original = _timestamp(message.timestamp)
        if original is None:
            original = _timestamp(message.originalTimestamp)
        sent_at = _timestamp(message.sentAt) or batch_sent_at
        timestamp = corrected_timestamp(original, sent_at, received_at)
        if timestamp < received_at - limits.max_age or timestamp > received_at + limits.max_future:
            return False
        event_name = message.event if kind == "track" else None
        if kind in ("page", "screen"):
            event_name = message.name
        if event_name in ECOMMERCE_EVENTS:
            assert event_name is not None
            return _commerce_ok(event_name, message.properties)
        return True
    except (msgspec.ValidationError, TypeError, ValueError, OverflowError):
        return False
