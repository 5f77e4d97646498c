"""Rollups the dashboard reads (ADR 0008) and the queue of days whose rollups are out of date.

Every rollup row of a day is replaced as a whole when the day is recomputed from the raw rows,
so the rows carry no identity of their own beyond a surrogate key.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Index, LargeBinary, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from storeloop.models.base import Base, MoneyColumn, id_column

# Credits are fractions of an order: sums of them keep 12 decimal places like the credits.
CreditSum = Numeric(24, 12)


class RollupDirtyDay(Base):
    """One mark: something changed on this day of this workspace, so its rollups must be
    recomputed.

    Marks are only ever inserted, never upserted: writers marking the same day (the processor,
    the click writer, attribution) never wait on each other's row lock. The job recomputes a
    day, then deletes exactly the marks it had read before starting: a mark that arrived meanwhile
    stays, and the day is recomputed again.
    """

    __tablename__ = "rollup_dirty_days"
    __table_args__ = (Index("ix_rollup_dirty_days_workspace_day", "workspace_id", "day"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    day: Mapped[date]
    marked_at: Mapped[datetime]


class TrafficRollup(Base):
    """Sessions of one day, by the session's landing (channel, influencer, campaign, post) and
    device: the measures are sums; visitors are a HyperLogLog sketch to union across days."""

    __tablename__ = "traffic_rollups"
    __table_args__ = (
        Index("ix_traffic_rollups_workspace_day", "workspace_id", "day"),
        Index("ix_traffic_rollups_recheck", "recheck_at"),
    )

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    day: Mapped[date]
    channel: Mapped[str] = mapped_column(String(32))
    influencer_id: Mapped[uuid.UUID | None]
    campaign_id: Mapped[uuid.UUID | None]
    post_id: Mapped[uuid.UUID | None]
    device: Mapped[str] = mapped_column(String(8))
    visitors: Mapped[int]
    visitors_sketch: Mapped[bytes] = mapped_column(LargeBinary)
    sessions: Mapped[int]
    converted_sessions: Mapped[int]
    product_viewed_sessions: Mapped[int]
    added_to_cart_sessions: Mapped[int]
    checkout_started_sessions: Mapped[int]
    page_views: Mapped[int]
    checkouts_started: Mapped[int]
    abandoned_checkouts: Mapped[int]
    # Checkouts still inside the abandonment window when the day was computed: the job
    # recomputes the day at ``recheck_at``, once the last of their windows has passed.
    pending_checkouts: Mapped[int]
    recheck_at: Mapped[datetime | None]
    computed_at: Mapped[datetime]


class VisitorDayRollup(Base):
    """The visitors of one day per device, whatever their landing: one sketch a day to union
    when no marketing filter applies (instead of one per landing and device)."""

    __tablename__ = "visitor_day_rollups"
    __table_args__ = (Index("ix_visitor_day_rollups_workspace_day", "workspace_id", "day"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    day: Mapped[date]
    device: Mapped[str] = mapped_column(String(8))
    visitors: Mapped[int]
    visitors_sketch: Mapped[bytes] = mapped_column(LargeBinary)


class CustomerDayRollup(Base):
    """The customers who ordered on one day per device and currency, and those among them
    whose first order it was: sketches to union across days."""

    __tablename__ = "customer_day_rollups"
    __table_args__ = (Index("ix_customer_day_rollups_workspace_day", "workspace_id", "day"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    day: Mapped[date]
    device: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    customers_sketch: Mapped[bytes] = mapped_column(LargeBinary)
    new_customers_sketch: Mapped[bytes] = mapped_column(LargeBinary)


class TrafficHourRollup(Base):
    """Sessions per hour with the same dimensions, for hourly series over short ranges."""

    __tablename__ = "traffic_hour_rollups"
    __table_args__ = (Index("ix_traffic_hour_rollups_workspace_hour", "workspace_id", "hour"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    day: Mapped[date]
    hour: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(32))
    influencer_id: Mapped[uuid.UUID | None]
    campaign_id: Mapped[uuid.UUID | None]
    post_id: Mapped[uuid.UUID | None]
    device: Mapped[str] = mapped_column(String(8))
    sessions: Mapped[int]
    converted_sessions: Mapped[int]


class OrderRollup(Base):
    """Orders placed in one hour, by device and currency (cancelled orders excluded)."""

    __tablename__ = "order_rollups"
    __table_args__ = (Index("ix_order_rollups_workspace_day", "workspace_id", "day"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    day: Mapped[date]
    hour: Mapped[datetime]
    device: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    orders: Mapped[int]
    gross_revenue: Mapped[Decimal] = mapped_column(MoneyColumn)
    net_revenue: Mapped[Decimal] = mapped_column(MoneyColumn)
    refunded_amount: Mapped[Decimal] = mapped_column(MoneyColumn)
    refunded_orders: Mapped[int]
    first_orders: Mapped[int]
    repeat_orders: Mapped[int]


class AttributionRollup(Base):
    """Attributed orders and revenue of one day, per model and credited group."""

    __tablename__ = "attribution_rollups"
    __table_args__ = (
        Index("ix_attribution_rollups_workspace_model_day", "workspace_id", "model", "day"),
    )

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    day: Mapped[date]
    model: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(32))
    influencer_id: Mapped[uuid.UUID | None]
    campaign_id: Mapped[uuid.UUID | None]
    post_id: Mapped[uuid.UUID | None]
    link_id: Mapped[uuid.UUID | None]
    device: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    orders: Mapped[Decimal] = mapped_column(CreditSum)
    first_orders: Mapped[Decimal] = mapped_column(CreditSum)
    refunded_orders: Mapped[Decimal] = mapped_column(CreditSum)
    gross_revenue: Mapped[Decimal] = mapped_column(MoneyColumn)
    net_revenue: Mapped[Decimal] = mapped_column(MoneyColumn)


class ClickRollup(Base):
    """Tracked-link clicks of one day per link, with the link's influencer, campaign, post."""

    __tablename__ = "click_rollups"
    __table_args__ = (Index("ix_click_rollups_workspace_day", "workspace_id", "day"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    day: Mapped[date]
    link_id: Mapped[uuid.UUID]
    influencer_id: Mapped[uuid.UUID | None]
    campaign_id: Mapped[uuid.UUID | None]
    post_id: Mapped[uuid.UUID | None]
    clicks: Mapped[int]
    bot_clicks: Mapped[int]


class CohortRollup(Base):
    """Customers by the month of their first order, and what they ordered in each month after."""

    __tablename__ = "cohort_rollups"
    __table_args__ = (Index("ix_cohort_rollups_workspace", "workspace_id", "cohort_month"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    currency: Mapped[str] = mapped_column(String(3))
    cohort_month: Mapped[date]
    months_since_first: Mapped[int]
    customers: Mapped[int]
    orders: Mapped[int]
    revenue: Mapped[Decimal] = mapped_column(MoneyColumn)
