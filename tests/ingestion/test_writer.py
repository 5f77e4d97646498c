"""The group-commit writer survives requests that go away, and never leaves one hanging."""

from __future__ import annotations

import uuid
from concurrent.futures import Future
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from storeloop import migrate
from storeloop.db import create_db_engine
from storeloop.ingestion.spool import create_spool_engine
from storeloop.ingestion.writer import GroupCommitWriter
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import utcnow
from storeloop.models import InboxEntry


def _row(workspace_id: uuid.UUID) -> dict[str, object]:
    return {
        "id": new_id(),
        "workspace_id": workspace_id,
        "source": "batch",
        "received_at": utcnow(),
        "body_sealed": b"sealed",
        "attempts": 0,
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
