"""The durable inbox of accepted request bodies, stored events, and the quarantine."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storeloop.models.base import Base, OptionalJson, id_column


class InboxEntry(Base):
    """One accepted request body, sealed, waiting to be parsed into events by a worker.

    A 2xx is sent only once this row is committed, so nothing acknowledged can be lost. A body
    with refused messages is kept too: processing quarantines them from it (ADR 0014).
    """

    __tablename__ = "inbox"

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID] = mapped_column(index=True)
    source: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    body_sealed: Mapped[bytes]
    attempts: Mapped[int] = mapped_column(default=0)
    # The indexes of the messages the request refused (and told the sender so), which
    # processing quarantines; any other refusal there is one the request did not make. None:
    # none refused (or written before this column, when requests quarantined their refusals).
    refused: Mapped[list[int] | None] = mapped_column(OptionalJson)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "message_id"),
        Index("ix_events_workspace_profile_time", "workspace_id", "profile_id", "timestamp"),
        Index("ix_events_workspace_time", "workspace_id", "timestamp"),
    )

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    message_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    event: Mapped[str | None] = mapped_column(String(255))
    anonymous_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    profile_id: Mapped[uuid.UUID | None]
    timestamp: Mapped[datetime]
    original_timestamp: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    # The whole normalised event (properties, traits, context), sealed: it may hold personal data.
    payload_sealed: Mapped[bytes]
    order_id: Mapped[str | None] = mapped_column(String(255))
    revenue: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str | None] = mapped_column(String(3))
    # mobile | tablet | desktop | bot, from the user agent (kit.devices): not personal data, and
    # in the clear so that rollups can group on it.
    device: Mapped[str | None] = mapped_column(String(8))


class QuarantinedEvent(Base):
    """An event (or a whole body) that failed validation, kept with its raw payload to replay."""

    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_workspace_status", "workspace_id", "status", "id"),)

    id: Mapped[uuid.UUID] = id_column()
    workspace_id: Mapped[uuid.UUID]
    source: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime]
    batch_index: Mapped[int | None]
    message_id: Mapped[str | None] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(String(48))
    field: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[str] = mapped_column(String(1000))
    payload_sealed: Mapped[bytes]
    status: Mapped[str] = mapped_column(String(12), default="open")
    resolved_at: Mapped[datetime | None]
    # A body set aside whole: its inbox entry's ``refused``, which a replay queues it with.
    refused: Mapped[list[int] | None] = mapped_column(OptionalJson)


class DerivationTask(Base):
    """A stored event that later domains derive from (orders, touchpoints), waiting its turn.

    Written in the same transaction as the event, so nothing is missed; deleted once derived.
    """

    __tablename__ = "derivation_queue"
    __table_args__ = (Index("ix_derivation_queue_workspace", "workspace_id"),)

    event_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID]
    enqueued_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
