"""Read-back helpers for assertions."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from storeloop.models import Event, InboxEntry, QuarantinedEvent
from storeloop.runtime import Runtime


def event_count(runtime: Runtime, workspace_id: uuid.UUID) -> int:
    with runtime.session_factory() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id)
            )
            or 0
        )


def message_ids(runtime: Runtime, workspace_id: uuid.UUID) -> list[str]:
    with runtime.session_factory() as session:
        return sorted(
            session.scalars(select(Event.message_id).where(Event.workspace_id == workspace_id))
        )


def quarantine_reasons(runtime: Runtime, workspace_id: uuid.UUID) -> list[tuple[str, str | None]]:
    with runtime.session_factory() as session:
        rows = session.execute(
            select(QuarantinedEvent.reason, QuarantinedEvent.field)
            .where(QuarantinedEvent.workspace_id == workspace_id)
            .order_by(QuarantinedEvent.id)
        )
        return [(reason, field) for reason, field in rows]


def inbox_count(runtime: Runtime, workspace_id: uuid.UUID) -> int:
    """Entries waiting in the main database's inbox and, on SQLite, in the spool."""
    query = (
        select(func.count()).select_from(InboxEntry).where(InboxEntry.workspace_id == workspace_id)
    )
    engines = [runtime.engine] if runtime.spool is None else [runtime.engine, runtime.spool]
    total = 0
    for engine in engines:
        with engine.connect() as connection:
            total += int(connection.execute(query).scalar_one())
    return total
