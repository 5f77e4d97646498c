"""Keyset pagination: pages of rows ordered newest first by (time, id), the opaque cursor that
names the last row of a page, and the page-size check."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from storeloop.kit.errors import ValidationFailed
from storeloop.kit.timeutil import as_utc


def older_than(
    time_column: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[Any],
    cursor: tuple[datetime, uuid.UUID],
) -> ColumnElement[bool]:
    """Rows after ``cursor`` in (time desc, id desc) order; ties on time are broken by id."""
    moment, row_id = cursor
    return or_(time_column < moment, and_(time_column == moment, id_column < row_id))


# -- cursors ----------------------------------------------------------------------------------

MAX_PAGE_SIZE = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def check_limit(limit: int, *, maximum: int = MAX_PAGE_SIZE) -> None:
    """A page holds 1 to ``maximum`` rows."""
    if not 1 <= limit <= maximum:
        raise ValidationFailed(f"limit must be between 1 and {maximum}", field="limit")


def encode_cursor(moment: datetime, row_id: uuid.UUID) -> str:
    """The opaque ``next_cursor`` of a page whose last row is (moment, row_id)."""
    micros = (as_utc(moment) - _EPOCH) // timedelta(microseconds=1)
    return base64.urlsafe_b64encode(orjson.dumps([micros, str(row_id)])).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The (moment, row_id) an ``encode_cursor`` string stands for; None for the first page.

    Anything else is the caller's mistake: a 422 on the ``cursor`` field, never a 500.
    """
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        micros, row_id = orjson.loads(raw)
        return _EPOCH + timedelta(microseconds=int(micros)), uuid.UUID(row_id)
    except (OverflowError, ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise ValidationFailed("not a valid cursor", field="cursor") from None
