"""Orders derived from e-commerce spec events (a derivation handler, see storeloop.derivation).

Order Completed / Order Updated upsert the order; Order Cancelled cancels it; Order Refunded
adds a refund keyed by the event's message id (so a re-run adds nothing). Checkout Started is
not an order. Events never overwrite a shop platform's order, they may only fill its missing
marketing fields. Idempotent: the runner may hand the same events over again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from storeloop.derivation import StoredEvent
from storeloop.integrations.common import query_marketing
from storeloop.kit.crypto import WorkspaceCipher
from storeloop.orders.schemas import (
    MONEY_QUANTUM,
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
UPSERT_EVENTS = frozenset({"Order Completed", "Order Updated"})
MONEY_PROPERTIES = ("total", "revenue", "subtotal")


def _properties(event: StoredEvent) -> dict[str, Any]:
    properties = event.document.get("properties")
    return properties if isinstance(properties, dict) else {}


def _amount(properties: dict[str, Any], key: str) -> Decimal | None:
    if properties.get(key) is None:
        return None
    return money(properties[key], f"properties.{key}")


def _lines(properties: dict[str, Any]) -> tuple[OrderLineInput, ...]:
    products = properties.get("products")
    lines = []
    for index, product in enumerate(products if isinstance(products, list) else []):
        if not isinstance(product, dict):
            continue
        path = f"properties.products[{index}]"
        raw_quantity = product.get("quantity", 1)
        quantity = int(Decimal(str(raw_quantity))) if raw_quantity is not None else 1
        lines.append(
            OrderLineInput(
                sku=string_id(product.get("sku"), f"{path}.sku", required=False),
                product_id=string_id(
                    product.get("product_id"), f"{path}.product_id", required=False
                ),
                name=product.get("name") if isinstance(product.get("name"), str) else None,
                quantity=quantity,
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


def order_from_event(event: StoredEvent, status: str) -> OrderInput:
    properties = _properties(event)
    order_id = string_id(properties.get("order_id"), "properties.order_id")
    assert order_id is not None
    lines = _lines(properties)
    revenue = _amount(properties, "revenue")
    shipping = _amount(properties, "shipping") or Decimal(0)
    tax = _amount(properties, "tax") or Decimal(0)
    discount = _amount(properties, "discount") or Decimal(0)
    subtotal = _amount(properties, "subtotal")
    if subtotal is None:
        subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    total = _amount(properties, "total")
    if total is None:
        # Segment: revenue excludes shipping and tax; total includes them.
        total = (revenue if revenue is not None else subtotal - discount) + shipping + tax
    currency = properties.get("currency")
    coupon = properties.get("coupon")
    marketing, landing, referrer = _marketing(event)
    return OrderInput(
        external_id=order_id,
        source=SOURCE,
        source_updated_at=event.timestamp,
        placed_at=event.timestamp,
        currency=currency.upper() if isinstance(currency, str) and len(currency) == 3 else "USD",
        subtotal=subtotal.quantize(MONEY_QUANTUM),
        discount_total=discount,
        shipping=shipping,
        tax=tax,
        total=total.quantize(MONEY_QUANTUM),
        status=status,
        lines=lines,
        discount_codes=(coupon,) if isinstance(coupon, str) and coupon else (),
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
        if event.type != "track" or event.event is None:
            continue
        try:
            if event.event in UPSERT_EVENTS:
                if event.event == "Order Updated" and not _has_money(_properties(event)):
                    # An update naming no amounts and no products says nothing to store; read
                    # as an order it would zero the stored total.
                    continue
                writer.apply([order_from_event(event, "paid")])
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
            # Validated at ingestion, so this is rare (an amount out of range): skip the event.
            logger.warning(
                "event %s not derived into an order: %s (%s)", event.id, error.reason, error.field
            )
