"""The raw storage limit on this machine: the same batches inserted by plain executemany.

Two shapes, both durable (SQLite WAL + synchronous=FULL, PostgreSQL with synchronous_commit on):
one row per event into a table with a unique index on messageId (what the event store pays), and
one row per 100-event body (what the inbox pays before a 2xx). Nothing else: no HTTP, no
validation, no encryption. Rows are built before the clock starts, except a per-pass prefix that
keeps message ids unique.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import psycopg


@dataclass(frozen=True, slots=True)
class RawResult:
    shape: str
    rows: int
    events: int
    seconds: float
    rows_per_commit: int
    events_per_s: float
    megabytes_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


EventRow = tuple[str, str, str, bytes]


def event_rows(bodies: Sequence[bytes]) -> list[EventRow]:
    rows = []
    for body in bodies:
        for event in orjson.loads(body)["batch"]:
            rows.append(
                (event["messageId"], event["type"], event["timestamp"], orjson.dumps(event))
            )
    return rows


def _timed(
    insert: Callable[[int], tuple[int, int, int]], seconds: float
) -> tuple[int, int, int, float]:
    """Call ``insert(pass_number)`` until ``seconds`` have passed; totals rows, events, bytes."""
    rows = events = size = 0
    start = time.perf_counter()
    number = 0
    while time.perf_counter() - start < seconds:
        pass_rows, pass_events, pass_bytes = insert(number)
        rows, events, size = rows + pass_rows, events + pass_events, size + pass_bytes
        number += 1
    return rows, events, size, time.perf_counter() - start


def _result(shape: str, totals: tuple[int, int, int, float], per_commit: int) -> RawResult:
    rows, events, size, elapsed = totals
    return RawResult(
        shape=shape,
        rows=rows,
        events=events,
        seconds=round(elapsed, 3),
        rows_per_commit=per_commit,
        events_per_s=round(events / elapsed, 1),
        megabytes_per_s=round(size / elapsed / 1e6, 1),
    )


def _sqlite(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    return connection


def sqlite_event_rows(
    path: Path, bodies: Sequence[bytes], seconds: float, per_commit: int
) -> RawResult:
    """One row per event, unique index on message_id, one commit per ``per_commit`` rows."""
    rows = event_rows(bodies)
    connection = _sqlite(path)
    connection.execute(
        "CREATE TABLE raw_events (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE,"
        " type TEXT NOT NULL, timestamp TEXT NOT NULL, payload BLOB NOT NULL)"
    )
    size = sum(len(row[3]) for row in rows)

    def insert(number: int) -> tuple[int, int, int]:
        prefix = f"{number}:"
        for start in range(0, len(rows), per_commit):
            chunk = rows[start : start + per_commit]
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO raw_events (message_id, type, timestamp, payload) VALUES (?, ?, ?, ?)",
                [(prefix + mid, kind, ts, payload) for mid, kind, ts, payload in chunk],
            )
            connection.execute("COMMIT")
        return len(rows), len(rows), size

    try:
        return _result("sqlite, one row per event", _timed(insert, seconds), per_commit)
    finally:
        connection.close()


def sqlite_body_rows(
    path: Path, bodies: Sequence[bytes], seconds: float, per_commit: int, batch_size: int
) -> RawResult:
    """One row per request body (the inbox's shape), one commit per ``per_commit`` bodies."""
    connection = _sqlite(path)
    connection.execute("CREATE TABLE raw_inbox (id BLOB PRIMARY KEY, body BLOB NOT NULL)")
    size = sum(len(body) for body in bodies)

    def insert(_number: int) -> tuple[int, int, int]:
        for start in range(0, len(bodies), per_commit):
            chunk = bodies[start : start + per_commit]
            connection.execute("BEGIN")
            connection.executemany(
                "INSERT INTO raw_inbox (id, body) VALUES (?, ?)",
                [(uuid.uuid4().bytes, body) for body in chunk],
            )
            connection.execute("COMMIT")
        return len(bodies), len(bodies) * batch_size, size

    try:
        return _result("sqlite, one row per 100-event body", _timed(insert, seconds), per_commit)
    finally:
        connection.close()


def postgres_body_rows(
    url: str, bodies: Sequence[bytes], seconds: float, per_commit: int, batch_size: int
) -> RawResult:
    """The inbox's shape on PostgreSQL, one connection, one commit per ``per_commit`` bodies."""
    size = sum(len(body) for body in bodies)
    with psycopg.connect(url) as connection:
        connection.execute("CREATE TABLE raw_inbox (id uuid PRIMARY KEY, body bytea NOT NULL)")
        connection.commit()

        def insert(_number: int) -> tuple[int, int, int]:
            for start in range(0, len(bodies), per_commit):
                chunk = bodies[start : start + per_commit]
                with connection.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO raw_inbox (id, body) VALUES (%s, %s)",
                        [(uuid.uuid4(), body) for body in chunk],
                    )
                connection.commit()
            return len(bodies), len(bodies) * batch_size, size

        totals = _timed(insert, seconds)
    return _result("postgresql, one row per 100-event body", totals, per_commit)


def postgres_event_rows(
    url: str, bodies: Sequence[bytes], seconds: float, per_commit: int
) -> RawResult:
    """One row per event with a unique index on message_id, on PostgreSQL, one connection."""
    rows = event_rows(bodies)
    size = sum(len(row[3]) for row in rows)
    with psycopg.connect(url) as connection:
        connection.execute(
            "CREATE TABLE raw_events (id bigserial PRIMARY KEY, message_id text NOT NULL UNIQUE,"
            " type text NOT NULL, timestamp text NOT NULL, payload bytea NOT NULL)"
        )
        connection.commit()

        def insert(number: int) -> tuple[int, int, int]:
            prefix = f"{number}:"
            for start in range(0, len(rows), per_commit):
                chunk = rows[start : start + per_commit]
                with connection.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO raw_events (message_id, type, timestamp, payload)"
                        " VALUES (%s, %s, %s, %s)",
                        [(prefix + mid, kind, ts, payload) for mid, kind, ts, payload in chunk],
                    )
                connection.commit()
            return len(rows), len(rows), size

        totals = _timed(insert, seconds)
    return _result("postgresql, one row per event", totals, per_commit)
