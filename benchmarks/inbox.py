"""Watching the server's database from outside: inbox backlog, stored events, quarantine."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import Engine, text

from storeloop.db import create_db_engine
from storeloop.ingestion.spool import create_spool_engine


@dataclass(frozen=True, slots=True)
class Counts:
    inbox: int
    events: int
    quarantine: int


@dataclass(frozen=True, slots=True)
class Drain:
    drained: bool
    seconds: float
    remaining: int


class InboxWatcher:
    def __init__(self, database_url: str) -> None:
        self.engine: Engine = create_db_engine(database_url)
        # On SQLite, accepted bodies wait in the spool file (storeloop.ingestion.spool).
        self.spool: Engine | None = create_spool_engine(database_url)

    def counts(self) -> Counts:
        with self.engine.connect() as connection:
            events, quarantine = (
                int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in ("events", "quarantine")
            )
        return Counts(self.inbox(), events, quarantine)

    def inbox(self) -> int:
        total = 0
        for engine in (self.engine, self.spool):
            if engine is not None:
                with engine.connect() as connection:
                    total += int(
                        connection.execute(text("SELECT count(*) FROM inbox")).scalar_one()
                    )
        return total

    def wait_drained(self, timeout_s: float, poll_s: float = 0.25) -> Drain:
        """Poll until the inbox is empty; how long it took, or what was left at the timeout."""
        start = time.monotonic()
        remaining = self.inbox()
        while remaining and time.monotonic() - start < timeout_s:
            time.sleep(poll_s)
            remaining = self.inbox()
        return Drain(remaining == 0, round(time.monotonic() - start, 3), remaining)

    def close(self) -> None:
        self.engine.dispose()
        if self.spool is not None:
            self.spool.dispose()
