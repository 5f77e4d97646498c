"""The one place the dashboard fetches numbers: KPIs, series, funnel, cohorts and breakdowns from
the analytics service (day rollups, ADR 0008), and credited orders from attribution.

Pages hand it their URL filters; it picks what the filters imply (the series granularity, the
cohort window) so that every page asks the same questions the analytics API answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.orm import Session

from storeloop.analytics import service as analytics
from storeloop.analytics.schemas import (
    Breakdown,
    BreakdownRow,
    Cohorts,
    Funnel,
    Granularity,
    GroupBy,
    Overview,
    TimeSeries,
)
from storeloop.attribution.schemas import CreditedOrder
from storeloop.attribution.service import credited_orders as attribution_credited_orders
from storeloop.dashboard.filters import Filters

# Hourly points for a day or two, daily up to a quarter, weekly beyond.
HOURLY_UP_TO_DAYS = 2
DAILY_UP_TO_DAYS = 92


def granularity_for(filters: Filters) -> Granularity:
    # Attributed orders are rolled up per day: a marketing filter never asks for hours.
    if filters.days <= HOURLY_UP_TO_DAYS and not filters.has_marketing_filter:
        return "hour"
    if filters.days <= DAILY_UP_TO_DAYS:
        return "day"
    return "week"


def overview(session: Session, workspace_id: uuid.UUID, filters: Filters) -> Overview:
    return analytics.overview(session, workspace_id, filters.kpi_query())


def timeseries(session: Session, workspace_id: uuid.UUID, filters: Filters) -> TimeSeries:
    return analytics.timeseries(
        session, workspace_id, filters.kpi_query(), granularity_for(filters)
    )


def funnel(session: Session, workspace_id: uuid.UUID, filters: Filters) -> Funnel:
    return analytics.funnel(session, workspace_id, filters.kpi_query())


def cohorts(
    session: Session, workspace_id: uuid.UUID, filters: Filters, currency: str | None
) -> Cohorts:
    """Monthly cohorts of the customers whose first order falls in the range."""
    return analytics.cohorts(session, workspace_id, filters.start, filters.end, currency)


def breakdown(
    session: Session,
    workspace_id: uuid.UUID,
    filters: Filters,
    group_by: GroupBy,
    models: Sequence[str] | None = None,
) -> Breakdown:
    return analytics.breakdown(
        session, workspace_id, filters.kpi_query(), group_by, list(models or filters.models)
    )


def influencer_figures(
    session: Session, workspace_id: uuid.UUID, filters: Filters, influencer_id: uuid.UUID
) -> tuple[Breakdown, BreakdownRow | None]:
    """The influencer's row (clicks, sessions, cost, credited orders and revenue, ROI) under
    the filters' models, with the range's currency."""
    result = analytics.breakdown(
        session,
        workspace_id,
        filters.kpi_query(influencer_id=influencer_id),
        "influencer",
        list(filters.models),
    )
    row = next((row for row in result.rows if row.key == str(influencer_id)), None)
    return result, row


def influencer_links(
    session: Session, workspace_id: uuid.UUID, filters: Filters, influencer_id: uuid.UUID
) -> dict[str, BreakdownRow]:
    """Per tracked link of the influencer (by link id): clicks, bot clicks, credited orders."""
    result = analytics.breakdown(
        session,
        workspace_id,
        filters.kpi_query(influencer_id=influencer_id),
        "link",
        list(filters.models),
    )
    return {row.key: row for row in result.rows if row.key is not None}


def credited_orders(
    session: Session,
    workspace_id: uuid.UUID,
    filters: Filters,
    *,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[CreditedOrder]:
    """The orders of the range credited, at least in part, to this influencer or campaign under
    the filters' first model."""
    date_from, date_to = filters.bounds()
    return attribution_credited_orders(
        session,
        workspace_id,
        model=filters.model,
        influencer_id=influencer_id,
        campaign_id=campaign_id,
        date_from=date_from,
        date_to=date_to,
        limit=limit,
    )


# The analytics API's own CSV layouts, so a download from a page and from the API agree.
overview_csv = analytics.overview_csv
timeseries_csv = analytics.timeseries_csv
funnel_csv = analytics.funnel_csv
cohorts_csv = analytics.cohorts_csv
breakdown_csv = analytics.breakdown_csv
