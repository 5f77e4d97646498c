"""The dashboard in a real headless Chromium: sign in, read the overview, manage keys, sign out."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storeloop.models import ApiKey
from storeloop.runtime import Runtime
from storeloop.workspaces.service import Role
from tests.conftest import LiveServer
from tests.factories.staff import make_staff
from tests.factories.workspaces import WorkspaceKeys

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"

if not CHROMIUM.exists():
    if os.environ.get("STORELOOP_REQUIRE_CHROMIUM") == "1":
        raise RuntimeError("STORELOOP_REQUIRE_CHROMIUM=1 but /usr/bin/chromium is missing")
    pytest.skip("Chromium is not installed (./dev test installs it)", allow_module_level=True)

from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    # Script errors and Content-Security-Policy violations fail the test; a page answered with
    # a 4xx on purpose (a refused sign-in) is not an error of the page.
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            errors.append(message.text)

    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", on_console)
    yield page
    context.close()
    assert errors == [], errors


def _keys(runtime: Runtime, workspace: WorkspaceKeys) -> int:
    with runtime.session_factory() as session:
        query = select(func.count()).select_from(ApiKey).where(ApiKey.workspace_id == workspace.id)
        return int(session.scalar(query) or 0)


def test_sign_in_create_a_key_and_sign_out(
    page: Page, live_server: LiveServer, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    staff = make_staff(runtime, workspace.id, Role.ADMIN)
    page.goto(f"{live_server.url}/dashboard/keys")
    expect(page).to_have_url(f"{live_server.url}/login?next=/dashboard/keys")
    page.get_by_label("Email").fill(staff.email)
    page.get_by_label("Password").fill(staff.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live_server.url}/dashboard/keys")
    expect(page.get_by_role("cell", name="test write")).to_be_visible()

    page.get_by_label("Name").fill("Mobile app")
    page.get_by_label("Kind").select_option("write")
    page.get_by_role("button", name="Create").click()
    new_key = page.get_by_test_id("new-key").inner_text()
    assert new_key.startswith("slw_")
    assert _keys(runtime, workspace) == 3
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-keys-phone.png"), full_page=True)

    page.get_by_role("link", name="Overview").click()
    expect(page.get_by_role("heading", name="Start tracking your store")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live_server.url}/login")
    page.goto(f"{live_server.url}/dashboard")
    expect(page).to_have_url(f"{live_server.url}/login?next=/dashboard")


def test_a_wrong_password_shows_an_error_and_no_session(
    page: Page, live_server: LiveServer, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    staff = make_staff(runtime, workspace.id, Role.ANALYST)
    page.goto(f"{live_server.url}/login")
    page.get_by_label("Email").fill(staff.email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    page.goto(f"{live_server.url}/dashboard")
    expect(page).to_have_url(f"{live_server.url}/login?next=/dashboard")
