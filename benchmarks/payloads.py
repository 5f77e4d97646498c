"""Realistic Segment batches for the ingestion benchmark: an online clothing store's traffic.

Each visitor browses (page, Product Viewed), some add to cart, start a checkout, identify
themselves and complete an order with ``products[]``. Every event carries the context a browser
SDK sends (ip, userAgent, page, campaign, library...), about 1 KB of JSON, and a unique
``messageId``. Journeys are interleaved and cut into batches of ``batch_size`` events, the way a
server-side SDK or a gateway forwards them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

PRODUCTS = [
    ("sku-tee-white-m", "Organic cotton tee, white", "T-shirts", "Northwind", 24.0),
    ("sku-tee-black-l", "Organic cotton tee, black", "T-shirts", "Northwind", 24.0),
    ("sku-hoodie-sage-m", "Brushed fleece hoodie, sage", "Hoodies", "Fjell", 69.0),
    ("sku-jeans-slim-32", "Slim fit selvedge jeans", "Jeans", "Indigo & Co", 89.0),
    ("sku-dress-linen-s", "Linen wrap dress, sand", "Dresses", "Maris", 119.0),
    ("sku-cap-navy", "Six-panel cap, navy", "Accessories", "Northwind", 19.0),
    ("sku-socks-3pk", "Merino socks, 3-pack", "Accessories", "Fjell", 14.0),
    ("sku-jacket-denim-m", "Denim trucker jacket", "Jackets", "Indigo & Co", 139.0),
    ("sku-sneaker-white-42", "Leather court sneaker, white", "Shoes", "Pace", 110.0),
    ("sku-scarf-wool", "Lambswool scarf, oat", "Accessories", "Maris", 45.0),
]
CAMPAIGNS = [
    {"source": "instagram", "medium": "social", "name": "spring-drop", "content": "story-anna"},
    {"source": "tiktok", "medium": "social", "name": "spring-drop", "content": "video-lea"},
    {"source": "google", "medium": "cpc", "name": "brand", "term": "organic tee"},
    {"source": "newsletter", "medium": "email", "name": "week-14"},
    None,
]
USER_AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36 Instagram 327.0.0.42.90",
]
SHOP = "https://shop.example.com"
# analytics.js style ids; the wrk script can replace the zeros per request to make ids unique.
MESSAGE_ID_PREFIX = "ajs-00000000-"


@dataclass
class _Visitor:
    """One browsing session; ``clock`` advances with every event it emits."""

    number: int
    anonymous_id: str
    context: dict[str, Any]
    clock: datetime
    rng: random.Random

    def at(self, low: float, high: float) -> str:
        self.clock += timedelta(seconds=self.rng.uniform(low, high))
        return self.clock.isoformat()


def _context(rng: random.Random, path: str, title: str) -> dict[str, Any]:
    campaign = rng.choice(CAMPAIGNS)
    search = "" if campaign is None else "?utm_source=" + campaign["source"]
    context: dict[str, Any] = {
        "ip": f"203.0.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "userAgent": rng.choice(USER_AGENTS),
        "locale": rng.choice(["en-GB", "de-DE", "fr-FR", "nl-NL"]),
        "timezone": "Europe/Berlin",
        "library": {"name": "analytics.js", "version": "4.1.0"},
        "screen": {"width": 390, "height": 844, "density": 3},
        "page": {
            "path": path,
            "referrer": "https://l.instagram.com/",
            "search": search,
            "title": title,
            "url": SHOP + path + search,
        },
    }
    if campaign is not None:
        context["campaign"] = campaign
    return context


def _product(rng: random.Random, quantity: int | None = None) -> dict[str, Any]:
    sku, name, category, brand, price = rng.choice(PRODUCTS)
    product: dict[str, Any] = {
        "product_id": sku,
        "sku": sku,
        "name": name,
        "category": category,
        "brand": brand,
        "variant": sku.rsplit("-", 1)[-1],
        "price": price,
        "url": f"{SHOP}/products/{sku}",
        "image_url": f"https://cdn.shop.example.com/img/{sku}.jpg",
    }
    if quantity is not None:
        product["quantity"] = quantity
    return product


def _base(visitor: _Visitor, kind: str, low: float, high: float) -> dict[str, Any]:
    return {
        "type": kind,
        "messageId": MESSAGE_ID_PREFIX
        + str(uuid.UUID(int=visitor.rng.getrandbits(128), version=4)),
        "anonymousId": visitor.anonymous_id,
        "timestamp": visitor.at(low, high),
        "context": visitor.context,
        "integrations": {"All": True},
    }


def _page(visitor: _Visitor, name: str, path: str = "/") -> dict[str, Any]:
    page = {**visitor.context["page"], "path": path, "title": name, "url": SHOP + path}
    visitor.context = {**visitor.context, "page": page}
    event = _base(visitor, "page", 2, 40)
    event["name"] = name
    event["properties"] = {"path": visitor.context["page"]["path"], "title": name}
    return event


def _track(visitor: _Visitor, name: str, properties: dict[str, Any]) -> dict[str, Any]:
    event = _base(visitor, "track", 5, 90)
    event["event"] = name
    event["properties"] = properties
    return event


def _identify(visitor: _Visitor, user_id: str) -> dict[str, Any]:
    event = _base(visitor, "identify", 10, 60)
    event["userId"] = user_id
    event["traits"] = {
        "email": f"customer{visitor.number:06d}@example.com",
        "phone": f"+4915{visitor.number:09d}",
        "first_name": visitor.rng.choice(["Ana", "Ben", "Chloé", "Dev", "Eli", "Fatima"]),
        "last_name": visitor.rng.choice(["Schmidt", "Dubois", "Jansen", "Rossi"]),
        "address": {"city": "Berlin", "country": "DE", "postal_code": "10115"},
        "newsletter": visitor.rng.random() < 0.5,
    }
    return event


def _order(visitor: _Visitor, user_id: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    revenue = round(sum(item["price"] * item["quantity"] for item in items), 2)
    event = _track(
        visitor,
        "Order Completed",
        {
            "order_id": f"order-{visitor.number:07d}",
            "checkout_id": f"chk-{visitor.number:07d}",
            "total": round(revenue + 4.9, 2),
            "revenue": revenue,
            "shipping": 4.9,
            "tax": round(revenue * 0.19, 2),
            "discount": 0,
            "coupon": visitor.rng.choice(["", "ANNA10", "LEA15"]),
            "currency": "EUR",
            "products": items,
        },
    )
    event["userId"] = user_id
    return event


def journey(visitor: _Visitor) -> Iterator[dict[str, Any]]:
    """One visit: landing page, product views, and sometimes a cart, checkout and order."""
    rng = visitor.rng
    yield _page(visitor, "Home")
    viewed = [_product(rng) for _ in range(rng.randint(1, 4))]
    for product in viewed:
        yield _page(visitor, product["name"], "/products/" + product["sku"])
        yield _track(visitor, "Product Viewed", {**product, "currency": "EUR"})
    if rng.random() < 0.55:
        return
    items = [{**product, "quantity": rng.randint(1, 2)} for product in viewed[:2]]
    for item in items:
        yield _track(visitor, "Product Added", {**item, "cart_id": f"cart-{visitor.number}"})
    if rng.random() < 0.4:
        return
    value = round(sum(item["price"] * item["quantity"] for item in items), 2)
    yield _track(
        visitor, "Checkout Started", {"value": value, "currency": "EUR", "products": items}
    )
    user_id = f"customer-{visitor.number:06d}"
    yield _identify(visitor, user_id)
    if rng.random() < 0.7:
        yield _order(visitor, user_id, items)


def events(count: int, *, seed: int = 20240401, now: datetime | None = None) -> list[Any]:
    """``count`` events from interleaved visits during the hour before ``now``."""
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    produced: list[dict[str, Any]] = []
    active: list[Iterator[dict[str, Any]]] = []
    number = 0
    while len(produced) < count:
        while len(active) < 20:
            number += 1
            visitor = _Visitor(
                number=number,
                anonymous_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                context=_context(rng, "/", "Home"),
                clock=now - timedelta(minutes=rng.uniform(30, 60)),
                rng=random.Random(rng.getrandbits(64)),
            )
            active.append(journey(visitor))
        stream = rng.choice(active)
        event = next(stream, None)
        if event is None:
            active.remove(stream)
        else:
            produced.append(event)
    return produced


def batch_bodies(
    pool: int, batch_size: int = 100, *, now: datetime | None = None, refused_every: int = 0
) -> list[bytes]:
    """``pool`` distinct JSON bodies of ``batch_size`` events each, as /v1/batch receives them.
    ``refused_every``: one event of every so many bodies has an unreadable timestamp (the API
    refuses it and keeps the others)."""
    now = now or datetime.now(UTC)
    all_events = events(pool * batch_size, now=now)
    sent_at = now.isoformat()
    bodies = []
    for number, start in enumerate(range(0, len(all_events), batch_size)):
        batch = all_events[start : start + batch_size]
        if refused_every and number % refused_every == 0:
            batch[len(batch) // 2] = {**batch[len(batch) // 2], "timestamp": "not a time"}
        bodies.append(orjson.dumps({"batch": batch, "sentAt": sent_at}))
    return bodies
