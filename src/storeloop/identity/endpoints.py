"""Management API for customer profiles: search, one profile with its identifiers, its timeline."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from storeloop.dependencies import Caller, CallerDep, KeyringDep, SessionDep
from storeloop.identity import service
from storeloop.identity.schemas import ProfileDetail, ProfilePage, TimelinePage
from storeloop.kit.errors import ValidationFailed
from storeloop.workspaces.keyring import Keyring
from storeloop.workspaces.service import phone_region

router = APIRouter(prefix="/api/v1/profiles", tags=["profiles"])
# No stored identifier holds NUL (ingestion refuses it), and PostgreSQL text cannot: a 422.
NO_NUL = r"^[^\x00]*$"


class ProfileSearch(BaseModel):
    """Search filters; emails and phones travel in the body so they never reach access logs."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(None, max_length=320, pattern=NO_NUL)
    phone: str | None = Field(None, max_length=64, pattern=NO_NUL)
    user_id: str | None = Field(None, max_length=255, pattern=NO_NUL)
    anonymous_id: str | None = Field(None, max_length=255, pattern=NO_NUL)
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=200, pattern=NO_NUL)


@router.get("", response_model=ProfilePage)
def list_profiles(
    caller: CallerDep,
    session: SessionDep,
    keyring: KeyringDep,
    user_id: str | None = Query(None, max_length=255, pattern=NO_NUL),
    anonymous_id: str | None = Query(None, max_length=255, pattern=NO_NUL),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=200, pattern=NO_NUL),
    email: str | None = Query(
        None, max_length=320, description="refused: search by email with POST /search"
    ),
    phone: str | None = Query(
        None, max_length=64, description="refused: search by phone with POST /search"
    ),
) -> ProfilePage:
    """Profiles seen most recently first; ``user_id`` / ``anonymous_id`` find the one holding it.

    Emails and phones are personal data: URLs end up in proxy and access logs, so they are
    searched with ``POST /api/v1/profiles/search`` instead.
    """
    for name, value in (("email", email), ("phone", phone)):
        if value is not None:
            raise ValidationFailed(
                f"{name} is personal data and is not accepted in a URL; "
                "send it in the body of POST /api/v1/profiles/search",
                field=name,
            )
    return _search(
        caller,
        session,
        keyring,
        ProfileSearch(user_id=user_id, anonymous_id=anonymous_id, limit=limit, cursor=cursor),
    )


@router.post("/search", response_model=ProfilePage)
def search_profiles(
    search: ProfileSearch, caller: CallerDep, session: SessionDep, keyring: KeyringDep
) -> ProfilePage:
    """Every filter given must match the same profile; emails and phones are normalised."""
    return _search(caller, session, keyring, search)


def _search(
    caller: Caller, session: Session, keyring: Keyring, search: ProfileSearch
) -> ProfilePage:
    region = phone_region(session, caller.workspace_id)
    return service.find_profiles(
        session,
        caller.workspace_id,
        keyring.cipher(caller.workspace_id),
        email=search.email,
        phone=search.phone,
        user_id=search.user_id,
        anonymous_id=search.anonymous_id,
        default_phone_region=region,
        limit=search.limit,
        cursor=search.cursor,
    )


@router.get("/{profile_id}", response_model=ProfileDetail)
def get_profile(
    profile_id: uuid.UUID, caller: CallerDep, session: SessionDep, keyring: KeyringDep
) -> ProfileDetail:
    """A profile with its traits and identifiers; a merged profile's old id still finds it."""
    return service.get_profile(
        session, caller.workspace_id, keyring.cipher(caller.workspace_id), profile_id
    )


@router.get("/{profile_id}/events", response_model=TimelinePage)
def profile_events(
    profile_id: uuid.UUID,
    caller: CallerDep,
    session: SessionDep,
    keyring: KeyringDep,
    limit: int = Query(50, ge=1, le=200),
    before: str | None = Query(None, max_length=200, pattern=NO_NUL),
) -> TimelinePage:
    """The profile's event timeline, newest first."""
    return service.profile_timeline(
        session,
        caller.workspace_id,
        keyring.cipher(caller.workspace_id),
        profile_id,
        limit=limit,
        before=before,
    )
