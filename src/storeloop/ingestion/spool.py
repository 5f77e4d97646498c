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
import logging
import threading
import time
from pathlib import Path
from typing import cast

from sqlalchemy import Connection, Engine, Table
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
# The spool's checkpoints: every 100 ms on a thread of the API's (SpoolCheckpointer); the group
# commit's own connection checkpoints only past 16,384 WAL frames of 4 KiB (64 MB), a backstop
# should that thread stop or fall behind (checkpoint_rarely).
CHECKPOINT_SECONDS = 0.1
WRITER_CHECKPOINT_FRAMES = 16_384
_RETRY_SECONDS = 5.0

logger = logging.getLogger(__name__)


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


def checkpoint_rarely(connection: Connection, frames: int = WRITER_CHECKPOINT_FRAMES) -> None:
    """The group commit's connection to the spool: its commits checkpoint the WAL only past
    ``frames`` frames (SQLite's default is 1,000), leaving it to ``SpoolCheckpointer``."""
    connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint={int(frames)}")


class SpoolCheckpointer:
    """Copies the spool's WAL back into its file from a thread of its own, off the request path.

    By default SQLite checkpoints in the commit that takes the WAL past 1,000 pages: the group
    commit that happened to be that one copied the pages and fsynced the file before its
    requests were answered. At 50,000 events/s that was every half second, 10-13 ms instead of
    0.5 (docs/benchmarks.md, eighth session). This thread runs a PASSIVE checkpoint every
    ``interval`` seconds: it takes no write lock and waits for no one, so commits go on while
    it copies. A WAL starts over (is written again from its start) when a commit finds all of
    it copied back, which between two groups it usually is. Should it not be for long (commits
    landing during every checkpoint), or should this thread stop, the group commit's own
    connection checkpoints past ``WRITER_CHECKPOINT_FRAMES`` (``checkpoint_rarely``): right
    after its commit, with little left to copy, and the next commit starts the WAL over. Other
    connections (the worker's deletes) keep SQLite's default.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = CHECKPOINT_SECONDS,
        retry_seconds: float = _RETRY_SECONDS,
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._retry_seconds = retry_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            # An event of its own: a thread a timed-out stop left behind stays stopped.
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop,), name="storeloop-spool-checkpoint", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)

    def _run(self, stop: threading.Event) -> None:
        failing = False
        while not stop.is_set():
            try:
                with self._engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                ) as connection:
                    while not stop.wait(self._interval):
                        self.checkpoint(connection)
                        failing = False
            except Exception as exc:
                # Said once, not 10 times a second; a new connection is tried after a pause.
                # Meanwhile the group commit checkpoints past its backstop.
                if not failing:
                    logger.warning(
                        "the inbox spool could not be checkpointed: %s: %s",
                        type(exc).__name__,
                        exc,
                    )
                failing = True
                stop.wait(self._retry_seconds)

    @staticmethod
    def checkpoint(connection: Connection) -> tuple[int, int, int]:
        """One PASSIVE checkpoint; SQLite's answer: (busy, frames in the WAL, frames copied
        back). ``busy`` is 1 (and the counts -1) when another connection was checkpointing."""
        busy, frames, copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        return int(busy), int(frames), int(copied)
