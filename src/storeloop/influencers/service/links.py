"""Tracked links: codes unique on the instance (case-insensitive), allowed destinations only."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storeloop.analytics.repository import link_click_days, mark_days
from storeloop.influencers.repository import MarketingRepository
from storeloop.influencers.schemas import (
    LinkCreate,
    LinkOut,
    LinkPage,
    LinkUpdate,
)
from storeloop.influencers.service.common import (
    CodeTaken,
    DestinationNotAllowed,
    InvalidCode,
    changes_of,
    check_references,
    page_of,
    require,
)
from storeloop.influencers.service.settings import get_store_settings
from storeloop.kit.errors import Conflict
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.kit.tracking_params import LINK_CODE_PATTERN
from storeloop.kit.urls import destination_allowed
from storeloop.models import Link

# Readable: no 0/o, 1/l/i, so a code read aloud or copied by hand survives.
_CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"
_GENERATED_CODE_LENGTH = 7


def short_url(base_url: str, code: str) -> str:
    return f"{base_url.rstrip('/')}/r/{code}"


def _link_out(link: Link, base_url: str) -> LinkOut:
    return LinkOut(
        id=link.id,
        code=link.code,
        short_url=short_url(base_url, link.code),
        destination_url=link.destination_url,
        influencer_id=link.influencer_id,
        campaign_id=link.campaign_id,
        post_id=link.post_id,
        utm=dict(link.utm),
        is_active=link.is_active,
        created_at=as_utc(link.created_at),
        updated_at=as_utc(link.updated_at),
    )


def _check_destination(session: Session, workspace_id: uuid.UUID, url: str) -> str:
    settings = get_store_settings(session, workspace_id)
    if not destination_allowed(url, settings.allowed_domains):
        allowed = ", ".join(settings.allowed_domains) or "none yet: set them in /api/v1/settings"
        raise DestinationNotAllowed(
            f"tracked links may only lead to http(s) pages of the store's allowed domains "
            f"({allowed})",
            field="destination_url",
        )
    return url


def generate_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_GENERATED_CODE_LENGTH))


def create_link(
    session: Session, workspace_id: uuid.UUID, data: LinkCreate, *, base_url: str
) -> LinkOut:
    """A tracked link; its code is unique on the instance, whatever the case it is typed in."""
    repository = MarketingRepository(session, workspace_id)
    destination = _check_destination(session, workspace_id, data.destination_url)
    check_references(
        repository,
        influencer_id=data.influencer_id,
        campaign_id=data.campaign_id,
        post_id=data.post_id,
    )
    if data.code is not None:
        if not LINK_CODE_PATTERN.fullmatch(data.code):
            raise InvalidCode(
                "a link code has 3 to 64 letters, digits, - or _, starting with a letter or digit",
                field="code",
            )
        candidates = [data.code]
    else:
        candidates = [generate_code() for _ in range(5)]
    now = utcnow()
    for code in candidates:
        if repository.link_code_exists(code.lower()):
            continue
        link = Link(
            id=new_id(),
            workspace_id=workspace_id,
            code=code,
            code_key=code.lower(),
            destination_url=destination,
            influencer_id=data.influencer_id,
            campaign_id=data.campaign_id,
            post_id=data.post_id,
            utm=dict(data.utm),
            is_active=True,
            created_at=now,
            updated_at=now,
        )
        try:
            # A savepoint: losing a race for the code must not end the caller's transaction.
            with session.begin_nested():
                repository.add(link)
        except IntegrityError:
            continue
        return _link_out(link, base_url)
    if data.code is None:
        raise Conflict("no free code was found; try again or choose one", field="code")
    raise CodeTaken(f"the code {data.code!r} is already taken", field="code")


def get_link(
    session: Session, workspace_id: uuid.UUID, link_id: uuid.UUID, *, base_url: str
) -> LinkOut:
    link = require(
        MarketingRepository(session, workspace_id).get(Link, link_id), "link", link_id, "link_id"
    )
    return _link_out(link, base_url)


def list_links(
    session: Session,
    workspace_id: uuid.UUID,
    *,
    base_url: str,
    influencer_id: uuid.UUID | None = None,
    campaign_id: uuid.UUID | None = None,
    code: str | None = None,
    is_active: bool | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> LinkPage:
    filters: list[Any] = []
    if influencer_id is not None:
        filters.append(Link.influencer_id == influencer_id)
    if campaign_id is not None:
        filters.append(Link.campaign_id == campaign_id)
    if code is not None:
        filters.append(Link.code_key == code.strip().lower())
    if is_active is not None:
        filters.append(Link.is_active.is_(is_active))
    rows, next_cursor = page_of(
        MarketingRepository(session, workspace_id), Link, filters, limit, cursor
    )
    return LinkPage(items=[_link_out(row, base_url) for row in rows], next_cursor=next_cursor)


def update_link(
    session: Session,
    workspace_id: uuid.UUID,
    link_id: uuid.UUID,
    update: LinkUpdate,
    *,
    base_url: str,
) -> LinkOut:
    changes = changes_of(update, not_null={"destination_url", "utm", "is_active"})
    repository = MarketingRepository(session, workspace_id)
    link = require(repository.get(Link, link_id), "link", link_id, "link_id")
    if "destination_url" in changes:
        link.destination_url = _check_destination(session, workspace_id, changes["destination_url"])
    # References are checked before the row changes (a flush of an unknown id would fail).
    check_references(
        repository,
        influencer_id=changes.get("influencer_id", link.influencer_id),
        campaign_id=changes.get("campaign_id", link.campaign_id),
        post_id=changes.get("post_id"),
    )
    if any(
        name in changes and changes[name] != getattr(link, name)
        for name in ("influencer_id", "campaign_id", "post_id")
    ):
        # Click rollups carry the link's influencer, campaign and post: the days with its
        # clicks are rolled up again (ADR 0008).
        mark_days(session, workspace_id, link_click_days(session, workspace_id, link.id))
    for name in ("influencer_id", "campaign_id", "post_id", "is_active"):
        if name in changes:
            setattr(link, name, changes[name])
    if "utm" in changes:
        link.utm = dict(changes["utm"])
    link.updated_at = utcnow()
    session.flush()
    return _link_out(link, base_url)
