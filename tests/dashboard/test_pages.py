"""The dashboard's pages over a small store: every page for every role, sign-in required,
workspace isolation, filters in the URL, numbers equal to the analytics API, CSV downloads."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from storeloop.dashboard.csvfile import csv_cell, csv_text
from storeloop.runtime import Runtime
from storeloop.workspaces.service import Role
from tests.factories.analytics import message, send
from tests.factories.dashboard import CODE_BUYER, FIRST_BUYER, FIRST_ORDER, Store, make_store
from tests.factories.staff import csrf_from, make_staff, sign_in
from tests.factories.workspaces import WorkspaceKeys


@pytest.fixture
def store(client: TestClient, runtime: Runtime, workspace: WorkspaceKeys) -> Store:
    return make_store(client, runtime, workspace)


def _customer_id(client: TestClient, workspace: WorkspaceKeys, email: str) -> str:
    found = client.post(
        "/api/v1/profiles/search", json={"email": email}, headers=workspace.bearer
    ).json()
    assert len(found["items"]) == 1
    return str(found["items"][0]["id"])


def _pages(client: TestClient, workspace: WorkspaceKeys, store: Store) -> list[str]:
    customer = _customer_id(client, workspace, FIRST_BUYER)
    return [
        "/dashboard",
        "/dashboard/overview/cards",
        "/dashboard/overview/latest",
        "/dashboard/influencers",
        f"/dashboard/influencers/{store.maya_id}",
        f"/dashboard/influencers/{store.noor_id}",
        "/dashboard/campaigns",
        "/dashboard/channels",
        "/dashboard/orders",
        f"/dashboard/orders/{store.first_order_id}",
        f"/dashboard/orders/{store.code_order_id}",
        "/dashboard/customers",
        f"/dashboard/customers/{customer}",
    ]


@pytest.mark.parametrize("role", [Role.ANALYST, Role.MARKETER, Role.ADMIN, Role.OWNER])
def test_every_page_reads_for_every_role(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, store: Store, role: Role
) -> None:
    pages = _pages(client, workspace, store)
    sign_in(client, make_staff(runtime, workspace.id, role))
    statuses = {path: client.get(path).status_code for path in pages}
    assert statuses == dict.fromkeys(pages, 200)
    keys = client.get("/dashboard/keys").status_code
    assert keys == (200 if role in (Role.OWNER, Role.ADMIN) else 403)


def test_every_page_needs_a_session(
    client: TestClient, workspace: WorkspaceKeys, store: Store
) -> None:
    pages = [*_pages(client, workspace, store), "/dashboard/live", "/dashboard/keys"]
    for path in pages:
        response = client.get(path + "?range=7d", follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (
            303,
            "/login?next=" + path + "%3Frange%3D7d",
        ), path
    # An htmx refresh of the cards is told to send the whole page to the sign-in form.
    partial = client.get("/dashboard/overview/cards", headers={"HX-Request": "true"})
    assert (partial.status_code, partial.headers["hx-redirect"], partial.text) == (
        401,
        "/login?next=/dashboard",
        "",
    )
    # Searching customers is a POST: refused without a session, and without the CSRF token.
    response = client.post(
        "/dashboard/customers/search", data={"email": FIRST_BUYER}, follow_redirects=False
    )
    assert response.status_code == 303


def test_another_workspaces_ids_are_not_found(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    other_workspace: WorkspaceKeys,
    store: Store,
) -> None:
    customer = _customer_id(client, workspace, FIRST_BUYER)
    sign_in(client, make_staff(runtime, other_workspace.id, Role.OWNER))
    for path in (
        f"/dashboard/influencers/{store.maya_id}",
        f"/dashboard/orders/{store.first_order_id}",
        f"/dashboard/customers/{customer}",
        f"/dashboard/orders/{store.first_order_id}?format=csv&table=credits",
        f"/dashboard/customers/{customer}?format=csv&table=identifiers",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "in this workspace" in response.text
        assert FIRST_BUYER not in response.text
    # The other store's lists hold none of this store's rows.
    assert FIRST_ORDER not in client.get("/dashboard/orders").text
    assert "Maya" not in client.get("/dashboard/influencers").text
    assert client.get("/dashboard/orders?format=csv").text == (
        "id,external_id,placed_at,source,source_channel,status,currency,subtotal,"
        "discount_total,shipping,tax,total,refunded_total,discount_codes,profile_id\r\n"
    )
    page = client.get("/dashboard/customers")
    search = client.post(
        "/dashboard/customers/search",
        data={"csrf_token": csrf_from(page.text), "email": FIRST_BUYER},
    )
    assert search.status_code == 200
    assert "0 customers found" in search.text


def _data_values(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-testid="kpi-([a-z_]+)" data-value="([^"]*)"', html))


def test_the_overview_shows_the_analytics_apis_numbers(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, store: Store
) -> None:
    sign_in(client, make_staff(runtime, workspace.id, Role.ANALYST))
    page = client.get(f"/dashboard?range=custom&start={store.day}&end={store.day}")
    api = client.get(
        "/api/v1/analytics/overview",
        params={"start": store.day, "end": store.day},
        headers=workspace.bearer,
    ).json()
    shown = _data_values(page.text)
    assert shown == {
        "unique_visitors": "1",
        "sessions": "1",
        "orders": "2.0000",
        "conversion_rate": "1.0",
        "gross_revenue": "200.0000",
        "net_revenue": "200.0000",
        "average_order_value": "100.0000",
        "returning_customer_rate": "0.0",
        "cart_abandonment_rate": "",
        "refund_rate": "0.0",
    }
    assert shown == {key: "" if api[key] is None else str(api[key]) for key in shown}
    # What a person reads: rounded, grouped, with the currency.
    assert '<span class="kpi-value">200.00 EUR</span>' in page.text
    assert '<span class="kpi-value">100.0%</span>' in page.text
    assert "Start tracking your store" not in page.text
    # The live partial answers the same numbers for the same URL filters.
    cards = client.get(f"/dashboard/overview/cards?range=custom&start={store.day}&end={store.day}")
    assert _data_values(cards.text) == shown
    # Filtered to Maya, orders are what the model credits her.
    maya = client.get(
        f"/dashboard?range=custom&start={store.day}&end={store.day}&influencer_id={store.maya_id}"
    )
    assert _data_values(maya.text)["orders"] == "2.0000"
    assert "credits to the filter" in maya.text
    # The active filter is named, with a link that removes it and keeps the rest.
    dates = f"range=custom&amp;start={store.day}&amp;end={store.day}"
    chip = f'Influencer Maya <a href="/dashboard?{dates}" aria-label="Remove the filter Influencer'
    assert chip in maya.text


def test_filters_live_in_the_url_and_bad_ones_are_explained(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, store: Store
) -> None:
    sign_in(client, make_staff(runtime, workspace.id, Role.ANALYST))
    page = client.get(
        f"/dashboard/influencers?range=custom&start={store.day}&end={store.day}&models=last_click,linear"
    )
    assert page.status_code == 200
    # The nav keeps the range and models when moving between pages.
    query = f"range=custom&amp;start={store.day}&amp;end={store.day}&amp;models=last_click%2Clinear"
    assert f'href="/dashboard/channels?{query}"' in page.text
    assert '<option value="linear" selected>' in page.text
    for bad, explanation in (
        ("range=fortnight", "Unknown date range “fortnight”"),
        (
            "range=custom&start=2026-02-30&end=2026-03-01",
            "The start date “2026-02-30” is not a date",
        ),
        ("range=custom&start=2026-03-02&end=2026-03-01", "The start date is after the end date."),
        ("range=custom&start=2020-01-01&end=2026-03-01", "A date range covers at most 366 days."),
        ("influencer_id=maya", "The influencer in this address is not a valid id."),
        ("model=guess", "Unknown attribution model “guess”"),
        ("models=last_click,linear,markov", "Compare at most 2 attribution models at a time."),
        ("device=fridge", "Unknown device “fridge”"),
        ("currency=EURO", "“EURO” is not a currency code like EUR."),
    ):
        response = client.get(f"/dashboard/influencers?{bad}")
        assert response.status_code == 400, bad
        assert explanation in response.text, bad
        assert 'href="/dashboard/influencers"' in response.text
    assert client.get("/dashboard/orders?cursor=not-a-cursor").status_code == 400
    assert client.get("/dashboard?format=csv&table=secrets").status_code == 400


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_leaderboards_compare_two_models_and_export_what_the_api_exports(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, store: Store
) -> None:
    sign_in(client, make_staff(runtime, workspace.id, Role.ANALYST))
    dates = f"range=custom&start={store.day}&end={store.day}"
    page = client.get(f"/dashboard/influencers?{dates}&model=last_click&compare=linear")
    assert page.status_code == 200
    assert 'data-testid="model-head-last_click">Last click<' in page.text
    assert 'data-testid="model-head-linear">Linear<' in page.text
    assert re.findall(
        r'data-model="(\w+)" data-field="revenue" data-value="([^"]+)"', page.text
    ) == [
        ("last_click", "200.0000"),
        ("linear", "200.0000"),
    ]
    download = client.get(f"/dashboard/influencers?{dates}&models=last_click,linear&format=csv")
    assert download.status_code == 200
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert download.headers["content-disposition"] == (
        f'attachment; filename="influencers-{store.day}-{store.day}.csv"'
    )
    api = client.get(
        "/api/v1/analytics/breakdown",
        params={
            "start": store.day,
            "end": store.day,
            "by": "influencer",
            "models": "last_click,linear",
            "format": "csv",
        },
        headers=workspace.bearer,
    )
    assert download.text == api.text
    rows = _csv_rows(download.text)
    assert rows[0][:9] == [
        "key",
        "name",
        "clicks",
        "bot_clicks",
        "bot_share",
        "sessions",
        "cost",
        "last_click_orders",
        "last_click_revenue",
    ]
    maya = next(row for row in rows if row[0] == store.maya_id)
    assert maya[:13] == [
        store.maya_id,
        "Maya",
        "1",
        "1",
        "0.5",
        "1",
        "400.0000",
        "2.0000",
        "200.0000",
        "200.0000",
        "-0.5000",
        "0.5000",
        "200.0000",
    ]

    channels = client.get(f"/dashboard/channels?{dates}&format=csv")
    assert [row[:2] for row in _csv_rows(channels.text)[1:]] == [["Influencer", "Influencer"]]
    campaigns = _csv_rows(client.get(f"/dashboard/campaigns?{dates}&format=csv").text)
    assert [(row[1], row[6], row[8]) for row in campaigns[1:]] == [
        ("Autumn edit", "400.0000", "200.0000")
    ]


def test_an_influencers_page(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, store: Store
) -> None:
    sign_in(client, make_staff(runtime, workspace.id, Role.MARKETER))
    dates = f"range=custom&start={store.day}&end={store.day}"
    page = client.get(f"/dashboard/influencers/{store.maya_id}?{dates}")
    assert page.status_code == 200
    text = page.text
    assert 'data-testid="fig-clicks" data-value="1"' in text
    assert "1 by bots (50%), not counted" in text
    assert 'data-testid="fig-cost" data-value="400.0000"' in text
    assert re.findall(r'<tr data-model="(\w+)">', text) == ["last_click"]
    assert 'data-field="revenue" data-value="200.0000"' in text
    assert "MAYA15" in text
    assert store.link_code in text
    assert "https://www.instagram.com/reel/autumn-edit/" in text
    assert text.count(">why?</a>") == 2

    orders = _csv_rows(
        client.get(f"/dashboard/influencers/{store.maya_id}?{dates}&format=csv&table=orders").text
    )
    assert orders[0] == ["order_id", "placed_at", "credit", "revenue", "currency"]
    assert sorted((row[0], row[2], row[3], row[4]) for row in orders[1:]) == sorted(
        [
            (store.first_order_id, "1.000000000000", "120.0000", "EUR"),
            (store.code_order_id, "1.000000000000", "80.0000", "EUR"),
        ]
    )
    links = _csv_rows(
        client.get(f"/dashboard/influencers/{store.maya_id}?{dates}&format=csv&table=links").text
    )
    assert links[0] == [
        "id",
        "code",
        "short_url",
        "destination_url",
        "is_active",
        "clicks",
        "bot_clicks",
        "last_click_orders",
    ]
    assert links[1][0:2] == [store.link_id, store.link_code]
    assert links[1][3:] == ["https://shop.example/autumn", "true", "1", "1", "1.0000"]
    codes = _csv_rows(
        client.get(f"/dashboard/influencers/{store.maya_id}?format=csv&table=codes").text
    )
    assert [row[1:4] for row in codes[1:]] == [["MAYA15", "Autumn edit", "true"]]

    noor = client.get(f"/dashboard/influencers/{store.noor_id}?{dates}")
    assert 'data-testid="fig-clicks" data-value="0"' in noor.text
    assert "No order in this range is credited to Noor" in noor.text


def test_an_order_explains_its_credit(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, store: Store
) -> None:
    sign_in(client, make_staff(runtime, workspace.id, Role.ANALYST))
    page = client.get(f"/dashboard/orders/{store.code_order_id}")
    assert page.status_code == 200
    assert "discount-code precedence" in page.text
    credits = _csv_rows(
        client.get(f"/dashboard/orders/{store.code_order_id}?format=csv&table=credits").text
    )
    assert credits[0] == [
        "model",
        "channel",
        "influencer",
        "campaign",
        "credit",
        "revenue",
        "currency",
    ]
    assert [row for row in credits[1:] if row[0] == "last_click"] == [
        ["last_click", "Influencer", "Maya", "Autumn edit", "1.000000000000", "80.0000", "EUR"]
    ]
    assert len(credits) == 1 + 7  # one line per model

    clicked = client.get(f"/dashboard/orders/{store.first_order_id}?format=csv&table=touchpoints")
    rows = _csv_rows(clicked.text)
    assert rows[0][:4] == ["state", "occurred_at", "kind", "channel"]
    assert {(row[0], row[2], row[3], row[8]) for row in rows[1:]} >= {
        ("considered", "click", "Influencer", "Maya")
    }


def test_orders_are_listed_by_pages_and_exported(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from storeloop.dashboard.pages import orders as orders_page

    monkeypatch.setattr(orders_page, "PAGE_SIZE", 1)
    sign_in(client, make_staff(runtime, workspace.id, Role.ANALYST))
    first = client.get("/dashboard/orders")
    assert re.findall(r'<a href="/dashboard/orders/[^"]+">(\d+)</a>', first.text) == [
        "9300000000000002"
    ]
    next_href = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert next_href is not None
    second = client.get(next_href.group(1).replace("&amp;", "&"))
    assert re.findall(r'<a href="/dashboard/orders/[^"]+">(\d+)</a>', second.text) == [
        "9300000000000001"
    ]
    assert 'rel="next"' not in second.text

    exported = _csv_rows(client.get("/dashboard/orders?format=csv").text)
    assert [(row[1], row[3], row[5], row[6], row[11]) for row in exported[1:]] == [
        ("9300000000000002", "shopify", "paid", "EUR", "80.0000"),
        ("9300000000000001", "shopify", "paid", "EUR", "120.0000"),
    ]


def test_customers_are_found_by_email_in_a_post_body(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, store: Store
) -> None:
    sign_in(client, make_staff(runtime, workspace.id, Role.ANALYST))
    page = client.get("/dashboard/customers")
    assert page.status_code == 200
    token = csrf_from(page.text)
    assert (
        client.post(
            "/dashboard/customers/search", data={"csrf_token": "forged", "email": CODE_BUYER}
        ).status_code
        == 403
    )
    found = client.post(
        "/dashboard/customers/search",
        data={"csrf_token": token, "email": " Coupon.Hunter@mail.example "},
    )
    assert found.status_code == 200
    assert "1 customer found" in found.text
    profile_href = re.search(r'<a href="(/dashboard/customers/[0-9a-f-]+)">', found.text)
    assert profile_href is not None
    profile = client.get(profile_href.group(1))
    assert CODE_BUYER in profile.text
    identifiers = _csv_rows(
        client.get(profile_href.group(1) + "?format=csv&table=identifiers").text
    )
    assert ["email", CODE_BUYER] in [row[:2] for row in identifiers[1:]]
    orders = _csv_rows(client.get(profile_href.group(1) + "?format=csv&table=orders").text)
    assert [(row[1], row[5]) for row in orders[1:]] == [("9300000000000002", "80.0000")]
    empty = client.post("/dashboard/customers/search", data={"csrf_token": token})
    assert empty.status_code == 400
    assert "Type an email" in empty.text


def test_a_new_store_is_told_what_to_do_next(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    sign_in(client, make_staff(runtime, workspace.id, Role.ANALYST))
    overview = client.get("/dashboard")
    assert "Start tracking your store" in overview.text
    assert f't.js" data-write-key="{workspace.write_key[:12]}' in overview.text.replace(
        "&#34;", '"'
    )
    assert "Ask an owner or admin" in overview.text
    influencers = client.get("/dashboard/influencers")
    assert "Add your first influencer" in influencers.text
    assert "storeloop influencer create" in influencers.text
    orders = client.get("/dashboard/orders")
    assert "No orders yet" in orders.text
    customers = client.get("/dashboard/customers")
    assert "No customers yet" in customers.text


def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    formula = '=HYPERLINK("http://evil.example","click")'
    # A customer whose name is a formula, and a campaign whose name is one.
    identify = message("identify", "anon-evil", datetime.now(UTC), "desktop", userId="u-evil")
    identify["traits"] = {"name": formula, "email": "evil@mail.example"}
    send(client, workspace, [identify])
    runtime.processor.drain()
    client.post(
        "/api/v1/campaigns",
        json={"name": "@SUM(1+1)", "currency": "EUR", "fee": "10.00"},
        headers=workspace.bearer,
    ).raise_for_status()
    sign_in(client, make_staff(runtime, workspace.id, Role.ANALYST))

    customers = client.get("/dashboard/customers?format=csv")
    assert customers.headers["content-disposition"] == 'attachment; filename="customers.csv"'
    rows = _csv_rows(customers.text)
    assert rows[0] == ["id", "email", "name", "first_seen_at", "last_seen_at", "traits"]
    assert [row[1:3] for row in rows[1:]] == [["evil@mail.example", "'" + formula]]
    today = datetime.now(UTC).date().isoformat()
    campaigns = _csv_rows(
        client.get(f"/dashboard/campaigns?range=custom&start={today}&end={today}&format=csv").text
    )
    assert [(row[1], row[6]) for row in campaigns[1:]] == [("'@SUM(1+1)", "10.0000")]

    assert [csv_cell(value) for value in ("=1+1", "+33 6", "-x", "@SUM(A1)", "\tx", "ok")] == [
        "'=1+1",
        "'+33 6",
        "'-x",
        "'@SUM(A1)",
        "'\tx",
        "ok",
    ]
    # Numbers are ours and stay numbers, negative ones too.
    assert [csv_cell(value) for value in (Decimal("-0.5000"), -2, None, True)] == [
        "-0.5000",
        "-2",
        "",
        "true",
    ]
    assert csv_text(["name"], [["=cmd|' /C calc'!A0"]]) == "name\r\n'=cmd|' /C calc'!A0\r\n"
