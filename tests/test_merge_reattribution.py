"""A profile merge re-attributes the merged customer's orders with the journey it brings."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from storeloop.runtime import Runtime
from tests.factories.events import order_completed
from tests.factories.workspaces import WorkspaceKeys


def _last_click_channels(client: TestClient, workspace: WorkspaceKeys, order_id: str) -> list[str]:
    explained = client.get(f"/api/v1/orders/{order_id}/attribution", headers=workspace.bearer)
    assert explained.status_code == 200, explained.text
    model = next(m for m in explained.json()["models"] if m["model"] == "last_click")
    return [credit["channel"] for credit in model["credits"]]


def test_identify_after_the_order_brings_the_landing_into_its_journey(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    anonymous_id, user_id = f"anon-{uuid.uuid4().hex[:8]}", f"user-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC) - timedelta(hours=3)
    landing = {
        "type": "page",
        "messageId": str(uuid.uuid4()),
        "anonymousId": anonymous_id,
        "timestamp": start.isoformat(),
        "context": {
            "page": {
                "url": "https://shop.example/?utm_source=newsletter&utm_medium=email",
                "referrer": "",
            }
        },
    }
    order = order_completed(
        order_id=f"M-{uuid.uuid4().hex[:6]}",
        userId=user_id,
        anonymousId=None,
        timestamp=(start + timedelta(hours=1)).isoformat(),
    )
    sent = client.post("/v1/batch", json={"batch": [landing, order]}, headers=workspace.basic_auth)
    assert sent.status_code == 200
    runtime.processor.drain()
    runtime.derivations.drain()
    listed = client.get("/api/v1/orders", headers=workspace.bearer).json()["items"]
    [stored] = [item for item in listed if item["external_id"] == order["properties"]["order_id"]]
    # The buyer was not known to be the visitor who landed from the newsletter.
    assert _last_click_channels(client, workspace, stored["id"]) == ["Direct"]

    identify = {
        "type": "identify",
        "messageId": str(uuid.uuid4()),
        "anonymousId": anonymous_id,
        "userId": user_id,
        "timestamp": (start + timedelta(hours=2)).isoformat(),
    }
    assert (
        client.post("/v1/identify", json=identify, headers=workspace.basic_auth).status_code == 200
    )
    runtime.processor.drain()
    explained = client.get(
        f"/api/v1/orders/{stored['id']}/attribution", headers=workspace.bearer
    ).json()
    assert explained["attribution_stale"] is True
    runtime.derivations.drain()
    assert _last_click_channels(client, workspace, stored["id"]) == ["Email"]
