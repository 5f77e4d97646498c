"""The overview: KPI cards, the series chart, the funnel, cohorts and the latest orders, live.

The cards and the latest orders are also served alone (``/dashboard/overview/cards`` and
``/latest``) for the page to refresh them when the live stream announces an order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from storeloop.analytics.schemas import Overview, TimeSeries
from storeloop.dashboard import data
from storeloop.dashboard.csvfile import csv_download
from storeloop.dashboard.filters import Filters
from storeloop.dashboard.pages.common import WITH_MARKETING, filter_options, table_of, wants_csv
from storeloop.dashboard.web import (
    FiltersDep,
    StaffDep,
    page_errors,
    read_session,
    render,
)
from storeloop.identity.service import has_events
from storeloop.orders.service import list_orders
from storeloop.workspaces.service import list_api_keys
from storeloop.workspaces.staff import StaffContext

router = APIRouter(include_in_schema=False)

LATEST_ORDERS = 8
FUNNEL_LABELS = {
    "sessions": "Sessions",
    "product_viewed": "Viewed a product",
    "added_to_cart": "Added to cart",
    "checkout_started": "Started checkout",
    "ordered": "Ordered",
}


@dataclass(frozen=True, slots=True)
class Card:
    key: str
    label: str
    kind: str  # integer | count | money | rate
    value: Any  # the exact JSON value the analytics API answers
    hint: str | None = None


def cards_of(result: Overview) -> list[Card]:
    exact = result.model_dump(mode="json")
    marketing_only = "not split by channel, influencer or campaign"
    return [
        Card(
            "unique_visitors",
            "Unique visitors",
            "integer",
            exact["unique_visitors"],
            None if result.unique_visitors_exact else "estimate (±2%)",
        ),
        Card("sessions", "Sessions", "integer", exact["sessions"]),
        Card("orders", "Orders", "count", exact["orders"]),
        Card("conversion_rate", "Conversion rate", "rate", exact["conversion_rate"]),
        Card("gross_revenue", "Revenue", "money", exact["gross_revenue"]),
        Card("net_revenue", "Net revenue", "money", exact["net_revenue"], "after refunds"),
        Card("average_order_value", "Average order", "money", exact["average_order_value"]),
        Card(
            "returning_customer_rate",
            "Returning customers",
            "rate",
            exact["returning_customer_rate"],
            marketing_only if result.returning_customer_rate is None and result.orders else None,
        ),
        Card("cart_abandonment_rate", "Cart abandonment", "rate", exact["cart_abandonment_rate"]),
        Card("refund_rate", "Refund rate", "rate", exact["refund_rate"]),
    ]


def chart_data(series: TimeSeries) -> dict[str, Any]:
    """The series as the chart script reads it (a JSON data block, not a script)."""
    fmt = "%Y-%m-%d %H:00" if series.granularity == "hour" else "%Y-%m-%d"
    return {
        "granularity": series.granularity,
        "currency": series.currency,
        "labels": [point.start.strftime(fmt) for point in series.points],
        "sessions": [point.sessions for point in series.points],
        "orders": [float(point.orders) for point in series.points],
        "revenue": [float(point.net_revenue) for point in series.points],
    }


def _cards_context(session: Session, staff: StaffContext, filters: Filters) -> dict[str, Any]:
    result = data.overview(session, staff.workspace_id, filters)
    return {
        "overview": result,
        "cards": cards_of(result),
        "currency": result.currency,
        "filters": filters,
    }


def _latest(session: Session, staff: StaffContext) -> list[Any]:
    return list_orders(session, staff.workspace_id, limit=LATEST_ORDERS).items


@router.get("/dashboard")
def overview_page(request: Request, staff: StaffDep, filters: FiltersDep) -> Response:
    with read_session(request) as session, page_errors("report"):
        if wants_csv(request):
            table = table_of(request, {"kpis", "timeseries", "funnel", "cohorts"}, "kpis")
            return _csv(session, staff, filters, table)
        latest = _latest(session, staff)
        started = bool(latest) or has_events(session, staff.workspace_id)
        write_keys = [
            key for key in list_api_keys(session, staff.workspace_id) if key.kind == "write"
        ]
        context: dict[str, Any] = {
            "filters": filters,
            "started": started,
            "latest": latest,
            "write_key_prefix": write_keys[0].prefix if write_keys else None,
            "options": filter_options(session, staff.workspace_id, WITH_MARKETING),
            "cards_query": filters.query(),
        }
        if started:
            context.update(_cards_context(session, staff, filters))
            series = data.timeseries(session, staff.workspace_id, filters)
            context["chart"] = chart_data(series)
            context["funnel"] = data.funnel(session, staff.workspace_id, filters)
            context["cohorts"] = data.cohorts(
                session, staff.workspace_id, filters, context["currency"]
            )
    context["funnel_labels"] = FUNNEL_LABELS
    context["csv"] = {
        table: filters.href("/dashboard", format="csv", table=table)
        for table in ("kpis", "timeseries", "funnel", "cohorts")
    }
    return render(request, "overview.html", context, staff=staff)


def _csv(session: Session, staff: StaffContext, filters: Filters, table: str) -> Response:
    name = f"{table}-{filters.start}-{filters.end}"
    if table == "timeseries":
        text = data.timeseries_csv(data.timeseries(session, staff.workspace_id, filters))
    elif table == "funnel":
        text = data.funnel_csv(data.funnel(session, staff.workspace_id, filters))
    elif table == "cohorts":
        currency = data.overview(session, staff.workspace_id, filters).currency
        text = data.cohorts_csv(data.cohorts(session, staff.workspace_id, filters, currency))
    else:
        text = data.overview_csv(data.overview(session, staff.workspace_id, filters))
    return csv_download(name, text)


@router.get("/dashboard/overview/cards")
def overview_cards(request: Request, staff: StaffDep, filters: FiltersDep) -> Response:
    with read_session(request) as session, page_errors("report"):
        context = _cards_context(session, staff, filters)
    return render(request, "_kpi_cards.html", context, staff=staff)


@router.get("/dashboard/overview/latest")
def latest_orders(request: Request, staff: StaffDep) -> Response:
    with read_session(request) as session:
        latest = _latest(session, staff)
    return render(request, "_latest_orders.html", {"latest": latest}, staff=staff)
