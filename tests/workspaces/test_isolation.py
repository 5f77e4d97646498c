"""Tenancy: one workspace's keys can neither read nor write another's data, on every route."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from storeloop.app import create_app
from storeloop.runtime import Runtime
from tests.factories.events import track
from tests.factories.queries import event_count
from tests.factories.workspaces import WorkspaceKeys

_PATH_ID = re.compile(r"\{(?:[A-Za-z0-9_]*_)?id\}")


def _management_routes(runtime: Runtime) -> list[tuple[str, str]]:
    """Every operation of the management API, as the OpenAPI document lists them."""
    paths = create_app(runtime=runtime).openapi()["paths"]
    return [
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api/")
        for method in operations
    ]


def test_every_management_route_requires_a_secret_key(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    routes = _management_routes(runtime)
    assert len(routes) >= 9
    for method, path in routes:
        # Every {..._id} path parameter, whatever a domain names it, gets a well-formed id.
        concrete = _PATH_ID.sub("0196a000-0000-7000-8000-000000000000", path)
        anonymous = client.request(method, concrete)
        assert anonymous.status_code == 401, (method, path)
        with_write_key = client.request(
            method, concrete, headers={"Authorization": f"Bearer {workspace.write_key}"}
        )
        assert with_write_key.status_code == 403, (method, path)
        assert with_write_key.json()["error"]["code"] == "forbidden"


def test_keys_of_one_workspace_cannot_touch_another(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    a, b = workspace, other_workspace
    # B's data: a key, a quarantined event, an event.
    b_keys = client.get("/api/v1/keys", headers=b.bearer).json()["items"]
    b_key_id = b_keys[0]["id"]
    client.post("/v1/track", json=track(event=None), headers=b.basic_auth)
    runtime.processor.drain()
    b_quarantine_id = client.get("/api/v1/quarantine", headers=b.bearer).json()["items"][0]["id"]
    client.post("/v1/track", json=track(), headers=b.basic_auth)
    runtime.processor.drain()

    assert client.get("/api/v1/workspace", headers=a.bearer).json()["id"] == str(a.id)
    assert client.delete(f"/api/v1/keys/{b_key_id}", headers=a.bearer).status_code == 404
    assert client.get(f"/api/v1/quarantine/{b_quarantine_id}", headers=a.bearer).status_code == 404
    assert (
        client.post(f"/api/v1/quarantine/{b_quarantine_id}/replay", headers=a.bearer).status_code
        == 404
    )
    assert (
        client.post(f"/api/v1/quarantine/{b_quarantine_id}/discard", headers=a.bearer).status_code
        == 404
    )
    assert client.get("/api/v1/quarantine", headers=a.bearer).json()["items"] == []
    assert {
        k["id"] for k in client.get("/api/v1/keys", headers=a.bearer).json()["items"]
    }.isdisjoint({b_key_id})
    # B's key is untouched, B's event stayed B's, and A's write key only ever writes to A.
    assert client.get("/api/v1/keys", headers=b.bearer).json()["items"][0]["revoked_at"] is None
    client.post("/v1/track", json={**track(), "writeKey": a.write_key}, headers=b.basic_auth)
    runtime.processor.drain()
    assert event_count(runtime, b.id) == 2
    assert event_count(runtime, a.id) == 0


@pytest.mark.parametrize("kind", ["write", "secret"])
def test_revoked_keys_stop_working(client: TestClient, workspace: WorkspaceKeys, kind: str) -> None:
    created = client.post(
        "/api/v1/keys", json={"kind": kind, "name": "temp"}, headers=workspace.bearer
    )
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("slw_" if kind == "write" else "sls_")
    assert body["prefix"] == body["key"][:12]
    revoked = client.delete(f"/api/v1/keys/{body['id']}", headers=workspace.bearer)
    assert revoked.status_code == 200
    if kind == "write":
        response = client.post("/v1/track", json={**track(), "writeKey": body["key"]})
    else:
        response = client.get("/api/v1/keys", headers={"Authorization": f"Bearer {body['key']}"})
    assert response.status_code == 401


def test_key_use_is_recorded_off_the_request_path(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    before = {
        k["name"]: k["last_used_at"]
        for k in client.get("/api/v1/keys", headers=workspace.bearer).json()["items"]
    }
    assert before == {"test write": None, "test secret": None}
    assert client.post("/v1/track", json=track(), headers=workspace.basic_auth).status_code == 200
    with runtime.engine.begin() as connection:
        assert runtime.authenticator.flush_usage(connection) == 2
    after = {
        k["name"]: k["last_used_at"]
        for k in client.get("/api/v1/keys", headers=workspace.bearer).json()["items"]
    }
    assert after["test write"] is not None
    assert after["test secret"] is not None
