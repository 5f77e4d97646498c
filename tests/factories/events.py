"""Segment messages for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def track(event: str = "Product Viewed", **fields: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "messageId": str(uuid.uuid4()),
        "anonymousId": "anon-" + uuid.uuid4().hex[:8],
        "timestamp": now_iso(),
        "properties": {"product_id": "sku-1", "price": 19.9},
    }
    message.update(fields)
    return message


def order_completed(order_id: str = "1001", total: float = 59.8, **fields: Any) -> dict[str, Any]:
    properties = {
        "order_id": order_id,
        "total": total,
        "revenue": total,
        "currency": "EUR",
        "products": [{"product_id": "sku-1", "sku": "sku-1", "price": 29.9, "quantity": 2}],
    }
    return track("Order Completed", **{"properties": properties, **fields})
