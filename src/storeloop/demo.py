"""A small believable sample for the demo, sent through the real tracking API over HTTP."""

from __future__ import annotations

import base64
import json
import random
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

PRODUCTS = [
    ("sku-tee-white", "Organic tee, white", "T-shirts", 24.0),
    ("sku-tee-black", "Organic tee, black", "T-shirts", 24.0),
    ("sku-hoodie-sage", "Hoodie, sage", "Hoodies", 69.0),
    ("sku-jeans-slim", "Slim jeans", "Jeans", 89.0),
    ("sku-dress-linen", "Linen dress", "Dresses", 119.0),
    ("sku-cap-navy", "Cap, navy", "Accessories", 19.0),
    ("sku-socks-3", "Socks, 3-pack", "Accessories", 14.0),
    ("sku-jacket-denim", "Denim jacket", "Jackets", 139.0),
]
SOURCES = [
    ("instagram", "social", "spring-drop"),
    ("tiktok", "social", "spring-drop"),
    ("google", "cpc", "brand"),
    (None, None, None),
]


def sample_events(
    visitors: int, *, seed: int = 7, now: datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Sessions over the last 14 days: page views, product views, carts, checkouts, orders."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    for number in range(visitors):
        anonymous_id = str(uuid.UUID(int=rng.getrandbits(128)))
        start = now - timedelta(days=rng.uniform(0, 14))
        source, medium, campaign = rng.choice(SOURCES)
        context: dict[str, Any] = {"userAgent": "Mozilla/5.0 (demo)", "locale": "en-GB"}
        if source:
            context["campaign"] = {"source": source, "medium": medium, "name": campaign}
        clock = start

        def at(step_seconds: float) -> str:
            nonlocal clock
            clock += timedelta(seconds=step_seconds)
            return clock.isoformat()

        yield {
            "type": "page",
            "anonymousId": anonymous_id,
            "name": "Home",
            "timestamp": at(0),
            "context": {**context, "page": {"path": "/", "url": "https://shop.example/"}},
        }
        viewed = rng.sample(PRODUCTS, k=rng.randint(1, 3))
        for sku, name, category, price in viewed:
            yield {
                "type": "track",
                "anonymousId": anonymous_id,
                "event": "Product Viewed",
                "timestamp": at(rng.uniform(5, 60)),
                "context": context,
                "properties": {
                    "product_id": sku,
                    "sku": sku,
                    "name": name,
                    "category": category,
                    "price": price,
                    "currency": "EUR",
                },
            }
        if rng.random() > 0.35:
            continue
        sku, name, category, price = viewed[0]
        quantity = rng.randint(1, 2)
        item = {
            "product_id": sku,
            "sku": sku,
            "name": name,
            "category": category,
            "price": price,
            "quantity": quantity,
        }
        yield {
            "type": "track",
            "anonymousId": anonymous_id,
            "event": "Product Added",
            "timestamp": at(rng.uniform(5, 60)),
            "context": context,
            "properties": {**item, "currency": "EUR"},
        }
        if rng.random() > 0.6:
            continue
        yield {
            "type": "track",
            "anonymousId": anonymous_id,
            "event": "Checkout Started",
            "timestamp": at(rng.uniform(10, 90)),
            "context": context,
            "properties": {"value": price * quantity, "currency": "EUR", "products": [item]},
        }
        if rng.random() > 0.7:
            continue
        user_id = f"customer-{number:05d}"
        yield {
            "type": "identify",
            "anonymousId": anonymous_id,
            "userId": user_id,
            "timestamp": at(rng.uniform(10, 60)),
            "context": context,
            "traits": {
                "email": f"customer{number:05d}@example.com",
                "first_name": rng.choice(["Ana", "Ben", "Chloé", "Dev", "Eli"]),
                "plan": "newsletter" if rng.random() < 0.5 else "none",
            },
        }
        total = round(price * quantity + 4.9, 2)
        yield {
            "type": "track",
            "anonymousId": anonymous_id,
            "userId": user_id,
            "event": "Order Completed",
            "timestamp": at(rng.uniform(20, 120)),
            "context": context,
            "properties": {
                "order_id": f"demo-{number:05d}",
                "total": total,
                "revenue": round(price * quantity, 2),
                "shipping": 4.9,
                "currency": "EUR",
                "products": [item],
            },
        }


def send(
    base_url: str,
    write_key: str,
    events: list[dict[str, Any]],
    progress: Callable[[int], None],
    batch_size: int = 100,
) -> int:
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    sent = 0
    for start in range(0, len(events), batch_size):
        batch = events[start : start + batch_size]
        body = json.dumps({"batch": batch, "sentAt": datetime.now(UTC).isoformat()}).encode()
        request = urllib.request.Request(
            f"{base_url}/v1/batch",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
        sent += len(batch)
        progress(len(batch))
    return sent
