"""Links, campaigns, influencers and allowed domains inserted through the ORM (redirect tests)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from storeloop.db import session_scope
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import utcnow
from storeloop.models import Campaign, Click, Influencer, Link, StoreSettings
from storeloop.runtime import Runtime


@dataclass(frozen=True, slots=True)
class LinkRef:
    id: uuid.UUID
    code: str


def allow_domains(runtime: Runtime, workspace_id: uuid.UUID, *domains: str) -> None:
    """Set the workspace's allowed redirect domains (creating its settings row)."""
    with session_scope(runtime.session_factory) as session:
        row = session.get(StoreSettings, workspace_id)
        if row is None:
            row = StoreSettings(
                workspace_id=workspace_id,
                allowed_domains=[],
                lookback_days=30,
                time_decay_half_life_days=7.0,
                discount_code_precedence=True,
                channel_rules=[],
                updated_at=utcnow(),
            )
            session.add(row)
        row.allowed_domains = list(domains)
        row.updated_at = utcnow()


def make_influencer(
    runtime: Runtime,
    workspace_id: uuid.UUID,
    name: str = "Ana Styles",
    handles: dict[str, Any] | None = None,
) -> uuid.UUID:
    with session_scope(runtime.session_factory) as session:
        influencer = Influencer(
            id=new_id(),
            workspace_id=workspace_id,
            name=name,
            handles=handles if handles is not None else {"instagram": "@ana.styles"},
            status="active",
        )
        session.add(influencer)
    return influencer.id


def make_campaign(
    runtime: Runtime,
    workspace_id: uuid.UUID,
    name: str = "Spring Drop 2026",
    channel: str = "Influencer",
    **utm: str,
) -> uuid.UUID:
    with session_scope(runtime.session_factory) as session:
        campaign = Campaign(
            id=new_id(),
            workspace_id=workspace_id,
            name=name,
            channel=channel,
            currency="EUR",
            utm_source=utm.get("utm_source"),
            utm_medium=utm.get("utm_medium"),
            utm_campaign=utm.get("utm_campaign"),
            status="active",
        )
        session.add(campaign)
    return campaign.id


def make_link(
    runtime: Runtime,
    workspace_id: uuid.UUID,
    destination_url: str = "https://store.com/products/linen-shirt",
    *,
    code: str | None = None,
    campaign_id: uuid.UUID | None = None,
    influencer_id: uuid.UUID | None = None,
    utm: dict[str, str] | None = None,
    is_active: bool = True,
) -> LinkRef:
    """A link with a code unique on the instance (the test database is shared by the session)."""
    code = code or f"L{uuid.uuid4().hex[:10]}"
    with session_scope(runtime.session_factory) as session:
        link = Link(
            id=new_id(),
            workspace_id=workspace_id,
            code=code,
            code_key=code.lower(),
            destination_url=destination_url,
            campaign_id=campaign_id,
            influencer_id=influencer_id,
            utm=dict(utm or {}),
            is_active=is_active,
        )
        session.add(link)
    return LinkRef(link.id, code)


def set_link_active(runtime: Runtime, link_id: uuid.UUID, is_active: bool) -> None:
    with session_scope(runtime.session_factory) as session:
        link = session.get(Link, link_id)
        assert link is not None
        link.is_active = is_active


def clicks_of(runtime: Runtime, workspace_id: uuid.UUID) -> list[Click]:
    """The workspace's stored clicks, oldest first (writes queued so far are flushed first)."""
    runtime.tracking.clicks.flush()
    with runtime.session_factory() as session:
        query = select(Click).where(Click.workspace_id == workspace_id).order_by(Click.id)
        return list(session.scalars(query))
