"""The derivation runner: turns queued events into orders and touchpoints, then re-attributes.

The inbox processor queues the events that matter (ingestion.derivation) in the same transaction
that stores them. This runner claims a batch of the queue (SKIP LOCKED on PostgreSQL, so several
workers can share it), opens each event's sealed payload, hands the batch to every handler in
order (orders before touchpoints, so a touchpoint can point at its order), runs the follow-up
jobs (re-attributing orders marked stale) and commits. Handlers are idempotent: a batch that
fails is retried one event at a time, and an event that fails five times is set aside with a log
line naming its id (never its payload) instead of blocking the queue.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from storeloop.db import begin_write
from storeloop.kit.crypto import WorkspaceCipher, row_aad
from storeloop.kit.timeutil import as_utc
from storeloop.models import DerivationTask, Event
from storeloop.workspaces.keyring import Keyring

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A stored event with its payload opened: what derivation handlers work on."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    message_id: str
    type: str
    event: str | None
    anonymous_id: str | None
    user_id: str | None
    profile_id: uuid.UUID | None
    timestamp: datetime
    document: dict[str, Any]


# handler(session, workspace_id, cipher, events): derive from one workspace's events; may flush.
Handler = Callable[[Session, uuid.UUID, WorkspaceCipher, Sequence[StoredEvent]], None]
# follow_up(session, keyring) -> units of work done; run after each batch and when idle.
FollowUp = Callable[[Session, Keyring], int]


class DerivationRunner:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        keyring: Keyring,
        *,
        handlers: Sequence[Handler] = (),
        follow_ups: Sequence[FollowUp] = (),
        jobs: Sequence[Callable[[], int]] = (),
        batch_size: int = 200,
    ) -> None:
        self.session_factory = session_factory
        self.keyring = keyring
        self.handlers = list(handlers)
        self.follow_ups = list(follow_ups)
        # Run after the follow-ups, in transactions of their own (the analytics rollups).
        self.jobs = list(jobs)
        self.batch_size = batch_size

    def process_once(self) -> int:
        """Derive from one batch of the queue, then run the follow-ups; returns work done."""
        done = self._derive_batch()
        done += self._run_follow_ups()
        done += self._run_jobs()
        return done

    def drain(self) -> int:
        total = 0
        while done := self.process_once():
            total += done
        return total

    def run(self, stop: threading.Event, idle_seconds: float = 0.2) -> None:
        while not stop.is_set():
            try:
                done = self.process_once()
            except Exception:
                logger.exception("derivation iteration failed")
                done = 0
            if not done:
                stop.wait(idle_seconds)

    def _claim(self, session: Session, ids: Sequence[uuid.UUID] | None = None) -> list[uuid.UUID]:
        query = (
            select(DerivationTask.event_id)
            .where(DerivationTask.attempts < MAX_ATTEMPTS)
            .order_by(DerivationTask.event_id)
            .limit(self.batch_size)
        )
        if ids is not None:
            query = query.where(DerivationTask.event_id.in_(ids))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(session.scalars(query))

    def _derive_batch(self) -> int:
        with self.session_factory() as session:
            begin_write(session)
            ids = self._claim(session)
            if not ids:
                session.rollback()
                return 0
            try:
                self._derive(session, ids)
                session.commit()
                return len(ids)
            except Exception:
                session.rollback()
                logger.exception("deriving %d events failed; retrying one by one", len(ids))
        done = 0
        for event_id in ids:
            with self.session_factory() as session:
                begin_write(session)
                if not self._claim(session, [event_id]):
                    continue
                try:
                    self._derive(session, [event_id])
                    session.commit()
                    done += 1
                    continue
                except Exception:
                    session.rollback()
                    logger.exception("deriving event %s failed", event_id)
            with self.session_factory() as session:
                begin_write(session)
                session.execute(
                    update(DerivationTask)
                    .where(DerivationTask.event_id == event_id)
                    .values(attempts=DerivationTask.attempts + 1)
                )
                session.commit()
        return done

    def _derive(self, session: Session, ids: Sequence[uuid.UUID]) -> None:
        events = session.scalars(select(Event).where(Event.id.in_(ids)).order_by(Event.timestamp))
        by_workspace: dict[uuid.UUID, list[StoredEvent]] = defaultdict(list)
        for row in events:
            cipher = self.keyring.cipher(row.workspace_id)
            document = orjson.loads(
                cipher.open(row.payload_sealed, row_aad("events", row.id, "payload"))
            )
            by_workspace[row.workspace_id].append(
                StoredEvent(
                    id=row.id,
                    workspace_id=row.workspace_id,
                    message_id=row.message_id,
                    type=row.type,
                    event=row.event,
                    anonymous_id=row.anonymous_id,
                    user_id=row.user_id,
                    profile_id=row.profile_id,
                    timestamp=as_utc(row.timestamp),
                    document=document,
                )
            )
        for workspace_id, batch in by_workspace.items():
            cipher = self.keyring.cipher(workspace_id)
            for handler in self.handlers:
                handler(session, workspace_id, cipher, batch)
        session.execute(delete(DerivationTask).where(DerivationTask.event_id.in_(ids)))

    def _run_jobs(self) -> int:
        done = 0
        for job in self.jobs:
            try:
                done += job()
            except Exception:
                logger.exception("job %s failed", getattr(job, "__name__", job))
        return done

    def _run_follow_ups(self) -> int:
        done = 0
        for follow_up in self.follow_ups:
            with self.session_factory() as session:
                try:
                    begin_write(session)
                    done += follow_up(session, self.keyring)
                    session.commit()
                except Exception:
                    session.rollback()
                    logger.exception("derivation follow-up %s failed", follow_up.__name__)
        return done
