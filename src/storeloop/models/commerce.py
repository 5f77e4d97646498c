"""Orders from every source (events, Shopify, WooCommerce, CSV) as one model, with refunds."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storeloop.models.base import Base, MoneyColumn, created_at_column, id_column


class Order(Base):
    """One order. ``external_id`` is the shop's id as a string (Shopify ids exceed 2^53)."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("workspace_id", "external_id"),
        Index("ix_orders_workspace_placed", "workspace_id", "placed_at"),
        Index("ix_orders_workspace_profile", "workspace_id", "profile_id"),
        Index("ix_orders_workspace_stale", "workspace_id", "attribution_stale"),
        # A customer's other orders (first or repeat), read by the rollup job.
        Index("ix_orders_workspace_customer", "workspace_id", "customer_external_id"),
        Index("ix_orders_workspace_email", "workspace_id", "customer_email_index"),
    )

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    # event | shopify | woocommerce | csv: the source that last wrote the order.
    source: Mapped[str] = mapped_column(String(16))
    # The shop's own sales channel when it says (web, pos, instagram, tiktok_shop, ...).
    source_channel: Mapped[str | None] = mapped_column(String(64))
    profile_id: Mapped[uuid.UUID | None]
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    customer_external_id: Mapped[str | None] = mapped_column(String(255))
    customer_email_index: Mapped[str | None] = mapped_column(String(32))
    # Customer email, name, phone, addresses: sealed with the row id as associated data.
    customer_sealed: Mapped[bytes | None]
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[Decimal] = mapped_column(MoneyColumn)
    discount_total: Mapped[Decimal] = mapped_column(MoneyColumn)
    shipping: Mapped[Decimal] = mapped_column(MoneyColumn)
    tax: Mapped[Decimal] = mapped_column(MoneyColumn)
    total: Mapped[Decimal] = mapped_column(MoneyColumn)
    refunded_total: Mapped[Decimal] = mapped_column(MoneyColumn, default=Decimal(0))
    # pending | paid | cancelled | refunded | partially_refunded. Net revenue is
    # max(total - refunded_total, 0), and 0 for a cancelled order (cancelled, voided, failed
    # payment): see storeloop.orders.schemas.net_revenue.
    status: Mapped[str] = mapped_column(String(24))
    discount_codes: Mapped[list[str]] = mapped_column(default=list)
    landing_page: Mapped[str | None] = mapped_column(String(2000))
    referrer: Mapped[str | None] = mapped_column(String(2000))
    # Marketing data the shop recorded: UTM fields, click id, note attributes, order attribution.
    marketing: Mapped[dict[str, Any]]
    placed_at: Mapped[datetime]
    # The source's own updated_at: an older delivery never overwrites a newer one.
    source_updated_at: Mapped[datetime]
    attribution_stale: Mapped[bool] = mapped_column(default=True)
    attributed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class OrderLine(Base):
    __tablename__ = "order_lines"

    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID]
    sku: Mapped[str | None] = mapped_column(String(255))
    product_id: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(500))
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(MoneyColumn)
    discount: Mapped[Decimal] = mapped_column(MoneyColumn, default=Decimal(0))


class Refund(Base):
    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("workspace_id", "order_id", "external_id"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    external_id: Mapped[str] = mapped_column(String(255))
    amount: Mapped[Decimal] = mapped_column(MoneyColumn)
    refunded_at: Mapped[datetime]
    reason: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = created_at_column()


class WebhookDelivery(Base):
    """A shop webhook already applied, kept so a retried delivery is applied once."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("workspace_id", "provider", "delivery_id"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    provider: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
