"""Storefront traffic for analytics tests, and a way to bring every queue to rest."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from storeloop.analytics.tasks import drain
from storeloop.db import begin_write
from storeloop.runtime import Runtime
from tests.factories.workspaces import WorkspaceKeys

BROWSERS = {
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
}
CAMPAIGNS = (
    {"source": "instagram", "medium": "social", "name": "spring"},
    {"source": "google", "medium": "cpc", "name": "brand"},
    {"source": "newsletter", "medium": "email", "name": "april"},
)


def settle(runtime: Runtime) -> None:
    """Process the inbox, derive orders and touchpoints, attribute, and roll up every dirty day."""
    runtime.processor.drain()
    runtime.derivations.drain()
    with runtime.session_factory() as session:
        begin_write(session)
        drain(session)
        session.commit()


def send(client: TestClient, workspace: WorkspaceKeys, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 100):
        response = client.post(
            "/v1/batch", json={"batch": messages[start : start + 100]}, headers=workspace.basic_auth
        )
        assert response.status_code == 200, response.text


def message(
    kind: str, anonymous_id: str, at: datetime, device: str, **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": kind,
        "messageId": str(uuid.uuid4()),
        "anonymousId": anonymous_id,
        "timestamp": at.isoformat(),
        "context": {"userAgent": BROWSERS[device], "ip": "203.0.113.7"},
    }
    body.update(fields)
    return body


@dataclass
class Traffic:
    messages: list[dict[str, Any]] = field(default_factory=list)
    order_ids: list[str] = field(default_factory=list)


def storefront_traffic(first_day: datetime, days: int, visitors: int, seed: int = 11) -> Traffic:
    """Visits over ``days`` days from ``first_day`` (midnight UTC): landings with and without UTM
    tags, product views, carts, checkouts (some abandoned), orders by returning customers,
    refunds, identified visitors whose anonymous ids merge, and a visit across midnight."""
    rng = random.Random(seed)
    traffic = Traffic()
    customers = [f"customer-{n}@example.com" for n in range(max(2, visitors // 3))]
    for number in range(visitors):
        anonymous_id = f"anon-{seed}-{number}"
        device = rng.choice(("mobile", "desktop"))
        for _visit in range(rng.randint(1, 3)):
            at = first_day + timedelta(
                days=rng.randrange(days), hours=rng.randint(0, 23), minutes=rng.randint(0, 59)
            )
            page: dict[str, Any] = {"path": "/", "url": "https://shop.example/"}
            context_extra: dict[str, Any] = {}
            if rng.random() < 0.6:
                campaign = rng.choice(CAMPAIGNS)
                page["url"] = (
                    f"https://shop.example/?utm_source={campaign['source']}"
                    f"&utm_medium={campaign['medium']}&utm_campaign={campaign['name']}"
                )
                page["search"] = page["url"].split("?", 1)[1]
                context_extra["campaign"] = campaign
            first = message("page", anonymous_id, at, device, name="Home")
            first["context"].update({"page": page, **context_extra})
            traffic.messages.append(first)
            steps = [("Product Viewed", 0.8), ("Product Added", 0.5), ("Checkout Started", 0.6)]
            reached = 0
            for event_name, chance in steps:
                if rng.random() >= chance:
                    break
                at += timedelta(minutes=rng.randint(1, 12))
                traffic.messages.append(
                    message(
                        "track",
                        anonymous_id,
                        at,
                        device,
                        event=event_name,
                        properties={"product_id": "sku-1", "price": 30},
                    )
                )
                reached += 1
            if reached == 3 and rng.random() < 0.6:
                email = rng.choice(customers)
                at += timedelta(minutes=rng.randint(1, 20))
                traffic.messages.append(
                    message(
                        "identify", anonymous_id, at, device, userId=email, traits={"email": email}
                    )
                )
                order_id = f"A-{seed}-{len(traffic.order_ids)}"
                total = rng.choice((30, 45.5, 89.9, 120))
                traffic.messages.append(
                    message(
                        "track",
                        anonymous_id,
                        at + timedelta(seconds=30),
                        device,
                        userId=email,
                        event="Order Completed",
                        properties={
                            "order_id": order_id,
                            "total": total,
                            "revenue": total,
                            "currency": "EUR",
                            "products": [{"product_id": "sku-1", "price": total, "quantity": 1}],
                        },
                    )
                )
                traffic.order_ids.append(order_id)
                if rng.random() < 0.25:
                    traffic.messages.append(
                        message(
                            "track",
                            anonymous_id,
                            at + timedelta(hours=2),
                            device,
                            userId=email,
                            event="Order Refunded",
                            properties={"order_id": order_id, "total": round(total / 2, 2)},
                        )
                    )
    # A visit that goes on past midnight: two sessions, one on each day.
    late = first_day + timedelta(hours=23, minutes=50)
    for minutes in (0, 15):
        traffic.messages.append(
            message(
                "page", "anon-midnight", late + timedelta(minutes=minutes), "mobile", name="Home"
            )
        )
    return traffic
