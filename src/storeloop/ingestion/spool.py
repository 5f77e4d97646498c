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

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Iterator
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
# SpoolCheckpointer: how often it copies the spool's WAL back into the file, and past how many
# WAL frames (pages of 4 KiB) it also makes the next commit start the WAL over.
CHECKPOINT_SECONDS = 0.1
RESTART_ABOVE_FRAMES = 4096

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


def no_autocheckpoint(connection: Connection) -> None:
    """The group commit's connection to the spool: its commits never checkpoint the WAL
    (``SpoolCheckpointer`` does, on a thread of its own)."""
    connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")


class SpoolCheckpointer:
    """Copies the spool's WAL back into its file from a thread of its own, off the request path.

    By default SQLite checkpoints in the commit that takes the WAL past 1,000 pages: the
    group commit that happened to be that one copied the pages and fsynced the file before its
    requests were answered. At 50,000 events/s that was every half second, 10-13 ms instead of
    0.5 (docs/benchmarks.md, eighth session). The group commit's connection does not checkpoint
    (``no_autocheckpoint``); this thread runs a PASSIVE checkpoint every ``interval`` seconds,
    which neither takes the write lock nor waits for anyone. Commits go on meanwhile.

    A WAL starts over (writes from its beginning, in place) only when a commit finds every frame
    of it copied back; under a steady load, commits land while a checkpoint runs, and the file
    could grow. Past ``restart_above_frames`` frames, the checkpoint is a RESTART: it waits for
    no commit and no reader (or gives up at once: it then copied what it could, and the next
    one tries again), copies the few frames the PASSIVE one left, and the next commit starts
    the WAL over. Other connections (the worker's deletes) keep SQLite's
    default and may checkpoint too; checkpoints do not block each other's writers.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        interval: float = CHECKPOINT_SECONDS,
        restart_above_frames: int = RESTART_ABOVE_FRAMES,
    ) -> None:
        self._engine = engine
        self._interval = interval
        self._restart_above_frames = restart_above_frames
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._run, name="storeloop-spool-checkpoint", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """The checkpoints' connection. A RESTART that finds a commit or a reader in its way
        gives up at once (having copied what it could, as a PASSIVE one) rather than holding
        the write lock while it waits; the next one tries again."""
        with self._engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("PRAGMA busy_timeout=0")
            try:
                yield connection
            finally:
                connection.invalidate()  # not back to the pool with that busy timeout

    def _run(self) -> None:
        with self.connection() as connection:
            self._loop(connection)

    def _loop(self, connection: Connection) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.checkpoint(connection)
            except Exception as exc:
                # Commits go on without checkpoints (the WAL grows): said once, not 10 times a
                # second.
                if not self._failing:
                    logger.warning("the inbox spool could not be checkpointed: %s", exc)
                self._failing = True
            else:
                self._failing = False

    def checkpoint(self, connection: Connection) -> tuple[int, int, int]:
        """One checkpoint on ``connection()``; SQLite's answer: (busy, frames in the WAL, frames
        copied back). ``busy`` is 1 when a RESTART gave up."""
        busy, frames, copied = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        if frames > self._restart_above_frames:
            busy, frames, copied = connection.exec_driver_sql(
                "PRAGMA wal_checkpoint(RESTART)"
            ).one()
        return int(busy), int(frames), int(copied)
