"""SQLite's inbox spool (ADR 0011): the tracking API's commits never wait for the worker's lock.

On SQLite the accepted bodies wait in a database file of their own. The tests hold the main
database's write lock the way a long worker transaction does and check that requests are still
acknowledged, that processing after a crash between the two commits stores nothing twice, that
an older spool is upgraded in place and a newer one refused with a clear error.
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, func, insert, select

from storeloop.config import Settings
from storeloop.ingestion.processor import _Spool
from storeloop.ingestion.spool import (
    SpoolCheckpointer,
    SpoolVersionMismatch,
    checkpoint_rarely,
    create_spool_engine,
    spool_path,
)
from storeloop.ingestion.writer import GroupCommitWriter
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import utcnow
from storeloop.models import DerivationTask, InboxEntry, QuarantinedEvent
from storeloop.runtime import Runtime
from tests.factories.events import order_completed, track
from tests.factories.queries import inbox_count, message_ids
from tests.factories.workspaces import WorkspaceKeys


@pytest.fixture
def spooled(runtime: Runtime) -> Runtime:
    if runtime.spool is None:
        pytest.skip("the spool exists on SQLite only; PostgreSQL keeps the inbox table")
    return runtime


def _main_database(runtime: Runtime) -> str:
    database = runtime.engine.url.database
    assert database is not None
    return database


def _send(client: TestClient, workspace: WorkspaceKeys, count: int) -> list[str]:
    batch = [track() for _ in range(count)]
    response = client.post(
        "/v1/batch", content=orjson.dumps({"batch": batch}), headers=workspace.basic_auth
    )
    assert response.status_code == 200, response.text
    return sorted(message["messageId"] for message in batch)


def test_requests_are_acknowledged_while_the_main_database_is_locked(
    spooled: Runtime, client: TestClient, workspace: WorkspaceKeys
) -> None:
    """A worker transaction holding SQLite's write lock no longer holds up the API: the body is
    committed to the spool, refused events and all. (With the inbox in the main file, this
    request would wait for the lock until the busy timeout and answer 503.)"""
    locker = sqlite3.connect(_main_database(spooled), timeout=0, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    try:
        sent = _send(client, workspace, 5)
        # A body with a refused event is kept whole too (processing quarantines the refusal,
        # ADR 0014): it does not wait for the main file either.
        refused = track(timestamp="not a time")
        kept = track()
        response = client.post(
            "/v1/batch",
            content=orjson.dumps({"batch": [refused, kept]}),
            headers=workspace.basic_auth,
        )
        assert response.status_code == 200, response.text
        assert [item["index"] for item in response.json()["rejected"]] == [0]
        # The main database really is locked meanwhile.
        probe = sqlite3.connect(_main_database(spooled), timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            probe.execute("BEGIN IMMEDIATE")
        probe.close()
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    with spooled.spool.connect() as connection:  # type: ignore[union-attr]
        waiting = connection.scalar(
            select(func.count())
            .select_from(InboxEntry)
            .where(InboxEntry.workspace_id == workspace.id)
        )
    assert waiting == 2
    spooled.processor.drain()
    assert message_ids(spooled, workspace.id) == sorted([*sent, kept["messageId"]])
    assert inbox_count(spooled, workspace.id) == 0
    assert _count(spooled, QuarantinedEvent, workspace.id) == 1


def _spool_entry(runtime: Runtime, workspace_id: uuid.UUID, body_sealed: bytes) -> uuid.UUID:
    """An entry written straight into the spool, as the API's writer would."""
    entry_id = new_id()
    assert runtime.spool is not None
    with runtime.spool.begin() as connection:
        connection.execute(
            insert(InboxEntry),
            [
                {
                    "id": entry_id,
                    "workspace_id": workspace_id,
                    "source": "batch",
                    "received_at": utcnow(),
                    "body_sealed": body_sealed,
                    "attempts": 0,
                }
            ],
        )
    return entry_id


def _count(
    runtime: Runtime, model: type[DerivationTask | QuarantinedEvent], workspace_id: uuid.UUID
) -> int:
    with runtime.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(model).where(model.workspace_id == workspace_id)
            ).scalar_one()
        )


