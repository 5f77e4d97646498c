"""Influencers (contact sealed, shown only on the single GET) and campaigns (costs, members)."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import select

from storeloop.kit.crypto import row_aad
from storeloop.models import Influencer
from storeloop.runtime import Runtime
from tests.factories.influencers import make_campaign, make_influencer
from tests.factories.workspaces import WorkspaceKeys


def test_influencer_contact_is_sealed_and_only_on_the_single_get(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    created = client.post(
        "/api/v1/influencers",
        json={
            "name": "Ana Styles",
            "handles": {"Instagram": "@ana", "tiktok": "@ana.styles"},
            "contact": {
                "email": " Ana@Example.COM ",
                "phone": "+44 20 7946 0958",
                "payout_notes": "IBAN GB00 TEST",
            },
        },
        headers=workspace.bearer,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["handles"] == {"instagram": "@ana", "tiktok": "@ana.styles"}
    assert body["status"] == "active"
    assert body["has_contact"] is True
    assert body["contact"] == {
        "email": "ana@example.com",
        "phone": "+44 20 7946 0958",
        "payout_notes": "IBAN GB00 TEST",
    }

    listed = client.get("/api/v1/influencers", headers=workspace.bearer).json()
    assert [item["id"] for item in listed["items"]] == [body["id"]]
    assert "contact" not in listed["items"][0]
    assert "ana@example.com" not in str(listed)
    single = client.get(f"/api/v1/influencers/{body['id']}", headers=workspace.bearer).json()
    assert single["contact"]["email"] == "ana@example.com"

    cipher = runtime.keyring.cipher(workspace.id)
    with runtime.session_factory() as session:
        row = session.scalars(
            select(Influencer).where(Influencer.workspace_id == workspace.id)
        ).one()
    assert row.contact_sealed is not None
    assert b"ana@example.com" not in row.contact_sealed
    assert b"IBAN" not in row.contact_sealed
    assert row.email_index == cipher.blind_index("email", "ana@example.com")
    opened = cipher.open(row.contact_sealed, row_aad("influencers", row.id, "contact"))
    assert b"ana@example.com" in opened

    by_email = client.post(
        "/api/v1/influencers/search", json={"email": "ANA@example.com"}, headers=workspace.bearer
    ).json()
    assert [item["id"] for item in by_email["items"]] == [body["id"]]
    other_email = client.post(
        "/api/v1/influencers/search", json={"email": "bob@example.com"}, headers=workspace.bearer
    ).json()
    assert other_email["items"] == []


def test_influencer_patch_archive_and_validation(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    influencer = make_influencer(runtime, workspace.id, email="ana@example.com")
    url = f"/api/v1/influencers/{influencer.id}"

    renamed = client.patch(url, json={"name": "Ana S."}, headers=workspace.bearer)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Ana S."
    assert renamed.json()["contact"]["email"] == "ana@example.com"  # untouched by the patch

    null_name = client.patch(url, json={"name": None}, headers=workspace.bearer)
    assert null_name.status_code == 422
    assert null_name.json()["error"]["field"] == "name"
    bad_email = client.patch(
        url, json={"contact": {"email": "not-an-email"}}, headers=workspace.bearer
    )
    assert bad_email.status_code == 422
    assert bad_email.json()["error"] == {
        "code": "validation_failed",
        "message": "not an email address",
        "field": "contact.email",
    }
    unknown_field = client.patch(url, json={"nickname": "x"}, headers=workspace.bearer)
    assert unknown_field.status_code == 422
    assert client.get(url, headers=workspace.bearer).json()["name"] == "Ana S."

    cleared = client.patch(url, json={"contact": None}, headers=workspace.bearer)
    assert cleared.json()["contact"] is None
    assert cleared.json()["has_contact"] is False

    archived = client.post(f"{url}/archive", headers=workspace.bearer)
    assert archived.status_code == 200
    assert archived.json()["status"] == "archived"
    active = client.get(
        "/api/v1/influencers", params={"status": "active"}, headers=workspace.bearer
    ).json()
    assert active["items"] == []
    missing = client.get(
        "/api/v1/influencers/0196a000-0000-7000-8000-000000000000", headers=workspace.bearer
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_influencer_list_pages_with_a_cursor(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    ids = [make_influencer(runtime, workspace.id, f"Creator {n}").id for n in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/influencers", params=params, headers=workspace.bearer).json()
        seen.extend(item["id"] for item in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [str(i) for i in reversed(ids)]
    named = client.get(
        "/api/v1/influencers", params={"name": "creator 3"}, headers=workspace.bearer
    ).json()
    assert [item["id"] for item in named["items"]] == [str(ids[3])]
    bad = client.get("/api/v1/influencers", params={"cursor": "nope"}, headers=workspace.bearer)
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "cursor"


def test_campaign_costs_members_and_validation(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    ana = make_influencer(runtime, workspace.id, "Ana")
    bo = make_influencer(runtime, workspace.id, "Bo")
    created = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Spring drop",
            "influencer_ids": [str(ana.id), str(bo.id)],
            "currency": "eur",
            "fee": "1500.00",
            "seeding_cost": "240.50",
            "paid_boost_cost": "10",
            "starts_at": "2026-03-01T00:00:00Z",
            "ends_at": "2026-03-31T23:59:59Z",
            "utm_campaign": "spring",
        },
        headers=workspace.bearer,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["currency"] == "EUR"
    assert Decimal(body["total_cost"]) == Decimal("1750.50")
    assert Decimal(body["fee"]) == Decimal("1500")
    assert sorted(body["influencer_ids"]) == sorted([str(ana.id), str(bo.id)])
    assert body["channel"] == "Influencer"

    fetched = client.get(f"/api/v1/campaigns/{body['id']}", headers=workspace.bearer).json()
    assert Decimal(fetched["total_cost"]) == Decimal("1750.50")
    assert fetched["starts_at"].startswith("2026-03-01T00:00:00")

    patched = client.patch(
        f"/api/v1/campaigns/{body['id']}",
        json={"influencer_ids": [str(bo.id)], "paid_boost_cost": "100"},
        headers=workspace.bearer,
    ).json()
    assert patched["influencer_ids"] == [str(bo.id)]
    assert Decimal(patched["total_cost"]) == Decimal("1840.50")
    with_ana = client.get(
        "/api/v1/campaigns", params={"influencer_id": str(ana.id)}, headers=workspace.bearer
    ).json()
    assert with_ana["items"] == []
    with_bo = client.get(
        "/api/v1/campaigns", params={"influencer_id": str(bo.id)}, headers=workspace.bearer
    ).json()
    assert [item["id"] for item in with_bo["items"]] == [body["id"]]

    # Another workspace's influencer cannot join; dates must be in order; costs are >= 0.
    stranger = make_influencer(runtime, other_workspace.id, "Stranger")
    foreign = client.post(
        "/api/v1/campaigns",
        json={"name": "x", "currency": "EUR", "influencer_ids": [str(ana.id), str(stranger.id)]},
        headers=workspace.bearer,
    )
    assert foreign.status_code == 422
    assert foreign.json()["error"]["code"] == "unknown_reference"
    assert foreign.json()["error"]["field"] == "influencer_ids.1"
    backwards = client.patch(
        f"/api/v1/campaigns/{body['id']}",
        json={"ends_at": "2026-02-01T00:00:00Z"},
        headers=workspace.bearer,
    )
    assert backwards.status_code == 422
    assert backwards.json()["error"]["field"] == "ends_at"
    negative = client.post(
        "/api/v1/campaigns",
        json={"name": "x", "currency": "EUR", "fee": "-1"},
        headers=workspace.bearer,
    )
    assert negative.status_code == 422
    assert negative.json()["error"]["field"] == "body.fee"
    unknown_channel = client.patch(
        f"/api/v1/campaigns/{body['id']}", json={"channel": "Billboards"}, headers=workspace.bearer
    )
    assert unknown_channel.status_code == 422
    assert unknown_channel.json()["error"]["field"] == "channel"
    email = client.patch(
        f"/api/v1/campaigns/{body['id']}", json={"channel": "email"}, headers=workspace.bearer
    )
    assert email.json()["channel"] == "Email"
    listed = client.get("/api/v1/campaigns", headers=workspace.bearer).json()
    assert [item["id"] for item in listed["items"]] == [body["id"]]
    assert listed["items"][0]["ends_at"].startswith("2026-03-31")

    archived = client.post(f"/api/v1/campaigns/{body['id']}/archive", headers=workspace.bearer)
    assert archived.json()["status"] == "archived"


def test_campaign_factory_total(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    campaign = make_campaign(
        runtime, workspace.id, fee="100.25", seeding_cost="0.75", paid_boost_cost="9"
    )
    assert campaign.total_cost == Decimal("110.00")
    assert campaign.influencer_ids == []


def test_search_by_email_keeps_the_address_out_of_the_url(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    ana = make_influencer(runtime, workspace.id, "Ana", email="ana@example.com")
    bo = make_influencer(runtime, workspace.id, "Bo", email="bo@example.com")
    make_influencer(runtime, workspace.id, "Cy", status="paused")
    found = client.post(
        "/api/v1/influencers/search",
        json={"email": " ANA@Example.com "},
        headers=workspace.bearer,
    )
    assert found.status_code == 200
    assert found.json() == {
        "items": [
            {
                "id": str(ana.id),
                "name": "Ana",
                "handles": {"instagram": "@ana"},
                "status": "active",
                "has_contact": True,
                "created_at": found.json()["items"][0]["created_at"],
                "updated_at": found.json()["items"][0]["updated_at"],
            }
        ],
        "next_cursor": None,
    }

    def search(body: dict[str, object]) -> list[str]:
        response = client.post("/api/v1/influencers/search", json=body, headers=workspace.bearer)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert search({"email": "ana@example.com", "status": "paused"}) == []
    assert search({"email": "nobody@example.com"}) == []
    assert search({"email": "not an address"}) == []
    assert search({"status": "active"}) == [str(bo.id), str(ana.id)]
    first = client.post(
        "/api/v1/influencers/search",
        json={"status": "active", "limit": 1},
        headers=workspace.bearer,
    ).json()
    assert [item["id"] for item in first["items"]] == [str(bo.id)]
    assert search({"status": "active", "limit": 1, "cursor": first["next_cursor"]}) == [str(ana.id)]

    # The old query parameter is refused, not ignored (which would list everyone as a match).
    old = client.get(
        "/api/v1/influencers", params={"email": "ana@example.com"}, headers=workspace.bearer
    )
    assert old.status_code == 422
    assert (old.json()["error"]["code"], old.json()["error"]["field"]) == (
        "validation_failed",
        "email",
    )
    for body, field in (
        ({"mail": "ana@example.com"}, "body.mail"),
        ({"limit": 201}, "body.limit"),
        ({"cursor": "nope"}, "cursor"),
        ({"email": "a\x00@example.com"}, "body.email"),
    ):
        refused = client.post("/api/v1/influencers/search", json=body, headers=workspace.bearer)
        assert refused.status_code == 422, body
        assert refused.json()["error"]["field"] == field, refused.json()


def test_money_is_spelt_the_same_when_created_and_when_read(
    client: TestClient, workspace: WorkspaceKeys
) -> None:
    created = client.post(
        "/api/v1/campaigns",
        json={
            "name": "Spring",
            "currency": "EUR",
            "fee": "100.5",
            "seeding_cost": "20",
            "paid_boost_cost": "0.1234",
        },
        headers=workspace.bearer,
    ).json()
    fetched = client.get(f"/api/v1/campaigns/{created['id']}", headers=workspace.bearer).json()
    listed = client.get("/api/v1/campaigns", headers=workspace.bearer).json()["items"][0]
    money = ("fee", "seeding_cost", "paid_boost_cost", "total_cost")
    expected = {
        "fee": "100.5000",
        "seeding_cost": "20.0000",
        "paid_boost_cost": "0.1234",
        "total_cost": "120.6234",
    }
    for body in (created, fetched, listed):
        assert {name: body[name] for name in money} == expected
