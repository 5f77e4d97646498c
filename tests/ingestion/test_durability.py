"""A crash loses nothing acknowledged.

``storeloop serve`` runs as a real process; several threads send batches and note which got a
2xx; the process is SIGKILLed mid-stream (its in-process worker with it). A fresh runtime then
drains the inbox, and every acknowledged messageId must be stored exactly once. Also: one entry
that cannot be processed must not stop the others.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from storeloop.app import create_app
from storeloop.config import Settings
from storeloop.ingestion.validation import NormalizedEvent
from storeloop.models import InboxEntry
from storeloop.runtime import Runtime
from tests.conftest import (
    BACKENDS,
    MASTER_KEY,
    SECRET_KEY,
    make_settings,
    migrated_database,
)
from tests.factories.events import track
from tests.factories.queries import inbox_count, message_ids, quarantine_reasons
from tests.factories.sdk import free_port
from tests.factories.workspaces import WorkspaceKeys, make_workspace

THREADS = 4
BATCH_SIZE = 20
KILL_AFTER_ACKED_BATCHES = 40


@pytest.fixture(params=BACKENDS)
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own (the server process and the test both write to it)."""
    with migrated_database(request.param, tmp_path) as url:
        yield url


@dataclass
class Traffic:
    """What the senders sent and what the server acknowledged, batch by batch."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: list[list[str]] = field(default_factory=list)
    acked: list[list[str]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    transport_errors: int = 0


def _send_until_the_server_dies(url: str, workspace: WorkspaceKeys, traffic: Traffic) -> None:
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=url, headers=workspace.basic_auth, timeout=10) as client:
        while time.monotonic() < deadline:
            batch = [track(anonymousId=f"anon-{n % 5}") for n in range(BATCH_SIZE)]
            ids = [message["messageId"] for message in batch]
            with traffic.lock:
                traffic.sent.append(ids)
            try:
                response = client.post("/v1/batch", json={"batch": batch})
            except httpx.TransportError:
                with traffic.lock:
                    traffic.transport_errors += 1
                return
            with traffic.lock:
                traffic.statuses.append(response.status_code)
                if 200 <= response.status_code < 300:
                    assert response.json() == {"success": True, "accepted": BATCH_SIZE}
                    traffic.acked.append(ids)


def _start_server(settings: Settings, port: int, log: Any) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STORELOOP_DATABASE_URL": settings.resolved_database_url,
        "STORELOOP_DATA_DIR": str(settings.data_dir),
        "STORELOOP_MASTER_KEY": MASTER_KEY,
        "STORELOOP_SECRET_KEY": SECRET_KEY,
        "STORELOOP_RATE_LIMIT": "1000000/second",
    }
    command = [str(Path(sys.executable).parent / "storeloop"), "serve", "--host", "127.0.0.1"]
    return subprocess.Popen(
        [*command, "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def _wait_ready(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "storeloop serve exited during startup"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("storeloop serve did not become ready")


def test_sigkill_mid_stream_loses_nothing_acknowledged(durable_url: str, tmp_path: Path) -> None:
    settings = make_settings(durable_url, tmp_path / "data")
    setup = Runtime(settings)
    workspace = make_workspace(setup)
    setup.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (tmp_path / "server.log").open("wb") as log:
        server = _start_server(settings, port, log)
        try:
            _wait_ready(server, url)
            traffic = Traffic()
            senders = [
                threading.Thread(target=_send_until_the_server_dies, args=(url, workspace, traffic))
                for _ in range(THREADS)
            ]
            for sender in senders:
                sender.start()
            deadline = time.monotonic() + 60
            while len(traffic.acked) < KILL_AFTER_ACKED_BATCHES:
                assert time.monotonic() < deadline, "the server acknowledged too little"
                assert server.poll() is None
                time.sleep(0.005)
            os.kill(server.pid, signal.SIGKILL)  # mid-stream: the senders are still sending
            assert server.wait(15) == -signal.SIGKILL
            for sender in senders:
                sender.join(30)
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(15)

    # Every sender ran until the dead server refused it; nothing else failed.
    assert [sender.is_alive() for sender in senders] == [False] * THREADS
    assert traffic.transport_errors == THREADS
    assert set(traffic.statuses) == {200}
    assert len(traffic.acked) >= KILL_AFTER_ACKED_BATCHES

    # Without the server: a fresh runtime on the same database finishes the inbox.
    runtime = Runtime(settings)
    try:
        runtime.processor.drain()
        stored = message_ids(runtime, workspace.id)
        assert inbox_count(runtime, workspace.id) == 0
        assert quarantine_reasons(runtime, workspace.id) == []
    finally:
        runtime.close()

    acked = [message_id for ids in traffic.acked for message_id in ids]
    sent = {message_id for ids in traffic.sent for message_id in ids}
    assert len(stored) == len(set(stored))  # exactly once
    assert sorted(set(acked) - set(stored)) == []  # nothing acknowledged is lost
    assert sorted(set(stored) - sent) == []
    # A request's events are committed together or not at all, even when cut off by the kill.
    stored_set = set(stored)
    per_batch = {sum(message_id in stored_set for message_id in ids) for ids in traffic.sent}
    assert per_batch <= {0, BATCH_SIZE}
    # Only requests still in flight at the kill may be missing, one per sender at most.
    assert len(traffic.sent) - len(traffic.acked) == THREADS
    assert len(stored) in range(len(acked), len(acked) + THREADS * BATCH_SIZE + 1)


def _accept(runtime: Runtime, workspace: WorkspaceKeys, batch: list[dict[str, Any]]) -> None:
    """Accept a batch through the ingestion service, as the HTTP route does."""
    result = asyncio.run(
        runtime.ingestion.accept(
            source="batch",
            body=orjson.dumps({"batch": batch}),
            content_encoding=None,
            authorization=workspace.basic_auth["Authorization"],
        )
    )
    assert (result.accepted, result.rejected) == (len(batch), [])


def _attempts(runtime: Runtime, workspace: WorkspaceKeys) -> list[int]:
    """The attempts of the workspace's waiting entries (on SQLite they wait in the spool)."""
    with (runtime.spool or runtime.engine).connect() as connection:
        return list(
            connection.scalars(
                select(InboxEntry.attempts).where(InboxEntry.workspace_id == workspace.id)
            )
        )


