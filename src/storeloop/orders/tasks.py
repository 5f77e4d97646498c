"""Orders derived from e-commerce spec events (a derivation handler, see storeloop.derivation).

Order Completed / Order Updated upsert the order (an update changes only what it carries);
Order Cancelled cancels it; Order Refunded adds a refund keyed by the event's message id (so a
re-run adds nothing). Checkout Started is not an order. Events never overwrite a shop platform's
order, they may only fill its missing marketing fields. An event that cannot be read as an order
(a bad quantity, no currency) is set aside in the quarantine with the reason, once, and not
retried. Idempotent: the runner may hand the same events over again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.orm import Session

from storeloop.derivation import StoredEvent
from storeloop.integrations.common import quantity, query_marketing
from storeloop.kit.crypto import WorkspaceCipher
from storeloop.kit.money import MONEY_QUANTUM
from storeloop.models import Order
from storeloop.orders.schemas import (
    InvalidPayload,
    OrderInput,
    OrderLineInput,
    RefundInput,
    money,
    string_id,
)
from storeloop.orders.service import OrderWriter

logger = logging.getLogger(__name__)

SOURCE = "event"
# The quarantine's source for events that could not be derived into orders.
QUARANTINE_SOURCE = "order_event"
UPSERT_EVENTS = frozenset({"Order Completed", "Order Updated"})
# The e-commerce events that say something about an order; Checkout Started and the coupon
# events are queued for derivation too (touchpoints, carts) but are not orders.
ORDER_EVENTS = UPSERT_EVENTS | {"Order Cancelled", "Order Refunded"}
MONEY_PROPERTIES = ("total", "revenue", "subtotal")


def _properties(event: StoredEvent) -> dict[str, Any]:
    properties = event.document.get("properties")
    return properties if isinstance(properties, dict) else {}


def _amount(properties: dict[str, Any], key: str) -> Decimal | None:
    if properties.get(key) is None:
        return None
    return money(properties[key], f"properties.{key}")


def _quantity(raw: Any, path: str) -> int:
    """A whole number >= 0 (1 when absent). Ingestion lets 2.0 and "2" through: read as 2."""
    if raw is None:
        return 1
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)
    elif isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        raw = int(raw.strip())
    return quantity(raw, path)


def _lines(properties: dict[str, Any]) -> tuple[OrderLineInput, ...]:
    products = properties.get("products")
    lines = []
    for index, product in enumerate(products if isinstance(products, list) else []):
        if not isinstance(product, dict):
            continue
        path = f"properties.products[{index}]"
        count = _quantity(product.get("quantity"), f"{path}.quantity")
        lines.append(
            OrderLineInput(
                sku=string_id(product.get("sku"), f"{path}.sku", required=False),
                product_id=string_id(
                    product.get("product_id"), f"{path}.product_id", required=False
                ),
                name=product.get("name") if isinstance(product.get("name"), str) else None,
                quantity=count,
                unit_price=money(product.get("price"), f"{path}.price", required=False),
            )
        )
    return tuple(lines)


def _marketing(event: StoredEvent) -> tuple[dict[str, Any], str | None, str | None]:
    raw_context = event.document.get("context")
    context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
    raw_page = context.get("page")
    page: dict[str, Any] = raw_page if isinstance(raw_page, dict) else {}
    landing = page.get("url") if isinstance(page.get("url"), str) else None
    referrer = page.get("referrer") if isinstance(page.get("referrer"), str) else None
    marketing: dict[str, Any] = {}
    campaign = context.get("campaign")
    if isinstance(campaign, dict):
        for key, target in (
            ("source", "utm_source"),
            ("medium", "utm_medium"),
            ("name", "utm_campaign"),
            ("term", "utm_term"),
            ("content", "utm_content"),
        ):
            if isinstance(campaign.get(key), str) and campaign[key]:
                marketing[target] = campaign[key][:255]
    storeloop = context.get("storeloop")
    if isinstance(storeloop, dict) and isinstance(storeloop.get("click_id"), str):
        marketing["click_id"] = storeloop["click_id"][:255]
    for key, value in query_marketing(landing).items():
        marketing.setdefault(key, value)
    return marketing, landing or None, referrer or None


def _currency(properties: dict[str, Any], stored: Order | None) -> str:
    raw = properties.get("currency")
    if raw is None and stored is not None:
        return stored.currency
    if isinstance(raw, str) and len(raw) == 3 and raw.isascii() and raw.isalpha():
        return raw.upper()
    # No workspace currency to fall back on, and guessing one would mix currencies in reports.
    raise InvalidPayload(
        "properties.currency (a 3-letter ISO 4217 code) is required",
        field="properties.currency",
        reason="invalid_currency" if raw is not None else "missing_currency",
    )


def _stored_lines(writer: OrderWriter, order: Order) -> tuple[OrderLineInput, ...]:
    return tuple(
        OrderLineInput(
            sku=line.sku,
            product_id=line.product_id,
            name=line.name,
            quantity=line.quantity,
            unit_price=Decimal(line.unit_price),
            discount=Decimal(line.discount),
        )
        for line in writer.repository.lines(order.id)
    )


def order_from_event(
    event: StoredEvent, status: str, stored: Order | None = None, writer: OrderWriter | None = None
) -> OrderInput:
    """The order an event describes. With ``stored`` (the order an ``Order Updated`` event
    updates), what the event does not carry is taken from the stored order, not reset."""
    properties = _properties(event)
    order_id = string_id(properties.get("order_id"), "properties.order_id")
    assert order_id is not None

    def stored_amount(key: str, column: str) -> Decimal | None:
        amount = _amount(properties, key)
        if amount is None and stored is not None:
            return Decimal(getattr(stored, column))
        return amount

    if "products" not in properties and stored is not None and writer is not None:
        lines = _stored_lines(writer, stored)
    else:
        lines = _lines(properties)
    revenue = _amount(properties, "revenue")
    shipping = stored_amount("shipping", "shipping") or Decimal(0)
    tax = stored_amount("tax", "tax") or Decimal(0)
    discount = stored_amount("discount", "discount_total") or Decimal(0)
    subtotal = stored_amount("subtotal", "subtotal")
    if subtotal is None:
        subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    total = _amount(properties, "total")
    if total is None:
        # Segment: revenue excludes shipping and tax; total includes them.
        total = (revenue if revenue is not None else subtotal - discount) + shipping + tax
    currency = _currency(properties, stored)
    coupon = properties.get("coupon")
    if isinstance(coupon, str) and coupon:
        codes: tuple[str, ...] = (coupon[:255],)
    elif "coupon" not in properties and stored is not None:
        codes = tuple(stored.discount_codes)
    else:
        codes = ()
    marketing, landing, referrer = _marketing(event)
    return OrderInput(
        external_id=order_id,
        source=SOURCE,
        source_updated_at=event.timestamp,
        placed_at=stored.placed_at if stored is not None else event.timestamp,
        currency=currency,
        subtotal=subtotal.quantize(MONEY_QUANTUM),
        discount_total=discount,
        shipping=shipping,
        tax=tax,
        total=total.quantize(MONEY_QUANTUM),
        status=status,
        lines=lines,
        discount_codes=codes,
        landing_page=landing,
        referrer=referrer,
        marketing=marketing,
        anonymous_id=event.anonymous_id,
        profile_id=event.profile_id,
    )


def _has_money(properties: dict[str, Any]) -> bool:
    return any(properties.get(key) is not None for key in MONEY_PROPERTIES) or bool(
        properties.get("products")
    )


def _refund(event: StoredEvent, writer: OrderWriter, order_id: str) -> None:
    properties = _properties(event)
    amount = _amount(properties, "total")
    if amount is None:
        amount = _amount(properties, "revenue")
    if amount is None and isinstance(properties.get("products"), list):
        lines = _lines(properties)
        amount = sum((line.unit_price * line.quantity for line in lines), Decimal(0)) or None
    if amount is None:
        # No amount: the whole order (what is left of it) was refunded.
        order = writer.repository.by_external_id(order_id)
        if order is None:
            return
        if any(
            refund.external_id == event.message_id for refund in writer.repository.refunds(order.id)
        ):
            # This event, handed over again: its refund already counts in refunded_total, so
            # "what is left" is no longer its amount. Keep the stored one.
            return
        amount = max(Decimal(order.total) - Decimal(order.refunded_total), Decimal(0))
    refund = RefundInput(
        external_id=event.message_id,
        amount=abs(amount),
        refunded_at=event.timestamp,
        reason=properties.get("reason") if isinstance(properties.get("reason"), str) else None,
    )
    writer.add_refunds(order_id, [refund], SOURCE)


def derive_orders(
    session: Session,
    workspace_id: uuid.UUID,
    cipher: WorkspaceCipher,
    events: Sequence[StoredEvent],
) -> None:
    writer = OrderWriter(session, cipher, workspace_id)
    for event in events:
        if event.type != "track" or event.event not in ORDER_EVENTS:
            continue
        try:
            if event.event in UPSERT_EVENTS:
                stored = None
                if event.event == "Order Updated":
                    if not _has_money(_properties(event)):
                        # An update naming no amounts and no products says nothing to store;
                        # read as an order it would zero the stored total.
                        continue
                    order_id = string_id(_properties(event).get("order_id"), "properties.order_id")
                    assert order_id is not None
                    stored = writer.repository.peek(order_id)
                writer.apply([order_from_event(event, "paid", stored, writer)])
                continue
            order_id = string_id(_properties(event).get("order_id"), "properties.order_id")
            assert order_id is not None
            if event.event == "Order Cancelled":
                if not writer.cancel(order_id, SOURCE, event.timestamp) and (
                    _properties(event).get("total") is not None
                    or _properties(event).get("products")
                ):
                    # A cancellation of an order never seen: kept as a cancelled order.
                    writer.apply([order_from_event(event, "cancelled")])
            elif event.event == "Order Refunded":
                _refund(event, writer, order_id)
        except InvalidPayload as error:
            # Retrying cannot help: set the event aside with the reason (once per message id),
            # so it can be fixed and replayed, and go on with the others.
            logger.warning(
                "event %s not derived into an order: %s (%s)", event.id, error.reason, error.field
            )
            writer.quarantine(
                source=QUARANTINE_SOURCE,
                reason=error.reason,
                field=error.field,
                detail=error.message,
                raw=orjson.dumps(event.document),
                message_id=event.message_id,
            )
