"""GET /t.js (cached, small) and GET /t/ctx (the HttpOnly cookies, for allowed origins only)."""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi.testclient import TestClient

import storeloop.tracking
from storeloop.runtime import Runtime
from tests.factories.tracking import allow_domains
from tests.factories.workspaces import WorkspaceKeys

SCRIPT = Path(storeloop.tracking.__file__).parent / "static" / "t.js"
CLICK = "01a201d6-6126-7e6a-879a-36a40f4afd07"


def test_the_script_is_served_with_cache_headers_and_an_etag(client: TestClient) -> None:
    response = client.get("/t.js", headers={"accept-encoding": "identity"})
    assert response.status_code == 200
    assert response.content == SCRIPT.read_bytes()
    assert "content-encoding" not in response.headers
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == (
        "public, max-age=86400, stale-while-revalidate=604800"
    )
    assert "set-cookie" not in response.headers
    # Consent, reset and push took it past 5 KiB; what travels is the gzip size (< 2500 below).
    assert len(response.content) < 6 * 1024
    etag = response.headers["etag"]
    again = client.get("/t.js", headers={"if-none-match": etag})
    assert (again.status_code, again.content) == (304, b"")
    changed = client.get("/t.js", headers={"if-none-match": '"something-else"'})
    assert changed.status_code == 200


def test_the_script_is_sent_gzipped_when_the_browser_accepts_it(client: TestClient) -> None:
    response = client.get("/t.js", headers={"accept-encoding": "gzip, deflate, br"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["vary"] == "Accept-Encoding"
    assert int(response.headers["content-length"]) < 2500
    assert response.content == SCRIPT.read_bytes()  # decoded by the client


def test_context_returns_the_cookies_to_an_allowed_origin_with_credentials(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    response = client.get(
        "/t/ctx",
        params={"k": workspace.write_key},
        headers={
            "origin": "https://www.store.com",
            "cookie": f"sl_click={workspace.id.hex}.{CLICK}; sl_aid=v-42",
        },
    )
    assert response.status_code == 200
    assert orjson.loads(response.content) == {"click_id": CLICK, "anonymous_id": "v-42"}
    assert response.headers["access-control-allow-origin"] == "https://www.store.com"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["cache-control"] == "no-store"

    empty = client.get(
        "/t/ctx",
        params={"k": workspace.write_key},
        headers={"origin": "https://store.com", "cookie": "sl_click=not-a-uuid; sl_aid=<x>"},
    )
    assert orjson.loads(empty.content) == {"click_id": None, "anonymous_id": None}


def test_context_refuses_other_origins_keys_and_workspaces(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    other_workspace: WorkspaceKeys,
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    allow_domains(runtime, other_workspace.id, "evil.com")
    cookie = f"sl_click={CLICK}; sl_aid=v-42"
    cases = [
        # (write key, origin) -> (status, code, field)
        ((workspace.write_key, "https://evil.com"), (403, "origin_not_allowed", "Origin")),
        (
            (workspace.write_key, "https://store.com.evil.com"),
            (403, "origin_not_allowed", "Origin"),
        ),
        ((workspace.write_key, None), (403, "origin_not_allowed", "Origin")),
        # The other store's key does not open this store's allowed origins, nor the reverse.
        ((other_workspace.write_key, "https://store.com"), (403, "origin_not_allowed", "Origin")),
        (("slw_unknown", "https://store.com"), (401, "unauthorized", "k")),
        ((workspace.secret_key, "https://store.com"), (403, "forbidden", "k")),
        (("", "https://store.com"), (401, "unauthorized", "k")),
    ]
    for (key, origin), (status, code, field) in cases:
        headers = {"cookie": cookie} | ({"origin": origin} if origin else {})
        response = client.get("/t/ctx", params={"k": key}, headers=headers)
        assert response.status_code == status, (key, origin)
        error = response.json()["error"]
        assert (error["code"], error["field"]) == (code, field)
        assert "access-control-allow-origin" not in response.headers
        assert CLICK not in response.text


def test_batch_accepts_the_scripts_text_plain_body_with_the_write_key_inside(
    client: TestClient, workspace: WorkspaceKeys
) -> None:
    body = {
        "writeKey": workspace.write_key,
        "batch": [
            {
                "type": "page",
                "anonymousId": "v-42",
                "messageId": "m-1",
                "timestamp": "2026-11-22T06:00:00.000Z",
                "context": {"page": {"url": "https://store.com/?sl_click=" + CLICK}},
            }
        ],
    }
    response = client.post(
        "/v1/batch", content=orjson.dumps(body), headers={"content-type": "text/plain"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1


def test_context_never_hands_out_another_stores_click(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    other_workspace: WorkspaceKeys,
) -> None:
    # Two stores on one instance share the cookie domain: the click cookie set by the other
    # store's link (or an unscoped one) is not this store's click.
    allow_domains(runtime, workspace.id, "store.com")
    for cookie_value in (f"{other_workspace.id.hex}.{CLICK}", CLICK, f"{workspace.id.hex}.junk"):
        response = client.get(
            "/t/ctx",
            params={"k": workspace.write_key},
            headers={"origin": "https://store.com", "cookie": f"sl_click={cookie_value}; sl_aid=v"},
        )
        assert response.status_code == 200
        assert orjson.loads(response.content) == {"click_id": None, "anonymous_id": "v"}
