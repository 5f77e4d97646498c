"""Influencers, campaigns, tracked links, discount codes, posts and store settings, made through
the service layer (each call commits, as a request would)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from storeloop.db import session_scope
from storeloop.influencers import service
from storeloop.influencers.schemas import (
    CampaignCreate,
    CampaignOut,
    Contact,
    DiscountCodeCreate,
    DiscountCodeOut,
    InfluencerCreate,
    InfluencerDetail,
    LinkCreate,
    LinkOut,
    PostCreate,
    PostOut,
    StoreSettingsUpdate,
    StoreSettingsView,
)
from storeloop.runtime import Runtime

BASE_URL = "http://testserver"


def unique(prefix: str) -> str:
    """A code no other test uses: link codes are unique on the whole (shared) test database."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_influencer(
    runtime: Runtime,
    workspace_id: uuid.UUID,
    name: str = "Ana Styles",
    *,
    handles: dict[str, str] | None = None,
    email: str | None = None,
    phone: str | None = None,
    status: str = "active",
) -> InfluencerDetail:
    contact = Contact(email=email, phone=phone) if email or phone else None
    data = InfluencerCreate.model_validate(
        {
            "name": name,
            "handles": handles if handles is not None else {"instagram": "@ana"},
            "contact": contact,
            "status": status,
        }
    )
    with session_scope(runtime.session_factory) as session:
        return service.create_influencer(
            session, runtime.keyring.cipher(workspace_id), workspace_id, data
        )


def make_campaign(
    runtime: Runtime,
    workspace_id: uuid.UUID,
    name: str = "Spring drop",
    *,
    influencer_ids: list[uuid.UUID] | None = None,
    currency: str = "EUR",
    fee: Decimal | str = "0",
    seeding_cost: Decimal | str = "0",
    paid_boost_cost: Decimal | str = "0",
    channel: str = "Influencer",
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    utm_campaign: str | None = None,
) -> CampaignOut:
    data = CampaignCreate.model_validate(
        {
            "name": name,
            "influencer_ids": influencer_ids or [],
            "currency": currency,
            "fee": fee,
            "seeding_cost": seeding_cost,
            "paid_boost_cost": paid_boost_cost,
            "channel": channel,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "utm_campaign": utm_campaign,
        }
    )
    with session_scope(runtime.session_factory) as session:
        return service.create_campaign(session, workspace_id, data)


def make_link(
    runtime: Runtime,
    workspace_id: uuid.UUID,
    destination_url: str = "https://shop.example/products/scarf",
    *,
    code: str | None = None,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    post_id: uuid.UUID | None = None,
    utm: dict[str, str] | None = None,
    allow_destination: bool = True,
) -> LinkOut:
    """A tracked link; with ``allow_destination`` the destination's host is added to the
    workspace's allowed domains first (links to other hosts are refused)."""
    if allow_destination:
        host = destination_url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
        with session_scope(runtime.session_factory) as session:
            current = service.get_store_settings(session, workspace_id).allowed_domains
        if host not in current:
            set_store_settings(runtime, workspace_id, allowed_domains=[*current, host])
    data = LinkCreate.model_validate(
        {
            "destination_url": destination_url,
            "code": code,
            "influencer_id": influencer_id,
            "campaign_id": campaign_id,
            "post_id": post_id,
            "utm": utm or {},
        }
    )
    with session_scope(runtime.session_factory) as session:
        return service.create_link(session, workspace_id, data, base_url=BASE_URL)


def make_discount_code(
    runtime: Runtime,
    workspace_id: uuid.UUID,
    code: str | None = None,
    *,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
) -> DiscountCodeOut:
    """A discount code; without an owner given, a new influencer owns it."""
    if influencer_id is None and campaign_id is None:
        influencer_id = make_influencer(runtime, workspace_id).id
    data = DiscountCodeCreate(
        code=code or unique("SAVE"), influencer_id=influencer_id, campaign_id=campaign_id
    )
    with session_scope(runtime.session_factory) as session:
        return service.create_discount_code(session, workspace_id, data)


def make_post(
    runtime: Runtime,
    workspace_id: uuid.UUID,
    url: str | None = None,
    *,
    platform: str = "instagram",
    kind: str = "post",
    posted_at: datetime | None = None,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    reach: int | None = None,
) -> PostOut:
    data = PostCreate.model_validate(
        {
            "platform": platform,
            "url": url or f"https://instagram.com/p/{uuid.uuid4().hex[:10]}",
            "kind": kind,
            "posted_at": posted_at,
            "influencer_id": influencer_id,
            "campaign_id": campaign_id,
            "reach": reach,
        }
    )
    with session_scope(runtime.session_factory) as session:
        return service.create_post(session, workspace_id, data)


def set_store_settings(
    runtime: Runtime, workspace_id: uuid.UUID, **fields: Any
) -> StoreSettingsView:
    """PATCH-like: only the fields given change (allowed_domains, lookback_days,
    time_decay_half_life_days, discount_code_precedence, channel_rules,
    shopify_webhook_secret, woocommerce_webhook_secret)."""
    update = StoreSettingsUpdate.model_validate(fields)
    with session_scope(runtime.session_factory) as session:
        return service.update_store_settings(
            session, runtime.keyring.cipher(workspace_id), workspace_id, update
        )
