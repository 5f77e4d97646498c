"""Clicks on tracked links, written in batches off the request path.

The redirect appends a row to an in-memory queue and answers at once; a thread inserts what has
gathered every ``flush_ms`` (sooner when ``flush_max`` rows wait) with one multi-row insert and
one commit. ``stop()`` writes everything still queued, so a clean shutdown loses no click; a crash
can lose the clicks of the last interval, because the redirect never waits for the disk (ADR 0010).
The thread also applies the user agent bot rules and reduces the user agent and referrer to what
is kept (tracking.privacy), work the redirect's response does not wait for.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError

from storeloop.tracking.bots import NOT_NAVIGATION, user_agent_verdict
from storeloop.tracking.privacy import reduce_referrer, reduce_user_agent
from storeloop.tracking.repository import insert_clicks

logger = logging.getLogger(__name__)

# Rows per INSERT statement (and per transaction) when a large backlog is written.
_CHUNK = 2000


class _PreparedRow(dict[str, Any]):
    """A row already passed through prepare() (a retried row must not be reduced twice)."""


def prepare(row: dict[str, Any]) -> dict[str, Any]:
    """The row as stored: the user agent's bot verdict applied (it outranks velocity), then the
    user agent and referrer reduced."""
    user_agent = row["user_agent"]
    if row["bot_reason"] != NOT_NAVIGATION:
        verdict = user_agent_verdict(user_agent)
        if verdict is not None:
            row["bot_reason"] = verdict
    row["is_bot"] = row["bot_reason"] is not None
    row["user_agent"] = reduce_user_agent(user_agent)
    row["referrer"] = reduce_referrer(row["referrer"])
    return row


class ClickWriter:
    def __init__(
        self,
        engine: Engine,
        *,
        flush_ms: float = 200.0,
        flush_max: int = 256,
        max_pending: int = 200_000,
        lock_timeout_s: float = 10.0,
    ) -> None:
        """``max_pending`` bounds memory while the database is unreachable or slower than the
        clicks: beyond it new clicks are dropped, counted, and the count logged (once per
        flush, never per click)."""
        self._engine = engine
        self._interval = flush_ms / 1000.0
        self._flush_max = flush_max
        self._max_pending = max_pending
        self._lock_timeout = lock_timeout_s
        self._dropped_unlogged = 0
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

    @property
    def dropped(self) -> int:
        return self.clicks_dropped

    @property
    def is_alive(self) -> bool:
        """True while the writer thread runs (False before start() and after it died)."""
        return self._thread is not None and self._thread.is_alive()

    def record(self, row: dict[str, Any]) -> None:
        """Queue one click row (the columns of ``clicks``, ``user_agent`` and ``referrer`` as
        received); never blocks. A full queue drops the click."""
        if len(self._pending) >= self._max_pending:
            self.clicks_dropped += 1
            self._dropped_unlogged += 1
            self._wake.set()
            return
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
        """Write what is queued now; returns how many clicks were written (0 when another
        flush held the lock past ``lock_timeout_s``: a hung database never hangs shutdown)."""
        if not self._flush_lock.acquire(timeout=self._lock_timeout):
            logger.error("click flush skipped: another flush did not finish in time")
            return 0
        try:
            self._log_dropped()
            before = self.clicks_written
            while self._pending:
                unwritten = self._write(self._take(_CHUNK))
                if unwritten:
                    self._put_back(unwritten)
                    break
            return self.clicks_written - before
        finally:
            self._flush_lock.release()

    def _log_dropped(self) -> None:
        dropped, self._dropped_unlogged = self._dropped_unlogged, 0
        if dropped:
            logger.error("click queue full: dropped %d clicks", dropped)

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
            row = pending.popleft()
            # Retried rows were prepared already (their user agent is reduced).
            rows.append(row if isinstance(row, _PreparedRow) else _PreparedRow(prepare(row)))
        return rows

    def _write(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert ``rows`` in one statement and commit; returns the rows left unwritten because
        the database could not take them now (they are retried). A row the database refuses
        for its content is dropped on its own (found by halving the batch), so one bad row
        never blocks the others."""
        try:
            with self._engine.begin() as connection:
                insert_clicks(connection, rows)
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
