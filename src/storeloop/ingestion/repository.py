"""Every query of the ingestion domain, scoped to one workspace."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
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

    def add_inbox_entry(self, entry: InboxEntry) -> None:
        entry.workspace_id = self.workspace_id
        self.session.add(entry)
        self.session.flush()
