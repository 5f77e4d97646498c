"""Rate limiting per write key: 429 with Retry-After, other keys unaffected, nothing stored."""

from __future__ import annotations

from pathlib import Path

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
