"""The group-commit writer survives requests that go away, and never leaves one hanging."""

from __future__ import annotations

import gc
import sqlite3
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from storeloop import migrate
from storeloop.config import Settings
from storeloop.db import create_db_engine
from storeloop.ingestion.service import rejection_id
from storeloop.ingestion.spool import create_spool_engine
from storeloop.ingestion.writer import GroupCommitWriter
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.models import InboxEntry, QuarantinedEvent
from tests.conftest import BACKENDS, migrated_database


def _row(workspace_id: uuid.UUID) -> dict[str, object]:
    return {
        "id": new_id(),
        "workspace_id": workspace_id,
        "source": "batch",
        "received_at": utcnow(),
        "body_sealed": b"sealed",
        "attempts": 0,
    }


def _refusal(inbox_row: dict[str, object], detail: str) -> dict[str, object]:
    """The quarantine row of the inbox row's message 1, refused."""
    inbox_id = inbox_row["id"]
    assert isinstance(inbox_id, uuid.UUID)
    return {
        "id": rejection_id(inbox_id, 1),
        "workspace_id": inbox_row["workspace_id"],
        "source": "batch",
        "received_at": inbox_row["received_at"],
        "batch_index": 1,
        "message_id": "m-1",
        "reason": "missing_field",
        "field": "batch[1].properties.order_id",
        "detail": detail,
        "payload_sealed": b"sealed",
        "status": "open",
    }


def test_a_cancelled_request_does_not_stop_the_writer(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate.upgrade(engine)
    writer = GroupCommitWriter(engine, max_wait_ms=50)
    writer.start()
    workspace_id = new_id()
    try:
        first = writer.submit([_row(workspace_id)], [])
        second = writer.submit([_row(workspace_id)], [])
        first.cancel()
        assert second.result(timeout=10) is None
        third = writer.submit([_row(workspace_id)], [])
        assert third.result(timeout=10) is None
    finally:
        writer.stop()
    late: Future[None] = writer.submit([_row(workspace_id)], [])
    with pytest.raises(RuntimeError, match="not running"):
        late.result(timeout=1)
    with engine.connect() as connection:
        stored = connection.scalar(select(func.count()).select_from(InboxEntry))
    # The cancelled request's rows are committed too (its client may retry: events deduplicate).
    assert stored == 3
    engine.dispose()


def test_a_failed_quarantine_commit_fails_only_the_requests_it_concerns(tmp_path: Path) -> None:
    """With SQLite's spool (ADR 0011) the quarantine is a second commit: when it fails, the
    requests without rejected events are still answered with success (their bodies are stored),
    and only the others get the error (their SDKs retry)."""
    spool = create_spool_engine(f"sqlite:///{tmp_path / 'w.db'}")
    assert spool is not None
    broken_main = create_db_engine(f"sqlite:///{tmp_path / 'unmigrated.db'}")  # no tables
    writer = GroupCommitWriter(broken_main, inbox_engine=spool, max_wait_ms=50)
    writer.start()
    workspace_id = new_id()
    quarantine_row = {"id": new_id(), "workspace_id": workspace_id, "source": "batch"}
    try:
        clean = writer.submit([_row(workspace_id)], [])
        rejected = writer.submit([_row(workspace_id)], [quarantine_row])
        assert clean.result(timeout=10) is None
        with pytest.raises(OperationalError):
            rejected.result(timeout=10)
    finally:
        writer.stop()
    with spool.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(InboxEntry)) == 2
    spool.dispose()
    broken_main.dispose()


