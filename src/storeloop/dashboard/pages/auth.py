"""Sign-in, sign-out and the workspace's API keys (owners and admins only)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from storeloop.dashboard.csvfile import csv_response
from storeloop.dashboard.web import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    StaffDep,
    check_csrf,
    new_login_csrf,
    read_form,
    render,
    require_key_access,
    runtime_of,
    safe_next,
    set_cookie,
    with_security_headers,
)
from storeloop.db import session_scope
from storeloop.workspaces.service import KeyKind, create_api_key, list_api_keys, revoke_api_key
from storeloop.workspaces.staff import (
    SESSION_MAX_AGE,
    authenticate_staff,
    email_rate_key,
    end_session,
    start_session,
)

router = APIRouter(include_in_schema=False)


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(
    request: Request, *, next_path: str, error: str | None = None, status_code: int = 200
) -> Response:
    token = new_login_csrf()
    response = render(
        request,
        "login.html",
        {"csrf_token": token, "next": next_path, "error": error},
        status_code=status_code,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=3600)
    return response


@router.get("/")
def root() -> Response:
    return RedirectResponse("/dashboard", status_code=303)


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, next_path=safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    check_csrf(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf_token"))
    runtime = runtime_of(request)
    next_path = safe_next(form.get("next"))
    email, password = form.get("email", ""), form.get("password", "")
    address = _client_address(request)
    account = email_rate_key(runtime.keyring.instance, email)
    limiter = runtime.login_limiter
    retry_after = limiter.retry_after(address, account)
    if retry_after is not None:
        response = _login_page(
            request,
            next_path=next_path,
            error=f"Too many failed sign-ins. Try again in {retry_after} seconds.",
            status_code=429,
        )
        response.headers["Retry-After"] = str(retry_after)
        return response
    with session_scope(runtime.session_factory) as session:
        user = authenticate_staff(session, runtime.keyring.instance, email, password)
        token = start_session(session, runtime.signing_key, user) if user is not None else None
    if token is None:
        limiter.failed(address, account)
        return _login_page(
            request, next_path=next_path, error="Wrong email or password.", status_code=401
        )
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(
        request,
        response,
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_MAX_AGE.total_seconds()),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return with_security_headers(response)


@router.post("/logout")
async def logout(request: Request, staff: StaffDep) -> Response:
    form = await read_form(request)
    check_csrf(staff.csrf_token, form.get("csrf_token"))
    runtime = runtime_of(request)
    token = request.cookies.get(SESSION_COOKIE, "")
    with session_scope(runtime.session_factory) as session:
        end_session(session, runtime.signing_key, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return with_security_headers(response)


KEY_COLUMNS = ("name", "kind", "prefix", "created_at", "last_used_at", "revoked_at")


@router.get("/dashboard/keys")
def keys_page(request: Request, staff: StaffDep) -> Response:
    require_key_access(staff)
    if request.query_params.get("format") == "csv":
        with session_scope(runtime_of(request).session_factory) as session:
            keys = list_api_keys(session, staff.workspace_id, include_revoked=True)
        return csv_response(
            "api-keys",
            KEY_COLUMNS,
            [
                [key.name, key.kind, key.prefix, key.created_at, key.last_used_at, key.revoked_at]
                for key in keys
            ],
        )
    return _keys_page(request, staff)


def _keys_page(
    request: Request,
    staff: StaffDep,
    *,
    created: tuple[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    runtime = runtime_of(request)
    with session_scope(runtime.session_factory) as session:
        keys = list_api_keys(session, staff.workspace_id, include_revoked=True)
    return render(
        request,
        "keys.html",
        {"keys": keys, "created": created, "error": error},
        status_code=status_code,
        staff=staff,
    )


@router.post("/dashboard/keys")
async def create_key(request: Request, staff: StaffDep) -> Response:
    form = await read_form(request)
    check_csrf(staff.csrf_token, form.get("csrf_token"))
    require_key_access(staff)
    try:
        kind = KeyKind(form.get("kind", ""))
    except ValueError:
        return _keys_page(
            request, staff, error="Choose a write key or a secret key.", status_code=422
        )
    runtime = runtime_of(request)
    with session_scope(runtime.session_factory) as session:
        created = create_api_key(session, staff.workspace_id, kind, form.get("name", "")[:200])
        shown = (created.key.name, created.plaintext)
    return _keys_page(request, staff, created=shown)


@router.post("/dashboard/keys/{key_id}/revoke")
async def revoke_key(request: Request, staff: StaffDep, key_id: uuid.UUID) -> Response:
    form = await read_form(request)
    check_csrf(staff.csrf_token, form.get("csrf_token"))
    require_key_access(staff)
    runtime = runtime_of(request)
    with session_scope(runtime.session_factory) as session:
        revoke_api_key(session, staff.workspace_id, key_id)
    runtime.authenticator.forget()
    return with_security_headers(RedirectResponse("/dashboard/keys", status_code=303))
