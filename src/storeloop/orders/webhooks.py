"""Shop platform webhooks: verify the signature, drop duplicates, apply the order.

The caller (the HTTP endpoint) owns the transaction: it commits after ``receive`` returns, and
on ``InvalidPayload`` it rolls back and stores the quarantine entry on its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.orm import Session

from storeloop.influencers.service import WebhookProvider, webhook_secret
from storeloop.integrations import shopify, woocommerce
from storeloop.integrations.common import signature_matches
from storeloop.kit.crypto import DecryptionError
from storeloop.kit.errors import Conflict, NotFound, Unauthorized
from storeloop.orders.schemas import InvalidPayload
from storeloop.orders.service import OrderWriter
from storeloop.workspaces.keyring import Keyring

MAX_WEBHOOK_BYTES = 5 * 1024 * 1024
PROVIDERS: tuple[WebhookProvider, ...] = ("shopify", "woocommerce")
SIGNATURE_HEADERS = {"shopify": "x-shopify-hmac-sha256", "woocommerce": "x-wc-webhook-signature"}
TOPIC_HEADERS = {"shopify": "x-shopify-topic", "woocommerce": "x-wc-webhook-topic"}
DELIVERY_HEADERS = {"shopify": "x-shopify-webhook-id", "woocommerce": "x-wc-webhook-delivery-id"}


class InvalidSignature(Unauthorized):
    code = "invalid_signature"


class ConcurrentDelivery(Conflict):
    code = "concurrent_delivery"


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    # applied | stale | duplicate | ignored | ping | unknown_order
    status: str
    topic: str | None = None
    order_id: uuid.UUID | None = None

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status}
        if self.topic is not None:
            body["topic"] = self.topic
        if self.order_id is not None:
            body["order_id"] = str(self.order_id)
        return body


def parse_workspace_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidSignature("the webhook signature is missing or wrong") from None


def verify(
    session: Session,
    keyring: Keyring,
    workspace_id: uuid.UUID,
    provider: str,
    body: bytes,
    headers: Mapping[str, str],
) -> None:
    """Raise InvalidSignature unless the body is signed with the workspace's secret. An unknown
    workspace, one without a secret and a wrong signature all look the same to the caller."""
    header = headers.get(SIGNATURE_HEADERS[provider])
    if provider not in PROVIDERS or not header:
        raise InvalidSignature("the webhook signature is missing or wrong")
    try:
        secret = webhook_secret(session, keyring.cipher(workspace_id), workspace_id, provider)
    except (NotFound, DecryptionError):
        # An unknown workspace (NotFound from the keyring) looks like a wrong signature.
        raise InvalidSignature("the webhook signature is missing or wrong") from None
    if secret is None or not signature_matches(secret, body, header):
        raise InvalidSignature("the webhook signature is missing or wrong")


def is_woocommerce_ping(body: bytes, headers: Mapping[str, str]) -> bool:
    return (
        not headers.get(TOPIC_HEADERS["woocommerce"])
        and woocommerce.PING_BODY.match(body.strip()) is not None
    )


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidPayload("the body is not JSON", reason="invalid_json") from None


def receive(
    session: Session,
    keyring: Keyring,
    workspace_id: uuid.UUID,
    provider: str,
    body: bytes,
    headers: Mapping[str, str],
) -> WebhookOutcome:
    """Apply one verified delivery. Flushes, never commits."""
    topic = headers.get(TOPIC_HEADERS[provider], "")
    delivery_id = headers.get(DELIVERY_HEADERS[provider])
    if provider == "shopify":
        known = shopify.ORDER_TOPICS | {shopify.REFUND_TOPIC, shopify.CHECKOUT_TOPIC}
    else:
        known = woocommerce.ORDER_TOPICS
    if topic not in known:
        # Platforms disable endpoints that keep failing: other topics are acknowledged.
        return WebhookOutcome("ignored", topic or None)
    writer = OrderWriter(session, keyring.cipher(workspace_id), workspace_id)
    if delivery_id and writer.delivery_seen(provider, delivery_id):
        return WebhookOutcome("duplicate", topic)
    payload = _json(body)
    outcome = _apply(writer, provider, topic, payload)
    if delivery_id:
        writer.record_delivery(provider, delivery_id, topic)
    return outcome


def _apply(writer: OrderWriter, provider: str, topic: str, payload: Any) -> WebhookOutcome:
    if provider == "shopify" and topic == shopify.CHECKOUT_TOPIC:
        # A checkout is not an order; cart abandonment is read from events (Checkout Started).
        return WebhookOutcome("ignored", topic)
    if provider == "shopify" and topic == shopify.REFUND_TOPIC:
        refund = shopify.refund_input(payload)
        order_id = shopify.refund_order_id(payload)
        if not writer.add_refunds(order_id, [refund], provider):
            # The order itself has not arrived yet: its orders/updated delivery lists this
            # refund too, so nothing is lost by acknowledging.
            return WebhookOutcome("unknown_order", topic)
        order = writer.repository.by_external_id(order_id)
        return WebhookOutcome("applied", topic, order.id if order else None)
    order_input = (
        shopify.order_input(payload) if provider == "shopify" else woocommerce.order_input(payload)
    )
    result = writer.apply([order_input])[0]
    status = "stale" if result.outcome == "stale" else "applied"
    return WebhookOutcome(status, topic, result.order_id)


def quarantine(
    session: Session,
    keyring: Keyring,
    workspace_id: uuid.UUID,
    provider: str,
    error: InvalidPayload,
    body: bytes,
    headers: Mapping[str, str],
) -> None:
    """Keep a refused payload, one open entry per (provider, delivery id)."""
    OrderWriter(session, keyring.cipher(workspace_id), workspace_id).quarantine(
        source=provider,
        reason=error.reason,
        field=error.field,
        detail=error.message,
        raw=body,
        message_id=headers.get(DELIVERY_HEADERS[provider]) or None,
    )
