"""Influencers, campaigns, tracked links, discount codes, posts and store settings, made through
the service layer (each call commits, as a request would). The one place tests make these rows:
other domains' factories build on these.

``store_unchecked_link`` is the single way around the service's checks, for states the API
refuses but a database can still hold (a link saved before its domain was removed).
"""

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
    LinkUpdate,
    PostCreate,
    PostOut,
    StoreSettingsUpdate,
    StoreSettingsView,
)
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import utcnow
from storeloop.kit.urls import destination_allowed, parse_web_url
from storeloop.models import Link
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
    utm_source: str | None = None,
    utm_medium: str | None = None,
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
            "utm_source": utm_source,
            "utm_medium": utm_medium,
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
    is_active: bool = True,
) -> LinkOut:
    """A tracked link; with ``allow_destination`` the destination's host is added to the
    workspace's allowed domains first unless they allow it already (links to other hosts are
    refused). ``is_active=False`` disables it after creation, as the API would."""
    if allow_destination:
        with session_scope(runtime.session_factory) as session:
            current = service.get_store_settings(session, workspace_id).allowed_domains
        parsed = parse_web_url(destination_url)
        if parsed is not None and not destination_allowed(destination_url, current):
            set_store_settings(runtime, workspace_id, allowed_domains=[*current, parsed.host])
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
        link = service.create_link(session, workspace_id, data, base_url=BASE_URL)
    if not is_active:
        link = set_link_active(runtime, workspace_id, link.id, False)
    return link


def set_link_active(
    runtime: Runtime, workspace_id: uuid.UUID, link_id: uuid.UUID, is_active: bool
) -> LinkOut:
    with session_scope(runtime.session_factory) as session:
        return service.update_link(
            session, workspace_id, link_id, LinkUpdate(is_active=is_active), base_url=BASE_URL
        )


def store_unchecked_link(
    runtime: Runtime,
    workspace_id: uuid.UUID,
    destination_url: str,
    *,
    code: str | None = None,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
) -> Link:
    """A link row written straight to the database, past every check of the service: for the
    redirect's own refusals (a destination off the allowed domains, another workspace's
    campaign). Anything the API accepts is made with ``make_link`` instead."""
    code = code or unique("raw")
    now = utcnow()
    link = Link(
        id=new_id(),
        workspace_id=workspace_id,
        code=code,
        code_key=code.lower(),
        destination_url=destination_url,
        influencer_id=influencer_id,
        campaign_id=campaign_id,
        utm={},
        is_active=True,
        created_at=now,
        updated_at=now,
    )
    with session_scope(runtime.session_factory) as session:
        session.add(link)
    return link


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
