"""Orders for tests: shop webhook bodies signed like the platforms sign them, a store's webhook
secrets, orders written through the service, and counts to assert on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import func, select

from storeloop.db import session_scope
from storeloop.models import (
    Order,
    OrderLine,
    QuarantinedEvent,
    Refund,
    WebhookDelivery,
)
from storeloop.orders.schemas import OrderInput, OrderLineInput
from storeloop.orders.service import apply_order
from storeloop.runtime import Runtime
from tests.factories.influencers import set_store_settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
WEBHOOKS = FIXTURES / "webhooks"
UCI_EXCERPT = FIXTURES / "csv" / "uci_online_retail_first300.csv"
# Shopify's example order id as the (rounded) payload holds it, read exactly as a string.
SHOPIFY_ORDER_ID = "820982911946154500"


def set_webhook_secret(
    runtime: Runtime, workspace_id: uuid.UUID, provider: str, secret: str
) -> None:
    """Store the platform's signing secret through the settings service, as the API does."""
    set_store_settings(runtime, workspace_id, **{f"{provider}_webhook_secret": secret})


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def shopify_payload(topic_file: str) -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads(
        (WEBHOOKS / "shopify" / f"{topic_file}.json").read_bytes()
    )
    return loaded


def woocommerce_payload(name: str = "order_727") -> dict[str, Any]:
    loaded: dict[str, Any] = orjson.loads((WEBHOOKS / "woocommerce" / f"{name}.json").read_bytes())
    return loaded


def shopify_headers(
    secret: str, body: bytes, topic: str, webhook_id: str | None = None
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Shopify-Hmac-Sha256": sign(secret, body),
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": "jsmith.myshopify.com",
        "X-Shopify-API-Version": "2026-04",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
    }


def woocommerce_headers(
    secret: str, body: bytes, topic: str, delivery_id: str | None = None
) -> dict[str, str]:
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Signature": sign(secret, body),
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
        "X-WC-Webhook-Source": "https://example.com/",
    }


def php_json(value: Any) -> bytes:
    """JSON the way PHP's json_encode writes it: slashes escaped as \\/."""
    return orjson.dumps(value).replace(b"/", b"\\/")


def make_order(
    runtime: Runtime,
    workspace_id: uuid.UUID,
    external_id: str = "1001",
    *,
    total: str = "59.80",
    status: str = "paid",
    source: str = "shopify",
    placed_at: datetime | None = None,
    currency: str = "EUR",
) -> uuid.UUID:
    moment = placed_at or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    order_input = OrderInput(
        external_id=external_id,
        source=source,
        source_updated_at=moment,
        placed_at=moment,
        currency=currency,
        subtotal=Decimal(total),
        discount_total=Decimal(0),
        shipping=Decimal(0),
        tax=Decimal(0),
        total=Decimal(total),
        status=status,
        lines=(OrderLineInput("sku-1", "p-1", "Thing", 1, Decimal(total)),),
    )
    with session_scope(runtime.session_factory) as session:
        result = apply_order(
            session, runtime.keyring.cipher(workspace_id), workspace_id, order_input
        )
    assert result.order_id is not None
    return result.order_id


def _count(runtime: Runtime, model: Any, workspace_id: uuid.UUID) -> int:
    with runtime.session_factory() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(model).where(model.workspace_id == workspace_id)
            )
            or 0
        )


def counts(runtime: Runtime, workspace_id: uuid.UUID) -> dict[str, int]:
    """Rows of every table a webhook may write, for asserting that nothing happened."""
    return {
        "orders": _count(runtime, Order, workspace_id),
        "lines": _count(runtime, OrderLine, workspace_id),
        "refunds": _count(runtime, Refund, workspace_id),
        "deliveries": _count(runtime, WebhookDelivery, workspace_id),
        "quarantine": _count(runtime, QuarantinedEvent, workspace_id),
    }


def order_row(runtime: Runtime, workspace_id: uuid.UUID, external_id: str) -> Order:
    with runtime.session_factory() as session:
        order = session.scalar(
            select(Order).where(
                Order.workspace_id == workspace_id, Order.external_id == external_id
            )
        )
        assert order is not None, f"no order {external_id}"
        session.expunge(order)
        return order
