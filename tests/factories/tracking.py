"""What the redirect and storefront-script tests add to the influencer factories: the allowed
domains in one call, links to the test store that leave those domains alone, and the stored
clicks. Influencers, campaigns and links themselves are made by ``tests.factories.influencers``.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from storeloop.influencers.schemas import LinkOut
from storeloop.models import Click
from storeloop.runtime import Runtime
from tests.factories import influencers

STORE_PAGE = "https://store.com/products/linen-shirt"


def allow_domains(runtime: Runtime, workspace_id: uuid.UUID, *domains: str) -> None:
    """Set the workspace's allowed redirect domains (replacing the ones it had)."""
    influencers.set_store_settings(runtime, workspace_id, allowed_domains=list(domains))


def make_link(
    runtime: Runtime,
    workspace_id: uuid.UUID,
    destination_url: str = STORE_PAGE,
    *,
    code: str | None = None,
    campaign_id: uuid.UUID | None = None,
    influencer_id: uuid.UUID | None = None,
    utm: dict[str, str] | None = None,
) -> LinkOut:
    """A link through the service, to a destination the test has allowed with
    ``allow_domains``: redirect tests decide the allowed domains themselves."""
    return influencers.make_link(
        runtime,
        workspace_id,
        destination_url,
        code=code,
        campaign_id=campaign_id,
        influencer_id=influencer_id,
        utm=utm,
        allow_destination=False,
    )


def clicks_of(runtime: Runtime, workspace_id: uuid.UUID) -> list[Click]:
    """The workspace's stored clicks, oldest first (writes queued so far are flushed first)."""
    runtime.tracking.clicks.flush()
    with runtime.session_factory() as session:
        query = select(Click).where(Click.workspace_id == workspace_id).order_by(Click.id)
        return list(session.scalars(query))
