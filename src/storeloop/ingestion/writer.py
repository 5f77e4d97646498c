"""Group commit: many requests' inbox rows written in one transaction, then all acknowledged.

A request hands its rows to the writer thread and waits; the thread gathers whatever else arrives
within ``max_wait_ms`` (2 ms by default; with 0, the requests that arrive during one commit make
up the next group), commits once (one fsync), and only then resolves every waiting request. This
keeps "2xx means on disk" while paying for the disk once per group, not per event. The group's
bodies are one INSERT statement in autocommit: one transaction, in one step of the driver, so
the writer gives up the interpreter lock once per group (``_insert_inbox``).

Inbox rows go to ``inbox_engine`` (on SQLite, the spool file of ADR 0011, whose lock the worker
only takes to delete processed entries). A body with refused messages is an inbox row like any
other (processing quarantines them, ADR 0014), so the only quarantine rows a request writes are
those of a body that cannot be read at all (bad JSON, bad encoding), and they go to the main
database. There, on SQLite, they wait for the main file's write lock, which is the worker's for a
fraction of a second at a time; so they are committed by a second thread, and the request is
answered once they are (through the group commit's queue, which keeps the order of answers
simple). The writer's housekeeping writes the main file too, so it runs on that second thread as
well. If a group commit fails, every request of the group gets the error and its SDK retries.
With one database (PostgreSQL) a group's inbox and quarantine rows are one transaction.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import Connection, Engine, Table, insert
from sqlalchemy.exc import DBAPIError

from storeloop.db import dialect_insert, multi_row_insert, sqlite_datetime, sqlite_uuid
from storeloop.ingestion.spool import INBOX_TABLE
from storeloop.models import InboxEntry, QuarantinedEvent

logger = logging.getLogger(__name__)

QUARANTINE_TABLE = cast(Table, QuarantinedEvent.__table__)

_STOP = object()
_INBOX_COLUMNS = (
    "id",
    "workspace_id",
    "source",
    "received_at",
    "body_sealed",
    "attempts",
    "refused",
)
# PostgreSQL's driver is given the refused indexes as JSON text.
_POSTGRES_PLACEHOLDERS = ("%s",) * (len(_INBOX_COLUMNS) - 1) + ("%s::jsonb",)
assert set(_INBOX_COLUMNS) == set(INBOX_TABLE.columns.keys()), "an inbox column is not written"


@dataclass(slots=True)
class _Pending:
    inbox_rows: list[dict[str, Any]]
    quarantine_rows: list[dict[str, Any]]
    future: Future[None]
    # Set by the main file's thread (SQLite's spool) when the quarantine rows could not be kept.
    quarantine_error: Exception | None = None


class GroupCommitWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        inbox_engine: Engine | None = None,
        max_items: int = 256,
        max_wait_ms: float = 2.0,
        housekeeping: Callable[[Connection], object] | None = None,
        housekeeping_seconds: float = 30.0,
        on_connect: Callable[[Connection], object] | None = None,
    ) -> None:
        """``max_wait_ms``: how long to wait for more requests after the first of a group (0:
        commit at once; requests that arrive during a commit make up the next group).
        ``housekeeping`` runs on this thread every ``housekeeping_seconds`` (and at stop):
        small bookkeeping writes that belong off the request path. ``on_connect`` prepares the
        group commit's own connection to the inbox (``spool.checkpoint_rarely``)."""
        self._engine = engine
        self._inbox_engine = inbox_engine or engine
        # Two databases (SQLite's spool): what writes the main file has a thread of its own.
        self._split = self._inbox_engine is not engine
        self._main_queue: queue.Queue[Any] = queue.Queue()
        self._main_thread: threading.Thread | None = None
        self._housekeeping = housekeeping
        self._housekeeping_seconds = housekeeping_seconds
        self._last_housekeeping = time.monotonic()
        self._max_items = max_items
        self._max_wait = max_wait_ms / 1000.0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        # The group commit's own connection to the inbox, opened on first use (_insert_inbox).
        self._connection: Connection | None = None
        self._on_connect = on_connect
        self._accepting = False

    def start(self) -> None:
        self._accepting = True
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="storeloop-group-commit", daemon=True
            )
            self._thread.start()
        if self._split and self._main_thread is None:
            self._main_thread = threading.Thread(
                target=self._run_main, name="storeloop-quarantine-commit", daemon=True
            )
            self._main_thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit everything already submitted, then stop; later submissions fail at once."""
        thread = self._thread
        if thread is None:
            return
        self._accepting = False
        started = time.monotonic()
        main_thread = self._main_thread
        if main_thread is not None:
            # First: it hands the bodies it holds to the group commit.
            self._main_queue.put(_STOP)
            main_thread.join(timeout)
            if not main_thread.is_alive():
                self._main_thread = None
                for item in _pending(_take_all(self._main_queue)):
                    _resolve(item.future, RuntimeError("the ingestion writer has stopped"))
        self._queue.put(_STOP)
        thread.join(max(timeout - (time.monotonic() - started), 0.0))
        if not thread.is_alive():
            self._thread = None
            # Anything that slipped in after the final drain gets an answer rather than a hang.
            for item in _pending(_take_all(self._queue)):
                _resolve(item.future, RuntimeError("the ingestion writer has stopped"))

    def submit(
        self, inbox_rows: list[dict[str, Any]], quarantine_rows: list[dict[str, Any]]
    ) -> Future[None]:
        future: Future[None] = Future()
        if self._thread is None or not self._accepting:
            future.set_exception(RuntimeError("the ingestion writer is not running"))
            return future
        pending = _Pending(inbox_rows, quarantine_rows, future)
        (self._main_queue if self._split and quarantine_rows else self._queue).put(pending)
        return future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            if not self._split:
                self._maybe_housekeep()
            try:
                first = self._queue.get(timeout=self._housekeeping_seconds)
            except queue.Empty:
                continue
            if first is _STOP:
                break
            group: list[_Pending] = [first]
            deadline = time.monotonic() + self._max_wait
            while len(group) < self._max_items:
                remaining = deadline - time.monotonic()
                try:
                    item = (
                        self._queue.get(timeout=remaining)
                        if remaining > 0
                        else (self._queue.get_nowait())
                    )
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)
            self._commit(group)
        # Commit anything submitted before stop was called.
        leftovers = _pending(_take_all(self._queue))
        if leftovers:
            self._commit(leftovers)
        self._close_connection()
        if not self._split:
            self._maybe_housekeep(force=True)

    def _run_main(self) -> None:
        """The main file's thread (SQLite's spool): commits the quarantine rows of the requests
        that have some, then hands them to the group commit to be answered; and the
        housekeeping."""
        stopping = False
        while not stopping:
            self._maybe_housekeep()
            try:
                first = self._main_queue.get(timeout=self._housekeeping_seconds)
            except queue.Empty:
                continue
            group: list[_Pending] = []
            for item in [first, *_take_all(self._main_queue, self._max_items)]:
                if item is _STOP:
                    stopping = True
                else:
                    group.append(item)
            if stopping:
                group.extend(_pending(_take_all(self._main_queue)))
            if group:
                self._commit_quarantine(group)
        self._maybe_housekeep(force=True)

    def _commit_quarantine(self, group: list[_Pending]) -> None:
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert_quarantine(connection),
                    [row for pending in group for row in pending.quarantine_rows],
                )
        except Exception as exc:
            logger.error(
                "quarantine rows of %d requests could not be written: %s",
                len(group),
                type(exc).__name__,
            )
            for pending in group:
                pending.quarantine_error = exc
        for pending in group:
            self._queue.put(
                _Pending(pending.inbox_rows, [], pending.future, pending.quarantine_error)
            )

    def _maybe_housekeep(self, *, force: bool = False) -> None:
        if self._housekeeping is None:
            return
        now = time.monotonic()
        if not force and now - self._last_housekeeping < self._housekeeping_seconds:
            return
        self._last_housekeeping = now
        try:
            with self._engine.begin() as connection:
                self._housekeeping(connection)
        except Exception:
            logger.exception("writer housekeeping failed")

    def _commit(self, group: list[_Pending]) -> None:
        inbox_rows = [row for pending in group for row in pending.inbox_rows]
        # With SQLite's spool these were committed by the main file's thread already.
        quarantine_rows = [row for pending in group for row in pending.quarantine_rows]
        try:
            if quarantine_rows:
                with self._inbox_engine.begin() as connection:
                    if inbox_rows:
                        connection.execute(insert(InboxEntry), inbox_rows)
                    connection.execute(insert_quarantine(connection), quarantine_rows)
            elif inbox_rows:
                self._insert_inbox(inbox_rows)
        except Exception as exc:
            self._close_connection()
            self._fail(group, exc)
            return
        for pending in group:
            # A request whose rejected events could not be kept is answered with the error
            # (its SDK retries); the others are stored whole.
            _resolve(pending.future, pending.quarantine_error)

    def _insert_inbox(self, rows: list[dict[str, Any]]) -> None:
        """A group's bodies as one INSERT statement, committed on its own (autocommit).

        The connection is this thread's for its lifetime. One statement is one transaction on
        both databases: SQLite writes and fsyncs it in one step, PostgreSQL in one round trip.
        That is one release of the GIL (interpreter lock) for the whole commit, where BEGIN, an
        INSERT per body and COMMIT were as many: each time, the writer had to take the lock
        back from the busy event loop before its next step, and the group's requests waited.

        A connection the database dropped since the last group (PostgreSQL restarted) is
        replaced and the statement sent once more, as the pool's pre-ping would have done. The
        retry skips ids already stored: the connection may have dropped after the commit and
        before its answer, and the statement is all or nothing, so any id found means the
        whole group was stored.
        """
        try:
            self._execute_inbox(rows)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            logger.warning("the writer's database connection was lost; reconnecting")
            self._close_connection()
            self._execute_inbox(rows, skip_existing=True)

    def _execute_inbox(self, rows: list[dict[str, Any]], *, skip_existing: bool = False) -> None:
        connection = self._connection
        if connection is None:
            connection = self._inbox_engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            )
            self._connection = connection
            if self._on_connect is not None:
                self._on_connect(connection)
        sql, values = inbox_insert(connection.dialect.name, rows)
        if skip_existing:
            sql += " ON CONFLICT (id) DO NOTHING"
        connection.exec_driver_sql(sql, values)
        connection.commit()  # ends SQLAlchemy's logical transaction; nothing is left to send

    def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                # Closed for good, not handed back to the pool: ``on_connect`` made it this
                # writer's (and after an error it may be broken).
                connection.invalidate()
                connection.close()
            except Exception:
                logger.warning("the writer's connection could not be closed", exc_info=True)

    @staticmethod
    def _fail(group: list[_Pending], exc: Exception) -> None:
        logger.error("group commit of %d requests failed: %s", len(group), type(exc).__name__)
        for pending in group:
            _resolve(pending.future, exc)


def _take_all(source: queue.Queue[Any], limit: int | None = None) -> list[Any]:
    """What is waiting in ``source`` now (up to ``limit`` items), a stop marker included."""
    items: list[Any] = []
    while limit is None or len(items) < limit:
        try:
            items.append(source.get_nowait())
        except queue.Empty:
            break
    return items


def _pending(items: list[Any]) -> list[_Pending]:
    return [item for item in items if item is not _STOP]


def inbox_insert(dialect_name: str, rows: list[dict[str, Any]]) -> tuple[str, tuple[Any, ...]]:
    """One statement that inserts ``rows`` (inbox rows as the request builds them) and its
    values, sent to the driver as they are: Core's bind processing and statement building cost
    the writer about 0.5 ms of the interpreter lock for a group of 3 bodies, this 0.03 ms."""
    values: list[Any] = []
    if dialect_name == "sqlite":
        for row in rows:
            refused = row.get("refused")
            values += (
                sqlite_uuid(row["id"]),
                sqlite_uuid(row["workspace_id"]),
                row["source"],
                sqlite_datetime(row["received_at"]),
                row["body_sealed"],
                row.get("attempts", 0),
                None if refused is None else orjson.dumps(refused).decode(),
            )
        return multi_row_insert(INBOX_TABLE.name, _INBOX_COLUMNS, len(rows)), tuple(values)
    for row in rows:
        refused = row.get("refused")
        values += (
            row["id"],
            row["workspace_id"],
            row["source"],
            row["received_at"],
            row["body_sealed"],
            row.get("attempts", 0),
            None if refused is None else orjson.dumps(refused).decode(),
        )
    sql = multi_row_insert(INBOX_TABLE.name, _INBOX_COLUMNS, len(rows), _POSTGRES_PLACEHOLDERS)
    return sql, tuple(values)


def insert_quarantine(connection: Connection) -> Any:
    """Quarantine rows, skipping ids already there: a refused message's id is derived from its
    body (``service.rejection_id``), and the worker writes the same rows when it finds them
    missing (a quarantine commit that failed while the body's commit succeeded)."""
    return dialect_insert(connection.dialect.name, QUARANTINE_TABLE).on_conflict_do_nothing(
        index_elements=["id"]
    )


def _resolve(future: Future[None], error: BaseException | None) -> None:
    """Answer a waiting request. Its future may have been cancelled (the client went away, a
    timeout fired): that must never take the writer thread down with it."""
    if future.done():
        return
    try:
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
    except InvalidStateError:
        pass
