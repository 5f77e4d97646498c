"""End to end: tracked events through ingestion, derivation and attribution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fastapi.testclient import TestClient

from storeloop.runtime import Runtime
from tests.factories.events import order_completed, track
from tests.factories.workspaces import WorkspaceKeys


def test_events_become_touchpoints_and_the_order_is_attributed(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    now = datetime.now(UTC)
    landing = {
        **track(),
        "type": "page",
        "anonymousId": "visitor-1",
        "timestamp": (now - timedelta(days=2)).isoformat(),
        "context": {
            "page": {
                "url": "https://shop.example/?utm_source=klaviyo&utm_medium=email",
                "referrer": "",
            }
        },
    }
    social = {
        **track(),
        "type": "page",
        "anonymousId": "visitor-1",
        "timestamp": (now - timedelta(days=1)).isoformat(),
        "context": {
            "page": {"url": "https://shop.example/p/1", "referrer": "https://l.instagram.com/"}
        },
    }
    order = order_completed(order_id="E-1", total=80.0, anonymousId="visitor-1")
    response = client.post(
        "/v1/batch", json={"batch": [landing, social, order]}, headers=workspace.basic_auth
    )
    assert response.status_code == 200
    runtime.processor.drain()
    runtime.derivations.drain()

    orders = client.get("/api/v1/orders?limit=10", headers=workspace.bearer)
    assert orders.status_code == 200
    items = orders.json()["items"]
    assert len(items) == 1
    explained = client.get(
        f"/api/v1/orders/{items[0]['id']}/attribution", headers=workspace.bearer
    ).json()
    assert explained["attribution_stale"] is False
    assert [(t["kind"], t["channel"]) for t in explained["considered"]] == [
        ("utm", "Email"),
        ("referrer", "Organic Social"),
    ]
    credits = {m["model"]: m["credits"] for m in explained["models"]}
    assert [(c["channel"], Decimal(c["credit"])) for c in credits["first_click"]] == [
        ("Email", Decimal(1))
    ]
    assert [(c["channel"], Decimal(c["revenue"])) for c in credits["linear"]] == [
        ("Email", Decimal(40)),
        ("Organic Social", Decimal(40)),
    ]
