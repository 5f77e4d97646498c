"""Real tracking SDKs against a real server: clients, a storefront session, and a lossy proxy.

``LoseFirstAcks`` wraps the ASGI app: the first N tracking POSTs are processed for real (their
events are stored) but answered 503, which is what an SDK sees when a load balancer times out
after the server committed. ``ThreadedServer`` serves any ASGI callable under uvicorn.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import uvicorn
from rudderstack.analytics.client import Client as RudderStackClient
from segment.analytics.client import Client as SegmentClient
from sqlalchemy import select

from storeloop.models import Event
from storeloop.runtime import Runtime

SDKS = ("segment", "rudderstack")


@dataclass
class SdkErrors:
    """What the SDK reported through its on_error callback (it never raises from its thread)."""

    calls: list[tuple[int | None, int]] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)

    def __call__(self, error: Exception, batch: list[dict[str, Any]]) -> None:
        """Records (HTTP status if the SDK saw an API error, batch size)."""
        self.calls.append((getattr(error, "status", None), len(batch)))
        self.errors.append(error)


def make_client(sdk: str, host: str, write_key: str, **options: Any) -> Any:
    """An unchanged official client pointed at ``host``; options are its own constructor args."""
    if sdk == "segment":
        return SegmentClient(write_key=write_key, host=host, **options)
    if sdk == "rudderstack":
        # RudderStack calls it the data plane URL; the client's argument is still ``host``.
        return RudderStackClient(write_key=write_key, host=host, **options)
    raise ValueError(sdk)


@dataclass(frozen=True)
class Expected:
    """The columns an event should be stored with."""

    type: str
    event: str | None
    user_id: str | None
    anonymous_id: str | None
    order_id: str | None = None
    revenue: Decimal | None = None
    currency: str | None = None


def send_storefront_session(client: Any) -> dict[str, Expected]:
    """A shopper's visit through every call type, ending in an order; messageId -> expected row."""
    tag = uuid.uuid4().hex[:8]
    anon = f"anon-{tag}"
    user = f"user-{tag}"
    order = f"A-{tag}"
    products = [
        {"product_id": "sku-1", "sku": "sku-1", "name": "Mug", "price": 12.5, "quantity": 2},
        {"product_id": "sku-2", "sku": "sku-2", "name": "Tea", "price": "9.90", "quantity": 1},
    ]
    calls: list[tuple[tuple[bool, dict[str, Any]], Expected]] = [
        (
            client.page(
                anonymous_id=anon, category="Landing", name="Home", properties={"path": "/"}
            ),
            Expected("page", "Home", None, anon),
        ),
        (
            client.track(
                anonymous_id=anon,
                event="Product Viewed",
                properties={"product_id": "sku-1", "sku": "sku-1", "price": 12.5},
            ),
            Expected("track", "Product Viewed", None, anon),
        ),
        (
            client.track(
                anonymous_id=anon,
                event="Product Added",
                properties={"product_id": "sku-1", "price": 12.5, "quantity": 2},
            ),
            Expected("track", "Product Added", None, anon),
        ),
        (
            client.identify(
                user_id=user,
                anonymous_id=anon,
                traits={"email": f"{user}@example.com", "plan": "vip"},
            ),
            Expected("identify", None, user, anon),
        ),
        (client.alias(previous_id=anon, user_id=user), Expected("alias", None, user, None)),
        (
            client.group(user_id=user, group_id=f"company-{tag}", traits={"name": "Acme"}),
            Expected("group", None, user, None),
        ),
        (client.screen(user_id=user, name="Cart"), Expected("screen", "Cart", user, None)),
        (
            client.track(
                user_id=user,
                event="Order Completed",
                properties={
                    "order_id": order,
                    "total": 34.9,
                    "revenue": 34.9,
                    "shipping": 4.5,
                    "currency": "eur",
                    "coupon": "WELCOME",
                    "products": products,
                },
            ),
            Expected("track", "Order Completed", user, None, order, Decimal("34.9"), "EUR"),
        ),
    ]
    expected: dict[str, Expected] = {}
    for (queued, message), row in calls:
        assert queued is True
        expected[message["messageId"]] = row
    assert len(expected) == len(calls)
    return expected


def send_tracks(client: Any, count: int) -> list[str]:
    ids = []
    for number in range(count):
        queued, message = client.track(
            anonymous_id=f"bulk-{number % 7}", event="Product Viewed", properties={"n": number}
        )
        assert queued is True
        ids.append(message["messageId"])
    return ids


def stored_events(runtime: Runtime, workspace_id: uuid.UUID) -> dict[str, Expected]:
    """messageId -> stored columns, for every event of the workspace."""
    with runtime.session_factory() as session:
        rows = session.scalars(select(Event).where(Event.workspace_id == workspace_id)).all()
    stored: dict[str, Expected] = {}
    for row in rows:
        assert row.message_id not in stored
        stored[row.message_id] = Expected(
            row.type,
            row.event,
            row.user_id,
            row.anonymous_id,
            row.order_id,
            None if row.revenue is None else row.revenue.normalize(),
            row.currency,
        )
    return stored


@dataclass
class SeenRequest:
    """One request the proxy saw: its messageIds, what the app answered, what the SDK got."""

    message_ids: list[str]
    app_status: int
    sent_status: int
    retry_header: str | None


def _message_ids(body: bytes, encoding: str | None) -> list[str]:
    if encoding == "gzip":
        body = gzip.decompress(body)
    document = orjson.loads(body)
    return [message["messageId"] for message in document["batch"]]


class LoseFirstAcks:
    """ASGI middleware: the first ``failures`` POSTs to ``path`` are fully processed by the app
    (so their events ARE stored), then answered 503 instead of the app's real response."""

    LOST = orjson.dumps({"error": {"code": "ack_lost", "message": "gateway timeout (test)"}})

    def __init__(self, app: Callable[..., Any], failures: int, path: str = "/v1/batch") -> None:
        self.app = app
        self.remaining = failures
        self.path = path
        self.seen: list[SeenRequest] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        headers = {key.decode().lower(): value.decode() for key, value in scope["headers"]}
        chunks: list[bytes] = []
        status: list[int] = []

        async def recording_receive() -> dict[str, Any]:
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        lose = self.remaining > 0
        if lose:
            self.remaining -= 1

        async def forward(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            if not lose:
                await send(message)

        await self.app(scope, recording_receive, forward)
        if lose:
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(self.LOST)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": self.LOST})
        self.seen.append(
            SeenRequest(
                _message_ids(b"".join(chunks), headers.get("content-encoding")),
                status[0],
                503 if lose else status[0],
                headers.get("x-retry-count"),
            )
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadedServer:
    """Any ASGI callable under uvicorn on an ephemeral loopback port, in a thread."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
