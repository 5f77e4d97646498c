"""Touchpoints on profiles, attribution credits per order and model, and per-store settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from storeloop.models.base import Base, id_column


class StoreSettings(Base):
    """Per-workspace settings of tracking and attribution; one row, created on first write."""

    __tablename__ = "store_settings"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    # Hosts tracked links may redirect to (a host also allows its subdomains).
    allowed_domains: Mapped[list[str]] = mapped_column(default=list)
    lookback_days: Mapped[int] = mapped_column(default=30)
    time_decay_half_life_days: Mapped[float] = mapped_column(default=7.0)
    discount_code_precedence: Mapped[bool] = mapped_column(default=True)
    # Ordered channel rules that override the default grouping (attribution.channels).
    channel_rules: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    # A started checkout without an order from the same customer within this time is abandoned.
    abandonment_minutes: Mapped[int] = mapped_column(default=60, server_default="60")
    # Webhook signing secrets of the shop platforms: sealed, because verifying needs the secret.
    shopify_secret_sealed: Mapped[bytes | None]
    woocommerce_secret_sealed: Mapped[bytes | None]
    updated_at: Mapped[datetime]


class Touchpoint(Base):
    """One marketing contact on a customer's journey.

    ``dedupe_key`` makes derivation idempotent: the same click, page view or order field always
    yields the same key, so re-running a derivation stores nothing twice.
    """

    __tablename__ = "touchpoints"
    __table_args__ = (
        UniqueConstraint("workspace_id", "dedupe_key"),
        Index("ix_touchpoints_workspace_profile_time", "workspace_id", "profile_id", "occurred_at"),
        Index("ix_touchpoints_workspace_anonymous", "workspace_id", "anonymous_id"),
        # A day's landings, read by the rollup job.
        Index("ix_touchpoints_workspace_time", "workspace_id", "occurred_at"),
        # The touchpoints taken from orders, replaced when an order is attributed again.
        Index(
            "ix_touchpoints_workspace_order",
            "workspace_id",
            "order_id",
            sqlite_where=text("order_id IS NOT NULL"),
            postgresql_where=text("order_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    dedupe_key: Mapped[str] = mapped_column(String(255))
    profile_id: Mapped[uuid.UUID | None]
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[datetime]
    # click | utm | referrer | discount_code | shop_landing | shop_referrer
    kind: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str] = mapped_column(String(32))
    source: Mapped[str | None] = mapped_column(String(255))
    medium: Mapped[str | None] = mapped_column(String(255))
    campaign_name: Mapped[str | None] = mapped_column(String(255))
    referrer_host: Mapped[str | None] = mapped_column(String(255))
    influencer_id: Mapped[uuid.UUID | None]
    campaign_id: Mapped[uuid.UUID | None]
    link_id: Mapped[uuid.UUID | None]
    post_id: Mapped[uuid.UUID | None]
    click_id: Mapped[uuid.UUID | None]
    discount_code_id: Mapped[uuid.UUID | None]
    order_id: Mapped[uuid.UUID | None]
    is_bot: Mapped[bool] = mapped_column(default=False)


class AttributionCredit(Base):
    """The share of one order credited to one touchpoint (or channel) under one model."""

    __tablename__ = "attribution_credits"
    __table_args__ = (
        Index("ix_attribution_credits_workspace_model", "workspace_id", "model"),
        # A day's credits, read by the rollup job and the influencer page.
        Index("ix_attribution_credits_workspace_placed", "workspace_id", "placed_at"),
    )

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(24), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID]
    touchpoint_id: Mapped[uuid.UUID | None]
    channel: Mapped[str] = mapped_column(String(32))
    influencer_id: Mapped[uuid.UUID | None]
    campaign_id: Mapped[uuid.UUID | None]
    post_id: Mapped[uuid.UUID | None]
    link_id: Mapped[uuid.UUID | None]
    credit: Mapped[Decimal] = mapped_column(Numeric(20, 12))
    # credit x the order's net revenue (total - refunds), in the order's currency.
    revenue: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    placed_at: Mapped[datetime]
    currency: Mapped[str] = mapped_column(String(3))
