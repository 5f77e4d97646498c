"""Workspaces with a write key and a secret key, for tests."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass

from storeloop.db import session_scope
from storeloop.runtime import Runtime
from storeloop.workspaces.service import KeyKind, create_api_key, create_workspace


@dataclass(frozen=True)
class WorkspaceKeys:
    id: uuid.UUID
    slug: str
    write_key: str
    secret_key: str

    @property
    def basic_auth(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.write_key}:".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}


def make_workspace(runtime: Runtime, name: str = "Test store") -> WorkspaceKeys:
    slug = f"t-{uuid.uuid4().hex[:12]}"
    with session_scope(runtime.session_factory) as session:
        workspace = create_workspace(session, runtime.keyring.master_key, name, slug)
        write_key = create_api_key(session, workspace.id, KeyKind.WRITE, "test write").plaintext
        secret_key = create_api_key(session, workspace.id, KeyKind.SECRET, "test secret").plaintext
    return WorkspaceKeys(workspace.id, slug, write_key, secret_key)
