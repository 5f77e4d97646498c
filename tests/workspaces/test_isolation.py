"""Tenancy: one workspace's keys can neither read nor write another's data, on every route."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from storeloop.app import create_app
from storeloop.runtime import Runtime
from tests.factories.events import track
from tests.factories.influencers import (
    make_campaign,
    make_discount_code,
    make_influencer,
    make_link,
    make_post,
    unique,
)
from tests.factories.orders import make_order
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


def _objects_of(client: TestClient, runtime: Runtime, owner: WorkspaceKeys) -> dict[str, str]:
    """One object of ``owner``'s for each kind of id the management API's paths take."""
    influencer = make_influencer(runtime, owner.id, "B's creator", email="b@example.com")
    client.post("/v1/track", json=track(event=None), headers=owner.basic_auth)  # quarantined
    client.post("/v1/identify", json=track(userId="b-user"), headers=owner.basic_auth)
    runtime.processor.drain()
    return {
        "key_id": client.get("/api/v1/keys", headers=owner.bearer).json()["items"][0]["id"],
        "item_id": client.get("/api/v1/quarantine", headers=owner.bearer).json()["items"][0]["id"],
        "profile_id": client.get("/api/v1/profiles", headers=owner.bearer).json()["items"][0]["id"],
        "order_id": str(make_order(runtime, owner.id, "B-1")),
        "influencer_id": str(influencer.id),
        "campaign_id": str(make_campaign(runtime, owner.id, "B's campaign").id),
        "link_id": str(make_link(runtime, owner.id, "https://b.example/", code=unique("b")).id),
        "code_id": str(make_discount_code(runtime, owner.id, unique("BCODE")).id),
        "post_id": str(make_post(runtime, owner.id, reach=10).id),
    }


# A valid body for each route that takes one: an invalid body would be refused before the
# object is looked up, and prove nothing.
_BODIES = {
    ("PATCH", "/api/v1/influencers/{influencer_id}"): {"name": "hijacked"},
    ("PATCH", "/api/v1/campaigns/{campaign_id}"): {"name": "hijacked"},
    ("PATCH", "/api/v1/links/{link_id}"): {"is_active": False},
    ("PATCH", "/api/v1/discount-codes/{code_id}"): {"is_active": False},
    ("PATCH", "/api/v1/posts/{post_id}"): {"reach": 0},
}


def test_every_route_with_an_id_finds_nothing_of_another_workspace(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    """Generated from the OpenAPI document: every management operation whose path takes an id,
    called with A's secret key and B's object, answers 404 and changes nothing of B's. A new
    route with a new kind of id fails here until B is given an object of that kind."""
    a, b = workspace, other_workspace
    ids = _objects_of(client, runtime, b)
    routes = [(method, path) for method, path in _management_routes(runtime) if "{" in path]
    assert len(routes) >= 17
    readable = [path.format(**ids) for method, path in routes if method == "GET"]
    before = {url: client.get(url, headers=b.bearer).json() for url in readable}
    for method, path in routes:
        names = re.findall(r"\{(\w+)\}", path)
        missing = [name for name in names if name not in ids]
        assert not missing, f"{path}: give B an object for {missing} in _objects_of"
        if method in ("PATCH", "PUT"):
            assert (method, path) in _BODIES, f"{method} {path}: add a valid body to _BODIES"
        response = client.request(
            method, path.format(**ids), json=_BODIES.get((method, path)), headers=a.bearer
        )
        assert response.status_code == 404, (method, path, response.status_code, response.text)
        assert response.json()["error"]["code"] == "not_found", (method, path)
    assert {url: client.get(url, headers=b.bearer).json() for url in readable} == before
    assert client.get("/api/v1/keys", headers=b.bearer).json()["items"][0]["revoked_at"] is None


# Values for the query parameters a listing requires (B's order is dated 2026-01-05).
_QUERY = {"start": "2026-01-01", "end": "2026-12-31"}


def test_no_listing_shows_another_workspaces_ids(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    """Generated too: every management GET without an id in its path, called with A's key,
    mentions none of B's objects."""
    ids = _objects_of(client, runtime, other_workspace)
    paths = create_app(runtime=runtime).openapi()["paths"]
    listings = [path for path in paths if path.startswith("/api/") and "get" in paths[path]]
    listings = [path for path in listings if "{" not in path]
    assert len(listings) >= 10
    shown_to_owner: set[str] = set()
    for path in listings:
        required = [
            parameter["name"]
            for parameter in paths[path]["get"].get("parameters", [])
            if parameter.get("required") and parameter["in"] == "query"
        ]
        missing = [name for name in required if name not in _QUERY]
        assert not missing, f"{path}: add a value for {missing} to _QUERY"
        params = {name: _QUERY[name] for name in required}
        response = client.get(path, params=params, headers=workspace.bearer)
        assert response.status_code == 200, (path, response.status_code, response.text)
        leaked = [name for name, value in ids.items() if value in response.text]
        assert not leaked, (path, leaked)
        own = client.get(path, params=params, headers=other_workspace.bearer).text
        shown_to_owner.update(name for name, value in ids.items() if value in own)
    # The needles are real: each of B's objects shows in one of B's own listings.
    assert shown_to_owner == ids.keys()


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
