"""Dashboard sign-in: sessions, cookies, CSRF, login limits and roles on the key pages."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from storeloop.models import ApiKey, StaffSession
from storeloop.runtime import Runtime
from storeloop.workspaces.service import Role
from tests.factories.staff import csrf_from, make_staff, sign_in
from tests.factories.workspaces import WorkspaceKeys


def _key_count(runtime: Runtime, workspace: WorkspaceKeys) -> int:
    with runtime.session_factory() as session:
        return int(
            session.scalar(
                select(func.count()).select_from(ApiKey).where(ApiKey.workspace_id == workspace.id)
            )
            or 0
        )


def _session_count(runtime: Runtime) -> int:
    with runtime.session_factory() as session:
        return int(session.scalar(select(func.count()).select_from(StaffSession)) or 0)


def test_pages_need_a_session(client: TestClient) -> None:
    response = client.get("/dashboard/keys?x=1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/dashboard/keys%3Fx%3D1"


def test_sign_in_sets_a_hardened_cookie_and_stores_only_a_hash(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    staff = make_staff(runtime, workspace.id)
    page = client.get("/login")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    response = client.post(
        "/login",
        data={
            "email": staff.email.upper(),
            "password": staff.password,
            "csrf_token": csrf_from(page.text),
            "next": "/dashboard/keys",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/dashboard/keys"
    cookie = next(
        value
        for name, value in response.headers.multi_items()
        if name == "set-cookie" and value.startswith("sl_staff=")
    )
    token = cookie.split(";", 1)[0].removeprefix("sl_staff=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Path=/" in cookie
    with runtime.session_factory() as session:
        hashes = list(session.scalars(select(StaffSession.token_hash)))
    assert token not in hashes
    assert len(token) >= 40
    overview = client.get("/dashboard")
    assert overview.status_code == 200
    assert "Start tracking your store" in overview.text
    assert workspace.write_key[:12] in overview.text
    assert workspace.write_key not in overview.text


def test_wrong_password_and_unknown_email_get_the_same_answer(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    staff = make_staff(runtime, workspace.id)
    answers = []
    for email, password in ((staff.email, "wrong password!"), ("nobody@store.example", "x" * 12)):
        page = client.get("/login")
        response = client.post(
            "/login",
            data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
            follow_redirects=False,
        )
        answers.append((response.status_code, "Wrong email or password." in response.text))
        assert "sl_staff" not in response.cookies
    assert answers == [(401, True), (401, True)]


def test_login_without_the_csrf_token_is_refused(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    staff = make_staff(runtime, workspace.id)
    client.get("/login")
    sessions_before = _session_count(runtime)
    response = client.post(
        "/login",
        data={"email": staff.email, "password": staff.password, "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert _session_count(runtime) == sessions_before
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


def test_repeated_failures_are_rate_limited_per_account(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    staff = make_staff(runtime, workspace.id)
    statuses = []
    for _ in range(6):
        page = client.get("/login")
        statuses.append(
            client.post(
                "/login",
                data={
                    "email": staff.email,
                    "password": "bad guess 123",
                    "csrf_token": csrf_from(page.text),
                },
                follow_redirects=False,
            ).status_code
        )
    assert statuses == [401, 401, 401, 401, 401, 429]
    # Even the right password waits until the window passes.
    page = client.get("/login")
    response = client.post(
        "/login",
        data={"email": staff.email, "password": staff.password, "csrf_token": csrf_from(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1


def test_sign_out_ends_the_session_server_side(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    staff = make_staff(runtime, workspace.id)
    sign_in(client, staff)
    token = client.cookies["sl_staff"]
    page = client.get("/dashboard")
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/dashboard", follow_redirects=False).status_code == 200
    response = client.post(
        "/logout", data={"csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert response.status_code == 303
    # Replaying the old cookie does not bring the session back.
    client.cookies.set("sl_staff", token)
    assert client.get("/dashboard", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("role", [Role.ANALYST, Role.MARKETER])
def test_analysts_and_marketers_neither_see_nor_create_keys(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, role: Role
) -> None:
    sign_in(client, make_staff(runtime, workspace.id, role))
    overview = client.get("/dashboard")
    assert overview.status_code == 200
    assert 'href="/dashboard/keys"' not in overview.text
    page = client.get("/dashboard/keys")
    assert page.status_code == 403
    assert "API keys are managed by owners and admins" in page.text
    assert "test write" not in page.text
    before = _key_count(runtime, workspace)
    token = csrf_from(overview.text)
    response = client.post(
        "/dashboard/keys", data={"csrf_token": token, "name": "x", "kind": "secret"}
    )
    assert response.status_code == 403
    with runtime.session_factory() as session:
        key_id = session.scalars(
            select(ApiKey.id).where(ApiKey.workspace_id == workspace.id)
        ).first()
    revoke = client.post(f"/dashboard/keys/{key_id}/revoke", data={"csrf_token": token})
    assert revoke.status_code == 403
    assert _key_count(runtime, workspace) == before
    with runtime.session_factory() as session:
        assert session.get(ApiKey, key_id).revoked_at is None  # type: ignore[union-attr]


def test_an_admin_creates_a_key_shown_once(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    sign_in(client, make_staff(runtime, workspace.id, Role.ADMIN))
    page = client.get("/dashboard/keys")
    created = client.post(
        "/dashboard/keys",
        data={"csrf_token": csrf_from(page.text), "name": "Warehouse", "kind": "secret"},
    )
    assert created.status_code == 200
    assert _key_count(runtime, workspace) == 3
    plaintext = created.text.split('data-testid="new-key">', 1)[1].split("<", 1)[0]
    assert plaintext.startswith("sls_")
    # The new key works on the management API, and the list never shows it again.
    assert (
        client.get(
            "/api/v1/workspace", headers={"Authorization": f"Bearer {plaintext}"}
        ).status_code
        == 200
    )
    assert plaintext not in client.get("/dashboard/keys").text
    exported = client.get("/dashboard/keys?format=csv")
    assert exported.headers["content-disposition"] == 'attachment; filename="api-keys.csv"'
    rows = [line.split(",") for line in exported.text.splitlines()]
    assert rows[0] == ["name", "kind", "prefix", "created_at", "last_used_at", "revoked_at"]
    assert sorted((row[0], row[1], row[5]) for row in rows[1:]) == [
        ("Warehouse", "secret", ""),
        ("test secret", "secret", ""),
        ("test write", "write", ""),
    ]
    assert plaintext not in exported.text


def test_a_session_only_sees_its_own_workspace(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    sign_in(client, make_staff(runtime, workspace.id, Role.OWNER))
    page = client.get("/dashboard/keys")
    with runtime.session_factory() as session:
        other_key = session.scalars(
            select(ApiKey.id).where(ApiKey.workspace_id == other_workspace.id)
        ).first()
    response = client.post(
        f"/dashboard/keys/{other_key}/revoke", data={"csrf_token": csrf_from(page.text)}
    )
    assert response.status_code == 404
    with runtime.session_factory() as session:
        assert session.get(ApiKey, other_key).revoked_at is None  # type: ignore[union-attr]
    assert other_workspace.write_key[:12] not in page.text
