"""Staff accounts and signed-in dashboard clients, for tests."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from fastapi.testclient import TestClient

from storeloop.db import session_scope
from storeloop.runtime import Runtime
from storeloop.workspaces.service import Role, create_user

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Staff:
    email: str
    password: str
    role: Role


def make_staff(runtime: Runtime, workspace_id: uuid.UUID, role: Role = Role.OWNER) -> Staff:
    email = f"{role.value}-{uuid.uuid4().hex[:8]}@store.example"
    with session_scope(runtime.session_factory) as session:
        create_user(session, runtime.keyring.instance, workspace_id, email, PASSWORD, role)
    return Staff(email, PASSWORD, role)


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


def sign_in(client: TestClient, staff: Staff, next_path: str = "/dashboard") -> None:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "email": staff.email,
            "password": staff.password,
            "csrf_token": csrf_from(page.text),
            "next": next_path,
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
