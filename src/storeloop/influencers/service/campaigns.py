"""Campaigns: influencers taking part, dates and costs (fee + seeding + paid boost)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from storeloop.influencers.repository import MarketingRepository
from storeloop.influencers.schemas import (
    CampaignCreate,
    CampaignOut,
    CampaignPage,
    CampaignUpdate,
)
from storeloop.influencers.service.common import (
    UnknownReference,
    aware,
    changes_of,
    channel_name,
    page_of,
    require,
)
from storeloop.kit.errors import ValidationFailed
from storeloop.kit.ids import new_id
from storeloop.kit.money import MONEY_QUANTUM
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.models import Campaign, Influencer


def _money(value: Decimal) -> Decimal:
    """One spelling of an amount, just written or read back from either database: the four
    decimal places of every amount in the API (1750.5 becomes 1750.5000)."""
    return Decimal(value).quantize(MONEY_QUANTUM)


def _campaign_out(campaign: Campaign, influencer_ids: list[uuid.UUID]) -> CampaignOut:
    fee, seeding, boost = (
        _money(campaign.fee),
        _money(campaign.seeding_cost),
        _money(campaign.paid_boost_cost),
    )
    return CampaignOut(
        id=campaign.id,
        name=campaign.name,
        channel=campaign.channel,
        influencer_ids=influencer_ids,
        starts_at=aware(campaign.starts_at),
        ends_at=aware(campaign.ends_at),
        currency=campaign.currency,
        fee=fee,
        seeding_cost=seeding,
        paid_boost_cost=boost,
        total_cost=_money(fee + seeding + boost),
        utm_source=campaign.utm_source,
        utm_medium=campaign.utm_medium,
        utm_campaign=campaign.utm_campaign,
        status=campaign.status,
        created_at=as_utc(campaign.created_at),
        updated_at=as_utc(campaign.updated_at),
    )


def _check_influencers(repository: MarketingRepository, ids: list[uuid.UUID]) -> None:
    missing = set(ids) - repository.existing_ids(Influencer, set(ids))
    if missing:
        index = next(i for i, influencer_id in enumerate(ids) if influencer_id in missing)
        raise UnknownReference(
            f"no influencer {ids[index]} in this workspace", field=f"influencer_ids.{index}"
        )


def _check_dates(starts_at: datetime | None, ends_at: datetime | None) -> None:
    if starts_at is not None and ends_at is not None and ends_at < starts_at:
        raise ValidationFailed("a campaign cannot end before it starts", field="ends_at")


def create_campaign(session: Session, workspace_id: uuid.UUID, data: CampaignCreate) -> CampaignOut:
    repository = MarketingRepository(session, workspace_id)
    _check_influencers(repository, data.influencer_ids)
    starts_at, ends_at = aware(data.starts_at), aware(data.ends_at)
    _check_dates(starts_at, ends_at)
    now = utcnow()
    campaign = Campaign(
        id=new_id(),
        workspace_id=workspace_id,
        name=data.name,
        channel=channel_name(data.channel, "channel"),
        starts_at=starts_at,
        ends_at=ends_at,
        currency=data.currency.upper(),
        fee=data.fee,
        seeding_cost=data.seeding_cost,
        paid_boost_cost=data.paid_boost_cost,
        utm_source=data.utm_source,
        utm_medium=data.utm_medium,
        utm_campaign=data.utm_campaign,
        status=data.status,
        created_at=now,
        updated_at=now,
    )
    repository.add(campaign)
    repository.replace_campaign_influencers(campaign.id, data.influencer_ids)
    return _campaign_out(campaign, repository.influencer_ids_of([campaign.id])[campaign.id])


def get_campaign(session: Session, workspace_id: uuid.UUID, campaign_id: uuid.UUID) -> CampaignOut:
    repository = MarketingRepository(session, workspace_id)
    campaign = require(
        repository.get(Campaign, campaign_id), "campaign", campaign_id, "campaign_id"
    )
    return _campaign_out(campaign, repository.influencer_ids_of([campaign_id])[campaign_id])


def list_campaigns(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    status: str | None = None,
    influencer_id: uuid.UUID | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> CampaignPage:
    repository = MarketingRepository(session, workspace_id)
    filters: list[Any] = []
    if status is not None:
        filters.append(Campaign.status == status)
    if influencer_id is not None:
        filters.append(Campaign.id.in_(repository.campaign_ids_with_influencer(influencer_id)))
    rows, next_cursor = page_of(repository, Campaign, filters, limit, cursor)
    members = repository.influencer_ids_of([row.id for row in rows])
    return CampaignPage(
        items=[_campaign_out(row, members[row.id]) for row in rows], next_cursor=next_cursor
    )


def campaign_names(
    session: Session,
    workspace_id: uuid.UUID,
    ids: Collection[uuid.UUID] | None = None,
    *,
    limit: int = 1000,
) -> dict[uuid.UUID, str]:
    """Names of these campaigns of the workspace; of all of them (by name, up to ``limit``)
    when ``ids`` is None. Ids of other workspaces are left out."""
    return MarketingRepository(session, workspace_id).names(Campaign, ids, limit)


def update_campaign(
    session: Session, workspace_id: uuid.UUID, campaign_id: uuid.UUID, update: CampaignUpdate
) -> CampaignOut:
    changes = changes_of(
        update,
        not_null={
            "name",
            "channel",
            "influencer_ids",
            "currency",
            "fee",
            "seeding_cost",
            "paid_boost_cost",
            "status",
        },
    )
    repository = MarketingRepository(session, workspace_id)
    campaign = require(
        repository.get(Campaign, campaign_id), "campaign", campaign_id, "campaign_id"
    )
    if "influencer_ids" in changes:
        _check_influencers(repository, changes["influencer_ids"])
    if "channel" in changes:
        changes["channel"] = channel_name(changes["channel"], "channel")
    starts_at = aware(changes["starts_at"]) if "starts_at" in changes else campaign.starts_at
    ends_at = aware(changes["ends_at"]) if "ends_at" in changes else campaign.ends_at
    _check_dates(aware(starts_at), aware(ends_at))
    campaign.starts_at, campaign.ends_at = starts_at, ends_at
    for name in (
        "name",
        "channel",
        "fee",
        "seeding_cost",
        "paid_boost_cost",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "status",
    ):
        if name in changes:
            setattr(campaign, name, changes[name])
    if "currency" in changes:
        campaign.currency = changes["currency"].upper()
    campaign.updated_at = utcnow()
    session.flush()
    if "influencer_ids" in changes:
        repository.replace_campaign_influencers(campaign.id, changes["influencer_ids"])
    return _campaign_out(campaign, repository.influencer_ids_of([campaign_id])[campaign_id])
