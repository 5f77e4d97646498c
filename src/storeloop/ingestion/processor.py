"""The inbox processor: turns accepted request bodies into stored events and profiles.

Safe to run on many workers at once with PostgreSQL: each claims its own inbox rows (SKIP LOCKED).
An entry's events, profile changes and its deletion from the inbox commit in one transaction, and
everything is idempotent besides (events are unique per workspace and messageId, identity links
are upserts, an entry is quarantined under its own id), so a replayed or re-queued body stores
nothing twice. With SQLite, run one processor; there the entries usually wait in the spool file
(ADR 0011) and are deleted from it just after the transaction that stored their events.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import Engine, Insert, Table, Uuid, any_, bindparam, delete, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker

from storeloop.analytics.repository import mark_days
from storeloop.db import dialect_insert
from storeloop.identity.schemas import Observation
from storeloop.identity.service import resolve
from storeloop.ingestion.body import Envelope, InvalidBody, parse_json, read_envelope, unpack_body
from storeloop.ingestion.derivation import needs_derivation
from storeloop.ingestion.service import (
    BATCH_SOURCE,
    RejectedEvent,
    rejection_row,
    split_messages,
)
from storeloop.ingestion.validation import Limits, NormalizedEvent
from storeloop.ingestion.writer import QUARANTINE_TABLE
from storeloop.kit.crypto import DecryptionError, WorkspaceCipher, row_aad
from storeloop.kit.devices import device_class
from storeloop.kit.errors import NotFound
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import as_utc
from storeloop.models import DerivationTask, Event, InboxEntry, QuarantinedEvent
from storeloop.workspaces.keyring import Keyring
from storeloop.workspaces.repository import WorkspaceRepository

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# (session, workspace_id, profile ids a merge touched) -> anything
ProfilesMerged = Callable[[Session, uuid.UUID, set[uuid.UUID]], object]
EVENTS_TABLE = cast(Table, Event.__table__)
DERIVATION_TABLE = cast(Table, DerivationTask.__table__)


class _Inbox:
    """The main database's inbox table: entries are claimed, processed and deleted in one
    transaction (on PostgreSQL, many workers at once thanks to SKIP LOCKED)."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size

    def claim(self, session: Session, ids: Sequence[uuid.UUID] | None = None) -> list[InboxEntry]:
        query = select(InboxEntry).order_by(InboxEntry.id).limit(self.batch_size)
        if ids is not None:
            query = query.where(InboxEntry.id.in_(ids))
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(session.scalars(query))

    def finish(self, session: Session, ids: Sequence[uuid.UUID]) -> None:
        """Inside the processing transaction: the entries are done."""
        session.execute(delete(InboxEntry).where(InboxEntry.id.in_(ids)))

    def after_commit(self, ids: Sequence[uuid.UUID]) -> None:
        """After the processing transaction committed."""

    def count_failure(self, session: Session, entry_id: uuid.UUID) -> InboxEntry | None:
        """One more failed attempt at an entry, in ``session`` (committed by the caller)."""
        entry = session.get(InboxEntry, entry_id)
        if entry is not None:
            entry.attempts += 1
        return entry


class _Spool(_Inbox):
    """The spool file of SQLite (ADR 0011): entries are read, processed and committed in the main
    database, and only then deleted from the spool, in a short transaction of its own. A crash in
    between processes them again, which stores nothing twice (events are unique per workspace
    and messageId). One processor per SQLite database, as ever."""

    def __init__(self, batch_size: int, engine: Engine) -> None:
        super().__init__(batch_size)
        self.sessions = sessionmaker(engine, expire_on_commit=False)

    def claim(self, session: Session, ids: Sequence[uuid.UUID] | None = None) -> list[InboxEntry]:
        query = select(InboxEntry).order_by(InboxEntry.id).limit(self.batch_size)
        if ids is not None:
            query = query.where(InboxEntry.id.in_(ids))
        with self.sessions() as spool:
            entries = list(spool.scalars(query))
            spool.expunge_all()
        return entries

    def finish(self, session: Session, ids: Sequence[uuid.UUID]) -> None:
        pass

    def after_commit(self, ids: Sequence[uuid.UUID]) -> None:
        with self.sessions.begin() as spool:
            spool.execute(delete(InboxEntry).where(InboxEntry.id.in_(ids)))

    def count_failure(self, session: Session, entry_id: uuid.UUID) -> InboxEntry | None:
        with self.sessions.begin() as spool:
            entry = spool.get(InboxEntry, entry_id)
            if entry is None:
                return None
            entry.attempts += 1
        return entry


