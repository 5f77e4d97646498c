"""Analytics API: the dashboard's numbers as JSON or CSV, for any date range and filters."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from storeloop.analytics import service
from storeloop.analytics.schemas import (
    Breakdown,
    Cohorts,
    Funnel,
    Granularity,
    GroupBy,
    KpiQuery,
    Overview,
    TimeSeries,
)
from storeloop.dependencies import CallerDep, SessionDep
from storeloop.kit.errors import ValidationFailed

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

Format = Literal["json", "csv"]


def kpi_query(
    start: Annotated[date, Query(description="first day (UTC), inclusive")],
    end: Annotated[date, Query(description="last day (UTC), inclusive")],
    channel: Annotated[str | None, Query(max_length=32)] = None,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    post_id: uuid.UUID | None = None,
    device: Annotated[str | None, Query(max_length=8)] = None,
    model: Annotated[str, Query(max_length=24)] = "last_click",
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
) -> KpiQuery:
    return KpiQuery(
        start=start,
        end=end,
        channel=channel,
        influencer_id=influencer_id,
        campaign_id=campaign_id,
        post_id=post_id,
        device=device,
        model=model,
        currency=currency.upper() if currency else None,
    )


QueryDep = Annotated[KpiQuery, Depends(kpi_query)]


def _csv(text: str, name: str) -> Response:
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


@router.get("/overview", response_model=Overview)
def overview(
    caller: CallerDep, session: SessionDep, query: QueryDep, format: Format = "json"
) -> Overview | Response:
    """Visitors, sessions, orders, conversion, revenue, AOV, customers, abandonment, refunds.

    With a channel, influencer, campaign or post filter, orders and revenue are those the
    chosen model credits to it (fractional), and visits are those that landed through it."""
    result = service.overview(session, caller.workspace_id, query)
    if format == "csv":
        return _csv(service.overview_csv(result), f"overview-{query.start}-{query.end}")
    return result


@router.get("/timeseries", response_model=TimeSeries)
def timeseries(
    caller: CallerDep,
    session: SessionDep,
    query: QueryDep,
    granularity: Granularity = "day",
    format: Format = "json",
) -> TimeSeries | Response:
    """Visitors, sessions, orders and revenue per hour (up to 31 days), day or ISO week."""
    result = service.timeseries(session, caller.workspace_id, query, granularity)
    if format == "csv":
        return _csv(service.timeseries_csv(result), f"timeseries-{granularity}")
    return result


@router.get("/funnel", response_model=Funnel)
def funnel(
    caller: CallerDep, session: SessionDep, query: QueryDep, format: Format = "json"
) -> Funnel | Response:
    """Sessions that viewed a product, added to cart, started a checkout, ordered."""
    result = service.funnel(session, caller.workspace_id, query)
    if format == "csv":
        return _csv(service.funnel_csv(result), "funnel")
    return result


@router.get("/cohorts", response_model=Cohorts)
def cohorts(
    caller: CallerDep,
    session: SessionDep,
    start: date,
    end: date,
    currency: Annotated[str | None, Query(min_length=3, max_length=3)] = None,
    format: Format = "json",
) -> Cohorts | Response:
    """First-time buyers by month of first order, and their orders in each later month."""
    result = service.cohorts(
        session, caller.workspace_id, start, end, currency.upper() if currency else None
    )
    if format == "csv":
        return _csv(service.cohorts_csv(result), "cohorts")
    return result


@router.get("/breakdown", response_model=Breakdown)
def breakdown(
    caller: CallerDep,
    session: SessionDep,
    query: QueryDep,
    by: GroupBy = "influencer",
    models: Annotated[
        str | None,
        Query(max_length=200, description="comma-separated models to compare side by side"),
    ] = None,
    format: Format = "json",
) -> Breakdown | Response:
    """Per influencer, campaign, channel, post or link: clicks (bot share), sessions, cost, and
    attributed orders, revenue, ROI, ROAS and cost per order under each model."""
    chosen = [item.strip() for item in models.split(",") if item.strip()] if models else []
    if models is not None and not chosen:
        raise ValidationFailed("models lists at least one model", field="models")
    result = service.breakdown(session, caller.workspace_id, query, by, chosen or [query.model])
    if format == "csv":
        return _csv(service.breakdown_csv(result), f"breakdown-{by}")
    return result
