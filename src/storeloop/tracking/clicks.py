"""Clicks on tracked links, written in batches off the request path.

The redirect appends a row to an in-memory queue and answers at once; a thread inserts what has
gathered every ``flush_ms`` (sooner when ``flush_max`` rows wait) with one multi-row insert and
one commit. ``stop()`` writes everything still queued, so a clean shutdown loses no click; a crash
can lose the clicks of the last interval, because the redirect never waits for the disk.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.exc import DataError, IntegrityError

from storeloop.models import Click

logger = logging.getLogger(__name__)

# Rows per INSERT statement (and per transaction) when a large backlog is written.
_CHUNK = 2000
_COLUMNS = (
    "id",
    "workspace_id",
    "link_id",
    "clicked_at",
    "ip_truncated",
    "user_agent",
    "referrer",
    "anonymous_id",
    "is_bot",
    "bot_reason",
)
# SQLite runs in the API process, so the writer's CPU is the redirect's CPU: there the rows go
# to the driver already in SQLAlchemy's SQLite storage format (UUID hex, "YYYY-MM-DD HH:MM:SS.f"),
# skipping per-value bind processing (measured: about half the cost of a Core executemany).
_SQLITE_INSERT = (
    f"INSERT INTO {Click.__tablename__} ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)


def _hex(value: Any) -> Any:
    return value.hex if isinstance(value, uuid.UUID) else value


def _text_time(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _sqlite_values(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        _hex(row["id"]),
        _hex(row["workspace_id"]),
        _hex(row["link_id"]),
        _text_time(row["clicked_at"]),
        row["ip_truncated"],
        row["user_agent"],
        row["referrer"],
        row["anonymous_id"],
        1 if row["is_bot"] else 0,
        row["bot_reason"],
    )


class ClickWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        flush_ms: float = 200.0,
        flush_max: int = 256,
        max_pending: int = 200_000,
    ) -> None:
        """``max_pending`` bounds memory while the database is unreachable: beyond it the oldest
        waiting clicks are dropped (and counted in the log)."""
        self._engine = engine
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._interval = flush_ms / 1000.0
        self._flush_max = flush_max
        self._max_pending = max_pending
        # deque.append and popleft are atomic: the event loop appends, the writer thread pops.
        self._pending: deque[dict[str, Any]] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # Serialises flushes of the thread, stop() and flush() callers.
        self._flush_lock = threading.Lock()
        self.clicks_written = 0
        self.batches_written = 0
        self.clicks_dropped = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, row: dict[str, Any]) -> None:
        """Queue one click row (the columns of ``clicks``); never blocks."""
        self._pending.append(row)
        if len(self._pending) >= self._flush_max:
            self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name="storeloop-click-writer", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write every queued click, then stop the thread."""
        thread = self._thread
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join(timeout)
            self._thread = None
        # Whatever arrived while the thread was finishing (or with no thread at all).
        self.flush()
        if self._pending:
            logger.error("%d clicks could not be written before shutdown", len(self._pending))

    def flush(self) -> int:
        """Write what is queued now; returns how many clicks were written."""
        with self._flush_lock:
            before = self.clicks_written
            while self._pending:
                unwritten = self._write(self._take(_CHUNK))
                if unwritten:
                    self._put_back(unwritten)
                    break
            return self.clicks_written - before

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self._interval)
            self._wake.clear()
            self.flush()
        self.flush()

    def _take(self, limit: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        pending = self._pending
        while pending and len(rows) < limit:
            rows.append(pending.popleft())
        return rows

    def _write(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert ``rows`` in one statement and commit; returns the rows left unwritten because
        the database could not take them now (they are retried). A row the database refuses
        for its content is dropped on its own (found by halving the batch), so one bad row
        never blocks the others."""
        try:
            with self._engine.begin() as connection:
                if self._is_sqlite:
                    values = [_sqlite_values(row) for row in rows]
                    connection.exec_driver_sql(_SQLITE_INSERT, values)
                else:
                    connection.execute(insert(Click), rows)
        except (IntegrityError, DataError) as exc:
            if len(rows) == 1:
                # The row may hold a user agent and a referrer: name the error, never the values.
                logger.error("dropped a click the database refused: %s", type(exc).__name__)
                self.clicks_dropped += 1
                return []
            middle = len(rows) // 2
            left = self._write(rows[:middle])
            return left + rows[middle:] if left else self._write(rows[middle:])
        except Exception as exc:
            logger.error("writing %d clicks failed: %s", len(rows), type(exc).__name__)
            return rows
        self.clicks_written += len(rows)
        self.batches_written += 1
        return []

    def _put_back(self, rows: list[dict[str, Any]]) -> None:
        """Keep failed rows for the next attempt, oldest first, within ``max_pending``."""
        self._pending.extendleft(reversed(rows))
        overflow = len(self._pending) - self._max_pending
        if overflow > 0:
            for _ in range(overflow):
                self._pending.popleft()
            logger.error("click queue full: dropped the %d oldest unwritten clicks", overflow)
