"""The dashboard as a store's analyst uses it, in a real headless Chromium: sign in, read the
overview and check it against the analytics API, change the range, open an influencer, compare
two models, download a CSV, watch a live order arrive; and the same pages on a phone.
Screenshots are kept in tests/artifacts/."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from storeloop.runtime import Runtime
from storeloop.workspaces.service import Role
from tests.conftest import LiveServer
from tests.dashboard.conftest import ARTIFACTS, screenshot
from tests.factories.analytics import settle
from tests.factories.dashboard import Store, make_store, post_order, shopify_order
from tests.factories.staff import Staff, make_staff
from tests.factories.workspaces import WorkspaceKeys

KPIS = (
    "unique_visitors",
    "sessions",
    "orders",
    "conversion_rate",
    "gross_revenue",
    "net_revenue",
    "average_order_value",
    "returning_customer_rate",
    "cart_abandonment_rate",
    "refund_rate",
)


def _sign_in(page: Page, server: LiveServer, staff: Staff, path: str = "/dashboard") -> None:
    page.goto(f"{server.url}{path}")
    page.get_by_label("Email").fill(staff.email)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()


def _shown_kpis(page: Page) -> dict[str, str]:
    return {
        key: page.get_by_test_id(f"kpi-{key}").get_attribute("data-value") or "" for key in KPIS
    }


def _api_kpis(
    server: LiveServer, workspace: WorkspaceKeys, start: date, end: date
) -> dict[str, str]:
    answer = httpx.get(
        f"{server.url}/api/v1/analytics/overview",
        params={"start": start.isoformat(), "end": end.isoformat()},
        headers=workspace.bearer,
    ).json()
    return {key: "" if answer[key] is None else str(answer[key]) for key in KPIS}


def test_an_analyst_reads_the_dashboard(
    desktop: Page,
    client: TestClient,
    live_server: LiveServer,
    runtime: Runtime,
    workspace: WorkspaceKeys,
) -> None:
    store = make_store(client, runtime, workspace)
    page = desktop
    _sign_in(page, live_server, make_staff(runtime, workspace.id, Role.ANALYST))

    # The overview (last 30 days by default) says what the analytics API says.
    expect(page.get_by_test_id("live-status")).to_have_text("Live")
    today = datetime.now(UTC).date()
    assert _shown_kpis(page) == _api_kpis(live_server, workspace, today - timedelta(days=29), today)
    expect(page.get_by_test_id("kpi-orders").locator(".kpi-value")).to_have_text("2")
    expect(page.get_by_test_id("kpi-gross_revenue").locator(".kpi-value")).to_have_text(
        "200.00 EUR"
    )
    expect(page.locator("#series-chart")).to_be_visible()
    screenshot(page, "overview-desktop")

    # Change the range: a preset, then a custom range; both stay in the (shareable) URL.
    page.get_by_label("Range", exact=True).select_option("7d")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"/dashboard\?range=7d"))
    assert _shown_kpis(page) == _api_kpis(live_server, workspace, today - timedelta(days=6), today)
    page.get_by_label("Range", exact=True).select_option("custom")
    page.get_by_label("From", exact=True).fill(store.day)
    page.get_by_label("To", exact=True).fill(store.day)
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(rf"range=custom&start={store.day}&end={store.day}"))
    shared = page.url
    day = date.fromisoformat(store.day)
    assert _shown_kpis(page) == _api_kpis(live_server, workspace, day, day)
    expect(page.get_by_test_id("range-summary")).to_contain_text(f"{store.day} to {store.day}")

    # Open an influencer from the leaderboard; the range comes along.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Influencers").click()
    expect(page).to_have_url(re.compile(rf"/dashboard/influencers\?range=custom&start={store.day}"))
    page.get_by_role("link", name="Maya", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Maya")
    expect(page.get_by_test_id("fig-clicks").locator(".kpi-value")).to_have_text("1")
    expect(page.get_by_test_id("fig-clicks")).to_contain_text("1 by bots (50%), not counted")
    expect(page.get_by_test_id("fig-cost").locator(".kpi-value")).to_have_text("400.00 EUR")
    expect(page.get_by_test_id("credited-orders").locator("tbody tr")).to_have_count(2)
    expect(page.get_by_test_id("codes-table")).to_contain_text("MAYA15")
    screenshot(page, "influencer-desktop")

    # Compare two models side by side on the leaderboard.
    page.get_by_role("link", name="Influencers").first.click()
    page.get_by_label("Compare with").select_option("linear")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"model=last_click&compare=linear"))
    expect(page.get_by_test_id("model-head-last_click")).to_have_text("Last click")
    expect(page.get_by_test_id("model-head-linear")).to_have_text("Linear")
    maya_row = page.locator(f'tr[data-key="{store.maya_id}"]')
    expect(maya_row.locator('td[data-model="linear"][data-field="revenue"]')).to_have_text("200.00")
    screenshot(page, "influencers-compare-desktop")

    # Download the table: the same file the analytics API exports for these filters.
    with page.expect_download() as download_info:
        page.get_by_test_id("csv-influencers").click()
    download = download_info.value
    assert download.suggested_filename == f"influencers-{store.day}-{store.day}.csv"
    saved = ARTIFACTS / download.suggested_filename
    download.save_as(saved)
    expected = httpx.get(
        f"{live_server.url}/api/v1/analytics/breakdown",
        params={
            "start": store.day,
            "end": store.day,
            "by": "influencer",
            "models": "last_click,linear",
            "format": "csv",
        },
        headers=workspace.bearer,
    ).text
    assert Path(saved).read_bytes().decode("utf-8") == expected

    # A shared link opens the same view.
    page.goto(shared)
    assert _shown_kpis(page) == _api_kpis(live_server, workspace, day, day)

    # A live order: announced while the overview is open, then counted once rolled up.
    expect(page.get_by_test_id("live-status")).to_have_text("Live")
    with httpx.Client(base_url=live_server.url) as shop:
        post_order(
            shop,
            workspace.id,
            shopify_order(
                9_300_000_000_000_003, "42.00", "live.buyer@mail.example", datetime.now(UTC)
            ),
        )
    expect(page.get_by_test_id("latest-orders")).to_contain_text("9300000000000003", timeout=10_000)
    expect(page.get_by_test_id("live-status")).to_have_text("New order: 42.00 EUR")
    settle(runtime)
    # The page asks again a few seconds after the announcement, when the rollups caught up.
    expect(page.get_by_test_id("kpi-orders")).to_have_attribute(
        "data-value", "3.0000", timeout=20_000
    )
    expect(page.get_by_test_id("kpi-gross_revenue").locator(".kpi-value")).to_have_text(
        "242.00 EUR"
    )
    assert _shown_kpis(page) == _api_kpis(live_server, workspace, day, day)
    screenshot(page, "overview-live-order-desktop")


def _fits_the_screen(page: Page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"{page.url} is {width}px wide on a 390px screen"


def test_the_pages_fit_a_phone(
    page: Page,
    client: TestClient,
    live_server: LiveServer,
    runtime: Runtime,
    workspace: WorkspaceKeys,
) -> None:
    store: Store = make_store(client, runtime, workspace)
    _sign_in(page, live_server, make_staff(runtime, workspace.id, Role.MARKETER))
    expect(page.get_by_test_id("kpi-orders").locator(".kpi-value")).to_have_text("2")
    _fits_the_screen(page)
    screenshot(page, "overview-phone")

    # The navigation folds into a menu; Keys is not offered to a marketer.
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Orders")).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
    expect(nav.get_by_role("link", name="Keys")).to_have_count(0)
    nav.get_by_role("link", name="Influencers").click()
    expect(page.get_by_test_id("leaderboard")).to_be_visible()
    _fits_the_screen(page)
    # Wide tables scroll inside their card, not the page.
    wrap = page.locator(".table-wrap").first
    assert wrap.evaluate("element => element.scrollWidth > element.clientWidth")
    screenshot(page, "influencers-phone")

    for path in (
        f"/dashboard/orders/{store.first_order_id}",
        "/dashboard/orders",
        f"/dashboard/influencers/{store.maya_id}?models=last_click,linear",
        "/dashboard/customers",
        "/dashboard/channels",
    ):
        page.goto(f"{live_server.url}{path}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        _fits_the_screen(page)
    screenshot(page, "channels-phone")
    page.goto(f"{live_server.url}/dashboard/orders/{store.code_order_id}")
    expect(page.get_by_test_id("attribution-rule")).to_contain_text("discount-code precedence")
    screenshot(page, "order-explained-phone")
    # The keys page is refused to a marketer.
    response = page.goto(f"{live_server.url}/dashboard/keys")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("alert")).to_contain_text("API keys are managed by owners and admins")