def test_a_crash_between_the_two_commits_stores_nothing_twice(
    spooled: Runtime,
    client: TestClient,
    workspace: WorkspaceKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events, derivations and a quarantined entry committed, then the process dies before the
    spool forgets the entries: the next processor finds them again and adds nothing twice (the
    message refused by the request is refused at each processing too, under the same id)."""
    refused = track(timestamp="not a time")
    batch = [track(), order_completed(order_id=f"o-{uuid.uuid4()}"), track(), refused]
    response = client.post(
        "/v1/batch", content=orjson.dumps({"batch": batch}), headers=workspace.basic_auth
    )
    assert response.status_code == 200, response.text
    assert [item["index"] for item in response.json()["rejected"]] == [3]
    batch.remove(refused)
    _spool_entry(spooled, workspace.id, b"not a sealed body")
    crashed = threading.Event()

    def crash(_self: _Spool, _ids: object) -> None:
        crashed.set()
        raise KeyboardInterrupt("simulated crash after the main commit")

    monkeypatch.setattr(_Spool, "after_commit", crash)
    with pytest.raises(KeyboardInterrupt):
        spooled.processor.drain()
    assert crashed.is_set()
    sent = sorted(message["messageId"] for message in batch)
    stored = (message_ids(spooled, workspace.id), _count(spooled, DerivationTask, workspace.id))
    assert stored[0] == sent
    # The refused message (quarantined by processing, from the body) and the unreadable entry.
    assert _count(spooled, QuarantinedEvent, workspace.id) == 2
    assert inbox_count(spooled, workspace.id) == 2
    monkeypatch.undo()

    spooled.processor.drain()
    assert inbox_count(spooled, workspace.id) == 0
    again = (message_ids(spooled, workspace.id), _count(spooled, DerivationTask, workspace.id))
    assert again == stored
    assert _count(spooled, QuarantinedEvent, workspace.id) == 2


def _old_spool(url: str, version: int) -> None:
    """A spool as version 1 wrote it (no ``refused`` column), at ``version``."""
    engine = create_spool_engine(url)
    assert engine is not None
    with engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE inbox DROP COLUMN refused")
        connection.exec_driver_sql(f"PRAGMA user_version = {version}")
    engine.dispose()


def test_a_spool_of_the_previous_version_is_upgraded_with_its_entries(tmp_path: Path) -> None:
    """Version 1 had no ``refused`` column: its waiting entries are kept, read with none."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    _old_spool(url, version=1)
    path = spool_path(url)
    assert path is not None
    entry_id = new_id()
    old = sqlite3.connect(path)
    with old:
        old.execute(
            "INSERT INTO inbox (id, workspace_id, source, received_at, body_sealed, attempts)"
            " VALUES (?, ?, 'batch', '2026-12-06 10:00:00.000000', x'00', 0)",
            (entry_id.hex, new_id().hex),
        )
    old.close()
    upgraded = create_spool_engine(url)
    assert upgraded is not None
    with upgraded.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA user_version").scalar_one() == 2
        [(found, refused)] = connection.execute(select(InboxEntry.id, InboxEntry.refused)).all()
    assert (found, refused) == (entry_id, None)
    upgraded.dispose()


def _open_together(url: str, count: int = 4) -> list[BaseException]:
    """``count`` threads open the spool of ``url`` at the same moment; what they raised."""
    failures: list[BaseException] = []
    barrier = threading.Barrier(count)

    def open_spool() -> None:
        barrier.wait()
        try:
            engine = create_spool_engine(url)
            assert engine is not None
            engine.dispose()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_spool) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_processes_upgrading_one_spool_at_the_same_moment_all_start(tmp_path: Path) -> None:
    """The API and a worker started together after an upgrade: one adds the column, the others
    wait for its transaction and find the spool ready (without the write lock taken first, 27
    runs in 30 failed with "duplicate column name")."""
    failures: list[BaseException] = []
    for round_ in range(20):
        url = f"sqlite:///{tmp_path / f'upgrade-{round_}.db'}"
        _old_spool(url, version=1)
        failures += _open_together(url)
        path = spool_path(url)
        assert path is not None
        check = sqlite3.connect(path)
        columns = [row[1] for row in check.execute("PRAGMA table_info(inbox)")]
        assert (check.execute("PRAGMA user_version").fetchone()[0], columns.count("refused")) == (
            2,
            1,
        )
        check.close()
    assert failures == []


