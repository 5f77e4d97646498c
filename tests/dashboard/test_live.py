"""The live stream of new orders (server-sent events) over a real server: what it announces,
to whom, for how long, and what it never carries."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import orjson
import pytest

from storeloop.dashboard.pages import live
from storeloop.runtime import Runtime
from storeloop.workspaces.service import Role
from tests.conftest import LiveServer
from tests.factories.dashboard import SECRET, post_order, shopify_order
from tests.factories.orders import set_webhook_secret
from tests.factories.staff import Staff, csrf_from, make_staff
from tests.factories.workspaces import WorkspaceKeys

WAIT = 10.0


@pytest.fixture(autouse=True)
def _fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "POLL_SECONDS", 0.1)
    # A comment line at every poll: the reading thread sees each one and can stop cleanly.
    monkeypatch.setattr(live, "KEEPALIVE_SECONDS", 0.0)


def _signed_in(server: LiveServer, staff: Staff) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=WAIT, follow_redirects=True)
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": staff.email, "password": staff.password, "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 200, response.text  # followed to the overview
    return client


class Events:
    """Reads a stream in a thread; ``next()`` waits for the next event."""

    def __init__(self, client: httpx.Client, headers: dict[str, str] | None = None) -> None:
        self.items: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.status: int | None = None
        self.content_type = ""
        self._client = client
        self._headers = headers or {}
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        assert self._ready.wait(WAIT)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        assert not self._thread.is_alive()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/dashboard/live", headers=self._headers) as response:
                self.status = response.status_code
                self.content_type = response.headers.get("content-type", "")
                self._ready.set()
                event: dict[str, Any] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        break
                    if line == "":
                        if event:
                            self.items.put(event)
                        event = {}
                    elif line.startswith(":"):
                        continue
                    else:
                        name, _, value = line.partition(":")
                        event[name] = value.removeprefix(" ")
        except httpx.HTTPError:
            pass
        finally:
            self._ready.set()
            self.items.put(None)

    def next(self) -> dict[str, Any] | None:
        return self.items.get(timeout=WAIT)

    def next_named(self, name: str) -> dict[str, Any]:
        while True:
            event = self.next()
            assert event is not None, f"the stream ended before a {name!r} event"
            if event.get("event") == name:
                return event


@pytest.fixture
def seller(runtime: Runtime, workspace: WorkspaceKeys) -> WorkspaceKeys:
    set_webhook_secret(runtime, workspace.id, "shopify", SECRET)
    return workspace


def _order(server_url: str, workspace: WorkspaceKeys, number: int, total: str) -> None:
    with httpx.Client(base_url=server_url, timeout=WAIT) as client:
        post_order(
            client,
            workspace.id,
            shopify_order(number, total, "private.buyer@mail.example", datetime.now(UTC)),
        )


@pytest.fixture
def stream_client(
    live_server: LiveServer, runtime: Runtime, seller: WorkspaceKeys
) -> Iterator[httpx.Client]:
    client = _signed_in(live_server, make_staff(runtime, seller.id, Role.ANALYST))
    yield client
    client.close()


def test_a_new_order_is_announced_without_personal_data(
    live_server: LiveServer,
    runtime: Runtime,
    seller: WorkspaceKeys,
    other_workspace: WorkspaceKeys,
    stream_client: httpx.Client,
) -> None:
    set_webhook_secret(runtime, other_workspace.id, "shopify", SECRET)
    events = Events(stream_client)
    assert (events.status, events.content_type) == (200, "text/event-stream; charset=utf-8")
    assert events.next() == {"retry": "3000"}
    assert events.next_named("ready")["data"] == '{"poll_seconds":0.1}'

    _order(live_server.url, other_workspace, 9_400_000_000_000_009, "99.00")  # not this store's
    _order(live_server.url, seller, 9_400_000_000_000_001, "59.80")
    announced = events.next_named("order")
    data = orjson.loads(announced["data"])
    assert set(data) == {"id", "source", "status", "currency", "total", "placed_at", "created_at"}
    assert (data["source"], data["status"], data["currency"], data["total"]) == (
        "shopify",
        "paid",
        "EUR",
        "59.8000",
    )
    assert "private.buyer" not in announced["data"]
    assert announced["id"]  # the cursor a reconnecting browser resumes from
    events.close()

    # Reconnecting with the last event id: that order is not announced again, the next one is.
    again = _signed_in(live_server, make_staff(runtime, seller.id, Role.MARKETER))
    resumed = Events(again, headers={"Last-Event-ID": announced["id"]})
    resumed.next_named("ready")
    _order(live_server.url, seller, 9_400_000_000_000_002, "12.00")
    following = orjson.loads(resumed.next_named("order")["data"])
    assert following["total"] == "12.0000"
    resumed.close()
    again.close()


def test_the_stream_ends_when_the_session_does(
    live_server: LiveServer,
    stream_client: httpx.Client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(live, "SESSION_CHECK_SECONDS", 0.0)
    events = Events(stream_client)
    events.next_named("ready")
    overview = stream_client.get("/dashboard")
    signed_out = stream_client.post("/logout", data={"csrf_token": csrf_from(overview.text)})
    assert signed_out.status_code == 200  # followed to the sign-in page
    assert events.next_named("signed-out")["data"] == "{}"
    assert events.next() is None
    events.close()


def test_streams_are_bounded_in_time_and_number(
    stream_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "STREAM_SECONDS", 0.3)
    events = Events(stream_client)
    events.next_named("ready")
    while (event := events.next()) is not None:
        assert event.get("event") != "order"
    events.close()
    monkeypatch.setattr(live, "MAX_STREAMS", 0)
    refused = stream_client.get("/dashboard/live")
    assert (refused.status_code, refused.headers["retry-after"]) == (503, "30")


def test_the_stream_needs_a_session(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=WAIT) as client:
        response = client.get("/dashboard/live")
    assert (response.status_code, response.headers["location"]) == (
        303,
        "/login?next=/dashboard/live",
    )
