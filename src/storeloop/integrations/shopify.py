"""Shopify webhook payloads (orders/*, refunds/create) mapped to normalised orders.

Ids are read from orjson's exact integers as strings, never through a float (Shopify ids exceed
2^53); amounts are read from Shopify's decimal strings. Money is the shop currency.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from storeloop.integrations.common import (
    ANONYMOUS_ID_ATTRIBUTE,
    CLICK_ID_ATTRIBUTE,
    UTM_KEYS,
    currency,
    parse_time,
    quantity,
    query_marketing,
    require_list,
    require_object,
    text,
)
from storeloop.orders.schemas import (
    CustomerInput,
    OrderInput,
    OrderLineInput,
    RefundInput,
    money,
    string_id,
)

SOURCE = "shopify"
ORDER_TOPICS = frozenset({"orders/create", "orders/updated", "orders/paid", "orders/cancelled"})
REFUND_TOPIC = "refunds/create"
CHECKOUT_TOPIC = "checkouts/create"
# note_attributes kept on the order: the storefront script's ids and UTM fields, nothing else
# (shops put gift messages and phone numbers there too).
KNOWN_NOTE_ATTRIBUTES = frozenset({ANONYMOUS_ID_ATTRIBUTE, CLICK_ID_ATTRIBUTE, *UTM_KEYS})
_PAID = frozenset({"paid", "partially_paid", "partially_refunded", "refunded"})


def _status(order: dict[str, Any]) -> str:
    if order.get("cancelled_at") or order.get("financial_status") == "voided":
        return "cancelled"
    return "paid" if order.get("financial_status") in _PAID else "pending"


def _shop_amount(field: Any) -> Any:
    """``{"shop_money": {"amount": "10.00"}}`` -> ``"10.00"``."""
    if isinstance(field, dict):
        shop = field.get("shop_money")
        if isinstance(shop, dict):
            return shop.get("amount")
    return None


def _note_attributes(raw: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        name, value = item.get("name"), text(item.get("value"), 255)
        if isinstance(name, str) and name in KNOWN_NOTE_ATTRIBUTES and value:
            found[name] = value
    return found


def _lines(raw: Any) -> tuple[OrderLineInput, ...]:
    lines = []
    for index, item in enumerate(require_list(raw, "line_items")):
        path = f"line_items[{index}]"
        line = require_object(item, path)
        allocations = require_list(line.get("discount_allocations"), f"{path}.discount_allocations")
        discount = money(line.get("total_discount"), f"{path}.total_discount", required=False)
        if not discount and allocations:
            discount = sum(
                (
                    money(a.get("amount"), f"{path}.discount_allocations[{i}].amount")
                    for i, a in enumerate(allocations)
                    if isinstance(a, dict)
                ),
                Decimal(0),
            )
        lines.append(
            OrderLineInput(
                sku=text(line.get("sku"), 255),
                product_id=string_id(line.get("product_id"), f"{path}.product_id", required=False),
                name=text(line.get("title") or line.get("name"), 500),
                quantity=quantity(line.get("quantity"), f"{path}.quantity"),
                unit_price=money(line.get("price"), f"{path}.price"),
                discount=discount,
            )
        )
    return tuple(lines)


def refund_input(raw: Any, path: str = "") -> RefundInput:
    """One Shopify refund: the money actually returned (successful refund transactions), or the
    refunded lines with their tax when the refund carries no transaction."""
    refund = require_object(raw, path)
    prefix = f"{path}." if path else ""
    refund_id = string_id(refund.get("id"), f"{prefix}id")
    assert refund_id is not None
    transactions = [
        t
        for t in require_list(refund.get("transactions"), f"{prefix}transactions")
        if isinstance(t, dict) and t.get("kind") == "refund" and t.get("status") == "success"
    ]
    if transactions:
        amount = sum(
            (
                money(t.get("amount"), f"{prefix}transactions[{i}].amount")
                for i, t in enumerate(transactions)
            ),
            Decimal(0),
        )
    else:
        amount = Decimal(0)
        for index, item in enumerate(
            require_list(refund.get("refund_line_items"), f"{prefix}refund_line_items")
        ):
            line = require_object(item, f"{prefix}refund_line_items[{index}]")
            amount += money(
                _shop_amount(line.get("subtotal_set")) or line.get("subtotal"),
                f"{prefix}refund_line_items[{index}].subtotal",
                required=False,
            )
            amount += money(
                _shop_amount(line.get("total_tax_set")) or line.get("total_tax"),
                f"{prefix}refund_line_items[{index}].total_tax",
                required=False,
            )
    refunded_at = parse_time(
        refund.get("processed_at") or refund.get("created_at"), f"{prefix}created_at"
    )
    assert refunded_at is not None
    return RefundInput(
        external_id=refund_id,
        amount=amount,
        refunded_at=refunded_at,
        reason=text(refund.get("note"), 500),
    )


def refund_order_id(raw: Any) -> str:
    refund = require_object(raw, "")
    order_id = string_id(refund.get("order_id"), "order_id")
    assert order_id is not None
    return order_id


def _customer(order: dict[str, Any]) -> CustomerInput | None:
    customer = order.get("customer") if isinstance(order.get("customer"), dict) else {}
    assert isinstance(customer, dict)
    billing = order.get("billing_address") if isinstance(order.get("billing_address"), dict) else {}
    assert isinstance(billing, dict)
    result = CustomerInput(
        external_id=string_id(customer.get("id"), "customer.id", required=False),
        email=text(order.get("email") or order.get("contact_email") or customer.get("email"), 320),
        phone=text(order.get("phone") or customer.get("phone") or billing.get("phone"), 64),
        first_name=text(customer.get("first_name") or billing.get("first_name"), 255),
        last_name=text(customer.get("last_name") or billing.get("last_name"), 255),
        country=text(billing.get("country_code"), 8),
    )
    return result if result != CustomerInput() else None


def order_input(raw: Any) -> OrderInput:
    """An orders/* webhook body (the Order resource) as a normalised order."""
    order = require_object(raw, "")
    external_id = string_id(order.get("id"), "id")
    assert external_id is not None
    placed_at = parse_time(order.get("processed_at") or order.get("created_at"), "created_at")
    updated_at = parse_time(order.get("updated_at"), "updated_at", required=False) or placed_at
    assert placed_at is not None
    assert updated_at is not None
    shipping = money(
        _shop_amount(order.get("total_shipping_price_set")),
        "total_shipping_price_set",
        required=False,
    )
    if not shipping:
        shipping = sum(
            (
                money(line.get("price"), f"shipping_lines[{i}].price", required=False)
                for i, line in enumerate(
                    require_list(order.get("shipping_lines"), "shipping_lines")
                )
                if isinstance(line, dict)
            ),
            Decimal(0),
        )
    notes = _note_attributes(order.get("note_attributes"))
    landing_page = text(order.get("landing_site"))
    referrer = text(order.get("referring_site"))
    marketing: dict[str, Any] = {**query_marketing(landing_page)}
    for key in UTM_KEYS:
        if key in notes:
            marketing.setdefault(key, notes[key])
    if CLICK_ID_ATTRIBUTE in notes:
        marketing["click_id"] = notes[CLICK_ID_ATTRIBUTE]
    if notes:
        marketing["note_attributes"] = notes
    codes = tuple(
        code
        for item in require_list(order.get("discount_codes"), "discount_codes")
        if isinstance(item, dict) and (code := text(item.get("code"), 255))
    )
    refunds = tuple(
        refund_input(item, f"refunds[{index}]")
        for index, item in enumerate(require_list(order.get("refunds"), "refunds"))
    )
    return OrderInput(
        external_id=external_id,
        source=SOURCE,
        source_updated_at=updated_at,
        placed_at=placed_at,
        currency=currency(order.get("currency"), "currency"),
        subtotal=money(order.get("total_line_items_price"), "total_line_items_price"),
        discount_total=money(order.get("total_discounts"), "total_discounts", required=False),
        shipping=shipping,
        tax=money(order.get("total_tax"), "total_tax", required=False),
        total=money(order.get("total_price"), "total_price"),
        status=_status(order),
        lines=_lines(order.get("line_items")),
        refunds=refunds,
        discount_codes=codes,
        source_channel=text(order.get("source_name"), 64),
        landing_page=landing_page,
        referrer=referrer,
        marketing=marketing,
        customer=_customer(order),
        anonymous_id=notes.get(ANONYMOUS_ID_ATTRIBUTE),
    )
