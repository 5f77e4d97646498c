"""On SQLite, accepted request bodies wait in a database file of their own (ADR 0011).

SQLite has one write lock per database file. With the inbox in the main file, every group commit
of the tracking API waited for whatever transaction the worker held (identity resolution, events,
orders, rollups), behind SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25 ms... between
tries: measured at p99 250-540 ms per request and half the throughput of the API alone. With the
inbox in ``<name>-inbox.db`` beside the database, the API's commits only ever meet the worker's
short deletes of processed entries.

The spool holds one table, the same ``inbox`` table (and model) as the main database, created
here rather than by the migrations: it is a queue whose rows live for seconds, and a schema
change to it must ship with a new ``SPOOL_VERSION`` and its step in ``_ADDED_COLUMNS`` (a spool
newer than this code is refused until drained by the version that wrote it). PostgreSQL needs
none of this (row locks), and neither does an in-memory database; the main database's ``inbox``
table stays in use there, and on SQLite for quarantine replays (which must commit with the
quarantine item's status) and entries from before the spool.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import cast

from sqlalchemy import Engine, Table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import CreateIndex, CreateTable

from storeloop.db import create_db_engine
from storeloop.kit.errors import StoreloopError
from storeloop.models import InboxEntry

SPOOL_VERSION = 2
# Columns added since version 1, each with the statement that adds it to an older spool.
_ADDED_COLUMNS = (
    ("refused", "ALTER TABLE inbox ADD COLUMN refused JSON"),  # version 2 (ADR 0014)
)
INBOX_TABLE = cast(Table, InboxEntry.__table__)
_CREATE_ATTEMPTS = 20


class SpoolVersionMismatch(StoreloopError):
    code = "inbox_spool_version"


def spool_path(database_url: str) -> Path | None:
    """Where the spool of a SQLite database file lives; None when the database needs none."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    database = Path(url.database)
    return database.with_name(f"{database.stem}-inbox{database.suffix or '.db'}")


def create_spool_engine(database_url: str) -> Engine | None:
    """The spool's engine (its schema created on first use), or None where the main database's
    inbox table is used."""
    path = spool_path(database_url)
    if path is None:
        return None
    engine = create_db_engine(f"sqlite:///{path}", growing=False)
    # The API and a worker may open a new spool at the same moment; switching a new file to WAL
    # fails at once ("database is locked") rather than waiting, so the loser tries again.
    for attempt in itertools.count(1):
        try:
            _prepare(engine, path)
            return engine
        except Exception as exc:
            engine.dispose()
            locked = isinstance(exc, OperationalError) and "locked" in str(exc)
            if not locked or attempt >= _CREATE_ATTEMPTS:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


def _prepare(engine: Engine, path: Path) -> None:
    with engine.begin() as connection:
        # The write lock first, waiting for whoever prepares the spool at the same moment (the
        # API and a worker after an upgrade): the check and the steps are one transaction,
        # and the second process finds the spool ready.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        version = connection.exec_driver_sql("PRAGMA user_version").scalar_one()
        if version > SPOOL_VERSION:
            raise SpoolVersionMismatch(
                f"the inbox spool {path} has version {version}, this storeloop writes "
                f"{SPOOL_VERSION}: let the newer version's worker drain it, then remove it"
            )
        connection.execute(CreateTable(INBOX_TABLE, if_not_exists=True))
        # By what the table has, not by its version: a spool an older version left half-made
        # (a crash before its version was written) is completed all the same.
        present = {row[1] for row in connection.exec_driver_sql("PRAGMA table_info(inbox)")}
        for column, statement in _ADDED_COLUMNS:
            if column not in present:
                connection.exec_driver_sql(statement)
        for index in INBOX_TABLE.indexes:
            connection.execute(CreateIndex(index, if_not_exists=True))
        connection.exec_driver_sql(f"PRAGMA user_version = {SPOOL_VERSION}")
