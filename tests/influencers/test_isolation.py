"""Workspace A's secret key can neither see nor change workspace B's marketing rows."""

from __future__ import annotations

from fastapi.testclient import TestClient

from storeloop.runtime import Runtime
from tests.factories.influencers import (
    make_campaign,
    make_discount_code,
    make_influencer,
    make_link,
    make_post,
    set_store_settings,
    unique,
)
from tests.factories.workspaces import WorkspaceKeys


def test_a_cannot_read_or_change_bs_rows(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    a, b = workspace, other_workspace
    influencer = make_influencer(runtime, b.id, "B's creator", email="b@example.com")
    campaign = make_campaign(runtime, b.id, "B's campaign", influencer_ids=[influencer.id])
    link = make_link(runtime, b.id, "https://b.example/", code=unique("b"))
    code = make_discount_code(runtime, b.id, "BCODE", influencer_id=influencer.id)
    post = make_post(runtime, b.id, influencer_id=influencer.id, reach=10)
    set_store_settings(runtime, b.id, shopify_webhook_secret="b-secret", lookback_days=90)

    resources = {
        f"/api/v1/influencers/{influencer.id}": {"name": "hijacked"},
        f"/api/v1/campaigns/{campaign.id}": {"name": "hijacked"},
        f"/api/v1/links/{link.id}": {"is_active": False},
        f"/api/v1/discount-codes/{code.id}": {"is_active": False},
        f"/api/v1/posts/{post.id}": {"reach": 0},
    }
    before = {url: client.get(url, headers=b.bearer).json() for url in resources}
    for url, patch in resources.items():
        assert client.get(url, headers=a.bearer).status_code == 404, url
        denied = client.patch(url, json=patch, headers=a.bearer)
        assert denied.status_code == 404, url
        assert denied.json()["error"]["code"] == "not_found"
    for url in (
        f"/api/v1/influencers/{influencer.id}/archive",
        f"/api/v1/campaigns/{campaign.id}/archive",
        f"/api/v1/links/{link.id}/disable",
        f"/api/v1/discount-codes/{code.id}/disable",
    ):
        assert client.post(url, headers=a.bearer).status_code == 404, url
    assert {url: client.get(url, headers=b.bearer).json() for url in resources} == before

    for listing in ("influencers", "campaigns", "links", "discount-codes", "posts"):
        assert client.get(f"/api/v1/{listing}", headers=a.bearer).json()["items"] == [], listing
    assert (
        client.post(
            "/api/v1/influencers/search", json={"email": "b@example.com"}, headers=a.bearer
        ).json()["items"]
        == []
    )
    # Names in A's CSV never resolve to B's rows, nor does a url of B's update B's post.
    imported = client.post(
        "/api/v1/posts/import",
        content=f"platform,url,influencer,reach\ninstagram,{post.url},B's creator,99\n".encode(),
        headers={**a.bearer, "Content-Type": "text/csv"},
    ).json()
    assert (imported["created"], imported["failed"]) == (0, 1)
    assert imported["errors"][0]["code"] == "unknown_influencer"
    own = client.post(
        "/api/v1/posts/import",
        content=f"platform,url,reach\ninstagram,{post.url},99\n".encode(),
        headers={**a.bearer, "Content-Type": "text/csv"},
    ).json()
    assert (own["created"], own["updated"]) == (1, 0)  # A's own post with the same url
    assert client.get(f"/api/v1/posts/{post.id}", headers=b.bearer).json()["reach"] == 10

    # A's settings are A's own: B's secret and lookback stay B's and unchanged.
    a_settings = client.get("/api/v1/settings", headers=a.bearer).json()
    assert a_settings["shopify_webhook_secret_set"] is False
    assert a_settings["lookback_days"] == 30
    client.patch("/api/v1/settings", json={"lookback_days": 5}, headers=a.bearer)
    b_settings = client.get("/api/v1/settings", headers=b.bearer).json()
    assert b_settings["lookback_days"] == 90
    assert b_settings["shopify_webhook_secret_set"] is True
