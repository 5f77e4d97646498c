"""Influencers: public handles, contact data sealed with the row id, email blind index."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from typing import Any

import orjson
from sqlalchemy import func
from sqlalchemy.orm import Session

from storeloop.identity.normalize import normalize_email
from storeloop.influencers.repository import MarketingRepository
from storeloop.influencers.schemas import (
    Contact,
    InfluencerCreate,
    InfluencerDetail,
    InfluencerOut,
    InfluencerPage,
    InfluencerUpdate,
)
from storeloop.influencers.service.common import (
    PLATFORM,
    UnknownReference,
    changes_of,
    page_of,
    require,
)
from storeloop.kit.crypto import WorkspaceCipher, row_aad
from storeloop.kit.errors import ValidationFailed
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.models import Campaign, Influencer


def _contact_aad(influencer_id: uuid.UUID) -> bytes:
    return row_aad("influencers", influencer_id, "contact")


def _seal_contact(cipher: WorkspaceCipher, influencer: Influencer, contact: Contact | None) -> None:
    document = contact.model_dump(exclude_none=True) if contact is not None else {}
    if "email" in document:
        email = normalize_email(document["email"])
        if email is None:
            raise ValidationFailed("not an email address", field="contact.email")
        document["email"] = email
    influencer.email_index = (
        cipher.blind_index("email", document["email"]) if "email" in document else None
    )
    influencer.contact_sealed = (
        cipher.seal(orjson.dumps(document), _contact_aad(influencer.id)) if document else None
    )


def _open_contact(cipher: WorkspaceCipher, influencer: Influencer) -> Contact | None:
    if influencer.contact_sealed is None:
        return None
    document = orjson.loads(cipher.open(influencer.contact_sealed, _contact_aad(influencer.id)))
    return Contact.model_validate(document)


def _handles(handles: Mapping[str, str]) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for platform, handle in handles.items():
        key = platform.strip().lower()
        if not PLATFORM.match(key):
            raise ValidationFailed(
                f"{platform!r} is not a platform name (letters, digits, . _ -)",
                field=f"handles.{platform}",
            )
        cleaned[key] = handle.strip()
    return cleaned


def _influencer_out(influencer: Influencer) -> InfluencerOut:
    return InfluencerOut(
        id=influencer.id,
        name=influencer.name,
        handles=dict(influencer.handles),
        status=influencer.status,
        has_contact=influencer.contact_sealed is not None,
        created_at=as_utc(influencer.created_at),
        updated_at=as_utc(influencer.updated_at),
    )


def _influencer_detail(cipher: WorkspaceCipher, influencer: Influencer) -> InfluencerDetail:
    return InfluencerDetail(
        **_influencer_out(influencer).model_dump(), contact=_open_contact(cipher, influencer)
    )


def create_influencer(
    session: Session, cipher: WorkspaceCipher, workspace_id: uuid.UUID, data: InfluencerCreate
) -> InfluencerDetail:
    now = utcnow()
    influencer = Influencer(
        id=new_id(),
        workspace_id=workspace_id,
        name=data.name,
        handles=_handles(data.handles),
        status=data.status,
        created_at=now,
        updated_at=now,
    )
    _seal_contact(cipher, influencer, data.contact)
    MarketingRepository(session, workspace_id).add(influencer)
    return _influencer_detail(cipher, influencer)


def get_influencer(
    session: Session, cipher: WorkspaceCipher, workspace_id: uuid.UUID, influencer_id: uuid.UUID
) -> InfluencerDetail:
    repository = MarketingRepository(session, workspace_id)
    influencer = require(
        repository.get(Influencer, influencer_id), "influencer", influencer_id, "influencer_id"
    )
    return _influencer_detail(cipher, influencer)


def list_influencers(
    session: Session,
    cipher: WorkspaceCipher,
    workspace_id: uuid.UUID,
    *,
    status: str | None = None,
    name: str | None = None,
    email: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> InfluencerPage:
    """Newest first; ``name`` matches part of the name, ``email`` the whole address."""
    filters: list[Any] = []
    if status is not None:
        filters.append(Influencer.status == status)
    if name:
        escaped = name.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        filters.append(func.lower(Influencer.name).like(f"%{escaped}%", escape="\\"))
    if email is not None:
        normalized = normalize_email(email)
        if normalized is None:
            return InfluencerPage(items=[], next_cursor=None)
        filters.append(Influencer.email_index == cipher.blind_index("email", normalized))
    rows, next_cursor = page_of(
        MarketingRepository(session, workspace_id), Influencer, filters, limit, cursor
    )
    return InfluencerPage(items=[_influencer_out(row) for row in rows], next_cursor=next_cursor)


def influencer_names(
    session: Session,
    workspace_id: uuid.UUID,
    ids: Collection[uuid.UUID] | None = None,
    *,
    limit: int = 1000,
) -> dict[uuid.UUID, str]:
    """Names of these influencers of the workspace; of all of them (by name, up to ``limit``)
    when ``ids`` is None. Ids of other workspaces are left out."""
    return MarketingRepository(session, workspace_id).names(Influencer, ids, limit)


def update_influencer(
    session: Session,
    cipher: WorkspaceCipher,
    workspace_id: uuid.UUID,
    influencer_id: uuid.UUID,
    update: InfluencerUpdate,
) -> InfluencerDetail:
    changes = changes_of(update, not_null={"name", "handles", "status"})
    repository = MarketingRepository(session, workspace_id)
    influencer = require(
        repository.get(Influencer, influencer_id), "influencer", influencer_id, "influencer_id"
    )
    if "name" in changes:
        influencer.name = changes["name"]
    if "handles" in changes:
        influencer.handles = _handles(changes["handles"])
    if "status" in changes:
        influencer.status = changes["status"]
    if "contact" in changes:
        _seal_contact(cipher, influencer, update.contact)
    influencer.updated_at = utcnow()
    session.flush()
    return _influencer_detail(cipher, influencer)


def resolve_influencer(session: Session, workspace_id: uuid.UUID, ref: str) -> uuid.UUID:
    """An influencer given by id or by name (case-insensitive, must be unambiguous)."""
    return resolve_ref(MarketingRepository(session, workspace_id), Influencer, ref, "influencer")


def resolve_campaign(session: Session, workspace_id: uuid.UUID, ref: str) -> uuid.UUID:
    """A campaign given by id or by name (case-insensitive, must be unambiguous)."""
    return resolve_ref(MarketingRepository(session, workspace_id), Campaign, ref, "campaign")


def resolve_ref(
    repository: MarketingRepository,
    model: type[Influencer] | type[Campaign],
    ref: str,
    what: str,
) -> uuid.UUID:
    ref = ref.strip()
    try:
        row_id = uuid.UUID(ref)
    except ValueError:
        pass
    else:
        if repository.existing_ids(model, [row_id]):
            return row_id
        raise UnknownReference(f"no {what} {ref} in this workspace", field=what)
    named = (
        repository.influencers_named(ref)
        if model is Influencer
        else repository.campaigns_named(ref)
    )
    if not named:
        raise UnknownReference(f"no {what} named {ref!r} in this workspace", field=what)
    if len(named) > 1:
        raise UnknownReference(
            f"several {what}s are named {ref!r}; give the id instead", field=what
        )
    return named[0].id
