"""Request and response models of the influencer management API, and the settings view other
domains read (``StoreSettingsView``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from storeloop.kit.pagination import MAX_PAGE_SIZE

# Statuses of influencers and campaigns; "archived" replaces deletion, since orders, credits and
# touchpoints keep pointing at the row.
Status = Literal["active", "paused", "archived"]
PostKind = Literal["post", "story", "reel", "video", "short", "live"]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]
Count = Annotated[int, Field(ge=0, le=10**15)]
Platform = Annotated[str, Field(min_length=1, max_length=32)]


def _reject_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text cannot contain NUL characters")
    if isinstance(value, dict):
        for key, item in value.items():
            _reject_nul(key)
            _reject_nul(item)
    elif isinstance(value, list):
        for item in value:
            _reject_nul(item)
    return value


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # PostgreSQL text cannot hold NUL: refuse it at the edge rather than fail in the database.
    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return _reject_nul(value)


# -- influencers ------------------------------------------------------------------------------


class Contact(_Input):
    """Personal data of an influencer: sealed at rest, shown only on the single-item GET."""

    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=64)
    payout_notes: str | None = Field(default=None, max_length=2000)


class InfluencerCreate(_Input):
    name: str = Field(min_length=1, max_length=200)
    handles: dict[Platform, Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=dict, description='public handles per platform: {"instagram": "@ana"}'
    )
    contact: Contact | None = None
    status: Status = "active"


class InfluencerUpdate(_Input):
    """Fields left out keep their value; ``contact`` replaces the whole contact (null clears)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    handles: dict[Platform, Annotated[str, Field(min_length=1, max_length=200)]] | None = None
    contact: Contact | None = None
    status: Status | None = None


class InfluencerSearch(_Input):
    """Filters of POST /influencers/search: a body, so an email address never ends up in a URL
    (access logs, proxies, browser history)."""

    email: str | None = Field(default=None, max_length=254, description="the whole address")
    name: str | None = Field(default=None, max_length=200, description="part of the name")
    status: Status | None = None
    limit: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)
    cursor: str | None = Field(
        default=None, max_length=200, description="next_cursor of the last page"
    )


class InfluencerOut(BaseModel):
    id: uuid.UUID
    name: str
    handles: dict[str, str]
    status: str
    has_contact: bool
    created_at: datetime
    updated_at: datetime


class InfluencerDetail(InfluencerOut):
    contact: Contact | None


class InfluencerPage(BaseModel):
    items: list[InfluencerOut]
    next_cursor: str | None


# -- campaigns --------------------------------------------------------------------------------


class CampaignCreate(_Input):
    name: str = Field(min_length=1, max_length=200)
    channel: str = Field(default="Influencer", min_length=1, max_length=32)
    influencer_ids: list[uuid.UUID] = Field(default_factory=list, max_length=500)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    currency: str = Field(pattern=r"^[A-Za-z]{3}$", description="ISO 4217, e.g. EUR")
    fee: Money = Decimal(0)
    seeding_cost: Money = Field(default=Decimal(0), description="value of products sent")
    paid_boost_cost: Money = Field(default=Decimal(0), description="paid promotion of the posts")
    utm_source: str | None = Field(default=None, max_length=255)
    utm_medium: str | None = Field(default=None, max_length=255)
    utm_campaign: str | None = Field(default=None, max_length=255)
    status: Status = "active"