def test_a_half_made_spool_of_an_older_version_is_completed(tmp_path: Path) -> None:
    """Version 1 crashed after creating the table, before writing its version (still 0)."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    _old_spool(url, version=0)
    engine = create_spool_engine(url)
    assert engine is not None
    with engine.begin() as connection:
        connection.execute(
            insert(InboxEntry),
            [
                {
                    "id": new_id(),
                    "workspace_id": new_id(),
                    "source": "batch",
                    "received_at": utcnow(),
                    "body_sealed": b"sealed",
                    "attempts": 0,
                    "refused": [1],
                }
            ],
        )
        assert connection.execute(select(InboxEntry.refused)).scalar_one() == [1]
    engine.dispose()


def test_an_entry_of_no_workspace_does_not_hold_up_the_others(
    spooled: Runtime, client: TestClient, workspace: WorkspaceKeys
) -> None:
    """A spool entry whose workspace no longer exists (deleted, or a spool kept beside a restored
    database) is discarded; the entries after it are processed."""
    _spool_entry(spooled, new_id(), b"sealed for a workspace that is gone")
    sent = _send(client, workspace, 4)
    spooled.processor.drain()
    assert message_ids(spooled, workspace.id) == sent
    assert inbox_count(spooled, workspace.id) == 0
    with spooled.spool.connect() as connection:  # type: ignore[union-attr]
        assert connection.scalar(select(func.count()).select_from(InboxEntry)) == 0


def test_the_api_and_a_worker_may_create_the_spool_at_the_same_moment(tmp_path: Path) -> None:
    """Switching a new file to WAL fails at once when another connection holds it; whoever loses
    the race tries again instead of failing to start (seen 3-8 times in 100 without)."""
    failures: list[BaseException] = []
    for round_ in range(40):
        failures += _open_together(f"sqlite:///{tmp_path / f'race-{round_}.db'}")
    assert failures == []


def test_the_spool_sits_beside_the_database_file(tmp_path: Path) -> None:
    assert spool_path(f"sqlite:///{tmp_path / 'shop.db'}") == tmp_path / "shop-inbox.db"
    assert spool_path(f"sqlite:///{tmp_path / 'shop'}") == tmp_path / "shop-inbox.db"
    for url in ("sqlite://", "sqlite:///:memory:", "postgresql+psycopg://localhost/shop"):
        assert spool_path(url) is None
        assert create_spool_engine(url) is None


def test_a_spool_of_a_newer_version_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    path = spool_path(url)
    assert path is not None
    other = sqlite3.connect(path)
    other.execute("PRAGMA user_version = 99")
    other.close()
    with pytest.raises(SpoolVersionMismatch, match="version 99"):
        create_spool_engine(url)
    # A new spool is created with its table, and opening it again is harmless.
    path.unlink()
    for _ in range(2):
        engine = create_spool_engine(url)
        assert engine is not None
        with engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(InboxEntry)) == 0
        engine.dispose()


# The spool's checkpoints happen off the group commit (SpoolCheckpointer).
_BODY_BYTES = 200_000  # about 50 pages of 4 KiB: 40 of them take the WAL past 1,000 pages
_GROUPS = 40


def _spool_of(tmp_path: Path) -> Engine:
    engine = create_spool_engine(f"sqlite:///{tmp_path / 'store.db'}")
    assert engine is not None
    return engine


def _wal_bytes_after_writing(
    spool: Engine,
    on_connect: Callable[[Connection], object] | None,
    pause: float = 0.0,
) -> int:
    """Writes _GROUPS bodies through the group commit, one group each (``pause`` seconds
    apart), and answers the WAL file's size before the writer lets its connection go (the
    last connection to close checkpoints and removes the WAL)."""
    writer = GroupCommitWriter(spool, on_connect=on_connect)
    writer.start()
    workspace_id = new_id()
    try:
        for _ in range(_GROUPS):
            row = {
                "id": new_id(),
                "workspace_id": workspace_id,
                "source": "batch",
                "received_at": utcnow(),
                "body_sealed": os.urandom(_BODY_BYTES),
                "attempts": 0,
            }
            assert writer.submit([row], []).result(timeout=30) is None
            time.sleep(pause)
        wal = Path(f"{spool.url.database}-wal")
        return wal.stat().st_size
    finally:
        writer.stop()


@pytest.mark.parametrize(
    ("on_connect", "wal_grows"),
    [
        (None, False),
        (checkpoint_rarely, True),
        (functools.partial(checkpoint_rarely, frames=500), False),
    ],
    ids=["sqlite-default", "spool", "spool-backstop"],
)
def test_the_group_commit_checkpoints_the_spool_only_past_its_backstop(
    tmp_path: Path, on_connect: Callable[[Connection], object] | None, wal_grows: bool
) -> None:
    """By default SQLite's commit that takes the WAL past 1,000 pages copies them back and
    fsyncs the file before the commit returns (the requests of that group waited 10-13 ms
    instead of 0.5); the writer's connection leaves that to the checkpointer, up to its
    backstop (64 MB; 2 MB in the last case)."""
    spool = _spool_of(tmp_path)
    try:
        wal_bytes = _wal_bytes_after_writing(spool, on_connect)
    finally:
        spool.dispose()
    written = _GROUPS * _BODY_BYTES
    if wal_grows:
        assert wal_bytes > written
    else:
        # The WAL started over after a checkpoint: about 1,000 (or 500) pages and one group.
        assert wal_bytes < written * 0.7


def test_the_checkpointer_keeps_the_spool_wal_small(tmp_path: Path) -> None:
    spool = _spool_of(tmp_path)
    checkpointer = SpoolCheckpointer(spool, interval=0.005)
    checkpointer.start()
    try:
        wal_bytes = _wal_bytes_after_writing(spool, checkpoint_rarely, pause=0.05)
    finally:
        checkpointer.stop()
        spool.dispose()
    # Copied back between the groups, and the next commit started the WAL over (at least once
    # in the first half: without the checkpointer it holds every body, as above).
    assert wal_bytes < _GROUPS * _BODY_BYTES / 2


def test_the_checkpointer_outlives_its_failures_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = _spool_of(tmp_path)
    checkpointer = SpoolCheckpointer(spool, interval=0.005, retry_seconds=0.005)
    calls = {"failed": 0, "done": 0}
    real = SpoolCheckpointer.checkpoint

    def flaky(connection: Connection) -> tuple[int, int, int]:
        if calls["failed"] < 5:
            calls["failed"] += 1
            raise sqlite3.OperationalError("disk I/O error")
        calls["done"] += 1
        return real(connection)

    checkpointer.checkpoint = flaky  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="storeloop.ingestion.spool"):
        checkpointer.start()
        deadline = time.monotonic() + 10
        while calls["done"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        checkpointer.stop()
    spool.dispose()
    assert calls == {"failed": 5, "done": calls["done"]}
    assert calls["done"] >= 3  # a new connection after each failure, then checkpoints again
    warnings = [r for r in caplog.records if "could not be checkpointed" in r.getMessage()]
    assert len(warnings) == 1
    assert "OperationalError" in warnings[0].getMessage()


def test_the_api_checkpoints_its_spool_on_a_thread_it_stops(settings: Settings) -> None:
    if spool_path(settings.resolved_database_url) is None:
        pytest.skip("the spool exists on SQLite files only")

    def checkpoint_threads() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "storeloop-spool-checkpoint"]

    before = len(checkpoint_threads())
    runtime = Runtime(settings)
    runtime.start()
    try:
        assert len(checkpoint_threads()) == before + 1
        assert runtime.spool is not None
        # Other connections to the spool keep SQLite's default.
        with runtime.spool.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    finally:
        runtime.close()
    assert len(checkpoint_threads()) == before
