"""Observations and workspaces for identity tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.orm import Session

from storeloop.identity.schemas import Observation
from storeloop.kit.crypto import WorkspaceCipher, row_aad, unwrap_data_key
from storeloop.kit.ids import new_id
from storeloop.models import Event
from storeloop.workspaces.service import create_workspace

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def observation(
    message_id: str,
    type: str = "page",
    *,
    seconds: float = 0,
    anonymous_id: str | None = None,
    user_id: str | None = None,
    previous_id: str | None = None,
    traits: Mapping[str, Any] | None = None,
) -> Observation:
    return Observation(
        message_id=message_id,
        type=type,
        timestamp=at(seconds),
        anonymous_id=anonymous_id,
        user_id=user_id,
        previous_id=previous_id,
        traits=dict(traits or {}),
    )


@dataclass(frozen=True, slots=True)
class Store:
    id: uuid.UUID
    cipher: WorkspaceCipher


def make_store(session: Session, name: str = "Test store") -> Store:
    """A workspace (unique slug) and its cipher, flushed in ``session``."""
    master_key = os.urandom(32)
    workspace = create_workspace(session, master_key, name, f"t-{uuid.uuid4().hex[:12]}")
    data_key = unwrap_data_key(master_key, workspace.id, workspace.wrapped_data_key)
    return Store(workspace.id, WorkspaceCipher(data_key))


def add_events(
    session: Session,
    store: Store,
    observations: Sequence[Observation],
    resolved: Mapping[str, uuid.UUID],
) -> None:
    """Store events as the ingestion worker would, with the profile resolve() returned."""
    for obs in observations:
        event_id = new_id()
        payload = {"type": obs.type, "messageId": obs.message_id}
        session.add(
            Event(
                id=event_id,
                workspace_id=store.id,
                message_id=obs.message_id,
                type=obs.type,
                event="Product Viewed" if obs.type == "track" else None,
                anonymous_id=obs.anonymous_id,
                user_id=obs.user_id,
                profile_id=resolved.get(obs.message_id),
                timestamp=obs.timestamp,
                received_at=obs.timestamp,
                payload_sealed=store.cipher.seal(
                    orjson.dumps(payload), row_aad("events", event_id, "payload")
                ),
            )
        )
    session.flush()
