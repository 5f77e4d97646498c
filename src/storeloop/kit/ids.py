"""Time-ordered identifiers (UUIDv7): new rows land at the end of every unique index."""

from __future__ import annotations

import uuid

from uuid6 import uuid7 as _uuid7


def new_id() -> uuid.UUID:
    return uuid.UUID(int=_uuid7().int)
