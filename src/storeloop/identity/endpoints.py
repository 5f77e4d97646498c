"""Management API for customer profiles: search, one profile with its identifiers, its timeline."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from storeloop.dependencies import CallerDep, KeyringDep, SessionDep
from storeloop.identity import service
from storeloop.identity.schemas import ProfileDetail, ProfilePage, TimelinePage
from storeloop.workspaces.repository import WorkspaceRepository

router = APIRouter(prefix="/api/v1/profiles", tags=["profiles"])


@router.get("", response_model=ProfilePage)
def list_profiles(
    caller: CallerDep,
    session: SessionDep,
    keyring: KeyringDep,
    email: str | None = Query(None, max_length=320),
    phone: str | None = Query(None, max_length=64),
    user_id: str | None = Query(None, max_length=255),
    anonymous_id: str | None = Query(None, max_length=255),
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=200),
) -> ProfilePage:
    """Profiles seen most recently first; filters find the one profile holding an identifier."""
    region = WorkspaceRepository(session).phone_region(caller.workspace_id)
    return service.find_profiles(
        session,
        caller.workspace_id,
        keyring.cipher(caller.workspace_id),
        email=email,
        phone=phone,
        user_id=user_id,
        anonymous_id=anonymous_id,
        default_phone_region=region,
        limit=limit,
        cursor=cursor,
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
    before: str | None = Query(None, max_length=200),
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