def test_a_quarantine_row_already_written_by_the_worker_is_not_an_error(tmp_path: Path) -> None:
    """On SQLite the worker can read a body from the spool, and quarantine what it refuses under
    the derived id, before the writer's second commit: the writer then adds nothing, and the
    request is answered with success."""
    database = f"sqlite:///{tmp_path / 'w.db'}"
    engine = create_db_engine(database)
    migrate.upgrade(engine)
    spool = create_spool_engine(database)
    assert spool is not None
    workspace_id = new_id()
    inbox_row = _row(workspace_id)
    quarantine_row = _refusal(inbox_row, "worker's row")
    with engine.begin() as connection:
        connection.execute(insert(QuarantinedEvent), [quarantine_row])
    writer = GroupCommitWriter(engine, inbox_engine=spool, max_wait_ms=5)
    writer.start()
    try:
        request_row = {**quarantine_row, "detail": "request's row"}
        assert writer.submit([inbox_row], [request_row]).result(timeout=10) is None
    finally:
        writer.stop()
    with engine.connect() as connection:
        details = connection.scalars(select(QuarantinedEvent.detail)).all()
    assert details == ["worker's row"]
    spool.dispose()
    engine.dispose()


def test_without_a_wait_the_requests_arriving_during_a_commit_form_the_next_group(
    tmp_path: Path,
) -> None:
    """Without a wait: the writer commits the first request at once, and the ten that
    arrive while that commit is on its way to disk are committed together, in one more commit."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate.upgrade(engine)
    commits: list[float] = []
    in_commit = threading.Event()

    @event.listens_for(engine, "commit")
    def slow_first_commit(_connection: object) -> None:
        commits.append(time.monotonic())
        if len(commits) == 1:
            in_commit.set()
            time.sleep(0.3)

    writer = GroupCommitWriter(engine, max_wait_ms=0)
    writer.start()
    workspace_id = new_id()
    try:
        first = writer.submit([_row(workspace_id)], [])
        assert in_commit.wait(10)
        rest = [writer.submit([_row(workspace_id)], []) for _ in range(10)]
        for future in [first, *rest]:
            assert future.result(timeout=10) is None
    finally:
        writer.stop()
    assert len(commits) == 2
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(InboxEntry)) == 11
    engine.dispose()


def test_on_sqlite_a_groups_quarantine_rows_are_committed_before_its_bodies(
    tmp_path: Path,
) -> None:
    """A submission with both (the writer accepts it, though requests now send their refused
    messages in the body, ADR 0014): no worker reads the body before its quarantine rows are
    committed."""
    database = f"sqlite:///{tmp_path / 'w.db'}"
    engine = create_db_engine(database)
    migrate.upgrade(engine)
    spool = create_spool_engine(database)
    assert spool is not None
    bodies_in_spool_at_quarantine_commit: list[int] = []

    @event.listens_for(engine, "commit")
    def count_spool(_connection: object) -> None:
        with spool.connect() as connection:
            count = connection.scalar(select(func.count()).select_from(InboxEntry))
        bodies_in_spool_at_quarantine_commit.append(int(count or 0))

    workspace_id = new_id()
    inbox_row = _row(workspace_id)
    quarantine_row = _refusal(inbox_row, "missing")
    writer = GroupCommitWriter(engine, inbox_engine=spool)
    writer.start()
    try:
        assert writer.submit([inbox_row], [quarantine_row]).result(timeout=10) is None
    finally:
        writer.stop()
    assert bodies_in_spool_at_quarantine_commit == [0]
    with spool.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(InboxEntry)) == 1
    spool.dispose()
    engine.dispose()


def test_on_sqlite_only_requests_with_quarantine_rows_wait_for_the_main_files_lock(
    tmp_path: Path,
) -> None:
    """The worker holds the main file's write lock for a fraction of a second at a time: a
    request with quarantine rows (an unreadable body's) waits for it, the requests beside it in
    the same group do not."""
    database = tmp_path / "w.db"
    engine = create_db_engine(f"sqlite:///{database}")
    migrate.upgrade(engine)
    spool = create_spool_engine(f"sqlite:///{database}")
    assert spool is not None
    workspace_id = new_id()
    rejected_row = _row(workspace_id)
    worker = sqlite3.connect(database, isolation_level=None)
    worker.execute("BEGIN IMMEDIATE")  # as a processor transaction does
    writer = GroupCommitWriter(engine, inbox_engine=spool, max_wait_ms=50)
    writer.start()
    try:
        rejected = writer.submit([rejected_row], [_refusal(rejected_row, "refused")])
        clean = writer.submit([_row(workspace_id)], [])
        assert clean.result(timeout=5) is None
        time.sleep(0.2)
        assert not rejected.done()
        worker.execute("COMMIT")
        assert rejected.result(timeout=10) is None
    finally:
        worker.close()
        writer.stop()
    with engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(QuarantinedEvent)) == 1
    with spool.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(InboxEntry)) == 2
    spool.dispose()
    engine.dispose()


def test_stop_commits_the_bodies_waiting_behind_their_quarantine(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'w.db'}"
    engine = create_db_engine(database)
    migrate.upgrade(engine)
    spool = create_spool_engine(database)
    assert spool is not None
    workspace_id = new_id()
    writer = GroupCommitWriter(engine, inbox_engine=spool, max_wait_ms=50)
    writer.start()
    rows = [_row(workspace_id) for _ in range(5)]
    futures = [writer.submit([row], [_refusal(row, "refused")]) for row in rows]
    writer.stop()
    assert [future.result(timeout=0) for future in futures] == [None] * 5
    with spool.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(InboxEntry)) == 5
    spool.dispose()
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def inbox_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """The engine the group commit writes bodies to (SQLite's spool, or PostgreSQL's database),
    in a database of the test's own."""
    with migrated_database(request.param, tmp_path) as database_url:
        engine = create_spool_engine(database_url) or create_db_engine(database_url)
        yield engine
        engine.dispose()
        # After a failed or dropped connection SQLAlchemy discards the psycopg object without
        # closing it: collect it here, where its ResourceWarning is expected.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def test_a_group_of_bodies_is_one_statement_stored_as_core_would(inbox_engine: Engine) -> None:
    """The group commit sends a group's bodies as one INSERT, in autocommit (one transaction,
    one step for SQLite, one round trip for PostgreSQL). What it stores reads back through the
    model exactly as the values were given, the refused indexes included."""
    engine = inbox_engine
    statements: list[tuple[str, bool]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(
        _c: object, _cursor: object, statement: str, _p: object, _x: object, executemany: bool
    ) -> None:
        statements.append((statement.strip().upper(), executemany))

    workspace_id = new_id()
    rows = [_row(workspace_id) | {"refused": [i, 7] if i % 2 else None} for i in range(5)]
    del rows[0]["refused"]  # a row may leave it out: no refusals
    _store_together(engine, rows, max_wait_ms=500)
    # One statement with every row, not a statement run once per row (executemany).
    assert [(s.split("(")[0], many) for s, many in statements] == [("INSERT INTO INBOX ", False)]
    with engine.connect() as connection:
        stored = connection.execute(
            select(
                InboxEntry.id,
                InboxEntry.workspace_id,
                InboxEntry.source,
                InboxEntry.received_at,
                InboxEntry.body_sealed,
                InboxEntry.attempts,
                InboxEntry.refused,
            ).where(InboxEntry.workspace_id == workspace_id)
        ).all()
    expected = [
        (row["id"], workspace_id, "batch", row["received_at"], b"sealed", 0, row.get("refused"))
        for row in rows
    ]
    assert sorted((*row[:3], as_utc(row[3]), *row[4:]) for row in stored) == sorted(expected)
    engine.dispose()


def test_a_failed_group_stores_none_of_its_bodies_and_the_next_group_is_stored(
    inbox_engine: Engine,
) -> None:
    """One statement is one transaction: a group that fails (here a body id already stored)
    stores none of its bodies and every request of it gets the error; the writer opens a new
    connection and goes on."""
    engine = inbox_engine
    workspace_id = new_id()
    taken = _row(workspace_id)
    with engine.begin() as connection:
        connection.execute(insert(InboxEntry), [taken])
    writer = GroupCommitWriter(engine, max_wait_ms=500)
    writer.start()
    try:
        innocent = _row(workspace_id)
        duplicate = {**_row(workspace_id), "id": taken["id"]}
        failed = [writer.submit([innocent], []), writer.submit([duplicate], [])]
        for future in failed:
            with pytest.raises(IntegrityError):
                future.result(timeout=10)
        later = _row(workspace_id)
        assert writer.submit([later], []).result(timeout=10) is None
    finally:
        writer.stop()
    assert _stored_ids(engine, workspace_id) == sorted([taken["id"], later["id"]])
    engine.dispose()


def test_a_connection_the_database_dropped_is_replaced_without_failing_a_group(
    inbox_engine: Engine,
) -> None:
    """The writer keeps its connection between groups: when PostgreSQL drops it (a restart, an
    administrator), the next group is sent again on a new connection and succeeds."""
    if inbox_engine.dialect.name != "postgresql":
        pytest.skip("a SQLite connection is a file handle; nothing drops it")
    engine = inbox_engine
    workspace_id = new_id()
    writer = GroupCommitWriter(engine, max_wait_ms=0)
    writer.start()
    try:
        first = _row(workspace_id)
        assert writer.submit([first], []).result(timeout=10) is None
        with engine.connect() as connection:
            dropped = connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        assert dropped  # the writer's connection among them (the database is this test's)
        _wait_until_gone(engine)
        second = _row(workspace_id)
        assert writer.submit([second], []).result(timeout=10) is None
    finally:
        writer.stop()
    assert _stored_ids(engine, workspace_id) == sorted([first["id"], second["id"]])
    engine.dispose()


def _wait_until_gone(engine: Engine) -> None:
    """Until no other session of the database is left (termination is asynchronous)."""
    for _ in range(100):
        with engine.connect() as connection:
            others = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        if not others:
            return
        time.sleep(0.05)
    raise AssertionError("the terminated sessions are still there")


def _stored_ids(engine: Engine, workspace_id: uuid.UUID) -> list[uuid.UUID]:
    with engine.connect() as connection:
        return sorted(
            connection.scalars(
                select(InboxEntry.id).where(InboxEntry.workspace_id == workspace_id)
            ).all()
        )


def test_the_largest_group_allowed_is_one_statement_on_both_databases(inbox_engine: Engine) -> None:
    """The settings allow up to 1,000 requests in a group: their bodies fit one statement on
    both databases (SQLite's and PostgreSQL's bounds on parameters), and no more are allowed."""
    largest = Settings.model_fields["group_commit_max_items"].metadata
    assert [bound.le for bound in largest if hasattr(bound, "le")] == [1000]
    engine = inbox_engine
    inserts: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def record(_c: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("INSERT"):
            inserts.append(statement)

    workspace_id = new_id()
    rows = [_row(workspace_id) for _ in range(1000)]
    _store_together(engine, rows, max_items=1000, max_wait_ms=5000)
    assert len(inserts) == 1
    assert _stored_ids(engine, workspace_id) == sorted(row["id"] for row in rows)
    engine.dispose()


def test_a_group_stored_before_the_connection_dropped_is_answered_as_stored(
    inbox_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection drops after the database committed the group but before its answer came
    back: the retry finds the ids stored, adds nothing, and the requests are answered with
    success (an error would make the SDKs send the events again)."""
    engine = inbox_engine
    execute = GroupCommitWriter._execute_inbox
    calls: list[bool] = []

    def committed_then_dropped(
        writer: GroupCommitWriter, rows: list[dict[str, Any]], *, skip_existing: bool = False
    ) -> None:
        calls.append(skip_existing)
        execute(writer, rows, skip_existing=skip_existing)
        if len(calls) == 1:
            raise DBAPIError("INSERT", None, Exception("server closed the connection"), None, True)

    monkeypatch.setattr(GroupCommitWriter, "_execute_inbox", committed_then_dropped)
    workspace_id = new_id()
    rows = [_row(workspace_id) for _ in range(3)]
    _store_together(engine, rows, max_wait_ms=500)
    assert calls == [False, True]
    assert _stored_ids(engine, workspace_id) == sorted(row["id"] for row in rows)
    engine.dispose()


def _store_together(engine: Engine, rows: list[dict[str, Any]], **options: Any) -> None:
    """Each row a request of its own, submitted together (one group), every one stored."""
    writer = GroupCommitWriter(engine, **options)
    writer.start()
    try:
        futures = [writer.submit([row], []) for row in rows]
        assert [future.result(timeout=30) for future in futures] == [None] * len(rows)
    finally:
        writer.stop()
