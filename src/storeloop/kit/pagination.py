"""Keyset pagination: pages of rows ordered newest first by (time, id)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute


def older_than(
    time_column: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[Any],
    cursor: tuple[datetime, uuid.UUID],
) -> ColumnElement[bool]:
    """Rows after ``cursor`` in (time desc, id desc) order; ties on time are broken by id."""
    moment, row_id = cursor
    return or_(time_column < moment, and_(time_column == moment, id_column < row_id))
