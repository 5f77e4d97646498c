"""Validation and normalisation of Segment messages: pure functions, no I/O.

The same function runs in the request (to answer precisely and quarantine bad events) and in the
worker (to store the good ones), with the same inputs, so both always agree on the split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from storeloop.kit.money import MAX_MONEY_DIGITS, MONEY_QUANTUM
from storeloop.kit.timeutil import as_utc, isoformat

MESSAGE_TYPES = frozenset({"track", "identify", "page", "screen", "group", "alias"})
MAX_ID_LENGTH = 255
MAX_NAME_LENGTH = 255

# Segment's e-commerce spec v2: events whose properties later issues build orders on.
ORDER_EVENTS = frozenset(
    {"Order Completed", "Order Updated", "Order Refunded", "Order Cancelled", "Checkout Started"}
)
PRODUCT_EVENTS = frozenset(
    {
        "Product Viewed",
        "Product Added",
        "Product Removed",
        "Product Clicked",
        "Product Added to Wishlist",
        "Product Removed from Wishlist",
        "Product Shared",
        "Product Reviewed",
    }
)
CART_EVENTS = frozenset({"Cart Viewed", "Product List Viewed", "Product List Filtered"})
COUPON_EVENTS = frozenset({"Coupon Entered", "Coupon Applied", "Coupon Denied", "Coupon Removed"})
ECOMMERCE_EVENTS = ORDER_EVENTS | PRODUCT_EVENTS | CART_EVENTS | COUPON_EVENTS
# Order Completed must say which order; the other order events may arrive before ids exist
# (Checkout Started) but when they carry money fields, the fields must be numbers.
EVENTS_REQUIRING_ORDER_ID = frozenset(
    {"Order Completed", "Order Updated", "Order Refunded", "Order Cancelled"}
)
# Amounts must round-trip exactly through the events.revenue column on both databases
# (kit.money: 4 decimal places, 11 integer digits).
MAX_NUMBER_DIGITS = MAX_MONEY_DIGITS
MAX_MONEY = Decimal(10) ** MAX_NUMBER_DIGITS
MONEY_FIELDS = ("total", "revenue", "subtotal", "shipping", "tax", "discount", "value", "price")


@dataclass(frozen=True, slots=True)
class Limits:
    max_event_bytes: int = 32 * 1024
    max_json_depth: int = 24
    max_age: timedelta = timedelta(days=3 * 365)
    max_future: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one event was refused. ``code`` is stable; ``field`` names the offending path."""

    code: str
    field: str | None
    message: str


class InvalidEvent(Exception):
    def __init__(self, code: str, field: str | None, message: str) -> None:
        super().__init__(message)
        self.rejection = Rejection(code, field, message)


@dataclass(slots=True)
class NormalizedEvent:
    message_id: str
    type: str
    event: str | None
    anonymous_id: str | None
    user_id: str | None
    timestamp: datetime
    original_timestamp: datetime | None
    sent_at: datetime | None
    received_at: datetime
    document: dict[str, Any]
    order_id: str | None = None
    revenue: Decimal | None = None
    currency: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)
    previous_id: str | None = None


def _fail(code: str, path: str | None, message: str) -> InvalidEvent:
    return InvalidEvent(code, path, message)


def _string_id(raw: Any, path: str, *, required: bool) -> str | None:
    if raw is None or raw == "":
        if required:
            raise _fail("missing_field", path, f"{path} is required")
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise _fail("wrong_type", path, f"{path} must be a string")
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise _fail("wrong_type", path, f"{path} must be a string")
        # A float id has usually been rounded by a JSON round-trip already; keep what was sent.
        value = repr(raw)
    else:
        value = str(raw)
    if len(value) > MAX_ID_LENGTH:
        raise _fail("invalid_string", path, f"{path} is longer than {MAX_ID_LENGTH} characters")
    if "\x00" in value:
        raise _fail("invalid_string", path, f"{path} contains a NUL character")
    return value


def _name(raw: Any, path: str, *, required: bool) -> str | None:
    if raw is None or raw == "":
        if required:
            raise _fail("missing_field", path, f"{path} is required")
        return None
    if not isinstance(raw, str):
        raise _fail("wrong_type", path, f"{path} must be a string")
    if len(raw) > MAX_NAME_LENGTH:
        raise _fail("invalid_string", path, f"{path} is longer than {MAX_NAME_LENGTH} characters")
    if "\x00" in raw:
        raise _fail("invalid_string", path, f"{path} contains a NUL character")
    return raw


