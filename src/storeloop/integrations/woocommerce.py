"""WooCommerce webhook bodies (the REST v3 order object) mapped to normalised orders.

Times are the ``*_gmt`` fields (UTC without an offset). Refunds come in the order's ``refunds``
array as ``{id, reason, total}`` with a negative total. WooCommerce 8.5+ order attribution is
read from ``meta_data`` (``_wc_order_attribution_*``); the storefront script's ids from
``_sl_aid`` / ``_sl_click``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from storeloop.integrations.common import (
    currency,
    parse_time,
    quantity,
    query_marketing,
    require_list,
    require_object,
    text,
)
from storeloop.kit.money import MONEY_QUANTUM
from storeloop.orders.schemas import (
    CustomerInput,
    InvalidPayload,
    OrderInput,
    OrderLineInput,
    RefundInput,
    money,
    string_id,
)

SOURCE = "woocommerce"
ORDER_TOPICS = frozenset({"order.created", "order.updated"})
# A new webhook's first delivery: form-encoded, unsigned, to be answered 200.
PING_BODY = re.compile(rb"^webhook_id=\d+$")
STATUSES = {
    "pending": "pending",
    "on-hold": "pending",
    "checkout-draft": "pending",
    "processing": "paid",
    "completed": "paid",
    "refunded": "paid",  # the refunds array makes it refunded
    "cancelled": "cancelled",
    # A failed payment earned nothing: counted like a cancellation.
    "failed": "cancelled",
}
ATTRIBUTION_PREFIX = "_wc_order_attribution_"
_ATTRIBUTION_FIELDS = {
    "utm_source": "utm_source",
    "utm_medium": "utm_medium",
    "utm_campaign": "utm_campaign",
    "utm_term": "utm_term",
    "utm_content": "utm_content",
    "source_type": "source_type",
    "referrer": "referrer",
    "session_entry": "landing_page",
}
ANONYMOUS_ID_META = "_sl_aid"
CLICK_ID_META = "_sl_click"


def _meta(raw: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in require_list(raw, "meta_data"):
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            value = text(item.get("value"), 2000)
            if value:
                found[item["key"]] = value
    return found


def _lines(raw: Any) -> tuple[tuple[OrderLineInput, ...], Decimal]:
    """The lines, and the order's subtotal: the sum of the lines' exact subtotals (not of the
    rounded unit prices times quantities)."""
    lines = []
    order_subtotal = Decimal(0)
    for index, item in enumerate(require_list(raw, "line_items")):
        path = f"line_items[{index}]"
        line = require_object(item, path)
        count = quantity(line.get("quantity"), f"{path}.quantity")
        subtotal = money(line.get("subtotal"), f"{path}.subtotal")
        total = (
            money(line.get("total"), f"{path}.total", required=False)
            if "total" in line
            else subtotal
        )
        # ``price`` is a float in the v3 object; the subtotal string is exact.
        unit_price = (subtotal / count).quantize(MONEY_QUANTUM) if count else subtotal
        order_subtotal += subtotal
        lines.append(
            OrderLineInput(
                sku=text(line.get("sku"), 255),
                product_id=string_id(line.get("product_id"), f"{path}.product_id", required=False),
                name=text(line.get("name"), 500),
                quantity=count,
                unit_price=unit_price,
                discount=subtotal - total,
            )
        )
    return tuple(lines), order_subtotal


def _refunds(raw: Any, refunded_at_fallback: Any) -> tuple[RefundInput, ...]:
    refunds = []
    for index, item in enumerate(require_list(raw, "refunds")):
        path = f"refunds[{index}]"
        refund = require_object(item, path)
        refund_id = string_id(refund.get("id"), f"{path}.id")
        assert refund_id is not None
        amount = money(refund.get("total", refund.get("amount")), f"{path}.total")
        refunded_at = parse_time(
            refund.get("date_created_gmt") or refunded_at_fallback, f"{path}.date_created_gmt"
        )
        assert refunded_at is not None
        refunds.append(
            RefundInput(
                external_id=refund_id,
                amount=abs(amount),
                refunded_at=refunded_at,
                reason=text(refund.get("reason"), 500),
            )
        )
    return tuple(refunds)


def order_input(raw: Any) -> OrderInput:
    order = require_object(raw, "")
    external_id = string_id(order.get("id"), "id")
    assert external_id is not None
    status_raw = order.get("status")
    if not isinstance(status_raw, str) or status_raw not in STATUSES:
        raise_status = status_raw if isinstance(status_raw, str) else type(status_raw).__name__
        raise InvalidPayload(
            f"status {raise_status[:40]!r} is not a WooCommerce order status",
            field="status",
            reason="invalid_status",
        )
    placed_at = parse_time(order.get("date_created_gmt"), "date_created_gmt")
    updated_at = (
        parse_time(order.get("date_modified_gmt"), "date_modified_gmt", required=False) or placed_at
    )
    assert placed_at is not None
    assert updated_at is not None
    meta = _meta(order.get("meta_data"))
    marketing: dict[str, Any] = {}
    for key, target in _ATTRIBUTION_FIELDS.items():
        value = meta.get(ATTRIBUTION_PREFIX + key)
        if value and value != "(none)":
            marketing[target] = value
    landing_page = marketing.get("landing_page")
    for key, value in query_marketing(landing_page).items():
        marketing.setdefault(key, value)
    if CLICK_ID_META in meta:
        marketing["click_id"] = meta[CLICK_ID_META]
    lines, subtotal = _lines(order.get("line_items"))
    billing = order.get("billing") if isinstance(order.get("billing"), dict) else {}
    assert isinstance(billing, dict)
    customer = CustomerInput(
        # customer_id 0 is a guest checkout.
        external_id=string_id(order.get("customer_id"), "customer_id", required=False)
        if order.get("customer_id")
        else None,
        email=text(billing.get("email"), 320),
        phone=text(billing.get("phone"), 64),
        first_name=text(billing.get("first_name"), 255),
        last_name=text(billing.get("last_name"), 255),
        country=text(billing.get("country"), 8),
    )
    codes = tuple(
        code
        for item in require_list(order.get("coupon_lines"), "coupon_lines")
        if isinstance(item, dict) and (code := text(item.get("code"), 255))
    )
    return OrderInput(
        external_id=external_id,
        source=SOURCE,
        source_updated_at=updated_at,
        placed_at=placed_at,
        currency=currency(order.get("currency"), "currency"),
        subtotal=subtotal.quantize(MONEY_QUANTUM),
        discount_total=money(order.get("discount_total"), "discount_total", required=False),
        shipping=money(order.get("shipping_total"), "shipping_total", required=False),
        tax=money(order.get("total_tax"), "total_tax", required=False),
        total=money(order.get("total"), "total"),
        status=STATUSES[status_raw],
        lines=lines,
        refunds=_refunds(order.get("refunds"), order.get("date_modified_gmt")),
        discount_codes=codes,
        source_channel=text(order.get("created_via"), 64),
        landing_page=landing_page,
        referrer=marketing.get("referrer"),
        marketing=marketing,
        customer=customer if customer != CustomerInput() else None,
        anonymous_id=meta.get(ANONYMOUS_ID_META),
    )
