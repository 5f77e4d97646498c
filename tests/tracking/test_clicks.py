"""Clicks are written in batches off the request path, and none is lost on a clean shutdown."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, func, select

from storeloop.kit.ids import new_id
from storeloop.models import Click
from storeloop.runtime import Runtime
from storeloop.tracking.clicks import ClickWriter
from tests.factories.tracking import allow_domains, make_link
from tests.factories.workspaces import WorkspaceKeys
from tests.tracking.conftest import ClientFactory


@contextmanager
def statements(engine: Engine) -> Iterator[dict[str, int]]:
    """Counts INSERTs into clicks and commits on ``engine`` while the block runs."""
    counts = {"click_inserts": 0, "commits": 0}

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CLICKS"):
            counts["click_inserts"] += 1

    def on_commit(_conn: Any) -> None:
        counts["commits"] += 1

    event.listen(engine, "before_cursor_execute", on_execute)
    event.listen(engine, "commit", on_commit)
    try:
        yield counts
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
        event.remove(engine, "commit", on_commit)


def _count(runtime: Runtime, workspace_id: uuid.UUID) -> int:
    with runtime.session_factory() as session:
        query = select(func.count()).select_from(Click).where(Click.workspace_id == workspace_id)
        return int(session.scalar(query) or 0)


def test_clicks_wait_in_memory_and_are_all_written_at_shutdown_in_one_insert(
    make_client: ClientFactory, workspace: WorkspaceKeys
) -> None:
    # A flush interval longer than the test: only shutdown writes.
    client, rt = make_client(click_flush_ms=600_000, click_flush_max=10_000)
    allow_domains(rt, workspace.id, "store.com")
    link = make_link(rt, workspace.id)
    with statements(rt.engine) as counts:
        click_ids = set()
        for _ in range(50):
            response = client.get(f"/r/{link.code}", follow_redirects=False)
            assert response.status_code == 302
            click_ids.add(response.headers["location"].rsplit("sl_click=", 1)[1])
        assert _count(rt, workspace.id) == 0
        assert counts == {"click_inserts": 0, "commits": 0}
        assert rt.tracking.clicks.pending == 50

        rt.stop()  # what a clean shutdown of the server does

        assert counts["click_inserts"] == 1
    with rt.session_factory() as session:
        stored = session.scalars(select(Click.id).where(Click.workspace_id == workspace.id))
        assert {str(click_id) for click_id in stored} == click_ids
    assert rt.tracking.clicks.pending == 0


def test_the_writer_thread_flushes_when_enough_clicks_wait(
    make_client: ClientFactory, workspace: WorkspaceKeys
) -> None:
    client, rt = make_client(click_flush_ms=600_000, click_flush_max=5)
    allow_domains(rt, workspace.id, "store.com")
    link = make_link(rt, workspace.id)
    for _ in range(5):
        client.get(f"/r/{link.code}", follow_redirects=False)
    writer = rt.tracking.clicks
    # Woken by the fifth click, long before its interval: wait for it (no timing asserted).
    for _ in range(1000):
        if writer.clicks_written == 5:
            break
        time.sleep(0.01)
    assert writer.clicks_written == 5
    assert writer.batches_written == 1
    assert _count(rt, workspace.id) == 5


def _row(workspace_id: uuid.UUID, link_id: uuid.UUID, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": new_id(),
        "workspace_id": workspace_id,
        "link_id": link_id,
        "clicked_at": datetime.now(UTC),
        "ip_truncated": "198.51.100.0/24",
        "user_agent": "Secret-Agent/1.0",
        "referrer": None,
        "anonymous_id": "a-1",
        "is_bot": False,
        "bot_reason": None,
    }
    row.update(values)
    return row


def test_a_large_backlog_is_written_in_chunks(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    writer = ClickWriter(runtime.engine)
    link_id = new_id()
    for _ in range(4500):
        writer.record(_row(workspace.id, link_id))
    with statements(runtime.engine) as counts:
        assert writer.flush() == 4500
    # Transactions of 2,000 rows; on SQLite, statements of 500 rows (one statement step each:
    # an executemany's step per row let the writer fall behind a busy redirect).
    inserts = 3 if runtime.engine.dialect.name == "postgresql" else 4 + 4 + 1
    assert counts == {"click_inserts": inserts, "commits": 3}
    assert (writer.clicks_written, writer.batches_written) == (4500, 3)
    assert _count(runtime, workspace.id) == 4500


def test_a_row_the_database_refuses_is_dropped_alone_and_logged_without_values(
    runtime: Runtime, workspace: WorkspaceKeys, caplog: pytest.LogCaptureFixture
) -> None:
    writer = ClickWriter(runtime.engine)
    link_id = new_id()
    good = [_row(workspace.id, link_id) for _ in range(5)]
    bad = _row(workspace.id, link_id)
    bad["workspace_id"] = None  # NOT NULL violated
    for row in [*good[:2], bad, *good[2:]]:
        writer.record(row)
    with caplog.at_level(logging.ERROR, logger="storeloop.tracking.clicks"):
        assert writer.flush() == 5
    assert (writer.clicks_dropped, writer.pending) == (1, 0)
    assert "dropped a click the database refused: IntegrityError" in caplog.text
    assert "Secret-Agent" not in caplog.text
    assert "198.51.100" not in caplog.text
    with runtime.session_factory() as session:
        stored = set(session.scalars(select(Click.id).where(Click.workspace_id == workspace.id)))
    assert stored == {row["id"] for row in good}


def test_clicks_wait_while_the_database_is_unreachable(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = create_engine(f"sqlite:///{tmp_path / 'missing-directory' / 'x.db'}")
    writer = ClickWriter(unreachable, max_pending=3)
    rows = [_row(new_id(), new_id()) for _ in range(4)]
    for row in rows:
        writer.record(row)
    with caplog.at_level(logging.ERROR, logger="storeloop.tracking.clicks"):
        assert writer.flush() == 0
    # Kept for the next attempt, within max_pending: the click past it was dropped at record().
    assert (writer.pending, writer.dropped) == (3, 1)
    assert "writing 3 clicks failed: OperationalError" in caplog.text
    assert "click queue full: dropped 1 clicks" in caplog.text
    assert "Secret-Agent" not in caplog.text
    unreachable.dispose()
