"""The Segment-compatible tracking API over HTTP: acceptance, dedupe, gzip, errors, quarantine."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from storeloop.ingestion import service
from storeloop.runtime import Runtime
from tests.factories.events import order_completed, track
from tests.factories.queries import event_count, inbox_count, message_ids, quarantine_reasons
from tests.factories.workspaces import WorkspaceKeys


def post_batch(client: TestClient, ws: WorkspaceKeys, batch: list[dict], **kwargs):  # type: ignore[no-untyped-def]
    return client.post("/v1/batch", json={"batch": batch}, headers=ws.basic_auth, **kwargs)


def test_batch_is_stored_once_per_message_id(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    batch = [track(), track("Product Added"), order_completed()]
    first = post_batch(client, workspace, batch)
    assert first.status_code == 200
    assert first.json() == {"success": True, "accepted": 3}
    assert inbox_count(runtime, workspace.id) == 1
    # An SDK retry of the same batch is accepted again but stored once.
    assert post_batch(client, workspace, batch).status_code == 200
    assert inbox_count(runtime, workspace.id) == 2
    runtime.processor.drain()
    assert inbox_count(runtime, workspace.id) == 0
    assert message_ids(runtime, workspace.id) == sorted(m["messageId"] for m in batch)


def test_single_endpoints_and_write_key_in_body(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    calls = {
        "/v1/track": {"event": "Signed Up", "userId": "u1"},
        "/v1/identify": {"userId": "u1", "traits": {"plan": "pro"}},
        "/v1/page": {"anonymousId": "a1", "name": "Home"},
        "/v1/screen": {"anonymousId": "a1", "name": "Cart"},
        "/v1/group": {"userId": "u1", "groupId": "g1"},
        "/v1/alias": {"userId": "u1", "previousId": "a1"},
    }
    for path, body in calls.items():
        response = client.post(path, json={**body, "writeKey": workspace.write_key})
        assert response.status_code == 200, (path, response.text)
        assert response.json() == {"success": True, "accepted": 1}
    runtime.processor.drain()
    assert event_count(runtime, workspace.id) == 6


def test_gzip_body_is_accepted(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    body = gzip.compress(orjson.dumps({"batch": [track(), track()]}))
    response = client.post(
        "/v1/batch",
        content=body,
        headers={
            **workspace.basic_auth,
            "Content-Encoding": "gzip",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    runtime.processor.drain()
    assert event_count(runtime, workspace.id) == 2


def test_invalid_events_are_quarantined_and_valid_ones_kept(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    good = track()
    batch = [
        good,
        track(anonymousId=None),  # no identity at all
        track(timestamp="not a time"),
        track(timestamp="1970-01-01T00:00:00Z"),
        track(properties=["not", "an", "object"]),
        order_completed(properties={"order_id": "9", "total": "lots"}),
        {"type": "teleport", "anonymousId": "a"},
    ]
    response = post_batch(client, workspace, batch)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["code"], r["field"]) for r in body["rejected"]] == [
        (1, "missing_field", "batch[1].userId"),
        (2, "invalid_timestamp", "batch[2].timestamp"),
        (3, "timestamp_out_of_range", "batch[3].timestamp"),
        (4, "wrong_type", "batch[4].properties"),
        (5, "invalid_ecommerce_property", "batch[5].properties.total"),
        (6, "unknown_type", "batch[6].type"),
    ]
    runtime.processor.drain()
    assert message_ids(runtime, workspace.id) == [good["messageId"]]
    assert quarantine_reasons(runtime, workspace.id) == [
        ("missing_field", "batch[1].userId"),
        ("invalid_timestamp", "batch[2].timestamp"),
        ("timestamp_out_of_range", "batch[3].timestamp"),
        ("wrong_type", "batch[4].properties"),
        ("invalid_ecommerce_property", "batch[5].properties.total"),
        ("unknown_type", "batch[6].type"),
    ]


def test_quarantine_is_listed_and_replayed_after_a_fix(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    bad = order_completed(properties={"total": 10})  # no order_id
    response = client.post("/v1/track", json=bad, headers=workspace.basic_auth)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_field"
    assert response.json()["error"]["field"] == "properties.order_id"

    runtime.processor.drain()  # processing quarantines it, from the stored body
    listing = client.get("/api/v1/quarantine", headers=workspace.bearer)
    assert listing.status_code == 200
    items = listing.json()["items"]
    assert len(items) == 1
    assert items[0]["payload"]["messageId"] == bad["messageId"]
    assert items[0]["reason"] == "missing_field"

    still_bad = client.post(f"/api/v1/quarantine/{items[0]['id']}/replay", headers=workspace.bearer)
    assert still_bad.status_code == 422
    assert still_bad.json()["error"]["code"] == "replay_invalid"

    fixed = {**bad, "properties": {"order_id": "A-1", "total": 10, "currency": "EUR"}}
    replayed = client.post(
        f"/api/v1/quarantine/{items[0]['id']}/replay",
        json={"payload": fixed},
        headers=workspace.bearer,
    )
    assert replayed.status_code == 200
    assert replayed.json()["item"]["status"] == "replayed"
    runtime.processor.drain()
    assert message_ids(runtime, workspace.id) == [bad["messageId"]]
    again = client.post(f"/api/v1/quarantine/{items[0]['id']}/replay", headers=workspace.bearer)
    assert again.status_code == 409


def test_whole_body_errors(client: TestClient, runtime: Runtime, workspace: WorkspaceKeys) -> None:
    auth = {**workspace.basic_auth, "Content-Type": "application/json"}
    cases = [
        (b"{not json", {}, 400, "invalid_json", "body"),
        (b'{"batch": [{"type": "track", "event": "\xff\xfe"}]}', {}, 400, "invalid_utf8", "body"),
        (b'{"batch": [{"event": "\\ud800"}]}', {}, 400, "invalid_utf8", "body"),
        (b"[1, 2]", {}, 400, "invalid_body", "body"),
        (b'{"batch": {"type": "track"}}', {}, 400, "wrong_type", "batch"),
        (b'{"nobatch": []}', {}, 400, "missing_field", "batch"),
        (b"x" * (500 * 1024 + 1), {}, 413, "body_too_large", "body"),
        (b"\x1f\x8b garbage", {"Content-Encoding": "gzip"}, 400, "invalid_gzip", "body"),
        (b"{}", {"Content-Encoding": "br"}, 415, "unsupported_encoding", "Content-Encoding"),
        (b"[" * 100_000, {}, 400, "too_deep", "body"),
    ]
    for body, headers, status, code, field in cases:
        response = client.post("/v1/batch", content=body, headers={**auth, **headers})
        error = response.json()["error"]
        assert (response.status_code, error["code"], error.get("field")) == (status, code, field), (
            body[:40]
        )
    # The single-event routes name the body too when the event as a whole is at fault.
    too_large = client.post(
        "/v1/track", json=track(properties={"blob": "y" * 33_000}), headers=workspace.basic_auth
    )
    assert too_large.json()["error"]["field"] == "body"
    runtime.processor.drain()
    assert event_count(runtime, workspace.id) == 0


def test_gzip_bomb_is_refused(client: TestClient, workspace: WorkspaceKeys) -> None:
    bomb = gzip.compress(b'{"batch": [' + b" " * (50 * 1024 * 1024) + b"]}")
    response = client.post(
        "/v1/batch", content=bomb, headers={**workspace.basic_auth, "Content-Encoding": "gzip"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_oversized_event_and_nesting_bomb_in_a_batch(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    deep: dict = {}
    cursor = deep
    for _ in range(40):
        cursor["x"] = {}
        cursor = cursor["x"]
    good = track()
    batch = [good, track(properties={"blob": "y" * 33_000}), track(properties=deep)]
    response = post_batch(client, workspace, batch)
    assert response.status_code == 200
    assert [(r["code"], r["field"]) for r in response.json()["rejected"]] == [
        ("event_too_large", "batch[1]"),
        ("too_deep", "batch[2]"),
    ]
    single = client.post(
        "/v1/track", json=track(properties={"blob": "y" * 33_000}), headers=workspace.basic_auth
    )
    assert single.status_code == 413
    assert single.json()["error"]["code"] == "event_too_large"
    runtime.processor.drain()
    assert message_ids(runtime, workspace.id) == [good["messageId"]]


def test_all_invalid_batch_is_a_400_and_quarantined(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    response = post_batch(client, workspace, [track(event=None), track(userId={"a": 1})])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_events"
    assert [(r["code"], r["field"]) for r in error["rejected"]] == [
        ("missing_field", "batch[0].event"),
        ("wrong_type", "batch[1].userId"),
    ]
    # The body is kept, and processing quarantines both events, storing none.
    assert inbox_count(runtime, workspace.id) == 1
    runtime.processor.drain()
    assert inbox_count(runtime, workspace.id) == 0
    assert len(quarantine_reasons(runtime, workspace.id)) == 2
    assert message_ids(runtime, workspace.id) == []


def test_write_key_errors(client: TestClient, runtime: Runtime, workspace: WorkspaceKeys) -> None:
    missing = client.post("/v1/batch", json={"batch": [track()]})
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "unauthorized")
    unknown = client.post("/v1/batch", json={"batch": [track()], "writeKey": "slw_nope"})
    assert (unknown.status_code, unknown.json()["error"]["field"]) == (401, "writeKey")
    secret = client.post("/v1/batch", json={"batch": [track()]}, headers=workspace.bearer)
    assert (secret.status_code, secret.json()["error"]["code"]) == (403, "forbidden")
    runtime.processor.drain()
    assert event_count(runtime, workspace.id) == 0


def test_clock_skew_is_corrected(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    # The device clock runs 2 hours fast: its timestamp and sentAt are both 2h ahead.
    device_now = datetime.now(UTC) + timedelta(hours=2)
    message = track(timestamp=(device_now - timedelta(minutes=5)).isoformat())
    response = client.post(
        "/v1/batch",
        json={"batch": [message], "sentAt": device_now.isoformat()},
        headers=workspace.basic_auth,
    )
    assert response.status_code == 200
    runtime.processor.drain()
    from sqlalchemy import select

    from storeloop.kit.timeutil import as_utc
    from storeloop.models import Event

    with runtime.session_factory() as session:
        stored = session.scalars(select(Event).where(Event.workspace_id == workspace.id)).one()
    lag = as_utc(stored.received_at) - as_utc(stored.timestamp)
    assert timedelta(minutes=4, seconds=59) <= lag <= timedelta(minutes=5, seconds=1)


def test_browser_preflight_is_allowed(client: TestClient) -> None:
    response = client.options(
        "/v1/batch",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


def test_browser_post_gets_cors_headers(client: TestClient, workspace: WorkspaceKeys) -> None:
    response = client.post(
        "/v1/batch",
        json={"batch": [track()]},
        headers={**workspace.basic_auth, "Origin": "https://shop.example"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"


def test_tracking_is_answered_before_the_router(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    """POST /v1/* is answered by the ASGI layer: FastAPI's router never sees it."""

    from storeloop.app import create_app

    app = create_app(runtime=runtime)
    routed: list[tuple[str, str]] = []

    class Spy:
        def __init__(self, router: Any) -> None:
            self.router = router

        def __getattr__(self, name: str) -> Any:
            return getattr(self.router, name)

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                routed.append((scope["method"], scope["path"]))
            await self.router(scope, receive, send)

    app.router = Spy(app.router)  # type: ignore[assignment]
    with TestClient(app) as spied:
        ok = spied.post("/v1/batch", json={"batch": [track()]}, headers=workspace.basic_auth)
        assert (ok.status_code, ok.json()) == (200, {"success": True, "accepted": 1})
        refused = spied.post("/v1/track", json={"event": "x"}, headers=workspace.basic_auth)
        assert (refused.status_code, refused.json()["error"]["field"]) == (400, "userId")
        assert spied.get("/v1/batch").status_code == 405
    assert routed == [("GET", "/v1/batch")]


def test_declared_routes_answer_alike_without_the_asgi_layer(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    """The FastAPI routes that declare /v1/* in the OpenAPI document serve it the same way."""
    from fastapi import FastAPI

    from storeloop.ingestion.endpoints import router

    bare = FastAPI()
    bare.state.runtime = runtime
    bare.include_router(router)
    batch = [track(), track(event=None)]
    with TestClient(bare) as direct:
        answers = [
            app_client.post("/v1/batch", json={"batch": batch}, headers=workspace.basic_auth)
            for app_client in (client, direct)
        ]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    assert answers[1].json()["rejected"][0]["field"] == "batch[1].event"
    assert "/v1/batch" in client.get("/openapi.json").json()["paths"]


def test_a_plain_batch_is_accepted_without_parsing_it_into_objects(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Valid bodies are read by simdjson + msgspec; orjson parses only when a message needs
    the validator, whose words the answer then carries."""
    parsed: list[bytes] = []
    real_parse = service.parse_json

    def spy(data: bytes) -> Any:
        parsed.append(data)
        return real_parse(data)

    monkeypatch.setattr(service, "parse_json", spy)
    batch = [track(), track("Product Added"), order_completed()]
    assert post_batch(client, workspace, batch).json() == {"success": True, "accepted": 3}
    single = client.post("/v1/track", json=track(), headers=workspace.basic_auth)
    assert single.status_code == 200
    assert parsed == []

    invalid = order_completed()
    invalid["properties"]["currency"] = "EURO"
    answer = post_batch(client, workspace, [track(), invalid]).json()
    assert answer["accepted"] == 1
    assert answer["rejected"][0]["field"] == "batch[1].properties.currency"
    assert len(parsed) == 1
    runtime.processor.drain()
    assert event_count(runtime, workspace.id) == 5
    assert quarantine_reasons(runtime, workspace.id) == [
        ("invalid_ecommerce_property", "batch[1].properties.currency")
    ]
