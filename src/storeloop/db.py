"""Engines and sessions. One engine per database URL; SQLite runs in WAL mode.

Requests and jobs commit once, at their edge (``session_scope``); services only flush.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
    assert isinstance(dbapi_connection, sqlite3.Connection)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # FULL fsyncs the WAL at every commit: an acknowledged write survives a power cut, not only a
    # killed process. Commits are grouped (ingestion.writer), so the fsync is paid once per group.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    # SQL errors are logged; their bound parameters can hold ids and traits, so keep them out.
    kwargs.setdefault("hide_parameters", True)
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=8,
            max_overflow=8,
            **kwargs,
        )
        event.listen(engine, "connect", _configure_sqlite)
        return engine
    return create_engine(parsed, pool_size=10, max_overflow=10, pool_pre_ping=True, **kwargs)


def begin_write(session: Session) -> None:
    """On SQLite, take the write lock now (BEGIN IMMEDIATE), waiting up to the busy timeout.

    A background job that reads, then writes, inside one transaction (a claim followed by
    inserts, or a SAVEPOINT followed by a query) must not start it deferred: in WAL mode, a
    deferred transaction whose snapshot another writer has moved past fails at its first write
    with "database is locked", without waiting. PostgreSQL needs nothing here.
    """
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    dbapi_connection = connection.connection.dbapi_connection
    assert isinstance(dbapi_connection, sqlite3.Connection)
    if not dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def dialect_insert(dialect_name: str, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT with the dialect's ON CONFLICT clauses (both speak the same two)."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """The one commit of a request or a job; rolled back if anything raises."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