def _object(raw: Any, path: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail("wrong_type", path, f"{path} must be an object")
    return raw


def parse_timestamp(raw: Any, path: str) -> datetime | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise _fail("invalid_timestamp", path, f"{path} must be an ISO-8601 string")
    text = raw.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise _fail("invalid_timestamp", path, f"{path} is not an ISO-8601 timestamp") from None
    try:
        return as_utc(parsed)
    except OverflowError:
        raise _fail("invalid_timestamp", path, f"{path} is out of range") from None


def _depth_ok(value: Any, limit: int) -> bool:
    """True when ``value`` nests no deeper than ``limit`` containers (iterative: no recursion).

    Only containers go on the stack: scalars, most of an event, cost one type check each.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if type(item) is dict else item
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                if depth >= limit:
                    return False
                stack.append((child, depth + 1))
    return True


def _too_deep(path: str, limits: Limits) -> InvalidEvent:
    return _fail(
        "too_deep",
        path or "body",
        f"{path or 'the event'} nests deeper than {limits.max_json_depth} levels",
    )


def _number(raw: Any, path: str, *, money: bool = True) -> Decimal | None:
    value = _parse_number(raw, path)
    if value is None:
        return None
    # adjusted() reads the exponent without arithmetic, which would overflow on 1e999999999.
    if value.adjusted() >= MAX_NUMBER_DIGITS:
        raise _fail("invalid_ecommerce_property", path, f"{path} is out of range")
    if money:
        # Stored as NUMERIC(18, 4): round now, so what was acknowledged is what gets stored.
        value = value.quantize(MONEY_QUANTUM)
        if abs(value) >= MAX_MONEY:
            raise _fail("invalid_ecommerce_property", path, f"{path} is out of range")
    return value


def _parse_number(raw: Any, path: str) -> Decimal | None:
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise _fail("invalid_ecommerce_property", path, f"{path} must be a number")
    if isinstance(raw, int | float):
        if isinstance(raw, float) and not math.isfinite(raw):
            raise _fail("invalid_ecommerce_property", path, f"{path} must be a finite number")
        return Decimal(str(raw))
    if isinstance(raw, str):
        # Many storefronts send "19.90"; accept numeric strings, refuse anything else.
        try:
            value = Decimal(raw.strip())
        except InvalidOperation:
            raise _fail("invalid_ecommerce_property", path, f"{path} must be a number") from None
        if not value.is_finite():
            raise _fail("invalid_ecommerce_property", path, f"{path} must be a finite number")
        return value
    raise _fail("invalid_ecommerce_property", path, f"{path} must be a number")


def _currency(raw: Any, path: str) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or len(raw) != 3 or not raw.isascii() or not raw.isalpha():
        raise _fail("invalid_ecommerce_property", path, f"{path} must be a 3-letter ISO 4217 code")
    return raw.upper()


def _validate_product(product: Any, path: str) -> None:
    if not isinstance(product, dict):
        raise _fail("invalid_ecommerce_property", path, f"{path} must be an object")
    for key in ("product_id", "sku"):
        if key in product:
            _string_id(product[key], f"{path}.{key}", required=False)
    _number(product.get("price"), f"{path}.price")
    quantity = product.get("quantity")
    if quantity is not None:
        value = _number(quantity, f"{path}.quantity", money=False)
        if value is not None and (value < 0 or value != value.to_integral_value()):
            raise _fail(
                "invalid_ecommerce_property",
                f"{path}.quantity",
                f"{path}.quantity must be a whole number >= 0",
            )


def _validate_ecommerce(normalized: NormalizedEvent, properties: dict[str, Any], base: str) -> None:
    name = normalized.event
    if name not in ECOMMERCE_EVENTS:
        return
    props = f"{base}properties"
    order_id = _string_id(
        properties.get("order_id"),
        f"{props}.order_id",
        required=name in EVENTS_REQUIRING_ORDER_ID,
    )
    amounts: dict[str, Decimal | None] = {}
    for key in MONEY_FIELDS:
        if key in properties:
            amounts[key] = _number(properties[key], f"{props}.{key}")
    currency = _currency(properties.get("currency"), f"{props}.currency")
    coupon = properties.get("coupon")
    if coupon is not None and not isinstance(coupon, str):
        raise _fail(
            "invalid_ecommerce_property", f"{props}.coupon", f"{props}.coupon must be a string"
        )
    products = properties.get("products")
    if products is not None:
        if not isinstance(products, list):
            raise _fail(
                "invalid_ecommerce_property",
                f"{props}.products",
                f"{props}.products must be an array",
            )
        for index, product in enumerate(products):
            _validate_product(product, f"{props}.products[{index}]")
    if name in PRODUCT_EVENTS:
        _validate_product(properties, props)
    if name in ORDER_EVENTS:
        normalized.order_id = order_id
        revenue = amounts.get("revenue")
        normalized.revenue = revenue if revenue is not None else amounts.get("total")
        normalized.currency = currency


def normalize_message(
    raw: Any,
    *,
    received_at: datetime,
    fallback_message_id: str,
    limits: Limits,
    forced_type: str | None = None,
    batch_sent_at: datetime | None = None,
    path: str = "",
    build_document: bool = True,
) -> NormalizedEvent:
    """Validate one message and return it normalised, or raise InvalidEvent naming the field.

    ``build_document=False`` validates just as strictly but leaves ``document`` empty: the request
    path only needs the verdict, the worker needs the document.
    """
    base = f"{path}." if path else ""
    if type(raw) is not dict:
        raise _fail("wrong_type", path or "body", f"{path or 'the body'} must be an object")
    try:
        encoded = orjson.dumps(raw)
    except TypeError as exc:
        if "ecursion" in str(exc):
            raise _too_deep(path, limits) from None
        # Values Python's json reads but JSON storage cannot hold: lone surrogates, ints > 64 bits.
        raise _fail(
            "invalid_json",
            path or "body",
            f"{path or 'the event'} holds a value that is not storable JSON "
            "(a lone surrogate or an integer beyond 64 bits)",
        ) from None
    # Nesting depth cannot exceed the number of brackets (brackets inside strings only add to
    # the count), so the walk runs only for the rare event with many containers.
    brackets = encoded.count(b"{") + encoded.count(b"[")
    if brackets > limits.max_json_depth and not _depth_ok(raw, limits.max_json_depth):
        raise _too_deep(path, limits)
    if len(encoded) > limits.max_event_bytes:
        raise _fail(
            "event_too_large",
            path or "body",
            f"{path or 'the event'} is larger than {limits.max_event_bytes} bytes",
        )

    if forced_type is not None:
        message_type = forced_type
    else:
        message_type_raw = raw.get("type")
        if message_type_raw is None:
            raise _fail("missing_field", f"{base}type", f"{base}type is required")
        if not isinstance(message_type_raw, str) or message_type_raw not in MESSAGE_TYPES:
            raise _fail(
                "unknown_type",
                f"{base}type",
                f"{base}type must be one of {', '.join(sorted(MESSAGE_TYPES))}",
            )
        message_type = message_type_raw

    message_id = _string_id(raw.get("messageId"), f"{base}messageId", required=False)
    user_id = _string_id(raw.get("userId"), f"{base}userId", required=message_type == "alias")
    anonymous_id = _string_id(raw.get("anonymousId"), f"{base}anonymousId", required=False)
    if user_id is None and anonymous_id is None:
        raise _fail(
            "missing_field", f"{base}userId", f"{base}userId or {base}anonymousId is required"
        )

    event_name: str | None = None
    document: dict[str, Any] = {"type": message_type}
    previous_id: str | None = None
    if message_type == "track":
        event_name = _name(raw.get("event"), f"{base}event", required=True)
    elif message_type in ("page", "screen"):
        event_name = _name(raw.get("name"), f"{base}name", required=False)
        category = _name(raw.get("category"), f"{base}category", required=False)
        if category is not None:
            document["category"] = category
    elif message_type == "group":
        document["groupId"] = _string_id(raw.get("groupId"), f"{base}groupId", required=True)
    elif message_type == "alias":
        previous_id = _string_id(raw.get("previousId"), f"{base}previousId", required=True)
        document["previousId"] = previous_id

    properties = _object(raw.get("properties"), f"{base}properties")
    traits = _object(raw.get("traits"), f"{base}traits")
    context = _object(raw.get("context"), f"{base}context")
    integrations = _object(raw.get("integrations"), f"{base}integrations")

    original_timestamp = parse_timestamp(raw.get("timestamp"), f"{base}timestamp")
    if original_timestamp is None:
        original_timestamp = parse_timestamp(
            raw.get("originalTimestamp"), f"{base}originalTimestamp"
        )
    sent_at = parse_timestamp(raw.get("sentAt"), f"{base}sentAt") or batch_sent_at
    timestamp = corrected_timestamp(original_timestamp, sent_at, received_at)
    if timestamp < received_at - limits.max_age or timestamp > received_at + limits.max_future:
        raise _fail(
            "timestamp_out_of_range",
            f"{base}timestamp",
            f"{base}timestamp {isoformat(timestamp)} is too far from the time it was received",
        )

    normalized = NormalizedEvent(
        message_id=message_id or fallback_message_id,
        type=message_type,
        event=event_name,
        anonymous_id=anonymous_id,
        user_id=user_id,
        timestamp=timestamp,
        original_timestamp=original_timestamp,
        sent_at=sent_at,
        received_at=received_at,
        document=document,
        previous_id=previous_id,
    )
    _validate_ecommerce(normalized, properties, base)

    # Only identify traits describe the person; group traits describe the group.
    if message_type == "identify":
        normalized.traits = traits
    if not build_document:
        return normalized
    document.update(
        {
            "messageId": normalized.message_id,
            "event": event_name,
            "anonymousId": anonymous_id,
            "userId": user_id,
            "timestamp": isoformat(timestamp),
            "receivedAt": isoformat(received_at),
            "properties": properties,
            "traits": traits,
            "context": context,
            "integrations": integrations,
        }
    )
    if original_timestamp is not None:
        document["originalTimestamp"] = isoformat(original_timestamp)
    if sent_at is not None:
        document["sentAt"] = isoformat(sent_at)
    return normalized


def corrected_timestamp(
    original: datetime | None, sent_at: datetime | None, received_at: datetime
) -> datetime:
    """Segment's clock-skew correction: the device clock is trusted for intervals, not instants.

    timestamp = receivedAt - (sentAt - originalTimestamp); without sentAt the client's timestamp
    stands, and without any timestamp the receive time does.
    """
    if original is None:
        return received_at
    if sent_at is None:
        return original
    try:
        return received_at - (sent_at - original)
    except OverflowError:
        return original
