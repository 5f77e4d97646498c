"""Profiles through the HTTP API: events in, one profile out, searchable, with its timeline."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from storeloop.runtime import Runtime
from tests.factories.events import order_completed, track
from tests.factories.workspaces import WorkspaceKeys

CANARY_EMAIL = "Canary.Person+storeloop@Example.org"
CANARY_PHONE = "+44 20 7946 0958"


def _journey(anonymous_id: str) -> list[dict]:
    return [
        track("Product Viewed", anonymousId=anonymous_id, timestamp="2026-11-20T10:00:00Z"),
        {
            "type": "identify",
            "anonymousId": anonymous_id,
            "userId": "cust-42",
            "timestamp": "2026-11-20T10:05:00Z",
            "traits": {
                "email": CANARY_EMAIL,
                "phone": CANARY_PHONE,
                "first_name": "Canarina",
                "plan": "gold",
            },
        },
        order_completed(
            "ord-1", anonymousId=anonymous_id, userId="cust-42", timestamp="2026-11-20T10:10:00Z"
        ),
    ]


def test_visitor_becomes_one_searchable_profile(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    response = client.post(
        "/v1/batch", json={"batch": _journey("anon-7")}, headers=workspace.basic_auth
    )
    assert response.status_code == 200
    runtime.processor.drain()

    # An email in a URL would land in access logs: refused, and searched in a body instead.
    in_url = client.get(
        "/api/v1/profiles",
        params={"email": "canary.person+storeloop@example.org"},
        headers=workspace.bearer,
    )
    assert in_url.status_code == 422
    assert in_url.json()["error"]["field"] == "email"
    assert "canary" not in in_url.text
    by_email = client.post(
        "/api/v1/profiles/search",
        json={"email": "Canary.Person+storeloop@example.org"},
        headers=workspace.bearer,
    )
    assert by_email.status_code == 200
    [summary] = by_email.json()["items"]
    assert summary["traits"] == {"plan": "gold"}
    assert summary["personal"]["email"] == "canary.person+storeloop@example.org"
    by_anon = client.get(
        "/api/v1/profiles", params={"anonymous_id": "anon-7"}, headers=workspace.bearer
    ).json()
    by_user = client.get(
        "/api/v1/profiles", params={"user_id": "cust-42"}, headers=workspace.bearer
    ).json()
    assert (
        [p["id"] for p in by_anon["items"]]
        == [p["id"] for p in by_user["items"]]
        == [summary["id"]]
    )

    detail = client.get(f"/api/v1/profiles/{summary['id']}", headers=workspace.bearer).json()
    assert sorted((i["kind"], i["value"]) for i in detail["identifiers"]) == [
        ("anonymous_id", "anon-7"),
        ("email", "canary.person+storeloop@example.org"),
        ("phone", "+442079460958"),
        ("user_id", "cust-42"),
    ]
    timeline = client.get(
        f"/api/v1/profiles/{summary['id']}/events", params={"limit": 2}, headers=workspace.bearer
    ).json()
    assert [e["event"] for e in timeline["items"]] == ["Order Completed", None]
    rest = client.get(
        f"/api/v1/profiles/{summary['id']}/events",
        params={"limit": 2, "before": timeline["next_cursor"]},
        headers=workspace.bearer,
    ).json()
    assert [e["event"] for e in rest["items"]] == ["Product Viewed"]
    assert rest["next_cursor"] is None


def test_unknown_and_foreign_profiles_are_404(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    client.post("/v1/batch", json={"batch": _journey("anon-8")}, headers=workspace.basic_auth)
    runtime.processor.drain()
    [mine] = client.get(
        "/api/v1/profiles", params={"user_id": "cust-42"}, headers=workspace.bearer
    ).json()["items"]
    foreign = client.get(f"/api/v1/profiles/{mine['id']}", headers=other_workspace.bearer)
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "not_found"
    assert (
        client.get(
            f"/api/v1/profiles/{mine['id']}/events", headers=other_workspace.bearer
        ).status_code
        == 404
    )
    assert (
        client.get(
            "/api/v1/profiles", params={"user_id": "cust-42"}, headers=other_workspace.bearer
        ).json()["items"]
        == []
    )
    bad_cursor = client.get(
        "/api/v1/profiles", params={"cursor": "garbage"}, headers=workspace.bearer
    )
    assert bad_cursor.status_code in (400, 422)


def test_no_plaintext_personal_data_in_database_or_logs(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, caplog: pytest.LogCaptureFixture
) -> None:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("reads the SQLite file itself")
    caplog.set_level(logging.DEBUG)
    client.post("/v1/batch", json={"batch": _journey("anon-9")}, headers=workspace.basic_auth)
    client.post(
        "/v1/batch",
        json={"batch": [track(event=None, traits={"email": CANARY_EMAIL})]},
        headers=workspace.basic_auth,
    )
    database = Path(runtime.engine.url.database or "")
    needles = [CANARY_EMAIL.lower().encode(), CANARY_EMAIL.encode(), b"2079460958", b"Canarina"]

    def assert_no_plaintext() -> None:
        # The database, the inbox spool beside it (ADR 0011), and their WAL files.
        files = [p for p in database.parent.iterdir() if p.name.startswith(database.stem)]
        assert database in files
        assert any(p.name.startswith(f"{database.stem}-inbox") for p in files)
        for path in files:
            content = path.read_bytes()
            for needle in needles:
                assert needle not in content, (path.name, needle)

    assert_no_plaintext()  # the bodies waiting in the spool, sealed
    runtime.processor.drain()
    runtime.writer.stop()
    runtime.engine.dispose()
    assert_no_plaintext()  # profiles, events, the quarantined event
    for record in caplog.records:
        text = record.getMessage().lower()
        assert "canary.person" not in text
        assert "2079460958" not in text


def test_a_nul_character_in_a_search_is_a_422_naming_the_field(
    client: TestClient, workspace: WorkspaceKeys
) -> None:
    """PostgreSQL text cannot hold NUL (found by schemathesis: a 500 before)."""
    for params in ({"user_id": "a\x00b"}, {"anonymous_id": "\x00"}, {"cursor": "\x00"}):
        response = client.get("/api/v1/profiles", params=params, headers=workspace.bearer)
        assert response.status_code == 422, params
        assert next(iter(params)) in response.text
    response = client.post(
        "/api/v1/profiles/search", json={"email": "a\x00@example.com"}, headers=workspace.bearer
    )
    assert response.status_code == 422
    assert "email" in response.text
