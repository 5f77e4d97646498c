"""The orders read API: keyset pages, filters, one order, and workspace isolation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from storeloop.runtime import Runtime
from tests.factories.orders import make_order
from tests.factories.workspaces import WorkspaceKeys

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def test_pages_newest_first_with_filters(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    for day in range(5):
        make_order(
            runtime,
            workspace.id,
            f"O-{day}",
            placed_at=START + timedelta(days=day),
            status="cancelled" if day == 2 else "paid",
            source="woocommerce" if day == 4 else "shopify",
        )
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/orders", params=params, headers=workspace.bearer).json()
        seen += [item["external_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["O-4", "O-3", "O-2", "O-1", "O-0"]

    def ids(**params: str) -> list[str]:
        response = client.get("/api/v1/orders", params=params, headers=workspace.bearer)
        assert response.status_code == 200, response.text
        return [item["external_id"] for item in response.json()["items"]]

    assert ids(status="cancelled") == ["O-2"]
    assert ids(source="woocommerce") == ["O-4"]
    assert ids(
        placed_from=(START + timedelta(days=1)).isoformat(),
        placed_to=(START + timedelta(days=3)).isoformat(),
    ) == [
        "O-2",
        "O-1",
    ]
    bad = client.get("/api/v1/orders", params={"status": "lost"}, headers=workspace.bearer)
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "status")
    bad_cursor = client.get("/api/v1/orders", params={"cursor": "%%%"}, headers=workspace.bearer)
    assert (bad_cursor.status_code, bad_cursor.json()["error"]["field"]) == (422, "cursor")


def test_a_workspace_cannot_read_anothers_orders(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    theirs = make_order(runtime, other_workspace.id, "B-1")
    response = client.get(f"/api/v1/orders/{theirs}", headers=workspace.bearer)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/orders", headers=workspace.bearer).json()["items"] == []
    own = client.get(f"/api/v1/orders/{theirs}", headers=other_workspace.bearer)
    assert own.status_code == 200
    assert own.json()["external_id"] == "B-1"
    assert (
        client.get(f"/api/v1/orders/{uuid.uuid4()}", headers=other_workspace.bearer).status_code
        == 404
    )


def test_orders_api_needs_a_secret_key(client: TestClient, workspace: WorkspaceKeys) -> None:
    assert client.get("/api/v1/orders").status_code == 401
    assert client.get("/api/v1/orders", headers=workspace.basic_auth).status_code == 401
