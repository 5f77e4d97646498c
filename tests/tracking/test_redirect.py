"""GET /r/{code}: redirect, cookies, the stored click, bot flags, open-redirect refusals."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from storeloop.kit.timeutil import as_utc
from storeloop.runtime import Runtime
from tests.factories.influencers import (
    make_campaign,
    make_influencer,
    set_link_active,
    store_unchecked_link,
)
from tests.factories.tracking import allow_domains, clicks_of, make_link
from tests.factories.workspaces import WorkspaceKeys
from tests.tracking.conftest import ClientFactory

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
BROWSER = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
MAX_AGE = 400 * 24 * 3600


def _cookies(response_headers: list[str]) -> dict[str, str]:
    return {header.split("=", 1)[0]: header for header in response_headers}


def test_redirect_adds_utm_and_click_id_sets_cookies_and_records_the_click(
    make_client: ClientFactory, workspace: WorkspaceKeys, runtime: Runtime
) -> None:
    client, rt = make_client(client=("198.51.100.23", 40000))
    allow_domains(rt, workspace.id, "store.com")
    influencer = make_influencer(rt, workspace.id, handles={"instagram": "@ana.styles"})
    campaign = make_campaign(
        rt,
        workspace.id,
        name="Spring Drop 2026",
        channel="Influencer",
        influencer_ids=[influencer.id],
    )
    link = make_link(
        rt,
        workspace.id,
        "https://store.com/products/linen-shirt?color=sea%20blue#reviews",
        campaign_id=campaign.id,
        influencer_id=influencer.id,
    )

    before = datetime.now(UTC)
    response = client.get(
        f"/r/{link.code}",
        headers={
            "user-agent": BROWSER,
            "referer": "https://l.instagram.com/out?u=https%3A%2F%2Fstore.com&e=ana%40mail.com#x",
        },
        follow_redirects=False,
    )
    after = datetime.now(UTC)

    assert response.status_code == 302
    location = response.headers["location"]
    found = re.fullmatch(
        r"https://store\.com/products/linen-shirt\?color=sea%20blue&utm_source=ana\.styles"
        rf"&utm_medium=influencer&utm_campaign=spring-drop-2026&sl_click=({UUID})#reviews",
        location,
    )
    assert found is not None, location
    click_id = found.group(1)
    assert response.headers["cache-control"] == "no-store"
    cookies = _cookies(response.headers.get_list("set-cookie"))
    assert cookies["sl_click"] == (
        f"sl_click={workspace.id.hex}.{click_id}; Max-Age={MAX_AGE}; Path=/; SameSite=Lax; HttpOnly"
    )
    visitor = re.fullmatch(
        rf"sl_aid=({UUID}); Max-Age={MAX_AGE}; Path=/; SameSite=Lax; HttpOnly", cookies["sl_aid"]
    )
    assert visitor is not None, cookies["sl_aid"]

    [click] = clicks_of(rt, workspace.id)
    assert str(click.id) == click_id
    assert click.link_id == link.id
    assert click.ip_truncated == "198.51.100.0/24"
    # Kept reduced: browser family / OS / device class, and the referrer without its query.
    assert click.user_agent == "Safari/iOS/mobile"
    assert click.referrer == "https://l.instagram.com/out"
    assert click.anonymous_id == visitor.group(1)
    assert (click.is_bot, click.bot_reason) == (False, None)
    assert before <= as_utc(click.clicked_at) <= after


def test_link_utm_overrides_campaign_which_overrides_defaults_and_destination_wins(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    campaign = make_campaign(
        runtime, workspace.id, name="Summer", channel="Paid Social", utm_source="meta"
    )
    link = make_link(
        runtime,
        workspace.id,
        "https://store.com/?utm_medium=newsletter&sl_click=stale",
        campaign_id=campaign.id,
        utm={"utm_campaign": "summer-ugc", "utm_content": "reel-3"},
    )
    response = client.get(f"/r/{link.code}", follow_redirects=False)
    location = response.headers["location"]
    assert re.fullmatch(
        r"https://store\.com/\?utm_medium=newsletter&utm_source=meta&utm_campaign=summer-ugc"
        rf"&utm_content=reel-3&sl_click={UUID}",
        location,
    ), location


def test_defaults_without_campaign_or_influencer(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    link = make_link(runtime, workspace.id, "https://shop.store.com")
    location = client.get(f"/r/{link.code.upper()}", follow_redirects=False).headers["location"]
    assert re.fullmatch(
        rf"https://shop\.store\.com/\?utm_source=storeloop&utm_medium=influencer&sl_click={UUID}",
        location,
    ), location


def test_https_cookie_domain_and_a_returning_visitor(
    make_client: ClientFactory, workspace: WorkspaceKeys
) -> None:
    client, rt = make_client(cookie_domain=".store.com")
    allow_domains(rt, workspace.id, "store.com")
    link = make_link(rt, workspace.id)
    response = client.get(
        f"https://t.store.com/r/{link.code}",
        headers={"cookie": "sl_aid=visitor-123; sl_click=old"},
        follow_redirects=False,
    )
    assert response.status_code == 302
    [cookie] = response.headers.get_list("set-cookie")  # sl_aid exists: not set again
    click_id = response.headers["location"].rsplit("sl_click=", 1)[1]
    assert cookie == (
        f"sl_click={workspace.id.hex}.{click_id}; Max-Age={MAX_AGE}; Path=/; SameSite=Lax; "
        "HttpOnly; Secure; Domain=.store.com"
    )
    [click] = clicks_of(rt, workspace.id)
    assert click.anonymous_id == "visitor-123"


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "user_agent"),
        ("curl/8.5.0", "user_agent"),
        (
            "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
            "link_preview",
        ),
        ("WhatsApp/2.24.6.77 A", "link_preview"),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "link_preview"),
        ("TelegramBot (like TwitterBot)", "link_preview"),
        ("", "no_user_agent"),
    ],
)
def test_bots_are_redirected_and_flagged(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, user_agent: str, reason: str
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    link = make_link(runtime, workspace.id)
    response = client.get(
        f"/r/{link.code}", headers={"user-agent": user_agent}, follow_redirects=False
    )
    assert response.status_code == 302
    [click] = clicks_of(runtime, workspace.id)
    assert (click.is_bot, click.bot_reason) == (True, reason)


def test_velocity_flags_clicks_over_the_limit(
    make_client: ClientFactory, workspace: WorkspaceKeys
) -> None:
    client, rt = make_client(click_velocity_per_minute=5)
    allow_domains(rt, workspace.id, "store.com")
    link = make_link(rt, workspace.id)
    other = make_link(rt, workspace.id)
    for _ in range(7):
        client.get(f"/r/{link.code}", headers={"user-agent": BROWSER}, follow_redirects=False)
    # Another link, or another browser, is counted on its own.
    client.get(f"/r/{other.code}", headers={"user-agent": BROWSER}, follow_redirects=False)
    client.get(f"/r/{link.code}", headers={"user-agent": BROWSER + " x"}, follow_redirects=False)
    flags = [(c.link_id == link.id, c.bot_reason) for c in clicks_of(rt, workspace.id)]
    assert flags == [(True, None)] * 5 + [(True, "velocity")] * 2 + [(False, None), (True, None)]


def test_client_address_behind_a_trusted_proxy(
    make_client: ClientFactory, workspace: WorkspaceKeys
) -> None:
    client, rt = make_client(client=("10.1.2.3", 5000), trusted_proxies="10.0.0.0/8, 127.0.0.1")
    allow_domains(rt, workspace.id, "store.com")
    link = make_link(rt, workspace.id)
    response = client.get(
        f"/r/{link.code}",
        headers={
            "x-forwarded-for": "192.0.2.1, 2001:db8:abcd:12::5, 10.9.9.9",
            "x-forwarded-proto": "https",
        },
        follow_redirects=False,
    )
    assert response.headers["set-cookie"].endswith("; HttpOnly; Secure")
    [click] = clicks_of(rt, workspace.id)
    # The right-most address that is not a trusted proxy; IPv6 cut to /48.
    assert click.ip_truncated == "2001:db8:abcd::/48"


def test_forwarded_headers_of_an_untrusted_peer_are_ignored(
    make_client: ClientFactory, workspace: WorkspaceKeys
) -> None:
    client, rt = make_client(client=("203.0.113.77", 5000), trusted_proxies="10.0.0.0/8")
    allow_domains(rt, workspace.id, "store.com")
    link = make_link(rt, workspace.id)
    response = client.get(
        f"/r/{link.code}",
        headers={"x-forwarded-for": "192.0.2.1", "x-forwarded-proto": "https"},
        follow_redirects=False,
    )
    assert "Secure" not in response.headers["set-cookie"]
    [click] = clicks_of(rt, workspace.id)
    assert click.ip_truncated == "203.0.113.0/24"


@pytest.mark.parametrize(
    "destination",
    [
        "https://evil.com/landing",
        "//evil.com/landing",
        "https://store.com.evil.com/",
        "https://evilstore.com/",
        "https://store.com@evil.com/",
        "https://user:pass@store.com/",
        "https://evil.com\\@store.com/",
        "https://evil.com/?next=https://store.com/",
        "javascript:alert(document.domain)//store.com",
        "ftp://store.com/file",
        "https://store.com\t.evil.com/",
        "/relative/path",
    ],
)
def test_destinations_off_the_allowed_domains_are_never_redirected(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, destination: str
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    link = store_unchecked_link(runtime, workspace.id, destination)
    response = client.get(f"/r/{link.code}", follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers
    assert clicks_of(runtime, workspace.id) == []


def test_allowed_domains_are_checked_again_at_redirect_time(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    link = make_link(runtime, workspace.id)
    assert client.get(f"/r/{link.code}", follow_redirects=False).status_code == 302
    allow_domains(runtime, workspace.id, "new-store.com")
    runtime.tracking.links.clear()  # what the 5-second cache expiry does
    response = client.get(f"/r/{link.code}", follow_redirects=False)
    assert response.status_code == 404
    assert len(clicks_of(runtime, workspace.id)) == 1


def test_unknown_disabled_and_refused_links_get_the_same_friendly_page(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    disabled = make_link(runtime, workspace.id)
    set_link_active(runtime, workspace.id, disabled.id, False)
    off_domain = store_unchecked_link(runtime, workspace.id, "https://elsewhere.com/")
    pages = [
        client.get(path, follow_redirects=False)
        for path in (
            "/r/never-existed",
            f"/r/{disabled.code}",
            f"/r/{off_domain.code}",
            "/r/x",
            "/r/bad%20code!",
            "/r/",
        )
    ]
    assert {page.status_code for page in pages} == {404}
    assert {page.text for page in pages} == {pages[0].text}
    page = pages[0]
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "This link isn&#39;t available" in page.text
    assert "http" not in page.text  # no external assets, no links out
    assert clicks_of(runtime, workspace.id) == []


def test_head_is_answered_like_get_without_a_click(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    link = make_link(runtime, workspace.id, "https://store.com/a")
    response = client.head(f"/r/{link.code}", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == (
        "https://store.com/a?utm_source=storeloop&utm_medium=influencer"
    )
    assert "set-cookie" not in response.headers
    assert client.head("/r/unknown-code", follow_redirects=False).status_code == 404
    assert clicks_of(runtime, workspace.id) == []


def test_other_methods_are_refused_without_a_click(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "store.com")
    link = make_link(runtime, workspace.id)
    response = client.post(f"/r/{link.code}", follow_redirects=False)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET, HEAD"
    assert clicks_of(runtime, workspace.id) == []


def test_a_link_never_uses_another_workspaces_settings_or_campaign(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    other_workspace: WorkspaceKeys,
) -> None:
    # The other store allows store.com and owns the campaign; this store allows nothing.
    allow_domains(runtime, other_workspace.id, "store.com")
    foreign_campaign = make_campaign(runtime, other_workspace.id, name="Not yours")
    link = store_unchecked_link(
        runtime, workspace.id, "https://store.com/", campaign_id=foreign_campaign.id
    )
    assert client.get(f"/r/{link.code}", follow_redirects=False).status_code == 404

    allow_domains(runtime, workspace.id, "store.com")
    runtime.tracking.links.clear()
    location = client.get(f"/r/{link.code}", follow_redirects=False).headers["location"]
    assert "not-yours" not in location
    assert "utm_medium=influencer" in location
    assert len(clicks_of(runtime, workspace.id)) == 1
    assert clicks_of(runtime, other_workspace.id) == []


def test_non_ascii_destinations_become_a_valid_location_header(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    allow_domains(runtime, workspace.id, "xn--bcher-kva.example")
    link = make_link(runtime, workspace.id, "https://bücher.example/straße?q=größe")
    location = client.get(f"/r/{link.code}", follow_redirects=False).headers["location"]
    assert location.startswith(
        "https://xn--bcher-kva.example/stra%C3%9Fe?q=gr%C3%B6%C3%9Fe&utm_source=storeloop"
    ), location
    assert len(clicks_of(runtime, workspace.id)) == 1
