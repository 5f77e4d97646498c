"""The normalised order every source is mapped to, and the read API's response models."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel

from storeloop.kit.errors import ValidationFailed
from storeloop.kit.money import InvalidMoney, parse_money

# The sources an order can come from, weakest first: a stronger source's money fields are never
# overwritten by a weaker one (the shop platform is the book of record; events are the browser's
# view of it; a CSV import is a one-off copy of the platform's data).
SOURCE_RANK: dict[str, int] = {"event": 0, "csv": 1, "shopify": 2, "woocommerce": 2}
ORDER_STATUSES = ("pending", "paid", "cancelled", "refunded", "partially_refunded")
# Why money went back, as a short code: free-text refund notes (which carry names, addresses and
# complaints) are never stored. Anything else a source sends is stored as no reason.
REFUND_REASONS = frozenset(
    {"cancellation", "return", "damaged", "not_received", "duplicate", "fraud", "customer", "other"}
)
# Keys of ``Order.marketing``; nothing else is stored there (no personal data).
MARKETING_KEYS = (
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "click_id",
    "anonymous_id",
    "referrer",
    "landing_page",
    "source_type",
    "note_attributes",
)

ApplyOutcome = Literal["created", "updated", "unchanged", "stale"]


class InvalidPayload(ValidationFailed):
    """A shop payload or CSV row that cannot be read as an order; ``field`` names the culprit."""

    code = "invalid_order_payload"

    def __init__(self, message: str, *, field: str | None = None, reason: str = "invalid") -> None:
        super().__init__(message, field=field)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OrderLineInput:
    sku: str | None
    product_id: str | None
    name: str | None
    quantity: int
    unit_price: Decimal
    discount: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class RefundInput:
    external_id: str
    amount: Decimal
    refunded_at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerInput:
    """Who bought: sealed at rest. ``external_id`` is the shop's customer id (not personal)."""

    external_id: str | None = None
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    country: str | None = None

    def sealed_document(self) -> dict[str, str]:
        values = {
            "email": self.email,
            "phone": self.phone,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "country": self.country,
        }
        return {key: value for key, value in values.items() if value}


@dataclass(frozen=True, slots=True)
class OrderInput:
    """One order as a source describes it, before it is merged with what is stored."""

    external_id: str
    source: str
    source_updated_at: datetime
    placed_at: datetime
    currency: str
    subtotal: Decimal
    discount_total: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    status: str
    lines: tuple[OrderLineInput, ...] = ()
    refunds: tuple[RefundInput, ...] = ()
    discount_codes: tuple[str, ...] = ()
    source_channel: str | None = None
    landing_page: str | None = None
    referrer: str | None = None
    marketing: dict[str, Any] = field(default_factory=dict)
    customer: CustomerInput | None = None
    anonymous_id: str | None = None
    # Event-sourced orders carry the profile the event was resolved to.
    profile_id: uuid.UUID | None = None


def net_revenue(total: Decimal, refunded_total: Decimal, status: str) -> Decimal:
    """What an order earned: nothing when cancelled (cancelled, voided, failed payment), else
    its total less its refunds, never below 0. Attribution credits this amount."""
    if status == "cancelled":
        return Decimal(0)
    return max(total - refunded_total, Decimal(0))


def refund_reason(raw: Any) -> str | None:
    """One of ``REFUND_REASONS``, or None (free text is dropped, see REFUND_REASONS)."""
    if not isinstance(raw, str):
        return None
    code = raw.strip().lower().replace(" ", "_").replace("-", "_")
    return code if code in REFUND_REASONS else None


def money(raw: Any, path: str, *, required: bool = True) -> Decimal:
    """A money amount from a JSON string or number (never via binary float arithmetic), as
    ``storeloop.kit.money.parse_money`` reads it; absent and not required is 0."""
    if raw is None or raw == "":
        if required:
            raise InvalidPayload(f"{path} is required", field=path, reason="missing_field")
        return Decimal(0)
    try:
        return parse_money(raw, path)
    except InvalidMoney as error:
        raise InvalidPayload(error.message, field=path, reason="invalid_amount") from None


def string_id(raw: Any, path: str, *, required: bool = True) -> str | None:
    """An id as a string: JSON integers are read exactly (orjson), never through a float."""
    if raw is None or raw == "":
        if required:
            raise InvalidPayload(f"{path} is required", field=path, reason="missing_field")
        return None
    if isinstance(raw, bool | float):
        raise InvalidPayload(
            f"{path} must be a string or an integer", field=path, reason="invalid_id"
        )
    if isinstance(raw, int):
        return str(raw)
    if isinstance(raw, str) and len(raw) <= 255:
        return raw
    raise InvalidPayload(f"{path} must be a string or an integer", field=path, reason="invalid_id")


class OrderLineOut(BaseModel):
    position: int
    sku: str | None
    product_id: str | None
    name: str | None
    quantity: int
    unit_price: Decimal
    discount: Decimal


class RefundOut(BaseModel):
    id: uuid.UUID
    external_id: str
    amount: Decimal
    refunded_at: datetime
    reason: str | None
    source: str


class OrderSummary(BaseModel):
    id: uuid.UUID
    external_id: str
    source: str
    source_channel: str | None
    status: str
    currency: str
    subtotal: Decimal
    discount_total: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    refunded_total: Decimal
    profile_id: uuid.UUID | None
    customer_external_id: str | None
    discount_codes: list[str]
    placed_at: datetime
    source_updated_at: datetime


class OrderDetail(OrderSummary):
    anonymous_id: str | None
    landing_page: str | None
    referrer: str | None
    marketing: dict[str, Any]
    customer: dict[str, Any]
    lines: list[OrderLineOut]
    refunds: list[RefundOut]


class OrderNotice(BaseModel):
    """A newly stored order as the live dashboard announces it: no personal data."""

    id: uuid.UUID
    source: str
    status: str
    currency: str
    total: Decimal
    placed_at: datetime
    created_at: datetime


class OrderPage(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None


class ImportRowError(BaseModel):
    line: int
    column: str | None
    reason: str


class ImportResult(BaseModel):
    imported: int
    updated: int
    unchanged: int
    # Cancellation invoices (UCI "C") recorded as refunds of the customer's sales.
    cancellations: int
    rows: int
    errors: list[ImportRowError]
