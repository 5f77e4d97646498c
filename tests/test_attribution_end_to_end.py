"""Issue 3 as a store would live it, through the public paths only.

An influencer, a campaign, a tracked link and a discount code are set up through the management
API; a shopper clicks the link, browses (tracking API), and buys (a signed Shopify webhook); a
second shopper uses the leaked discount code without any click. The order explanations and the
influencer report must tell both stories.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from fastapi.testclient import TestClient

from storeloop.runtime import Runtime
from tests.factories.dashboard import shopify_order as _shopify_order
from tests.factories.workspaces import WorkspaceKeys

SECRET = "shpss_end_to_end_secret"
BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


def _post_order(client: TestClient, workspace: WorkspaceKeys, order: dict[str, Any]) -> None:
    body = orjson.dumps(order)
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())
    response = client.post(
        f"/webhooks/shopify/{workspace.id}",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Hmac-Sha256": signature.decode(),
            "X-Shopify-Topic": "orders/create",
            "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        },
    )
    assert response.status_code == 200, response.text


def _order_id(client: TestClient, workspace: WorkspaceKeys, external_id: str) -> str:
    items = client.get("/api/v1/orders", headers=workspace.bearer).json()["items"]
    return next(item["id"] for item in items if item["external_id"] == external_id)


def test_a_click_and_a_leaked_code_explained(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    api = workspace.bearer
    settings = client.patch(
        "/api/v1/settings",
        json={"allowed_domains": ["shop.example"], "shopify_webhook_secret": SECRET},
        headers=api,
    )
    assert settings.status_code == 200, settings.text
    maya = client.post(
        "/api/v1/influencers",
        json={"name": "Maya Lindqvist", "handles": {"instagram": "@maya.wears"}},
        headers=api,
    ).json()
    campaign = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Autumn edit",
            "influencer_ids": [maya["id"]],
            "currency": "EUR",
            "fee": "300.00",
            "seeding_cost": "100.00",
        },
        headers=api,
    ).json()
    link = client.post(
        "/api/v1/links",
        json={
            "destination_url": "https://shop.example/collections/autumn",
            "code": f"maya-{uuid.uuid4().hex[:6]}",
            "influencer_id": maya["id"],
            "campaign_id": campaign["id"],
        },
        headers=api,
    ).json()
    code = client.post(
        "/api/v1/discount-codes",
        json={"code": "MAYA15", "influencer_id": maya["id"], "campaign_id": campaign["id"]},
        headers=api,
    )
    assert code.status_code == 201, code.text

    # Shopper 1 clicks Maya's link in Safari and lands on the shop.
    redirect = client.get(
        f"/r/{link['code'].upper()}", headers={"User-Agent": BROWSER}, follow_redirects=False
    )
    assert redirect.status_code == 302
    landing = redirect.headers["location"]
    query = parse_qs(urlsplit(landing).query)
    click_id = query["sl_click"][0]
    assert query["utm_source"] == ["@maya.wears"] or query["utm_source"] == ["maya.wears"]
    visitor = redirect.cookies["sl_aid"]
    runtime.tracking.stop()  # a clean shutdown writes every click

    # The storefront script reports the landing, with the click id it read from the URL.
    now = datetime.now(UTC)
    page = {
        "type": "page",
        "messageId": str(uuid.uuid4()),
        "anonymousId": visitor,
        "timestamp": now.isoformat(),
        "context": {
            "userAgent": BROWSER,
            "page": {"url": landing, "path": "/collections/autumn", "referrer": ""},
            "storeloop": {"click_id": click_id},
        },
    }
    response = client.post("/v1/batch", json={"batch": [page]}, headers=workspace.basic_auth)
    assert response.status_code == 200

    # Shopper 1 buys (the theme passes the visitor id as a cart attribute); shopper 2 buys with
    # the leaked code and no click at all.
    _post_order(
        client,
        workspace,
        _shopify_order(
            9_100_000_000_000_001,
            "120.00",
            "first.buyer@mail.example",
            now + timedelta(minutes=1),
            note_attributes=[{"name": "sl_aid", "value": visitor}],
        ),
    )
    _post_order(
        client,
        workspace,
        _shopify_order(
            9_100_000_000_000_002,
            "80.00",
            "coupon.hunter@mail.example",
            now + timedelta(minutes=2),
            discount_codes=[{"code": "maya15", "amount": "14.12", "type": "percentage"}],
            referring_site="https://www.couponfollow.example/site/shop.example",
        ),
    )
    runtime.processor.drain()
    runtime.derivations.drain()

    clicked = client.get(
        f"/api/v1/orders/{_order_id(client, workspace, '9100000000000001')}/attribution",
        headers=api,
    ).json()
    last_click = next(m for m in clicked["models"] if m["model"] == "last_click")
    assert [(c["channel"], c["influencer_id"], c["credit"]) for c in last_click["credits"]] == [
        ("Influencer", maya["id"], "1.000000000000")
    ]
    assert [t["kind"] for t in clicked["considered"] if t["kind"] == "click"] == ["click"]

    leaked = client.get(
        f"/api/v1/orders/{_order_id(client, workspace, '9100000000000002')}/attribution",
        headers=api,
    ).json()
    assert leaked["rule"] == "code_precedence"
    leaked_last = next(m for m in leaked["models"] if m["model"] == "last_click")
    assert [(c["influencer_id"], c["revenue"]) for c in leaked_last["credits"]] == [
        (maya["id"], "80.0000")
    ]

    report = client.get(
        "/api/v1/attribution/report",
        params={"group_by": "influencer", "model": "last_click"},
        headers=api,
    ).json()
    row = next(item for item in report["rows"] if item["key"] == maya["id"])
    assert Decimal(row["orders"]) == 2
    assert Decimal(row["attributed_revenue"]) == Decimal("200.00")
    assert Decimal(row["cost"]) == Decimal("400.00")
    assert Decimal(row["roas"]) == Decimal("0.5")
