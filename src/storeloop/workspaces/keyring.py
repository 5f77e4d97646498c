"""Unwrapped workspace data keys, cached for the life of the process."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from storeloop.kit.crypto import InstanceCipher, WorkspaceCipher, unwrap_data_key
from storeloop.kit.errors import NotFound
from storeloop.models import Workspace


class Keyring:
    def __init__(self, master_key: bytes, session_factory: sessionmaker[Session]) -> None:
        self._master_key = master_key
        self._session_factory = session_factory
        self._ciphers: dict[uuid.UUID, WorkspaceCipher] = {}
        self._lock = threading.Lock()
        self.instance = InstanceCipher(master_key)

    @property
    def master_key(self) -> bytes:
        return self._master_key

    def cipher(self, workspace_id: uuid.UUID) -> WorkspaceCipher:
        cached = self._ciphers.get(workspace_id)
        if cached is not None:
            return cached
        with self._session_factory() as session:
            wrapped = session.scalar(
                select(Workspace.wrapped_data_key).where(Workspace.id == workspace_id)
            )
        if wrapped is None:
            raise NotFound(f"workspace {workspace_id} does not exist")
        cipher = WorkspaceCipher(unwrap_data_key(self._master_key, workspace_id, wrapped))
        with self._lock:
            self._ciphers[workspace_id] = cipher
        return cipher
