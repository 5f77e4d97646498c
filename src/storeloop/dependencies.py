"""FastAPI dependencies shared by the management endpoints: runtime, session, caller."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from storeloop.db import session_scope
from storeloop.kit.errors import Forbidden, Unauthorized
from storeloop.runtime import Runtime
from storeloop.workspaces.keyring import Keyring
from storeloop.workspaces.service import KeyKind


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _session(runtime: Annotated[Runtime, Depends(get_runtime)]) -> Iterator[Session]:
    with session_scope(runtime.session_factory) as session:
        yield session


# scope="function": the commit happens before the response is sent, so a failed commit is an
# error response rather than a success the database never saw.
SessionDep = Annotated[Session, Depends(_session, scope="function")]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling the management API: a workspace's secret key."""

    workspace_id: uuid.UUID
    key_id: uuid.UUID


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require_secret_key(request: Request, runtime: RuntimeDep) -> Caller:
    token = _bearer(request)
    if token is None:
        raise Unauthorized(
            "send a secret key as Authorization: Bearer sls_...", field="Authorization"
        )
    with runtime.session_factory() as session:
        identity = runtime.authenticator.authenticate(session, token)
    if identity is None:
        raise Unauthorized("unknown or revoked API key", field="Authorization")
    if identity.kind is not KeyKind.SECRET:
        raise Forbidden(
            "a write key can only send events; the management API needs a secret key",
            field="Authorization",
        )
    return Caller(identity.workspace_id, identity.key_id)


CallerDep = Annotated[Caller, Depends(require_secret_key)]


def get_keyring(runtime: RuntimeDep) -> Keyring:
    return runtime.keyring


KeyringDep = Annotated[Keyring, Depends(get_keyring)]
