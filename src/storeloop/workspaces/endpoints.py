"""Management API for the calling workspace and its API keys."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query

from storeloop.dependencies import CallerDep, RuntimeDep, SessionDep
from storeloop.kit.timeutil import as_utc
from storeloop.models import ApiKey
from storeloop.workspaces import service
from storeloop.workspaces.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyOut,
    WorkspaceOut,
)

router = APIRouter(prefix="/api/v1", tags=["workspace"])


def _key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id,
        kind=key.kind,
        name=key.name,
        prefix=key.prefix,
        created_at=as_utc(key.created_at),
        last_used_at=as_utc(key.last_used_at) if key.last_used_at else None,
        revoked_at=as_utc(key.revoked_at) if key.revoked_at else None,
    )


@router.get("/workspace", response_model=WorkspaceOut)
def get_workspace(caller: CallerDep, session: SessionDep) -> WorkspaceOut:
    workspace = service.get_workspace(session, caller.workspace_id)
    return WorkspaceOut(
        id=workspace.id,
        name=workspace.name,
        slug=workspace.slug,
        created_at=as_utc(workspace.created_at),
    )


@router.get("/keys", response_model=ApiKeyList)
def list_keys(
    caller: CallerDep, session: SessionDep, include_revoked: bool = Query(False)
) -> ApiKeyList:
    keys = service.list_api_keys(session, caller.workspace_id, include_revoked=include_revoked)
    return ApiKeyList(items=[_key_out(key) for key in keys])


@router.post("/keys", response_model=ApiKeyCreated, status_code=201)
def create_key(payload: ApiKeyCreate, caller: CallerDep, session: SessionDep) -> ApiKeyCreated:
    created = service.create_api_key(
        session, caller.workspace_id, service.KeyKind(payload.kind), payload.name
    )
    return ApiKeyCreated(**_key_out(created.key).model_dump(), key=created.plaintext)


@router.delete("/keys/{key_id}", response_model=ApiKeyOut)
def revoke_key(
    key_id: uuid.UUID, caller: CallerDep, session: SessionDep, runtime: RuntimeDep
) -> ApiKeyOut:
    key = service.revoke_api_key(session, caller.workspace_id, key_id)
    runtime.authenticator.forget()
    return _key_out(key)
