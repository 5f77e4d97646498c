"""Tracked links (allowed destinations only, codes unique on the instance in any case) and
discount codes (unique per workspace, case-insensitive, owned by an influencer or campaign)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from storeloop.app import create_app
from storeloop.db import session_scope
from storeloop.influencers import service
from storeloop.kit.urls import destination_allowed
from storeloop.runtime import Runtime
from tests.conftest import make_settings
from tests.factories.influencers import (
    make_campaign,
    make_discount_code,
    make_influencer,
    make_link,
    make_post,
    set_store_settings,
    unique,
)
from tests.factories.workspaces import WorkspaceKeys, make_workspace


def _links(client: TestClient, keys: WorkspaceKeys) -> list[dict[str, object]]:
    items: list[dict[str, object]] = client.get("/api/v1/links", headers=keys.bearer).json()[
        "items"
    ]
    return items


def test_links_only_lead_to_allowed_domains(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    refused = client.post(
        "/api/v1/links",
        json={"destination_url": "https://shop.example/products/scarf"},
        headers=workspace.bearer,
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "destination_not_allowed"
    assert refused.json()["error"]["field"] == "destination_url"
    assert _links(client, workspace) == []

    set_store_settings(runtime, workspace.id, allowed_domains=["shop.example"])
    for url in (
        "https://shop.example/products/scarf?size=m",
        "http://SHOP.example./",
        "https://www.shop.example/sale",
        "https://shop.example:8443/x",
    ):
        response = client.post(
            "/api/v1/links", json={"destination_url": url}, headers=workspace.bearer
        )
        assert response.status_code == 201, (url, response.text)
    for url in (
        "https://shop.example.evil.com/",
        "https://evilshop.example/",
        "https://evil.com/?next=https://shop.example/",
        "javascript:alert(1)//shop.example",
        "//shop.example/",
        "ftp://shop.example/file",
        "https://shop.example@evil.com/",
        "https://evil.com\\@shop.example/",
        "https://evil.com\\.shop.example/",
        "https://shop.example /",
        "https://shop.example:99999/",
        "data:text/html,<a href=https://shop.example>",
    ):
        response = client.post(
            "/api/v1/links", json={"destination_url": url}, headers=workspace.bearer
        )
        assert response.status_code == 422, url
        assert response.json()["error"]["code"] == "destination_not_allowed", url
        assert response.json()["error"]["field"] == "destination_url"
    assert len(_links(client, workspace)) == 4

    link = _links(client, workspace)[0]
    moved = client.patch(
        f"/api/v1/links/{link['id']}",
        json={"destination_url": "https://evil.com/"},
        headers=workspace.bearer,
    )
    assert moved.status_code == 422
    assert moved.json()["error"]["code"] == "destination_not_allowed"
    after = client.get(f"/api/v1/links/{link['id']}", headers=workspace.bearer).json()
    assert after["destination_url"] == link["destination_url"]


def test_destination_allowed_is_a_pure_check() -> None:
    domains = ["shop.example", "xn--bcher-kva.example"]
    assert destination_allowed("https://shop.example/a", domains)
    assert destination_allowed("https://bücher.example/a", domains)
    assert destination_allowed("https://a.b.shop.example/", domains)
    assert not destination_allowed("https://shop.example.com/", domains)
    assert not destination_allowed("https://shop.example/", [])
    assert not destination_allowed("mailto:x@shop.example", domains)


def test_generated_and_chosen_codes(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    set_store_settings(runtime, workspace.id, allowed_domains=["shop.example"])
    set_store_settings(runtime, other_workspace.id, allowed_domains=["other.example"])
    generated = client.post(
        "/api/v1/links",
        json={"destination_url": "https://shop.example/", "utm": {"utm_source": "instagram"}},
        headers=workspace.bearer,
    ).json()
    assert re.fullmatch(r"[23456789abcdefghjkmnpqrstuvwxyz]{7}", generated["code"])
    assert generated["short_url"] == f"http://testserver/r/{generated['code']}"
    assert generated["utm"] == {"utm_source": "instagram"}
    assert generated["is_active"] is True

    code = unique("Ana-Spring")
    chosen = client.post(
        "/api/v1/links",
        json={"destination_url": "https://shop.example/", "code": code},
        headers=workspace.bearer,
    )
    assert chosen.status_code == 201
    assert chosen.json()["code"] == code
    # Codes are unique on the instance, whatever the case: another store cannot take it either.
    for keys, url in (
        (workspace, "https://shop.example/"),
        (other_workspace, "https://other.example/"),
    ):
        taken = client.post(
            "/api/v1/links",
            json={"destination_url": url, "code": code.upper()},
            headers=keys.bearer,
        )
        assert taken.status_code == 409
        assert taken.json()["error"]["code"] == "code_taken"
        assert taken.json()["error"]["field"] == "code"
    assert _links(client, other_workspace) == []
    found = client.get(
        "/api/v1/links", params={"code": code.lower()}, headers=workspace.bearer
    ).json()
    assert [item["code"] for item in found["items"]] == [code]

    for bad in ("a b c", "ab", "-abc", "ünï-code", "x" * 65):
        response = client.post(
            "/api/v1/links",
            json={"destination_url": "https://shop.example/", "code": bad},
            headers=workspace.bearer,
        )
        assert response.status_code == 422, bad
        assert response.json()["error"]["field"] in ("code", "body.code"), bad

    disabled = client.post(f"/api/v1/links/{generated['id']}/disable", headers=workspace.bearer)
    assert disabled.json()["is_active"] is False
    active = client.get(
        "/api/v1/links", params={"is_active": "true"}, headers=workspace.bearer
    ).json()
    assert [item["code"] for item in active["items"]] == [code]


def test_link_references_must_be_in_the_workspace_and_consistent(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    set_store_settings(runtime, workspace.id, allowed_domains=["shop.example"])
    ana = make_influencer(runtime, workspace.id, "Ana")
    bo = make_influencer(runtime, workspace.id, "Bo")
    campaign = make_campaign(runtime, workspace.id, influencer_ids=[ana.id])
    post = make_post(runtime, workspace.id, influencer_id=ana.id)
    stranger = make_influencer(runtime, other_workspace.id, "Stranger")

    ok = client.post(
        "/api/v1/links",
        json={
            "destination_url": "https://shop.example/",
            "influencer_id": str(ana.id),
            "campaign_id": str(campaign.id),
            "post_id": str(post.id),
        },
        headers=workspace.bearer,
    )
    assert ok.status_code == 201
    assert ok.json()["post_id"] == str(post.id)
    foreign = client.post(
        "/api/v1/links",
        json={"destination_url": "https://shop.example/", "influencer_id": str(stranger.id)},
        headers=workspace.bearer,
    )
    assert foreign.status_code == 422
    assert foreign.json()["error"]["code"] == "unknown_reference"
    assert foreign.json()["error"]["field"] == "influencer_id"
    outsider = client.post(
        "/api/v1/links",
        json={
            "destination_url": "https://shop.example/",
            "influencer_id": str(bo.id),
            "campaign_id": str(campaign.id),
        },
        headers=workspace.bearer,
    )
    assert outsider.status_code == 422
    assert outsider.json()["error"]["code"] == "influencer_not_in_campaign"
    assert len(_links(client, workspace)) == 1
    link_id = ok.json()["id"]
    for patch, field in (
        ({"influencer_id": "0196a000-0000-7000-8000-000000000000"}, "influencer_id"),
        ({"campaign_id": str(make_campaign(runtime, other_workspace.id).id)}, "campaign_id"),
        ({"post_id": "0196a000-0000-7000-8000-000000000000"}, "post_id"),
        ({"influencer_id": str(bo.id)}, "influencer_id"),
    ):
        denied = client.patch(f"/api/v1/links/{link_id}", json=patch, headers=workspace.bearer)
        assert denied.status_code == 422, patch
        assert denied.json()["error"]["field"] == field
    unchanged = client.get(f"/api/v1/links/{link_id}", headers=workspace.bearer).json()
    assert unchanged["influencer_id"] == str(ana.id)
    assert unchanged["post_id"] == str(post.id)


def test_discount_codes_are_case_insensitive_per_workspace(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    ana = make_influencer(runtime, workspace.id, "Ana")
    bo = make_influencer(runtime, workspace.id, "Bo")
    campaign = make_campaign(runtime, workspace.id, influencer_ids=[ana.id])
    created = client.post(
        "/api/v1/discount-codes",
        json={"code": "Ana10", "influencer_id": str(ana.id)},
        headers=workspace.bearer,
    )
    assert created.status_code == 201
    assert created.json()["code"] == "Ana10"
    again = client.post(
        "/api/v1/discount-codes",
        json={"code": " ANA10 ", "campaign_id": str(campaign.id)},
        headers=workspace.bearer,
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "code_taken"
    assert again.json()["error"]["field"] == "code"
    # Another store may use the same code for its own influencer.
    other_owner = make_influencer(runtime, other_workspace.id, "Other")
    elsewhere = client.post(
        "/api/v1/discount-codes",
        json={"code": "ana10", "influencer_id": str(other_owner.id)},
        headers=other_workspace.bearer,
    )
    assert elsewhere.status_code == 201

    ownerless = client.post(
        "/api/v1/discount-codes", json={"code": "FREE"}, headers=workspace.bearer
    )
    assert ownerless.status_code == 422
    assert ownerless.json()["error"]["code"] == "owner_required"
    mismatch = client.post(
        "/api/v1/discount-codes",
        json={"code": "BO5", "influencer_id": str(bo.id), "campaign_id": str(campaign.id)},
        headers=workspace.bearer,
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["code"] == "influencer_not_in_campaign"
    whitespace = client.post(
        "/api/v1/discount-codes",
        json={"code": "A\tB", "influencer_id": str(bo.id)},
        headers=workspace.bearer,
    )
    assert whitespace.status_code == 422
    assert whitespace.json()["error"]["code"] == "invalid_code"

    listed = client.get(
        "/api/v1/discount-codes", params={"code": "aNa10"}, headers=workspace.bearer
    ).json()
    assert [item["id"] for item in listed["items"]] == [created.json()["id"]]
    everything = client.get("/api/v1/discount-codes", headers=workspace.bearer).json()
    assert [item["code"] for item in everything["items"]] == ["Ana10"]

    code_id = created.json()["id"]
    cleared = client.patch(
        f"/api/v1/discount-codes/{code_id}", json={"influencer_id": None}, headers=workspace.bearer
    )
    assert cleared.status_code == 422
    assert cleared.json()["error"]["code"] == "owner_required"
    moved = client.patch(
        f"/api/v1/discount-codes/{code_id}",
        json={"influencer_id": None, "campaign_id": str(campaign.id)},
        headers=workspace.bearer,
    )
    assert moved.status_code == 200
    assert moved.json()["influencer_id"] is None
    assert moved.json()["campaign_id"] == str(campaign.id)
    unknown = client.patch(
        f"/api/v1/discount-codes/{code_id}",
        json={"influencer_id": "0196a000-0000-7000-8000-000000000000"},
        headers=workspace.bearer,
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_reference"
    disabled = client.post(f"/api/v1/discount-codes/{code_id}/disable", headers=workspace.bearer)
    assert disabled.json()["is_active"] is False


def test_factories_for_other_domains(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    link = make_link(runtime, workspace.id, "https://store.example/p/1", code=unique("f"))
    assert link.short_url == f"http://testserver/r/{link.code}"
    code = make_discount_code(runtime, workspace.id, "welcome")
    assert code.code == "welcome"
    assert code.influencer_id is not None
    with session_scope(runtime.session_factory) as session:
        view = service.get_store_settings(session, workspace.id)
    assert view.allowed_domains == ("store.example",)
    assert destination_allowed("https://WWW.Store.Example/", view.allowed_domains)
    assert not destination_allowed("https://store.example.net/", view.allowed_domains)


@pytest.mark.parametrize("count", [3])
def test_generated_codes_do_not_collide(
    runtime: Runtime, workspace: WorkspaceKeys, count: int
) -> None:
    codes = {make_link(runtime, workspace.id).code for _ in range(count)}
    assert len(codes) == count


def test_short_urls_use_the_tracking_base_url(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, tracking_base_url="https://t.shop.example/")
    runtime = Runtime(settings)
    runtime.start()
    try:
        keys = make_workspace(runtime)
        set_store_settings(runtime, keys.id, allowed_domains=["shop.example"])
        with TestClient(create_app(runtime=runtime)) as client:
            created = client.post(
                "/api/v1/links",
                json={"destination_url": "https://shop.example/", "code": unique("base")},
                headers=keys.bearer,
            ).json()
    finally:
        runtime.close()
    assert created["short_url"] == f"https://t.shop.example/r/{created['code']}"


def test_whitespace_around_a_code_is_trimmed_not_kept(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    set_store_settings(runtime, workspace.id, allowed_domains=["shop.example"])
    code = f"spring-{uuid.uuid4().hex[:6]}"
    response = client.post(
        "/api/v1/links",
        json={"destination_url": "https://shop.example/", "code": f" {code}\n"},
        headers=workspace.bearer,
    )
    assert response.status_code == 201
    assert response.json()["code"] == code
    inner = client.post(
        "/api/v1/links",
        json={"destination_url": "https://shop.example/", "code": "two\nlines"},
        headers=workspace.bearer,
    )
    assert inner.status_code == 422
    assert inner.json()["error"]["field"] == "code"
