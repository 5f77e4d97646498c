"""Rate limiting per write key: 429 with Retry-After, other keys unaffected, nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from storeloop.app import create_app
from storeloop.runtime import Runtime
from tests.conftest import make_settings
from tests.factories.events import track
from tests.factories.queries import event_count
from tests.factories.workspaces import make_workspace


def test_write_key_over_its_limit_gets_429(database_url: str, tmp_path: Path) -> None:
    runtime = Runtime(make_settings(database_url, tmp_path, rate_limit="5/minute"))
    runtime.start()
    try:
        limited, other = make_workspace(runtime), make_workspace(runtime)
        with TestClient(create_app(runtime=runtime)) as client:
            ok = client.post(
                "/v1/batch", json={"batch": [track() for _ in range(5)]}, headers=limited.basic_auth
            )
            assert ok.status_code == 200
            refused = client.post("/v1/track", json=track(), headers=limited.basic_auth)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(refused.headers["Retry-After"]) <= 60
            assert (
                client.post("/v1/track", json=track(), headers=other.basic_auth).status_code == 200
            )
            too_big = client.post(
                "/v1/batch", json={"batch": [track() for _ in range(6)]}, headers=other.basic_auth
            )
            assert too_big.status_code == 413
            assert too_big.json()["error"]["code"] == "batch_over_rate_limit"
        runtime.processor.drain()
        assert event_count(runtime, limited.id) == 5
        assert event_count(runtime, other.id) == 1
    finally:
        runtime.close()


def test_in_process_limiter_starts_no_thread_and_forgets_old_windows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading
    import time
    import uuid

    from storeloop.ingestion.service import InlineExpiryMemoryStorage, WriteKeyRateLimiter

    started: list[threading.Thread] = []
    original_start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        started.append(thread)
        original_start(thread)

    limiter = WriteKeyRateLimiter("1000/second")
    monkeypatch.setattr(threading.Thread, "start", counting_start)
    key = uuid.uuid4()
    for _ in range(50):
        limiter.check(key, 10)
        time.sleep(0.002)
    assert started == []
    storage = limiter._limiter.storage
    assert isinstance(storage, InlineExpiryMemoryStorage)
    assert storage.storage  # this second's window
    # Two windows later the entries have expired; the next hit (over a second on) drops them.
    time.sleep(2.1)
    limiter.check(uuid.uuid4(), 1)
    assert all(key.hex not in name for name in storage.storage)