class InboxProcessor:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        keyring: Keyring,
        limits: Limits,
        *,
        batch_size: int = 64,
        spool: Engine | None = None,
        on_profiles_merged: ProfilesMerged | None = None,
    ) -> None:
        """``spool``: the engine of SQLite's inbox spool (ingestion.spool), processed after the
        main database's inbox table."""
        self.session_factory = session_factory
        self.keyring = keyring
        self.limits = limits
        self.batch_size = batch_size
        self._inboxes: list[_Inbox] = [_Inbox(batch_size)]
        if spool is not None:
            self._inboxes.append(_Spool(batch_size, spool))
        # Told, inside the same transaction, which profiles a merge touched (attribution
        # re-attributes their orders); wired by the runtime so ingestion knows no later domain.
        self.on_profiles_merged = on_profiles_merged

    def process_once(self) -> int:
        """Process up to ``batch_size`` entries of each inbox, one transaction each; returns how
        many."""
        return sum(self._process_inbox(inbox) for inbox in self._inboxes)

    def _process_inbox(self, inbox: _Inbox) -> int:
        with self.session_factory() as session:
            entries = inbox.claim(session)
            if not entries:
                session.rollback()
                return 0
            entry_ids = [entry.id for entry in entries]
            try:
                late = self._process(session, entries)
                inbox.finish(session, entry_ids)
                session.commit()
            except Exception:
                session.rollback()
                logger.exception(
                    "processing %d inbox entries failed; retrying one by one", len(entry_ids)
                )
            else:
                inbox.after_commit(entry_ids)
                _report(late)
                return len(entry_ids)
        return self._process_one_by_one(inbox, entry_ids)

    def drain(self) -> int:
        total = 0
        while processed := self.process_once():
            total += processed
        return total

    def run(self, stop: threading.Event, idle_seconds: float = 0.05) -> None:
        while not stop.is_set():
            try:
                processed = self.process_once()
            except Exception:
                logger.exception("inbox processor iteration failed")
                processed = 0
            if not processed:
                stop.wait(idle_seconds)

    def _process_one_by_one(self, inbox: _Inbox, ids: Sequence[uuid.UUID]) -> int:
        done = 0
        for entry_id in ids:
            with self.session_factory() as session:
                entries = inbox.claim(session, [entry_id])
                if not entries:
                    continue
                try:
                    late = self._process(session, entries)
                    inbox.finish(session, [entry_id])
                    session.commit()
                except Exception:
                    session.rollback()
                    logger.exception("inbox entry %s failed", entry_id)
                else:
                    inbox.after_commit([entry_id])
                    _report(late)
                    done += 1
                    continue
            self._record_failure(inbox, entry_id)
        return done

    def _record_failure(self, inbox: _Inbox, entry_id: uuid.UUID) -> None:
        """Count a failed attempt; the last one moves the entry to the quarantine. A failure
        here is logged, never raised: the entries after this one must still be processed."""
        try:
            with self.session_factory() as session:
                entry = inbox.count_failure(session, entry_id)
                if entry is None:
                    session.rollback()
                    return
                if entry.attempts < MAX_ATTEMPTS:
                    session.commit()
                    return
                self._quarantine_entry(
                    session, entry, "processing_failed", "could not be processed"
                )
                inbox.finish(session, [entry_id])
                session.commit()
            inbox.after_commit([entry_id])
        except Exception:
            logger.exception("could not record the failure of inbox entry %s", entry_id)

    def _quarantine_entry(
        self, session: Session, entry: InboxEntry, reason: str, detail: str
    ) -> None:
        """Add an entry that cannot be processed to the quarantine, body still sealed (the
        caller removes it from its inbox). The item takes the entry's id, so an entry processed
        twice (SQLite's spool after a crash, ADR 0011) is quarantined once."""
        cipher = self.keyring.cipher(entry.workspace_id)
        quarantine_id = entry.id
        already = session.scalar(
            select(QuarantinedEvent).where(
                QuarantinedEvent.workspace_id == entry.workspace_id,
                QuarantinedEvent.id == quarantine_id,
            )
        )
        if already is not None:
            # The same entry again (SQLite's spool after a crash), or the replay of a whole
            # body (which keeps the item's id) that failed again: the item is open once more.
            if already.status != "open":
                already.status, already.resolved_at = "open", None
                already.reason, already.detail = reason, detail[:1000]
            return
        try:
            body = cipher.open(entry.body_sealed, row_aad("inbox", entry.id, "body"))
        except DecryptionError:
            body = b""
            reason = "undecryptable"
        else:
            with contextlib.suppress(InvalidBody):  # else kept as stored
                body = unpack_body(body)
        session.add(
            QuarantinedEvent(
                id=quarantine_id,
                workspace_id=entry.workspace_id,
                source=entry.source,
                received_at=entry.received_at,
                reason=reason,
                detail=detail,
                payload_sealed=cipher.seal(body, row_aad("quarantine", quarantine_id, "payload")),
                status="open",
                refused=entry.refused,
            )
        )

    def _normalize_entry(
        self,
        session: Session,
        cipher: WorkspaceCipher,
        entry: InboxEntry,
        body: bytes,
        late: list[_LateRefusal],
    ) -> list[NormalizedEvent]:
        envelope = read_envelope(parse_json(body), is_batch=entry.source == BATCH_SOURCE)
        events, rejected = split_messages(
            envelope,
            source=entry.source,
            inbox_id=entry.id,
            received_at=as_utc(entry.received_at),
            limits=self.limits,
            build_documents=True,
        )
        if rejected:
            added = self._quarantine_rejected(session, cipher, entry, envelope, rejected)
            if added:
                late.append(_LateRefusal(entry.id, added))
        return events

    def _quarantine_rejected(
        self,
        session: Session,
        cipher: WorkspaceCipher,
        entry: InboxEntry,
        envelope: Envelope,
        rejected: Sequence[RejectedEvent],
    ) -> list[str]:
        """Quarantine the messages this processing refuses, from the stored body (ADR 0014);
        the reason codes of those the request did not refuse. Each is kept under an id derived
        from the entry and its index (``rejection_id``), so processing a body twice (SQLite's
        spool after a crash) quarantines it once. A refusal the request did not make (a
        validation rule tightened while the body waited, or a disagreement between the two)
        is a message that was acknowledged and is now kept here rather than lost: reported."""
        told = set(entry.refused or ())
        insert_rows = dialect_insert(
            session.get_bind().dialect.name, QUARANTINE_TABLE
        ).on_conflict_do_nothing(index_elements=["id"])
        expected: list[dict[str, Any]] = []
        late: list[dict[str, Any]] = []
        for item in rejected:
            row = rejection_row(
                cipher,
                workspace_id=entry.workspace_id,
                source=entry.source,
                inbox_id=entry.id,
                received_at=as_utc(entry.received_at),
                is_batch=envelope.is_batch,
                item=item,
                raw=envelope.messages[item.index],
            )
            (expected if item.index in told else late).append(row)
        if expected:
            session.execute(insert_rows, expected)
        # RETURNING tells whether the row went in (the ORM session's rowcount is -1 with
        # psycopg here).
        returning = insert_rows.returning(QUARANTINE_TABLE.c.id)
        return [
            str(row["reason"])
            for row in late
            if session.execute(returning.values(row)).first() is not None
        ]

    def _process(self, session: Session, entries: Sequence[InboxEntry]) -> list[_LateRefusal]:
        """Store the entries' events (the caller commits); the refusals only this processing
        found, to report once committed."""
        late: list[_LateRefusal] = []
        by_workspace: dict[uuid.UUID, dict[str, NormalizedEvent]] = defaultdict(dict)
        for entry in entries:
            try:
                cipher = self.keyring.cipher(entry.workspace_id)
            except NotFound:
                # The workspace was deleted with its data (or the spool outlived its database):
                # nothing can open, store or quarantine the body. Removed with the batch.
                logger.error("inbox entry %s belongs to no workspace; discarded", entry.id)
                continue
            try:
                opened = cipher.open(entry.body_sealed, row_aad("inbox", entry.id, "body"))
                events = self._normalize_entry(session, cipher, entry, unpack_body(opened), late)
            except (DecryptionError, InvalidBody) as exc:
                self._quarantine_entry(session, entry, "unprocessable", str(exc)[:1000])
                continue
            bucket = by_workspace[entry.workspace_id]
            for event in events:
                bucket.setdefault(event.message_id, event)
        for workspace_id, events_by_id in by_workspace.items():
            self._store(session, workspace_id, list(events_by_id.values()))
        return late

    def _store(
        self, session: Session, workspace_id: uuid.UUID, events: list[NormalizedEvent]
    ) -> None:
        if not events:
            return
        cipher = self.keyring.cipher(workspace_id)
        region = WorkspaceRepository(session).phone_region(workspace_id)
        on_profiles_merged = self.on_profiles_merged
        profiles = resolve(
            session,
            workspace_id,
            cipher,
            [_observation(event) for event in events],
            default_phone_region=region,
            on_merge=None
            if on_profiles_merged is None
            else lambda profile_ids: on_profiles_merged(session, workspace_id, profile_ids),
        )
        rows: list[dict[str, Any]] = []
        derivations: list[dict[str, Any]] = []
        for event in events:
            event_id = new_id()
            if needs_derivation(event.document):
                derivations.append(
                    {
                        "event_id": event_id,
                        "workspace_id": workspace_id,
                        "enqueued_at": event.received_at,
                        "attempts": 0,
                    }
                )
            rows.append(
                {
                    "id": event_id,
                    "workspace_id": workspace_id,
                    "message_id": event.message_id,
                    "type": event.type,
                    "event": event.event,
                    "anonymous_id": event.anonymous_id,
                    "user_id": event.user_id,
                    "profile_id": profiles.get(event.message_id),
                    "timestamp": event.timestamp,
                    "original_timestamp": event.original_timestamp,
                    "sent_at": event.sent_at,
                    "received_at": event.received_at,
                    "payload_sealed": cipher.seal(
                        orjson.dumps(event.document), row_aad("events", event_id, "payload")
                    ),
                    "order_id": event.order_id,
                    "revenue": event.revenue,
                    "currency": event.currency,
                    "device": device_class(_user_agent(event.document)),
                }
            )
        # Every day an event lands on is rolled up again, however late the event (ADR 0008).
        mark_days(session, workspace_id, {as_utc(event.timestamp).date() for event in events})
        dialect = session.get_bind().dialect.name
        # The Table, not the mapped class: a Core bulk insert, no ORM unit-of-work bookkeeping.
        statement = dialect_insert(dialect, EVENTS_TABLE).on_conflict_do_nothing(
            index_elements=["workspace_id", "message_id"]
        )
        if not derivations:
            session.execute(statement, rows)
            return
        # A duplicate messageId inserts no event, so it queues no derivation either.
        if dialect == "postgresql":
            stored = self._insert_events_postgresql(session, statement, rows, derivations)
        else:
            inserted = session.execute(statement.returning(EVENTS_TABLE.c.id), rows)
            stored = set(inserted.scalars())
        queued = [row for row in derivations if row["event_id"] in stored]
        if queued:
            session.execute(DERIVATION_TABLE.insert(), queued)

    @staticmethod
    def _insert_events_postgresql(
        session: Session,
        statement: Insert,
        rows: list[dict[str, Any]],
        derivations: list[dict[str, Any]],
    ) -> set[uuid.UUID]:
        """Insert the events; the ids, among the derivation candidates, that were inserted.

        With RETURNING, SQLAlchemy sends pages of 1,000 rows as one multi-VALUES statement of
        about 500 KB, which psycopg re-parses on every execution (statements of more than 50
        parameters are not cached): measured at about 40% of the processor's time. A plain
        executemany reuses one cached single-row statement. The ids are fresh UUIDv7s, so the
        candidates found in the table afterwards (same transaction) are exactly the inserted ones.
        """
        session.execute(statement, rows)
        candidates = bindparam(
            "candidate_ids", [row["event_id"] for row in derivations], type_=ARRAY(Uuid())
        )
        found = session.scalars(
            select(EVENTS_TABLE.c.id).where(EVENTS_TABLE.c.id == any_(candidates))
        )
        return set(found)


@dataclass(frozen=True, slots=True)
class _LateRefusal:
    """Messages of an entry the request accepted and this processing refused (quarantined)."""

    entry_id: uuid.UUID
    reasons: list[str]


def _report(late: Sequence[_LateRefusal]) -> None:
    """Once committed: the entry and the reason codes only, never a message's content."""
    for refusal in late:
        logger.warning(
            "inbox entry %s: %d accepted messages refused at processing, quarantined (%s)",
            refusal.entry_id,
            len(refusal.reasons),
            ", ".join(sorted(set(refusal.reasons))),
        )


def _user_agent(document: dict[str, Any]) -> str | None:
    context = document.get("context")
    agent = context.get("userAgent") if isinstance(context, dict) else None
    return agent if isinstance(agent, str) else None


def _observation(event: NormalizedEvent) -> Observation:
    return Observation(
        message_id=event.message_id,
        type=event.type,
        timestamp=event.timestamp,
        anonymous_id=event.anonymous_id,
        user_id=event.user_id,
        previous_id=event.previous_id,
        traits=event.traits,
    )
