"""What the ingestion worker hands to identity resolution, and what the read functions return."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Observation:
    """The identity-relevant part of one stored event."""

    message_id: str
    type: str  # "track" | "identify" | "page" | "screen" | "group" | "alias"
    timestamp: datetime  # aware UTC
    anonymous_id: str | None
    user_id: str | None
    previous_id: str | None  # alias only: the id being merged into user_id
    traits: Mapping[str, Any] = field(default_factory=dict)  # identify traits only


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    id: uuid.UUID
    first_seen_at: datetime
    last_seen_at: datetime
    updated_at: datetime
    traits: dict[str, Any]
    personal: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ProfilePage:
    items: list[ProfileSummary]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class IdentifierView:
    kind: str  # "anonymous_id" | "user_id" | "email" | "phone"
    value: str  # the id itself, or the decrypted normalised email / E.164 phone
    first_seen_at: datetime


@dataclass(frozen=True, slots=True)
class ProfileDetail:
    id: uuid.UUID
    # The id that was asked for, when it had been merged into ``id``.
    requested_id: uuid.UUID | None
    first_seen_at: datetime
    last_seen_at: datetime
    updated_at: datetime
    traits: dict[str, Any]
    personal: dict[str, Any]
    identifiers: list[IdentifierView]


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    id: uuid.UUID
    message_id: str
    type: str
    event: str | None
    timestamp: datetime
    anonymous_id: str | None
    user_id: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TimelinePage:
    profile_id: uuid.UUID
    items: list[TimelineEvent]
    next_cursor: str | None
