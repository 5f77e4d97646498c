"""With Redis configured, the write-key limit is shared by every API process."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from storeloop.app import create_app
from storeloop.runtime import Runtime
from tests.conftest import make_settings
from tests.factories.events import track
from tests.factories.queries import event_count
from tests.factories.workspaces import make_workspace

REDIS_URL = os.environ.get("STORELOOP_TEST_REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="STORELOOP_TEST_REDIS_URL is not set")
def test_two_processes_share_one_limit(database_url: str, tmp_path: Path) -> None:
    # A unique limit string keeps this run's counters apart from any earlier run's.
    spec = f"{4 + uuid.uuid4().int % 3}/minute"
    allowed = int(spec.split("/")[0])
    runtimes = [
        Runtime(
            make_settings(database_url, tmp_path / str(n), rate_limit=spec, redis_url=REDIS_URL)
        )
        for n in range(2)
    ]
    for runtime in runtimes:
        runtime.start()
    try:
        workspace = make_workspace(runtimes[0])
        statuses = []
        with (
            TestClient(create_app(runtime=runtimes[0])) as first,
            TestClient(create_app(runtime=runtimes[1])) as second,
        ):
            for n in range(allowed + 2):
                client = first if n % 2 == 0 else second
                statuses.append(
                    client.post("/v1/track", json=track(), headers=workspace.basic_auth).status_code
                )
        assert statuses == [200] * allowed + [429, 429]
        runtimes[0].processor.drain()
        assert event_count(runtimes[0], workspace.id) == allowed
    finally:
        for runtime in runtimes:
            runtime.close()
