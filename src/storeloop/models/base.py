"""Declarative base, shared column types and naming conventions for constraints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, LargeBinary, MetaData, Numeric, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonDocument = JSON().with_variant(JSONB(), "postgresql")
# A JSON value that may be absent: None is SQL NULL, not the JSON text null.
OptionalJson = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
UtcDateTime = DateTime(timezone=True)
Blob = LargeBinary()
BigId = BigInteger().with_variant(Integer(), "sqlite")
# Money amounts: 4 decimal places. SQLite stores them as REAL; storeloop.kit.money bounds
# accepted amounts so that they round-trip exactly there too.
MoneyColumn = Numeric(18, 4)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UtcDateTime,
        uuid.UUID: Uuid(),
        dict[str, Any]: JsonDocument,
        list[str]: JsonDocument,
        list[dict[str, Any]]: JsonDocument,
        bytes: Blob,
    }


def id_column() -> Mapped[uuid.UUID]:
    return mapped_column(primary_key=True, default=new_id)


def created_at_column() -> Mapped[datetime]:
    return mapped_column(default=utcnow)
