"""The dashboard in a real headless Chromium: sign in, read the overview, manage keys, sign out."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from storeloop.models import ApiKey
from storeloop.runtime import Runtime
from storeloop.workspaces.service import Role
from tests.conftest import LiveServer
from tests.dashboard.conftest import screenshot
from tests.factories.staff import make_staff
from tests.factories.workspaces import WorkspaceKeys


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
    screenshot(page, "dashboard-keys-phone")

    # On a phone the navigation folds into a menu.
    expect(page.get_by_role("link", name="Overview")).to_be_hidden()
    page.get_by_role("button", name="Menu").click()
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
