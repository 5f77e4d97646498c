"""Questions and answers of the analytics API: KPIs, time series, funnel, cohorts, breakdowns.

Every answer is read from the day (and hour) rollups (ADR 0008), never from raw rows. Money is
Decimal, rendered as JSON strings so no precision is lost; rates are floats in [0, 1] or None
when their denominator is zero.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

Granularity = Literal["hour", "day", "week"]
GroupBy = Literal["influencer", "campaign", "channel", "post", "link"]
DEVICES = ("mobile", "tablet", "desktop", "bot", "unknown")
# Days a question may name: anything outside is a mistake (and 9999-12-31 has no next day).
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2199, 12, 31)


class KpiQuery(BaseModel):
    """A date range (both ends inclusive, UTC days) and optional filters."""

    start: date
    end: date
    channel: str | None = None
    influencer_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None
    device: str | None = None
    # The attribution model that credits orders to a channel, influencer, campaign or post.
    model: str = "last_click"
    # Money figures are in one currency: the store's most used one unless asked.
    currency: str | None = None

    @property
    def has_marketing_filter(self) -> bool:
        return any(
            value is not None
            for value in (self.channel, self.influencer_id, self.campaign_id, self.post_id)
        )


class Overview(BaseModel):
    start: date
    end: date
    model: str
    currency: str | None
    currencies: list[str]
    # Distinct visitors over the range: a union of HyperLogLog sketches (exact below ~300).
    unique_visitors: int
    unique_visitors_exact: bool
    sessions: int
    converted_sessions: int
    # Orders are fractional when a marketing filter applies: the credit the model gives it.
    orders: Decimal
    conversion_rate: float | None
    gross_revenue: Decimal
    net_revenue: Decimal
    refunded_amount: Decimal
    average_order_value: Decimal | None
    first_orders: Decimal
    repeat_orders: Decimal
    # Distinct customers who ordered in the range; new = first order ever in the range,
    # returning = had ordered before the range. None under a marketing filter.
    customers: int | None
    new_customers: int | None
    returning_customers: int | None
    returning_customer_rate: float | None
    checkouts_started: int
    abandoned_checkouts: int
    cart_abandonment_rate: float | None
    refunded_orders: Decimal
    refund_rate: float | None
    computed_at: datetime | None = Field(
        description="when the oldest rollup day read was last recomputed"
    )


class SeriesPoint(BaseModel):
    start: datetime
    unique_visitors: int | None
    sessions: int
    orders: Decimal
    gross_revenue: Decimal
    net_revenue: Decimal


class TimeSeries(BaseModel):
    granularity: Granularity
    currency: str | None
    points: list[SeriesPoint]


class FunnelStep(BaseModel):
    # sessions | product_viewed | added_to_cart | checkout_started | ordered
    step: str
    sessions: int
    # Share of the previous step's sessions, and of all sessions.
    from_previous: float | None
    from_start: float | None


class Funnel(BaseModel):
    steps: list[FunnelStep]


class CohortMonth(BaseModel):
    months_since_first: int
    customers: int
    orders: int
    revenue: Decimal
    retention: float


class Cohort(BaseModel):
    cohort: str  # YYYY-MM: the month of the customers' first order
    customers: int
    months: list[CohortMonth]


class Cohorts(BaseModel):
    currency: str | None
    cohorts: list[Cohort]


class ModelFigures(BaseModel):
    orders: Decimal
    revenue: Decimal  # attributed net revenue (after refunds)
    gross_revenue: Decimal
    roi: Decimal | None  # (revenue - cost) / cost
    roas: Decimal | None  # revenue / cost
    cost_per_order: Decimal | None


class BreakdownRow(BaseModel):
    key: str | None  # the group's id (channel name for channels); None for "no influencer" etc.
    name: str
    clicks: int
    bot_clicks: int
    bot_share: float | None
    sessions: int
    cost: Decimal
    commission: Decimal | None  # not tracked yet
    models: dict[str, ModelFigures]


class Breakdown(BaseModel):
    group_by: GroupBy
    start: date
    end: date
    currency: str | None
    models: list[str]
    rows: list[BreakdownRow]
