"""Engines and sessions. One engine per database URL; SQLite runs in WAL mode.

Requests and jobs commit once, at their edge (``session_scope``); services only flush.
"""

from __future__ import annotations

import functools
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
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


def _configure_growing_sqlite(dbapi_connection: Any, _record: Any) -> None:
    """For a file that grows with the store (not the inbox spool, which stays small)."""
    assert isinstance(dbapi_connection, sqlite3.Connection)
    cursor = dbapi_connection.cursor()
    # A larger page cache (the default is 2 MB; this is the most a connection takes, as pages
    # are read) and fewer, larger checkpoints (the default is every 1,000 pages): the
    # processor's inserts touch index pages all over a growing file, and a page changed many
    # times between two checkpoints is copied back once. The WAL file is cut back to
    # SQLITE_WAL_LIMIT_BYTES after a checkpoint instead of keeping its largest size.
    cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_CHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT_BYTES}")
    cursor.close()


SQLITE_CACHE_KIB = 16_384
SQLITE_CHECKPOINT_PAGES = 10_000
SQLITE_WAL_LIMIT_BYTES = 64 * 1024 * 1024
# A pooled SQLite connection is replaced after an hour: it reads the planner statistics
# (SqliteStatistics) when it opens, so a process that does not run the job picks them up too.
SQLITE_POOL_RECYCLE_SECONDS = 3600


def create_db_engine(
    url: str, *, growing: bool = True, application_name: str | None = None, **kwargs: Any
) -> Engine:
    """The engine of a database URL; ``growing=False`` for a SQLite file that stays small.
    ``application_name``: how PostgreSQL shows the sessions, unless the URL names them."""
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
            pool_recycle=SQLITE_POOL_RECYCLE_SECONDS,
            **kwargs,
        )
        event.listen(engine, "connect", _configure_sqlite)
        if growing:
            event.listen(engine, "connect", _configure_growing_sqlite)
        return engine
    if application_name and "application_name" not in parsed.query:
        parsed = parsed.update_query_dict({"application_name": application_name})
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


@functools.lru_cache(maxsize=64)
def multi_row_insert(
    table: str, columns: tuple[str, ...], rows: int, placeholders: tuple[str, ...] | None = None
) -> str:
    """``INSERT INTO table (columns) VALUES (...), (...)`` for ``rows`` rows: many rows in one
    statement, sent to the driver as it is (``placeholders``: one per column, SQLite's ``?`` by
    default). Hot writers use it where a Core executemany would cost a statement step, and a
    release of the interpreter lock, per row."""
    row = f"({', '.join(placeholders or ('?',) * len(columns))})"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}"


def sqlite_uuid(value: Any) -> Any:
    """A UUID as SQLAlchemy stores it in SQLite (32 hex digits), for statements sent as is."""
    return value.hex if isinstance(value, uuid.UUID) else value


def sqlite_datetime(value: Any) -> Any:
    """A time in UTC, as SQLAlchemy stores a UTC time in SQLite ("YYYY-MM-DD HH:MM:SS.ffffff").
    (SQLAlchemy writes any time as given; storeloop keeps UTC, so other times are converted
    first, and a naive time is taken as local time.)"""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


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


class SqliteStatistics:
    """A worker job keeping SQLite's query-planner statistics (``ANALYZE``) fresh.

    Without statistics SQLite takes ``workspace_id = ?`` for a selective condition (about ten
    rows per value): given the primary key for a list of ids and an index that starts with the
    workspace, it read the whole workspace through the latter, at a cost that grew with the
    store (deleting an order's credits, finding orders and profiles by id). ``analysis_limit``
    samples each index, so a run takes milliseconds. It runs ``first_after`` seconds after the
    worker starts, then at doubling intervals up to ``max_interval``, whether the run succeeded
    or not (a failure is the runner's to log). A connection reads the statistics when it opens:
    this process's pool is renewed after each run, and the other processes' connections are
    replaced within SQLITE_POOL_RECYCLE_SECONDS. PostgreSQL keeps its statistics itself
    (autovacuum): there the job does nothing.
    """

    __name__ = "sqlite_statistics"

    def __init__(
        self,
        engine: Engine,
        *,
        first_after: float = 30.0,
        max_interval: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.max_interval = max_interval
        self.clock = clock
        self._interval = first_after
        self._due = clock() + first_after

    def __call__(self) -> int:
        """Runs ANALYZE when due; returns 0 (no queued work was done)."""
        if self.engine.dialect.name != "sqlite" or self.clock() < self._due:
            return 0
        self._interval = min(self._interval * 2, self.max_interval)
        self._due = self.clock() + self._interval
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA analysis_limit=1000")
            connection.exec_driver_sql("ANALYZE")
            connection.commit()
        self.engine.dispose()
        return 0
