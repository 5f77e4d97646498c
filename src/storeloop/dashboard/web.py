"""Rendering, cookies, CSRF and the signed-in staff dependency shared by every page."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from storeloop.db import session_scope
from storeloop.runtime import Runtime
from storeloop.workspaces.staff import StaffContext, resolve_session

SESSION_COOKIE = "sl_staff"
LOGIN_CSRF_COOKIE = "sl_login_csrf"
MAX_FORM_BYTES = 64 * 1024

# Pages load nothing from other origins and run no inline script.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
)


class LoginRequired(Exception):
    """Raised by the staff dependency; rendered as a redirect to the login page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class PageForbidden(Exception):
    """The signed-in role may not do this; rendered as a 403 page."""

    def __init__(self, message: str) -> None:
        self.message = message


class CsrfFailed(Exception):
    """A state-changing request without the right CSRF token; rendered as a 403 page."""


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def is_secure(request: Request) -> bool:
    runtime = runtime_of(request)
    return request.url.scheme == "https" or runtime.settings.environment == "production"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    staff: StaffContext | None = None,
) -> HTMLResponse:
    values: dict[str, Any] = {"staff": staff, "path": request.url.path}
    values.update(context or {})
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response


def with_security_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=is_secure(request),
        httponly=True,
        samesite="lax",
    )


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form body, first value of each field; oversize bodies read as empty."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return {}
    return {key: values[0] for key, values in parse_qs(text, max_num_fields=50).items()}


def check_csrf(expected: str | None, presented: str | None) -> None:
    if not expected or not presented or not hmac.compare_digest(expected, presented):
        raise CsrfFailed


def current_staff(request: Request) -> StaffContext:
    token = request.cookies.get(SESSION_COOKIE)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not token:
        raise LoginRequired(target)
    runtime = runtime_of(request)
    with session_scope(runtime.session_factory) as session:
        staff = resolve_session(session, runtime.signing_key, token)
    if staff is None:
        raise LoginRequired(target)
    return staff


StaffDep = Annotated[StaffContext, Depends(current_staff)]


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(next_path, safe="/")


def safe_next(value: str | None) -> str:
    """Only same-site paths: '/x' yes, '//evil.example' or 'https://...' no."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/dashboard"
    return value
