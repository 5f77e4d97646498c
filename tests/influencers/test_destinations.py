"""One open-redirect rule (storeloop.kit.urls): link creation, link edits and the redirect's
re-check accept and refuse the same URLs, and no public suffix can be an allowed domain."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from storeloop.kit.urls import destination_allowed, is_public_suffix, parse_web_url
from storeloop.runtime import Runtime
from storeloop.tracking.repository import LinkRow, build_redirect
from tests.factories.influencers import set_store_settings
from tests.factories.workspaces import WorkspaceKeys

ALLOWED = ("store.com",)

# (url, allowed with "store.com" the only allowed domain)
DESTINATIONS = [
    ("https://store.com/a", True),
    ("HTTPS://WWW.STORE.COM./x", True),
    ("https://shop.store.com:8443/a?b=c#d", True),
    ("https://bücher.store.com/", True),
    ("https://xn--bcher-kva.store.com/", True),
    ("https://evil.com\u3002store.com/", True),  # an ideographic full stop is a dot: a subdomain
    ("https://store.com.evil.com/", False),
    ("https://evilstore.com/", False),
    ("https://evil.com\x7f.store.com/", False),  # DEL: the creation check used to let it through
    ("https://evil.com\x85.store.com/", False),  # C1 control
    ("https://evil.com\u00ad.store.com/", False),  # soft hyphen, invisible
    ("https://evil.com\u200b.store.com/", False),  # zero-width space
    ("https://evil.com\u202e.store.com/", False),  # right-to-left override
    ("https://evil.com%2f.store.com/", False),  # browsers decode %2f in the host
    ("https://evil.com%2F%2F.store.com/", False),
    ("https://evil.com%40.store.com/", False),
    ("https://evil.com%3f.store.com/", False),
    ("https://evil_com.store.com/", False),
    ("https://evil.com\uff0f.store.com/", False),  # fullwidth solidus becomes "/" under NFKC
    ("https://evil.com\uff1f.store.com/", False),  # fullwidth question mark
    ("https://store.com@evil.com/", False),
    ("https://store.com:80@evil.com/", False),
    ("https://user:pass@store.com/", False),
    ("https://evil.com\\@store.com/", False),
    ("https:/\\store.com/", False),
    ("https://evil.com\t.store.com/", False),
    ("https://store.com\n.evil.com/", False),
    (" https://store.com/", False),
    ("//store.com/", False),
    ("https:///store.com/", False),
    ("https:store.com/", False),
    ("/relative/path", False),
    ("javascript:alert(1)//store.com", False),
    ("data:text/html,store.com", False),
    ("ftp://store.com/file", False),
    ("https://store.com:99999/", False),
    ("https://store.com:\uff18\uff10/", False),  # fullwidth digits
    ("https://[::1]/", False),
    ("https://127.0.0.1/", False),
    ("https://store..com/", False),
    ("https://-store.com/", False),
]


def _row(url: str, allowed_domains: tuple[str, ...] = ALLOWED) -> LinkRow:
    return LinkRow(
        link_id=uuid.uuid4(),
        workspace_id=uuid.uuid4(),
        destination_url=url,
        is_active=True,
        link_utm={},
        campaign_name=None,
        campaign_channel=None,
        campaign_utm={},
        influencer_name=None,
        influencer_handles=None,
        allowed_domains=allowed_domains,
    )


@pytest.mark.parametrize(("url", "allowed"), DESTINATIONS)
def test_creation_and_redirect_agree_on_every_destination(url: str, allowed: bool) -> None:
    assert destination_allowed(url, ALLOWED) is allowed
    redirect = build_redirect(_row(url))
    assert (redirect is not None) is allowed
    if redirect is not None:
        # The host written into Location is the one that was checked.
        location = redirect.location("c1")
        parsed = parse_web_url(location)
        assert parsed is not None
        assert parsed.host == "store.com" or parsed.host.endswith(".store.com")


def test_location_carries_the_checked_host() -> None:
    redirect = build_redirect(_row("https://evil.com\u3002Store.com:8443/p?q=1#top"))
    assert redirect is not None
    assert redirect.location("c1") == (
        "https://evil.com.store.com:8443/p?q=1&utm_source=storeloop&utm_medium=influencer"
        "&sl_click=c1#top"
    )


def test_the_api_refuses_what_the_redirect_refuses(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    set_store_settings(runtime, workspace.id, allowed_domains=["store.com"])
    kept = client.post(
        "/api/v1/links",
        json={"destination_url": "https://store.com/kept"},
        headers=workspace.bearer,
    ).json()
    created: dict[str, int] = {}
    patched: dict[str, int] = {}
    for url, _allowed in DESTINATIONS:
        response = client.post(
            "/api/v1/links", json={"destination_url": url}, headers=workspace.bearer
        )
        created[url] = response.status_code
        if response.status_code == 422:
            assert response.json()["error"]["code"] == "destination_not_allowed", url
        edit = client.patch(
            f"/api/v1/links/{kept['id']}", json={"destination_url": url}, headers=workspace.bearer
        )
        patched[url] = edit.status_code
        if edit.status_code == 200:
            client.patch(
                f"/api/v1/links/{kept['id']}",
                json={"destination_url": "https://store.com/kept"},
                headers=workspace.bearer,
            )
    # The request schema strips surrounding spaces first: " https://store.com/" is that URL.
    expected = {
        url: allowed or url.strip() == "https://store.com/" for url, allowed in DESTINATIONS
    }
    assert created == {url: 201 if ok else 422 for url, ok in expected.items()}
    assert patched == {url: 200 if ok else 422 for url, ok in expected.items()}
    stored = client.get("/api/v1/links", params={"limit": 200}, headers=workspace.bearer).json()
    assert sorted(item["destination_url"] for item in stored["items"]) == sorted(
        ["https://store.com/kept", *(url.strip() for url, ok in expected.items() if ok)]
    )
    after = client.get(f"/api/v1/links/{kept['id']}", headers=workspace.bearer).json()
    assert after["destination_url"] == "https://store.com/kept"


@pytest.mark.parametrize(
    "domain",
    ["com", "COM.", "co.uk", "uk", "myshopify.com", "github.io", "xn--p1ai", "рф", "localhost"],
)
def test_public_suffixes_cannot_be_allowed_domains(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, domain: str
) -> None:
    set_store_settings(runtime, workspace.id, allowed_domains=["shop.example"])
    response = client.patch(
        "/api/v1/settings",
        json={"allowed_domains": ["store.example", domain]},
        headers=workspace.bearer,
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_domain"
    assert response.json()["error"]["field"] == "allowed_domains.1"
    body = client.get("/api/v1/settings", headers=workspace.bearer).json()
    assert body["allowed_domains"] == ["shop.example"]


def test_domains_under_a_public_suffix_are_fine(
    client: TestClient, workspace: WorkspaceKeys
) -> None:
    response = client.patch(
        "/api/v1/settings",
        json={"allowed_domains": ["Rosa.co.uk", "rosa.myshopify.com", "shop.example", "рф.com"]},
        headers=workspace.bearer,
    )
    assert response.status_code == 200, response.text
    assert response.json()["allowed_domains"] == [
        "rosa.co.uk",
        "rosa.myshopify.com",
        "shop.example",
        "xn--p1ai.com",
    ]


@pytest.mark.parametrize(
    ("stored", "url"),
    [
        ("com", "https://evil.com/"),
        ("co.uk", "https://evil.co.uk/"),
        ("myshopify.com", "https://evil.myshopify.com/"),
    ],
)
def test_a_public_suffix_stored_before_the_rule_allows_nothing(stored: str, url: str) -> None:
    assert is_public_suffix(stored)
    assert not destination_allowed(url, (stored,))
    assert build_redirect(_row(url, (stored,))) is None
    assert destination_allowed(url, (stored, url.split("/")[2]))
