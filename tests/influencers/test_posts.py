"""Social posts: created one by one or imported from CSV (upsert on url, bad rows listed)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from storeloop.runtime import Runtime
from tests.factories.influencers import make_campaign, make_influencer
from tests.factories.workspaces import WorkspaceKeys

HEADER = "platform,url,kind,posted_at,influencer,campaign,reach,views,likes,comments\n"


def _import(client: TestClient, keys: WorkspaceKeys, body: str) -> dict[str, object]:
    response = client.post(
        "/api/v1/posts/import",
        content=body.encode(),
        headers={**keys.bearer, "Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def _posts(client: TestClient, keys: WorkspaceKeys) -> dict[str, dict[str, object]]:
    items = client.get("/api/v1/posts", params={"limit": 200}, headers=keys.bearer).json()["items"]
    return {item["url"]: item for item in items}


def test_create_get_patch_post(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    ana = make_influencer(runtime, workspace.id, "Ana")
    created = client.post(
        "/api/v1/posts",
        json={
            "platform": "Instagram",
            "url": "https://instagram.com/p/abc",
            "kind": "story",
            "posted_at": "2026-03-01T10:00:00+01:00",
            "influencer_id": str(ana.id),
            "reach": 1200,
        },
        headers=workspace.bearer,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["platform"] == "instagram"
    assert body["posted_at"].startswith("2026-03-01T09:00:00")
    assert (body["reach"], body["views"]) == (1200, None)
    duplicate = client.post(
        "/api/v1/posts",
        json={"platform": "instagram", "url": "https://instagram.com/p/abc"},
        headers=workspace.bearer,
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "post_exists"
    assert duplicate.json()["error"]["field"] == "url"
    bad_url = client.post(
        "/api/v1/posts",
        json={"platform": "instagram", "url": "instagram.com/p/x"},
        headers=workspace.bearer,
    )
    assert bad_url.status_code == 422
    assert bad_url.json()["error"]["field"] == "url"
    bad_kind = client.post(
        "/api/v1/posts",
        json={"platform": "instagram", "url": "https://instagram.com/p/y", "kind": "tweet"},
        headers=workspace.bearer,
    )
    assert bad_kind.status_code == 422
    assert bad_kind.json()["error"]["field"] == "body.kind"

    patched = client.patch(
        f"/api/v1/posts/{body['id']}", json={"views": 5000, "likes": 300}, headers=workspace.bearer
    ).json()
    assert (patched["reach"], patched["views"], patched["likes"]) == (1200, 5000, 300)
    assert (
        client.get(f"/api/v1/posts/{body['id']}", headers=workspace.bearer).json()["views"] == 5000
    )
    assert list(_posts(client, workspace)) == ["https://instagram.com/p/abc"]


def test_csv_import_keeps_valid_rows_and_lists_bad_ones(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    ana = make_influencer(runtime, workspace.id, "Ana Styles")
    make_influencer(runtime, workspace.id, "Twin")
    make_influencer(runtime, workspace.id, "twin")
    campaign = make_campaign(runtime, workspace.id, "Spring drop", influencer_ids=[ana.id])
    body = (
        HEADER
        + "instagram,https://instagram.com/p/1,reel,2026-03-01T10:00:00Z,ana styles,Spring drop,"
        + "12000,30000,900,41\n"
        + f'TikTok,https://tiktok.com/@ana/video/2,video,2026-03-02,{ana.id},{campaign.id},"1,500",,,\n'
        + "instagram,not a url,post,,,,,,,\n"
        + "instagram,https://instagram.com/p/4,tweet,yesterday,Nobody,,-5,,,\n"
        + "\n"
        + "youtube,https://youtube.com/watch?v=5,,,Twin,,,,,\n"
        + ",https://instagram.com/p/6,,,,,,,,\n"
        + "instagram,https://instagram.com/p/1,reel,2026-03-01T10:00:00Z,,,13000,,,\n"
    )
    result = _import(client, workspace, body)
    assert {key: result[key] for key in ("rows", "created", "updated", "unchanged", "failed")} == {
        "rows": 7,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "failed": 4,
    }
    assert [(e["line"], e["column"], e["code"]) for e in result["errors"]] == [  # type: ignore[attr-defined]
        (4, "url", "invalid_url"),
        (5, "kind", "invalid_kind"),
        (5, "posted_at", "invalid_datetime"),
        (5, "influencer", "unknown_influencer"),
        (5, "reach", "invalid_number"),
        (7, "influencer", "unknown_influencer"),
        (8, "platform", "missing"),
    ]
    posts = _posts(client, workspace)
    assert sorted(posts) == ["https://instagram.com/p/1", "https://tiktok.com/@ana/video/2"]
    first = posts["https://instagram.com/p/1"]
    # The later row for the same url updated reach and left the other columns as they were.
    assert (first["reach"], first["views"], first["likes"], first["comments"]) == (
        13000,
        30000,
        900,
        41,
    )
    assert first["influencer_id"] == str(ana.id)
    assert first["campaign_id"] == str(campaign.id)
    assert first["kind"] == "reel"
    second = posts["https://tiktok.com/@ana/video/2"]
    assert second["platform"] == "tiktok"
    assert second["reach"] == 1500
    assert second["posted_at"].startswith("2026-03-02T00:00:00")

    # Importing the same file again changes nothing.
    again = _import(client, workspace, body)
    assert {key: again[key] for key in ("rows", "created", "updated", "unchanged", "failed")} == {
        "rows": 7,
        "created": 0,
        "updated": 0,
        "unchanged": 2,
        "failed": 4,
    }
    assert _posts(client, workspace)["https://instagram.com/p/1"]["reach"] == 13000
    assert len(_posts(client, workspace)) == 2


def test_csv_import_refuses_unusable_bodies(client: TestClient, workspace: WorkspaceKeys) -> None:
    wrong_type = client.post(
        "/api/v1/posts/import",
        content=HEADER.encode(),
        headers={**workspace.bearer, "Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 415
    assert wrong_type.json()["error"]["code"] == "unsupported_media_type"
    for body, field in (
        (b"", "body"),
        (b"platform,kind\nx,post\n", "url"),
        (b"\xff\xfe,x", "body"),
    ):
        response = client.post(
            "/api/v1/posts/import",
            content=body,
            headers={**workspace.bearer, "Content-Type": "text/csv"},
        )
        assert response.status_code == 422, body
        assert response.json()["error"]["code"] == "invalid_csv"
        assert response.json()["error"]["field"] == field
    nul = _import(
        client, workspace, "platform,url,influencer\ninstagram,https://i.example/p,A\x00\n"
    )
    assert [(e["line"], e["column"], e["code"]) for e in nul["errors"]] == [  # type: ignore[attr-defined]
        (2, "influencer", "invalid_text")
    ]
    nul_query = client.get("/api/v1/posts", params={"platform": "\x00"}, headers=workspace.bearer)
    assert nul_query.status_code == 422
    nul_body = client.post(
        "/api/v1/posts",
        json={"platform": "instagram", "url": "https://i.example/\x00"},
        headers=workspace.bearer,
    )
    assert nul_body.status_code == 422
    assert _posts(client, workspace) == {}
    too_large = client.post(
        "/api/v1/posts/import",
        content=b"platform,url\n" + b"x" * (10 * 1024 * 1024),
        headers={**workspace.bearer, "Content-Type": "text/csv"},
    )
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "payload_too_large"
    assert too_large.json()["error"]["field"] == "body"
    assert _posts(client, workspace) == {}
    # A byte-order mark and upper-case headers are fine.
    result = _import(client, workspace, "\ufeffPLATFORM,URL\ninstagram,https://instagram.com/p/z\n")
    assert (result["created"], result["failed"]) == (1, 0)
