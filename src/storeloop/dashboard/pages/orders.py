"""Orders: the list of the range (keyset pages) and one order with its attribution explained."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from storeloop.attribution.schemas import ExplainedTouchpoint, OrderAttribution
from storeloop.attribution.service import explain_order
from storeloop.dashboard.csvfile import csv_response
from storeloop.dashboard.filters import MODEL_LABELS
from storeloop.dashboard.pages.common import (
    RANGE_ONLY,
    cursor_param,
    filter_options,
    table_of,
    wants_csv,
)
from storeloop.dashboard.web import (
    FiltersDep,
    StaffDep,
    page_errors,
    read_session,
    render,
    runtime_of,
)
from storeloop.influencers.service import campaign_names, influencer_names
from storeloop.orders.schemas import OrderSummary
from storeloop.orders.service import get_order, list_orders

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
# A CSV download of the range holds at most this many orders (newest first).
MAX_EXPORT_ROWS = 10_000

ORDER_COLUMNS = (
    "id",
    "external_id",
    "placed_at",
    "source",
    "source_channel",
    "status",
    "currency",
    "subtotal",
    "discount_total",
    "shipping",
    "tax",
    "total",
    "refunded_total",
    "discount_codes",
    "profile_id",
)

# What decided an order's credit, in the words of docs/attribution.md.
RULES = {
    "code_precedence": "The order used a discount code of an influencer or campaign: the code "
    "takes all the credit in every model (discount-code precedence), other touchpoints are "
    "excluded.",
    "touchpoints": "The credit is shared among the touchpoints of the look-back window, as each "
    "model says.",
    "direct_only": "Only direct visits were found in the window: Direct takes the credit.",
    "no_touchpoints": "No touchpoint was found for this customer: the order is credited 100% "
    "to Direct.",
}
EXCLUSION_REASONS = {
    "bot": "a bot (not a person)",
    "after_order": "after the order was placed",
    "outside_window": "before the look-back window",
    "code_precedence": "a discount code took the credit",
    "direct_overridden": "direct visit: other touchpoints take precedence",
}


def order_row(order: OrderSummary) -> list[Any]:
    return [
        order.id,
        order.external_id,
        order.placed_at,
        order.source,
        order.source_channel,
        order.status,
        order.currency,
        order.subtotal,
        order.discount_total,
        order.shipping,
        order.tax,
        order.total,
        order.refunded_total,
        " ".join(order.discount_codes),
        order.profile_id,
    ]


@router.get("/dashboard/orders")
def orders_page(request: Request, staff: StaffDep, filters: FiltersDep) -> Response:
    placed_from, placed_to = filters.bounds()
    cursor = cursor_param(request)
    with read_session(request) as session, page_errors("order"):
        if wants_csv(request):
            rows: list[OrderSummary] = []
            export_cursor: str | None = None
            while len(rows) < MAX_EXPORT_ROWS:
                page = list_orders(
                    session,
                    staff.workspace_id,
                    limit=200,
                    cursor=export_cursor,
                    placed_from=placed_from,
                    placed_to=placed_to,
                )
                rows.extend(page.items)
                export_cursor = page.next_cursor
                if export_cursor is None:
                    break
            return csv_response(
                f"orders-{filters.start}-{filters.end}",
                ORDER_COLUMNS,
                [order_row(order) for order in rows[:MAX_EXPORT_ROWS]],
            )
        page = list_orders(
            session,
            staff.workspace_id,
            limit=PAGE_SIZE,
            cursor=cursor,
            placed_from=placed_from,
            placed_to=placed_to,
        )
        has_any = bool(page.items) or bool(
            cursor or list_orders(session, staff.workspace_id, limit=1).items
        )
        options = filter_options(session, staff.workspace_id, RANGE_ONLY)
    return render(
        request,
        "orders.html",
        {
            "filters": filters,
            "options": options,
            "orders": page.items,
            "next_href": filters.href("/dashboard/orders", cursor=page.next_cursor)
            if page.next_cursor
            else None,
            "first_href": filters.href("/dashboard/orders") if cursor else None,
            "csv_href": filters.href("/dashboard/orders", format="csv"),
            "has_any_order": has_any,
        },
        staff=staff,
    )


def _touchpoint_rows(
    touchpoints: Sequence[ExplainedTouchpoint],
    influencers: dict[uuid.UUID, str],
    campaigns: dict[uuid.UUID, str],
    state: str,
) -> list[list[Any]]:
    return [
        [
            state,
            touch.occurred_at,
            touch.kind,
            touch.channel,
            touch.source,
            touch.medium,
            touch.campaign_name,
            touch.referrer_host,
            influencers.get(touch.influencer_id) if touch.influencer_id else None,
            campaigns.get(touch.campaign_id) if touch.campaign_id else None,
            touch.is_bot,
            EXCLUSION_REASONS.get(touch.excluded_reason or "", touch.excluded_reason),
        ]
        for touch in touchpoints
    ]


TOUCHPOINT_COLUMNS = (
    "state",
    "occurred_at",
    "kind",
    "channel",
    "source",
    "medium",
    "utm_campaign",
    "referrer_host",
    "influencer",
    "campaign",
    "is_bot",
    "excluded_because",
)
CREDIT_COLUMNS = ("model", "channel", "influencer", "campaign", "credit", "revenue", "currency")
LINE_COLUMNS = ("position", "sku", "product_id", "name", "quantity", "unit_price", "discount")


def _credit_rows(
    explanation: OrderAttribution,
    influencers: dict[uuid.UUID, str],
    campaigns: dict[uuid.UUID, str],
) -> list[list[Any]]:
    return [
        [
            group.model,
            line.channel,
            influencers.get(line.influencer_id) if line.influencer_id else None,
            campaigns.get(line.campaign_id) if line.campaign_id else None,
            line.credit,
            line.revenue,
            explanation.currency,
        ]
        for group in explanation.models
        for line in group.credits
    ]


@router.get("/dashboard/orders/{order_id}")
def order_page(request: Request, staff: StaffDep, order_id: uuid.UUID) -> Response:
    cipher = runtime_of(request).keyring.cipher(staff.workspace_id)
    with read_session(request) as session, page_errors("order"):
        order = get_order(session, staff.workspace_id, cipher, order_id)
        explanation = explain_order(session, staff.workspace_id, order_id)
        touches = explanation.considered + explanation.excluded
        lines = [credit for group in explanation.models for credit in group.credits]
        influencers = influencer_names(
            session,
            staff.workspace_id,
            {t.influencer_id for t in touches if t.influencer_id}
            | {c.influencer_id for c in lines if c.influencer_id},
        )
        campaigns = campaign_names(
            session,
            staff.workspace_id,
            {t.campaign_id for t in touches if t.campaign_id}
            | {c.campaign_id for c in lines if c.campaign_id},
        )
    considered = _touchpoint_rows(explanation.considered, influencers, campaigns, "considered")
    excluded = _touchpoint_rows(explanation.excluded, influencers, campaigns, "excluded")
    credits = _credit_rows(explanation, influencers, campaigns)
    if wants_csv(request):
        table = table_of(request, {"lines", "touchpoints", "credits"}, "credits")
        name = f"order-{order.external_id}-{table}"
        if table == "lines":
            return csv_response(
                name,
                LINE_COLUMNS,
                [
                    [
                        line.position,
                        line.sku,
                        line.product_id,
                        line.name,
                        line.quantity,
                        line.unit_price,
                        line.discount,
                    ]
                    for line in order.lines
                ],
            )
        if table == "touchpoints":
            return csv_response(name, TOUCHPOINT_COLUMNS, considered + excluded)
        return csv_response(name, CREDIT_COLUMNS, credits)
    base = f"/dashboard/orders/{order.id}?format=csv&table="
    return render(
        request,
        "order.html",
        {
            "order": order,
            "explanation": explanation,
            "rule_text": RULES.get(explanation.rule, explanation.rule),
            "considered": considered,
            "excluded": excluded,
            "credits_by_model": [
                (
                    group.model,
                    MODEL_LABELS.get(group.model, group.model),
                    [row for row in credits if row[0] == group.model],
                )
                for group in explanation.models
            ],
            "csv_lines": base + "lines",
            "csv_touchpoints": base + "touchpoints",
            "csv_credits": base + "credits",
        },
        staff=staff,
    )
