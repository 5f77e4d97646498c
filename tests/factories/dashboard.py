"""A small store for dashboard tests, built through the public paths (management API, tracked
link, tracking API, signed Shopify webhooks), then brought to rest: orders attributed and every
rollup recomputed, so the pages and the analytics API read the same settled numbers.

Maya runs the "Autumn edit" campaign (300 EUR fee + 100 EUR of products sent). Her tracked link
is clicked once by a crawler and once by a shopper on a phone, who views a product and buys for
120 EUR (order 9300000000000001); a second shopper uses her leaked code MAYA15 without any click
and pays 80 EUR (order 9300000000000002). Noor has no activity at all.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import orjson
from fastapi.testclient import TestClient

from storeloop.runtime import Runtime
from tests.factories.analytics import BROWSERS, message, send, settle
from tests.factories.orders import shopify_payload
from tests.factories.workspaces import WorkspaceKeys

SECRET = "shpss_dashboard_secret"
CRAWLER = "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)"
FIRST_ORDER = "9300000000000001"
CODE_ORDER = "9300000000000002"
FIRST_BUYER = "first.buyer@mail.example"
CODE_BUYER = "coupon.hunter@mail.example"


@dataclass(frozen=True)
class Store:
    day: str  # the UTC day everything happened on, YYYY-MM-DD
    maya_id: str
    noor_id: str
    campaign_id: str
    link_id: str
    link_code: str
    visitor: str
    first_order_id: str  # storeloop's id of order 9300000000000001
    code_order_id: str


def shopify_order(
    order_id: int, total: str, email: str, moment: datetime, **fields: Any
) -> dict[str, Any]:
    """Shopify's example orders/create payload, made into this order."""
    order = copy.deepcopy(shopify_payload("orders_create"))
    stamp = moment.isoformat()
    order.update(
        {
            "id": order_id,
            "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
            "name": f"#{order_id}",
            "email": email,
            "contact_email": email,
            "created_at": stamp,
            "updated_at": stamp,
            "processed_at": stamp,
            "cancelled_at": None,
            "cancel_reason": None,
            "financial_status": "paid",
            "currency": "EUR",
            "total_price": total,
            "subtotal_price": total,
            "current_total_price": total,
            "total_discounts": "0.00",
            "total_tax": "0.00",
            "discount_codes": [],
            "note_attributes": [],
            "landing_site": None,
            "referring_site": None,
            "refunds": [],
        }
    )
    order["customer"] = {**(order.get("customer") or {}), "id": order_id + 1, "email": email}
    order.update(fields)
    return order


def signed_webhook(
    workspace_id: uuid.UUID | str, order: dict[str, Any]
) -> tuple[str, bytes, dict[str, str]]:
    """(path, body, headers) of an orders/create delivery signed with SECRET."""
    body = orjson.dumps(order)
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": signature.decode(),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
    }
    return f"/webhooks/shopify/{workspace_id}", body, headers


def post_order(
    client: TestClient | httpx.Client, workspace_id: uuid.UUID | str, order: dict[str, Any]
) -> None:
    path, body, headers = signed_webhook(workspace_id, order)
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text


def _wait_for_a_whole_day_ahead() -> None:
    """Everything must happen on one UTC day: a few minutes before midnight, wait for it."""
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    if midnight - now < timedelta(minutes=5):
        time.sleep((midnight - now).total_seconds() + 1)


def make_store(client: TestClient, runtime: Runtime, workspace: WorkspaceKeys) -> Store:
    _wait_for_a_whole_day_ahead()
    api = workspace.bearer
    client.patch(
        "/api/v1/settings",
        json={"allowed_domains": ["shop.example"], "shopify_webhook_secret": SECRET},
        headers=api,
    ).raise_for_status()
    maya = client.post(
        "/api/v1/influencers", json={"name": "Maya", "handles": {"instagram": "@maya"}}, headers=api
    ).json()
    noor = client.post(
        "/api/v1/influencers", json={"name": "Noor", "handles": {"tiktok": "@noor"}}, headers=api
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
            "destination_url": "https://shop.example/autumn",
            "code": f"maya-{uuid.uuid4().hex[:6]}",
            "influencer_id": maya["id"],
            "campaign_id": campaign["id"],
        },
        headers=api,
    ).json()
    client.post(
        "/api/v1/discount-codes",
        json={"code": "MAYA15", "influencer_id": maya["id"], "campaign_id": campaign["id"]},
        headers=api,
    ).raise_for_status()
    client.post(
        "/api/v1/posts",
        json={
            "platform": "instagram",
            "kind": "reel",
            "url": "https://www.instagram.com/reel/autumn-edit/",
            "influencer_id": maya["id"],
            "campaign_id": campaign["id"],
            "reach": 12000,
            "likes": 840,
        },
        headers=api,
    ).raise_for_status()
    bot = client.get(f"/r/{link['code']}", headers={"User-Agent": CRAWLER}, follow_redirects=False)
    assert bot.status_code == 302
    client.cookies.clear()  # the crawler and the shopper are different browsers
    redirect = client.get(
        f"/r/{link['code']}", headers={"User-Agent": BROWSERS["mobile"]}, follow_redirects=False
    )
    landing = redirect.headers["location"]
    click_id = parse_qs(urlsplit(landing).query)["sl_click"][0]
    visitor = redirect.cookies["sl_aid"]
    client.cookies.clear()
    runtime.tracking.stop()  # a clean shutdown writes every click

    # After the clicks: a click after the order would not count.
    moment = datetime.now(UTC)
    page = message("page", visitor, moment, "mobile", name="Autumn")
    page["context"].update(
        {"page": {"url": landing, "path": "/autumn"}, "storeloop": {"click_id": click_id}}
    )
    viewed = message(
        "track",
        visitor,
        moment + timedelta(seconds=20),
        "mobile",
        event="Product Viewed",
        properties={"product_id": "sku-1"},
    )
    send(client, workspace, [page, viewed])
    post_order(
        client,
        workspace.id,
        shopify_order(
            int(FIRST_ORDER),
            "120.00",
            FIRST_BUYER,
            moment + timedelta(minutes=1),
            note_attributes=[{"name": "sl_aid", "value": visitor}],
        ),
    )
    post_order(
        client,
        workspace.id,
        shopify_order(
            int(CODE_ORDER),
            "80.00",
            CODE_BUYER,
            moment + timedelta(minutes=2),
            discount_codes=[{"code": "maya15", "amount": "12.00", "type": "percentage"}],
        ),
    )
    settle(runtime)
    orders = client.get("/api/v1/orders", headers=api).json()["items"]
    ids = {item["external_id"]: item["id"] for item in orders}
    return Store(
        day=moment.date().isoformat(),
        maya_id=maya["id"],
        noor_id=noor["id"],
        campaign_id=campaign["id"],
        link_id=link["id"],
        link_code=link["code"],
        visitor=visitor,
        first_order_id=ids[FIRST_ORDER],
        code_order_id=ids[CODE_ORDER],
    )
