"""Server-sent events: new orders of the signed-in workspace, for the live overview.

The stream polls the orders table every POLL_SECONDS for orders stored since its cursor, and
sends one ``order`` event each (id, source, status, total, currency, times: no personal data).
It is bounded on every side: a stream lasts at most STREAM_SECONDS (the browser reconnects by
itself, resuming from the last event id), a process serves at most MAX_STREAMS at once, the
session is checked again every SESSION_CHECK_SECONDS, and a client that leaves ends it at the
next poll. A comment line every few seconds keeps proxies from closing an idle stream.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from storeloop.dashboard.web import SECURITY_HEADERS, SESSION_COOKIE, StaffDep, runtime_of
from storeloop.db import session_scope
from storeloop.kit.errors import ValidationFailed
from storeloop.kit.pagination import decode_cursor, encode_cursor
from storeloop.kit.timeutil import utcnow
from storeloop.orders.schemas import OrderNotice
from storeloop.orders.service import orders_created_after
from storeloop.workspaces.staff import resolve_session

router = APIRouter(include_in_schema=False)

POLL_SECONDS = 2.0
STREAM_SECONDS = 300.0
SESSION_CHECK_SECONDS = 30.0
KEEPALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 3000
MAX_STREAMS = 200
MAX_ORDERS_PER_POLL = 50
# Orders are read again this far behind the newest one seen: a transaction that commits a
# little after a later one is not missed. The ids already sent are remembered for this window.
OVERLAP = timedelta(seconds=10)

_open_streams = 0


def _event(name: str, data: dict[str, object], event_id: str | None = None) -> bytes:
    lines = f"event: {name}\n"
    if event_id is not None:
        lines += f"id: {event_id}\n"
    return (lines + "data: " + orjson.dumps(data).decode() + "\n\n").encode()


class OrderFeed:
    """The poll state of one stream: orders stored after ``floor`` are announced once each;
    the newest created_at seen and the ids sent within OVERLAP of it are remembered."""

    def __init__(self, workspace_id: uuid.UUID, floor: datetime) -> None:
        self.workspace_id = workspace_id
        self.floor = floor
        self.high_water = floor
        self.sent: dict[uuid.UUID, datetime] = {}

    def take(self, notices: list[OrderNotice]) -> list[OrderNotice]:
        fresh = [notice for notice in notices if notice.id not in self.sent]
        for notice in fresh:
            self.sent[notice.id] = notice.created_at
            self.high_water = max(self.high_water, notice.created_at)
        horizon = self.high_water - OVERLAP
        self.sent = {key: moment for key, moment in self.sent.items() if moment > horizon}
        return fresh

    @property
    def after(self) -> datetime:
        return max(self.high_water - OVERLAP, self.floor)


# A browser away for longer than this starts again from now: the page reloads its numbers.
RESUME_LIMIT = timedelta(minutes=10)


def feed_for(request: Request, workspace_id: uuid.UUID) -> OrderFeed:
    """A new stream starts now; a reconnecting browser (its Last-Event-ID header names the
    last order it got) resumes right after that order."""
    now = utcnow()
    header = request.headers.get("last-event-id")
    cursor = None
    if header and len(header) <= 200:
        try:
            cursor = decode_cursor(header)
        except ValidationFailed:
            cursor = None
    if cursor is None or cursor[0] < now - RESUME_LIMIT or cursor[0] > now:
        return OrderFeed(workspace_id, now)
    feed = OrderFeed(workspace_id, cursor[0])
    feed.sent[cursor[1]] = cursor[0]
    return feed


def _poll(request: Request, feed: OrderFeed) -> list[OrderNotice]:
    with session_scope(runtime_of(request).session_factory) as session:
        # The ids already sent are left out in SQL: a burst of more than a page inside the
        # overlap window would otherwise come back as the same page on every poll.
        notices = orders_created_after(
            session,
            feed.workspace_id,
            feed.after,
            limit=MAX_ORDERS_PER_POLL,
            exclude=list(feed.sent),
        )
    return feed.take(notices)


def _session_alive(request: Request, workspace_id: uuid.UUID) -> bool:
    runtime = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    with session_scope(runtime.session_factory) as session:
        staff = resolve_session(session, runtime.signing_key, token)
    return staff is not None and staff.workspace_id == workspace_id


async def order_events(request: Request, feed: OrderFeed) -> AsyncIterator[bytes]:
    global _open_streams
    _open_streams += 1
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
        yield _event("ready", {"poll_seconds": POLL_SECONDS})
        started = last_check = last_sent = time.monotonic()
        while time.monotonic() - started < STREAM_SECONDS:
            if await request.is_disconnected():
                return
            now = time.monotonic()
            if now - last_check >= SESSION_CHECK_SECONDS:
                last_check = now
                if not await run_in_threadpool(_session_alive, request, feed.workspace_id):
                    yield _event("signed-out", {})
                    return
            for notice in await run_in_threadpool(_poll, request, feed):
                last_sent = time.monotonic()
                yield _event(
                    "order",
                    notice.model_dump(mode="json"),
                    event_id=encode_cursor(notice.created_at, notice.id),
                )
            if time.monotonic() - last_sent >= KEEPALIVE_SECONDS:
                last_sent = time.monotonic()
                yield b": keep-alive\n\n"
            await asyncio.sleep(POLL_SECONDS)
    finally:
        _open_streams -= 1


@router.get("/dashboard/live")
def live(request: Request, staff: StaffDep) -> Response:
    if _open_streams >= MAX_STREAMS:
        return Response(
            "too many live streams; retry later",
            status_code=503,
            headers={**SECURITY_HEADERS, "Retry-After": "30"},
        )
    feed = feed_for(request, staff.workspace_id)
    return StreamingResponse(
        order_events(request, feed),
        media_type="text/event-stream",
        headers={**SECURITY_HEADERS, "X-Accel-Buffering": "no"},
    )
