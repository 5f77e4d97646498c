"""POST /api/v1/clicks/import: past clicks through the redirect's bot rules and the click insert."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from storeloop.kit.timeutil import as_utc
from storeloop.models import Touchpoint
from storeloop.runtime import Runtime
from tests.factories.influencers import make_campaign, make_influencer, unique
from tests.factories.tracking import allow_domains, clicks_of, make_link
from tests.factories.workspaces import WorkspaceKeys

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
WINDOWS_CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
# A whole minute of the epoch's minute grid, as the velocity window counts them.
MINUTE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=3)


def _import(client: TestClient, keys: WorkspaceKeys, clicks: list[dict[str, Any]]) -> Any:
    return client.post("/api/v1/clicks/import", json=clicks, headers=keys.bearer)


def _link(runtime: Runtime, workspace: WorkspaceKeys, prefix: str = "ana") -> tuple[str, Any]:
    allow_domains(runtime, workspace.id, "store.com")
    code = unique(prefix)
    return code, make_link(runtime, workspace.id, code=code)


def _uuid7_milliseconds(click_id: str) -> int:
    return uuid.UUID(click_id).int >> 80


def test_import_stores_clicks_as_the_redirect_would(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    code, link = _link(runtime, workspace)
    first = MINUTE + timedelta(seconds=5, milliseconds=250)
    response = _import(
        client,
        workspace,
        [
            {
                "link_code": code.upper(),
                "clicked_at": first.isoformat(),
                "user_agent": IPHONE,
                "ip": "198.51.100.23",
                "referrer": "https://www.instagram.com/p/abc?igsh=secret#x",
                "anonymous_id": "visitor-1",
            },
            {
                "link_id": str(link.id),
                "clicked_at": (MINUTE + timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
                "user_agent": "curl/8.5.0",
                "ip": "2001:db8:abcd:12::1",
            },
            {
                "link_code": code,
                "clicked_at": (MINUTE + timedelta(hours=3)).isoformat(),
                "user_agent": "facebookexternalhit/1.1",
            },
            {"link_code": code, "clicked_at": (MINUTE + timedelta(hours=4)).isoformat()},
        ],
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["imported"] == 4
    assert body["bots"] == 3
    assert [(c["is_bot"], c["bot_reason"]) for c in body["clicks"]] == [
        (False, None),
        (True, "user_agent"),
        (True, "link_preview"),
        (True, "no_user_agent"),
    ]
    ids = [c["id"] for c in body["clicks"]]
    # UUIDv7 ids of the clicks' own milliseconds, as the redirect's are of "now".
    assert _uuid7_milliseconds(ids[0]) == int(first.timestamp() * 1000)
    assert all(uuid.UUID(click_id).version == 7 for click_id in ids)

    stored = {str(click.id): click for click in clicks_of(runtime, workspace.id)}
    assert sorted(stored) == sorted(ids)
    person = stored[ids[0]]
    assert person.link_id == link.id
    assert as_utc(person.clicked_at) == first
    assert person.ip_truncated == "198.51.100.0/24"
    assert person.user_agent == "Safari/iOS/mobile"
    assert person.referrer == "https://www.instagram.com/p/abc"
    assert person.anonymous_id == "visitor-1"
    assert (person.is_bot, person.bot_reason) == (False, None)
    crawler = stored[ids[1]]
    assert crawler.ip_truncated == "2001:db8:abcd::/48"
    assert crawler.referrer is None
    assert crawler.anonymous_id is None
    assert (crawler.is_bot, crawler.bot_reason) == (True, "user_agent")
    assert (stored[ids[3]].ip_truncated, stored[ids[3]].user_agent) == (None, None)


def test_velocity_counts_the_clicks_own_times_in_any_order(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    code, _ = _link(runtime, workspace)
    # 25 clicks within one minute from one network and browser, sent newest first; then one
    # from another network in the same minute and one from the same network an hour later.
    burst = [
        {
            "link_code": code,
            "clicked_at": (MINUTE + timedelta(seconds=second)).isoformat(),
            "user_agent": WINDOWS_CHROME,
            "ip": f"203.0.113.{second + 1}",
        }
        for second in reversed(range(25))
    ]
    others = [
        {
            "link_code": code,
            "clicked_at": (MINUTE + timedelta(seconds=30)).isoformat(),
            "user_agent": WINDOWS_CHROME,
            "ip": "198.51.100.9",
        },
        {
            "link_code": code,
            "clicked_at": (MINUTE + timedelta(hours=1)).isoformat(),
            "user_agent": WINDOWS_CHROME,
            "ip": "203.0.113.99",
        },
    ]
    response = _import(client, workspace, burst + others)

    assert response.status_code == 201, response.text
    reasons = [c["bot_reason"] for c in response.json()["clicks"]]
    # The 20 earliest of the burst are people, the 5 latest (sent first) over the limit.
    assert reasons[:25] == ["velocity"] * 5 + [None] * 20
    assert reasons[25:] == [None, None]
    assert response.json()["bots"] == 5
    stored = clicks_of(runtime, workspace.id)
    assert sum(1 for click in stored if click.bot_reason == "velocity") == 5


def test_another_workspaces_link_is_unknown_and_nothing_is_stored(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    other_workspace: WorkspaceKeys,
) -> None:
    code, link = _link(runtime, other_workspace, "theirs")
    own_code, _ = _link(runtime, workspace, "ours")
    moment = MINUTE.isoformat()

    by_code = _import(
        client,
        workspace,
        [
            {"link_code": own_code, "clicked_at": moment, "user_agent": IPHONE},
            {"link_code": code, "clicked_at": moment, "user_agent": IPHONE},
        ],
    )
    by_id = _import(
        client, workspace, [{"link_id": str(link.id), "clicked_at": moment, "user_agent": IPHONE}]
    )

    assert by_code.status_code == 422
    assert by_code.json()["error"] == {
        "code": "unknown_link",
        "message": "no link with this code in this workspace",
        "field": "body.1.link_code",
    }
    assert by_id.status_code == 422
    assert by_id.json()["error"]["code"] == "unknown_link"
    assert by_id.json()["error"]["field"] == "body.0.link_id"
    # All or none: the valid first click was not stored either.
    assert clicks_of(runtime, workspace.id) == []
    assert clicks_of(runtime, other_workspace.id) == []


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"clicked_at": "2026-01-05T10:00:00"}, "body.1.clicked_at"),
        ({"clicked_at": "yesterday"}, "body.1.clicked_at"),
        ({"ip": "300.1.2.3"}, "body.1.ip"),
        ({"user_agent": "x" * 513}, "body.1.user_agent"),
        ({"link_code": "no spaces allowed"}, "body.1.link_code"),
        ({"anonymous_id": "a\x00b"}, "body.1.anonymous_id"),
        ({"country": "SE"}, "body.1.country"),
        ({"link_id": "LINK"}, "body.1.link_id"),
        ({"link_code": None}, "body.1.link_code"),
        ({"link_id": str(uuid.uuid4())}, "body.1.link_code"),
        ({"clicked_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, "body.1.clicked_at"),
        ({"clicked_at": "2015-01-01T00:00:00Z"}, "body.1.clicked_at"),
    ],
)
def test_a_bad_item_is_refused_with_its_field(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    item: dict[str, Any],
    field: str,
) -> None:
    code, _ = _link(runtime, workspace)
    good = {"link_code": code, "clicked_at": MINUTE.isoformat(), "user_agent": IPHONE}

    response = _import(client, workspace, [good, {**good, **item}])

    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert clicks_of(runtime, workspace.id) == []


def test_batch_limits_and_keys(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    code, _ = _link(runtime, workspace)
    item = {"link_code": code, "clicked_at": MINUTE.isoformat(), "user_agent": IPHONE}

    too_many = _import(client, workspace, [item] * 1001)
    empty = _import(client, workspace, [])
    not_a_list = client.post("/api/v1/clicks/import", json=item, headers=workspace.bearer)
    write_key = client.post(
        "/api/v1/clicks/import",
        json=[item],
        headers={"Authorization": f"Bearer {workspace.write_key}"},
    )
    no_key = client.post("/api/v1/clicks/import", json=[item])

    assert (too_many.status_code, too_many.json()["error"]["field"]) == (422, "body")
    assert (empty.status_code, empty.json()["error"]["field"]) == (422, "body")
    assert (not_a_list.status_code, not_a_list.json()["error"]["field"]) == (422, "body")
    assert (write_key.status_code, write_key.json()["error"]["code"]) == (403, "forbidden")
    assert (no_key.status_code, no_key.json()["error"]["code"]) == (401, "unauthorized")
    assert clicks_of(runtime, workspace.id) == []

    full = _import(client, workspace, [item] * 1000)
    assert full.status_code == 201
    assert full.json()["imported"] == 1000
    assert len(clicks_of(runtime, workspace.id)) == 1000


def test_an_imported_click_becomes_the_landing_touchpoint(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    influencer = make_influencer(runtime, workspace.id, handles={"instagram": "@ana.styles"})
    campaign = make_campaign(runtime, workspace.id, "Autumn", influencer_ids=[influencer.id])
    link = make_link(
        runtime,
        workspace.id,
        code=unique("autumn"),
        influencer_id=influencer.id,
        campaign_id=campaign.id,
    )
    clicked_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    imported = _import(
        client,
        workspace,
        [
            {
                "link_id": str(link.id),
                "clicked_at": clicked_at.isoformat(),
                "user_agent": IPHONE,
                "ip": "198.51.100.23",
                "anonymous_id": "visitor-7",
            }
        ],
    )
    click_id = imported.json()["clicks"][0]["id"]
    landing = f"https://store.com/products/linen-shirt?utm_source=ana.styles&sl_click={click_id}"
    sent = client.post(
        "/v1/batch",
        json={
            "batch": [
                {
                    "type": "page",
                    "anonymousId": "visitor-7",
                    "messageId": f"landing-{click_id}",
                    "timestamp": (clicked_at + timedelta(seconds=2)).isoformat(),
                    "context": {"page": {"url": landing}, "userAgent": IPHONE},
                }
            ]
        },
        headers=workspace.basic_auth,
    )
    assert sent.status_code == 200, sent.text
    runtime.processor.drain()
    runtime.derivations.drain()

    with runtime.session_factory() as session:
        touchpoints = list(
            session.scalars(select(Touchpoint).where(Touchpoint.workspace_id == workspace.id))
        )
    assert [(t.kind, str(t.click_id), t.link_id, t.influencer_id) for t in touchpoints] == [
        ("click", click_id, link.id, influencer.id)
    ]
    assert as_utc(touchpoints[0].occurred_at) == clicked_at
    assert touchpoints[0].anonymous_id == "visitor-7"
    assert touchpoints[0].is_bot is False
