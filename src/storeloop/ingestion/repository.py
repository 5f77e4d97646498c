"""Every query of the ingestion domain, scoped to one workspace."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storeloop.models import InboxEntry, QuarantinedEvent


class QuarantineRepository:
    def __init__(self, session: Session, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def get(self, item_id: uuid.UUID) -> QuarantinedEvent | None:
        return self.session.scalar(
            select(QuarantinedEvent).where(
                QuarantinedEvent.workspace_id == self.workspace_id,
                QuarantinedEvent.id == item_id,
            )
        )

    def page(
        self, status: str | None, limit: int, after: uuid.UUID | None
    ) -> Sequence[QuarantinedEvent]:
        query = select(QuarantinedEvent).where(QuarantinedEvent.workspace_id == self.workspace_id)
        if status is not None:
            query = query.where(QuarantinedEvent.status == status)
        if after is not None:
            query = query.where(QuarantinedEvent.id < after)
        return self.session.scalars(query.order_by(QuarantinedEvent.id.desc()).limit(limit)).all()

    def close_if_open(self, item_id: uuid.UUID, status: str, when: datetime) -> bool:
        """Set the status of an open item; False when it was no longer open."""
        result = self.session.execute(
            update(QuarantinedEvent)
            .where(
                QuarantinedEvent.workspace_id == self.workspace_id,
                QuarantinedEvent.id == item_id,
                QuarantinedEvent.status == "open",
            )
            .values(status=status, resolved_at=when)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def add_inbox_entry(self, entry: InboxEntry) -> None:
        entry.workspace_id = self.workspace_id
        self.session.add(entry)
        self.session.flush()
