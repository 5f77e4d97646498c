"""Behind a proxy that mounts storeloop under a path prefix (ASGI ``root_path``), the hot routes
answered before FastAPI's routing (tracking, the storefront script, tracked links) are found
under the prefix, as FastAPI's own routes are."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from storeloop.app import create_app
from storeloop.ingestion import endpoints as ingestion_endpoints
from storeloop.runtime import Runtime
from tests.factories.tracking import allow_domains, clicks_of, make_link
from tests.factories.workspaces import WorkspaceKeys

PREFIX = "/growth"


@pytest.fixture
def mounted(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime=runtime), root_path=PREFIX) as client:
        yield client


def test_the_storefront_script_is_served_under_the_prefix(mounted: TestClient) -> None:
    response = mounted.get(f"{PREFIX}/t.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"


def test_a_tracked_link_redirects_under_the_prefix(
    mounted: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    link = make_link(runtime, workspace.id)
    response = mounted.get(f"{PREFIX}/r/{link.code}", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://store.com/products/linen-shirt?")
    assert len(clicks_of(runtime, workspace.id)) == 1


def test_tracking_under_the_prefix_takes_the_plain_asgi_path(
    mounted: TestClient, workspace: WorkspaceKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FastAPI's declared routes would answer too (for the OpenAPI document), only slower."""
    taken: list[str] = []
    plain_asgi = ingestion_endpoints._track

    async def spy(*args: Any) -> None:
        taken.append(args[1])
        await plain_asgi(*args)

    monkeypatch.setattr(ingestion_endpoints, "_track", spy)
    message = {"type": "track", "event": "Signed Up", "anonymousId": "a-1", "messageId": "m-1"}
    response = mounted.post(
        f"{PREFIX}/v1/batch", json={"batch": [message]}, headers=workspace.basic_auth
    )
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    assert taken == ["batch"]