class CampaignUpdate(_Input):
    """Fields left out keep their value; ``influencer_ids`` replaces the whole list."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    channel: str | None = Field(default=None, min_length=1, max_length=32)
    influencer_ids: list[uuid.UUID] | None = Field(default=None, max_length=500)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Za-z]{3}$")
    fee: Money | None = None
    seeding_cost: Money | None = None
    paid_boost_cost: Money | None = None
    utm_source: str | None = Field(default=None, max_length=255)
    utm_medium: str | None = Field(default=None, max_length=255)
    utm_campaign: str | None = Field(default=None, max_length=255)
    status: Status | None = None


class CampaignOut(BaseModel):
    id: uuid.UUID
    name: str
    channel: str
    influencer_ids: list[uuid.UUID]
    starts_at: datetime | None
    ends_at: datetime | None
    currency: str
    fee: Decimal
    seeding_cost: Decimal
    paid_boost_cost: Decimal
    total_cost: Decimal = Field(description="fee + seeding_cost + paid_boost_cost")
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    status: str
    created_at: datetime
    updated_at: datetime


class CampaignPage(BaseModel):
    items: list[CampaignOut]
    next_cursor: str | None


# -- tracked links ----------------------------------------------------------------------------

UtmKey = Literal["utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term"]


class LinkCreate(_Input):
    destination_url: str = Field(min_length=1, max_length=2000)
    code: str | None = Field(
        default=None,
        max_length=64,
        description="3-64 letters, digits, - or _; generated when left out; case-insensitive",
    )
    influencer_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None
    utm: dict[UtmKey, Annotated[str, Field(max_length=255)]] = Field(default_factory=dict)


class LinkUpdate(_Input):
    """The code never changes (it is printed on posts); everything else may."""

    destination_url: str | None = Field(default=None, min_length=1, max_length=2000)
    influencer_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    post_id: uuid.UUID | None = None
    utm: dict[UtmKey, Annotated[str, Field(max_length=255)]] | None = None
    is_active: bool | None = None


class LinkOut(BaseModel):
    id: uuid.UUID
    code: str
    short_url: str
    destination_url: str
    influencer_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    post_id: uuid.UUID | None
    utm: dict[str, str]
    is_active: bool
    created_at: datetime
    updated_at: datetime


class LinkPage(BaseModel):
    items: list[LinkOut]
    next_cursor: str | None


# -- discount codes ---------------------------------------------------------------------------


class DiscountCodeCreate(_Input):
    code: str = Field(min_length=1, max_length=64)
    influencer_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None


class DiscountCodeUpdate(_Input):
    influencer_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    is_active: bool | None = None


class DiscountCodeOut(BaseModel):
    id: uuid.UUID
    code: str
    influencer_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class DiscountCodePage(BaseModel):
    items: list[DiscountCodeOut]
    next_cursor: str | None


# -- posts ------------------------------------------------------------------------------------


class PostCreate(_Input):
    platform: Platform
    url: str = Field(min_length=1, max_length=2000)
    kind: PostKind = "post"
    posted_at: datetime | None = None
    influencer_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    reach: Count | None = None
    views: Count | None = None
    likes: Count | None = None
    comments: Count | None = None


class PostUpdate(_Input):
    platform: Platform | None = None
    kind: PostKind | None = None
    posted_at: datetime | None = None
    influencer_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    reach: Count | None = None
    views: Count | None = None
    likes: Count | None = None
    comments: Count | None = None


class PostOut(BaseModel):
    id: uuid.UUID
    platform: str
    kind: str
    url: str
    posted_at: datetime | None
    influencer_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    reach: int | None
    views: int | None
    likes: int | None
    comments: int | None
    created_at: datetime
    updated_at: datetime


class PostPage(BaseModel):
    items: list[PostOut]
    next_cursor: str | None


class ImportError_(BaseModel):
    line: int = Field(description="line of the CSV file (the header is line 1)")
    column: str | None
    code: str = Field(description="stable code, e.g. invalid_number, unknown_influencer")
    reason: str


class PostImportResult(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int
    failed: int
    errors: list[ImportError_]


# -- store settings ---------------------------------------------------------------------------


class ChannelMatch(_Input):
    source: str | None = Field(default=None, max_length=255)
    medium: str | None = Field(default=None, max_length=255)
    referrer_host: str | None = Field(default=None, max_length=255)
    campaign: str | None = Field(default=None, max_length=255)


class ChannelRuleIn(_Input):
    match: ChannelMatch
    channel: str = Field(min_length=1, max_length=32)


class StoreSettingsUpdate(_Input):
    """Fields left out keep their value. Webhook secrets are write-only; null removes one."""

    allowed_domains: list[str] | None = Field(default=None, max_length=100)
    lookback_days: int | None = Field(default=None, ge=1, le=365)
    time_decay_half_life_days: float | None = Field(default=None, gt=0, le=365)
    discount_code_precedence: bool | None = None
    channel_rules: list[ChannelRuleIn] | None = Field(default=None, max_length=100)
    # A checkout without an order within this many minutes is abandoned (5 minutes to 7 days).
    abandonment_minutes: int | None = Field(default=None, ge=5, le=10080)
    shopify_webhook_secret: str | None = Field(default=None, min_length=1, max_length=512)
    woocommerce_webhook_secret: str | None = Field(default=None, min_length=1, max_length=512)


class StoreSettingsOut(BaseModel):
    allowed_domains: list[str]
    lookback_days: int
    time_decay_half_life_days: float
    discount_code_precedence: bool
    channel_rules: list[ChannelRuleIn]
    abandonment_minutes: int
    shopify_webhook_secret_set: bool
    woocommerce_webhook_secret_set: bool
    updated_at: datetime | None = Field(description="null while the defaults are in use")


@dataclass(frozen=True, slots=True)
class ChannelRule:
    """One rule: every condition given must equal the touchpoint's value (case-insensitive)."""

    channel: str
    source: str | None = None
    medium: str | None = None
    referrer_host: str | None = None
    campaign: str | None = None


@dataclass(frozen=True, slots=True)
class StoreSettingsView:
    """A workspace's settings as other domains read them; the defaults when none were saved."""

    workspace_id: uuid.UUID
    allowed_domains: tuple[str, ...] = ()
    lookback_days: int = 30
    time_decay_half_life_days: float = 7.0
    discount_code_precedence: bool = True
    channel_rules: tuple[ChannelRule, ...] = ()
    abandonment_minutes: int = 60
    has_shopify_secret: bool = False
    has_woocommerce_secret: bool = False
    updated_at: datetime | None = None
