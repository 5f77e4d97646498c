"""Rows for attribution tests, inserted directly: marketing objects, orders, touchpoints."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from storeloop.derivation import StoredEvent
from storeloop.kit.ids import new_id
from storeloop.models import (
    Campaign,
    CampaignInfluencer,
    Click,
    DiscountCode,
    Influencer,
    Link,
    Order,
    Post,
    Profile,
    StoreSettings,
    Touchpoint,
)

PLACED = datetime(2026, 5, 31, 12, 0, tzinfo=UTC)


def days_before(days: float) -> datetime:
    return PLACED - timedelta(days=days)


def add_influencer(session: Session, workspace_id: uuid.UUID, name: str) -> Influencer:
    row = Influencer(id=new_id(), workspace_id=workspace_id, name=name, handles={})
    session.add(row)
    session.flush()
    return row


def add_campaign(
    session: Session,
    workspace_id: uuid.UUID,
    name: str,
    *,
    channel: str = "Influencer",
    fee: str = "0",
    seeding_cost: str = "0",
    paid_boost_cost: str = "0",
    currency: str = "EUR",
    influencers: Sequence[Influencer] = (),
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> Campaign:
    row = Campaign(
        id=new_id(),
        workspace_id=workspace_id,
        name=name,
        channel=channel,
        currency=currency,
        fee=Decimal(fee),
        seeding_cost=Decimal(seeding_cost),
        paid_boost_cost=Decimal(paid_boost_cost),
        starts_at=starts_at,
        ends_at=ends_at,
    )
    session.add(row)
    session.flush()
    for influencer in influencers:
        session.add(
            CampaignInfluencer(
                campaign_id=row.id, influencer_id=influencer.id, workspace_id=workspace_id
            )
        )
    session.flush()
    return row


def add_post(
    session: Session, workspace_id: uuid.UUID, url: str, campaign: Campaign | None = None
) -> Post:
    row = Post(
        id=new_id(),
        workspace_id=workspace_id,
        platform="instagram",
        kind="reel",
        url=url,
        campaign_id=campaign.id if campaign else None,
    )
    session.add(row)
    session.flush()
    return row


def add_link(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    influencer: Influencer | None = None,
    campaign: Campaign | None = None,
    post: Post | None = None,
    utm: dict[str, Any] | None = None,
) -> Link:
    code = f"l{uuid.uuid4().hex[:10]}"
    row = Link(
        id=new_id(),
        workspace_id=workspace_id,
        code=code,
        code_key=code.lower(),
        destination_url="https://shop.example/",
        influencer_id=influencer.id if influencer else None,
        campaign_id=campaign.id if campaign else None,
        post_id=post.id if post else None,
        utm=utm or {},
    )
    session.add(row)
    session.flush()
    return row


def add_click(
    session: Session,
    link: Link,
    clicked_at: datetime,
    *,
    anonymous_id: str | None = None,
    is_bot: bool = False,
) -> Click:
    row = Click(
        id=new_id(),
        workspace_id=link.workspace_id,
        link_id=link.id,
        clicked_at=clicked_at,
        anonymous_id=anonymous_id,
        is_bot=is_bot,
        bot_reason="user_agent" if is_bot else None,
    )
    session.add(row)
    session.flush()
    return row


def add_code(
    session: Session,
    workspace_id: uuid.UUID,
    code: str,
    *,
    influencer: Influencer | None = None,
    campaign: Campaign | None = None,
) -> DiscountCode:
    row = DiscountCode(
        id=new_id(),
        workspace_id=workspace_id,
        code=code,
        code_key=code.upper(),
        influencer_id=influencer.id if influencer else None,
        campaign_id=campaign.id if campaign else None,
    )
    session.add(row)
    session.flush()
    return row


def add_order(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    total: str = "100",
    refunded_total: str = "0",
    placed_at: datetime = PLACED,
    anonymous_id: str | None = None,
    profile_id: uuid.UUID | None = None,
    discount_codes: Sequence[str] = (),
    marketing: dict[str, Any] | None = None,
    landing_page: str | None = None,
    referrer: str | None = None,
    currency: str = "EUR",
    status: str = "paid",
) -> Order:
    amount = Decimal(total)
    row = Order(
        id=new_id(),
        workspace_id=workspace_id,
        external_id=f"o-{uuid.uuid4().hex[:10]}",
        source="event",
        profile_id=profile_id,
        anonymous_id=anonymous_id,
        currency=currency,
        subtotal=amount,
        discount_total=Decimal(0),
        shipping=Decimal(0),
        tax=Decimal(0),
        total=amount,
        refunded_total=Decimal(refunded_total),
        status=status,
        discount_codes=list(discount_codes),
        landing_page=landing_page,
        referrer=referrer,
        marketing=marketing or {},
        placed_at=placed_at,
        source_updated_at=placed_at,
        attribution_stale=True,
    )
    session.add(row)
    session.flush()
    return row


# UTM source and medium the default grouping puts under each channel: a touchpoint made here
# keeps its channel when a recompute reclassifies touchpoints from their stored inputs.
CHANNEL_TAGS: dict[str, tuple[str | None, str | None]] = {
    "Organic Social": ("instagram", "social"),
    "Paid Social": ("facebook", "paid_social"),
    "Influencer": (None, "influencer"),
    "Affiliate": (None, "affiliate"),
    "Email": ("newsletter", "email"),
    "SMS": (None, "sms"),
    "Organic Search": ("google", "organic"),
    "Paid Search": ("google", "cpc"),
    "Referral": ("blog", "referral"),
    "Direct": (None, None),
}


def add_touchpoint(
    session: Session,
    workspace_id: uuid.UUID,
    channel: str,
    occurred_at: datetime,
    *,
    anonymous_id: str | None = None,
    profile_id: uuid.UUID | None = None,
    kind: str = "utm",
    is_bot: bool = False,
    influencer: Influencer | None = None,
    campaign: Campaign | None = None,
    order: Order | None = None,
    source: str | None = None,
    medium: str | None = None,
) -> Touchpoint:
    """A touchpoint of ``channel``; its source and medium (unless given) classify as it."""
    default_source, default_medium = CHANNEL_TAGS.get(channel, (None, None))
    row_id = new_id()
    row = Touchpoint(
        id=row_id,
        workspace_id=workspace_id,
        dedupe_key=f"test:{row_id}",
        profile_id=profile_id,
        anonymous_id=anonymous_id,
        occurred_at=occurred_at,
        kind=kind,
        channel=channel,
        source=source or default_source,
        medium=medium or default_medium,
        influencer_id=influencer.id if influencer else None,
        campaign_id=campaign.id if campaign else None,
        order_id=order.id if order else None,
        is_bot=is_bot,
    )
    session.add(row)
    session.flush()
    return row


def add_profile(
    session: Session, workspace_id: uuid.UUID, merged_into: uuid.UUID | None = None
) -> Profile:
    row = Profile(
        id=new_id(),
        workspace_id=workspace_id,
        merged_into=merged_into,
        first_seen_at=PLACED,
        last_seen_at=PLACED,
        updated_at=PLACED,
        traits={},
    )
    session.add(row)
    session.flush()
    return row


def set_settings(session: Session, workspace_id: uuid.UUID, **values: Any) -> StoreSettings:
    row = session.get(StoreSettings, workspace_id)
    if row is None:
        row = StoreSettings(workspace_id=workspace_id, updated_at=PLACED)
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    session.flush()
    return row


def stored_event(
    workspace_id: uuid.UUID,
    document: dict[str, Any],
    *,
    timestamp: datetime,
    anonymous_id: str | None = None,
    profile_id: uuid.UUID | None = None,
) -> StoredEvent:
    return StoredEvent(
        id=new_id(),
        workspace_id=workspace_id,
        message_id=f"m-{uuid.uuid4().hex}",
        type=str(document.get("type", "page")),
        event=document.get("event"),
        anonymous_id=anonymous_id,
        user_id=None,
        profile_id=profile_id,
        timestamp=timestamp,
        document=document,
    )