def test_an_entry_that_cannot_be_processed_does_not_block_the_others(
    runtime: Runtime, workspace: WorkspaceKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A poison entry is retried alone, then quarantined; the entries around it are stored."""
    poison = f"poison-{uuid.uuid4()}"
    store = runtime.processor._store

    def failing_store(session: Any, workspace_id: uuid.UUID, events: list[NormalizedEvent]) -> None:
        if any(event.message_id == poison for event in events):
            raise RuntimeError("simulated storage failure")
        store(session, workspace_id, events)

    monkeypatch.setattr(runtime.processor, "_store", failing_store)
    before, after = track(), track()
    for batch in ([before], [track(messageId=poison)], [after]):
        _accept(runtime, workspace, batch)
    good = sorted([before["messageId"], after["messageId"]])

    # The group of three fails, each is then tried alone: two stored, the poison tried twice
    # (alone in that group, then alone again on the next claim).
    runtime.processor.drain()
    assert message_ids(runtime, workspace.id) == good
    assert _attempts(runtime, workspace) == [2]
    runtime.processor.drain()
    runtime.processor.drain()
    assert _attempts(runtime, workspace) == [4]
    runtime.processor.drain()  # the fifth failure moves it to the quarantine
    assert inbox_count(runtime, workspace.id) == 0
    assert quarantine_reasons(runtime, workspace.id) == [("processing_failed", None)]
    assert message_ids(runtime, workspace.id) == good

    # Once the cause is fixed, the set-aside body is replayed whole and stored.
    monkeypatch.setattr(runtime.processor, "_store", store)
    with TestClient(create_app(runtime=runtime)) as client:
        [item] = client.get("/api/v1/quarantine", headers=workspace.bearer).json()["items"]
        replayed = client.post(f"/api/v1/quarantine/{item['id']}/replay", headers=workspace.bearer)
        assert replayed.status_code == 200
        again = client.post(f"/api/v1/quarantine/{item['id']}/replay", headers=workspace.bearer)
        assert again.status_code == 409
    runtime.processor.drain()
    assert message_ids(runtime, workspace.id) == sorted([*good, poison])
