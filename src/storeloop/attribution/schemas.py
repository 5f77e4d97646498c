"""Responses of the attribution API: an order's explanation and the aggregate report.

Money and credits are Decimals, rendered as JSON strings so no precision is lost.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel


class ExplainedTouchpoint(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    kind: str
    channel: str
    source: str | None
    medium: str | None
    campaign_name: str | None
    referrer_host: str | None
    influencer_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    link_id: uuid.UUID | None
    post_id: uuid.UUID | None
    discount_code_id: uuid.UUID | None
    is_bot: bool
    # outside_window | after_order | bot | direct_overridden | code_precedence; None if considered
    excluded_reason: str | None


class CreditLine(BaseModel):
    touchpoint_id: uuid.UUID | None
    channel: str
    influencer_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    post_id: uuid.UUID | None
    link_id: uuid.UUID | None
    credit: Decimal
    revenue: Decimal


class ModelCredits(BaseModel):
    model: str
    credits: list[CreditLine]


class OrderAttribution(BaseModel):
    order_id: uuid.UUID
    placed_at: datetime
    currency: str
    total: Decimal
    refunded_total: Decimal
    attribution_stale: bool
    attributed_at: datetime | None
    lookback_days: int
    time_decay_half_life_days: float
    discount_code_precedence: bool
    # code_precedence | touchpoints | direct_only | no_touchpoints
    rule: str
    considered: list[ExplainedTouchpoint]
    excluded: list[ExplainedTouchpoint]
    models: list[ModelCredits]


class ReportRow(BaseModel):
    key: str | None
    name: str | None
    currency: str
    orders: Decimal
    attributed_revenue: Decimal
    cost: Decimal
    roi: Decimal | None
    roas: Decimal | None
    cost_per_order: Decimal | None


class AttributionReport(BaseModel):
    group_by: str
    model: str
    date_from: datetime | None
    date_to: datetime | None
    rows: list[ReportRow]


class CreditedOrder(BaseModel):
    """One order's credit to an influencer or campaign under one model."""

    order_id: uuid.UUID
    placed_at: datetime
    currency: str
    credit: Decimal
    revenue: Decimal


class RecomputeResult(BaseModel):
    orders_marked: int
    # Touchpoints whose channel changed under the current channel rules.
    touchpoints_reclassified: int = 0
