"""Influencers, campaigns, tracked links, discount codes, social posts and link clicks."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storeloop.models.base import Base, MoneyColumn, created_at_column, id_column


class Influencer(Base):
    __tablename__ = "influencers"
    __table_args__ = (Index("ix_influencers_workspace_name", "workspace_id", "name"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    # {"instagram": "@ana", "tiktok": "@ana.styles", ...}: public handles, not personal data.
    handles: Mapped[dict[str, Any]]
    # Contact data (email, phone, address, payout details) sealed with the row id as AAD.
    contact_sealed: Mapped[bytes | None]
    email_index: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_workspace_starts", "workspace_id", "starts_at"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    # The channel group its traffic counts under (attribution.channels), e.g. "Influencer".
    channel: Mapped[str] = mapped_column(String(32))
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]
    currency: Mapped[str] = mapped_column(String(3))
    fee: Mapped[Decimal] = mapped_column(MoneyColumn, default=Decimal(0))
    seeding_cost: Mapped[Decimal] = mapped_column(MoneyColumn, default=Decimal(0))
    paid_boost_cost: Mapped[Decimal] = mapped_column(MoneyColumn, default=Decimal(0))
    utm_source: Mapped[str | None] = mapped_column(String(255))
    utm_medium: Mapped[str | None] = mapped_column(String(255))
    utm_campaign: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class CampaignInfluencer(Base):
    __tablename__ = "campaign_influencers"

    campaign_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    influencer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("influencers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    workspace_id: Mapped[uuid.UUID]


class Post(Base):
    """A social post, story, reel or video, with its reach when the platform reports it."""

    __tablename__ = "posts"
    __table_args__ = (
        UniqueConstraint("workspace_id", "url"),
        Index("ix_posts_workspace_posted", "workspace_id", "posted_at"),
    )

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str] = mapped_column(String(2000))
    posted_at: Mapped[datetime | None]
    influencer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("influencers.id", ondelete="SET NULL")
    )
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    reach: Mapped[int | None]
    views: Mapped[int | None]
    likes: Mapped[int | None]
    comments: Mapped[int | None]
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class Link(Base):
    """A tracked link, served at /r/{code}. Codes are unique on the instance, case-insensitive:
    ``code_key`` is the lower-cased code, ``code`` keeps the spelling it was created with."""

    __tablename__ = "links"
    __table_args__ = (UniqueConstraint("code_key"), Index("ix_links_workspace", "workspace_id"))

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    code_key: Mapped[str] = mapped_column(String(64))
    destination_url: Mapped[str] = mapped_column(String(2000))
    influencer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("influencers.id", ondelete="SET NULL")
    )
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    post_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("posts.id", ondelete="SET NULL"))
    # UTM parameters that override the campaign's on this link.
    utm: Mapped[dict[str, Any]]
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class DiscountCode(Base):
    """A discount code; ``code_key`` is the upper-cased code, matched case-insensitively."""

    __tablename__ = "discount_codes"
    __table_args__ = (UniqueConstraint("workspace_id", "code_key"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    code_key: Mapped[str] = mapped_column(String(64))
    influencer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("influencers.id", ondelete="SET NULL")
    )
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("campaigns.id", ondelete="SET NULL")
    )
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = created_at_column()


class Click(Base):
    """One request to /r/{code}. The id is the click id carried by the cookie and the URL."""

    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_workspace_link_time", "workspace_id", "link_id", "clicked_at"),
        Index("ix_clicks_workspace_time", "workspace_id", "clicked_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID]
    link_id: Mapped[uuid.UUID]
    clicked_at: Mapped[datetime]
    # IPv4 /24 or IPv6 /48: enough for velocity rules and geography, not a person's address.
    ip_truncated: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    referrer: Mapped[str | None] = mapped_column(String(2000))
    # The visitor cookie present at click time, if the browser had been here before.
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    is_bot: Mapped[bool] = mapped_column(default=False)
    bot_reason: Mapped[str | None] = mapped_column(String(48))
