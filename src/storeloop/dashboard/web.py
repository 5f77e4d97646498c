"""Rendering, cookies, CSRF, page errors and the signed-in staff dependency of every page."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.templating import Jinja2Templates

from storeloop.dashboard import formatting
from storeloop.dashboard.filters import Filters, InvalidFilters, parse_filters
from storeloop.db import session_scope
from storeloop.kit.errors import NotFound, StoreloopError
from storeloop.kit.timeutil import utcnow
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

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_environment.filters.update(formatting.FILTERS)
templates = Jinja2Templates(env=_environment)


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


class PageNotFound(Exception):
    """No such thing in this workspace (or in any); rendered as a 404 page."""

    def __init__(self, message: str) -> None:
        self.message = message


class PageInvalid(Exception):
    """The address or the form could not be read; rendered as a 400 page that says why."""

    def __init__(self, messages: list[str], *, retry_path: str | None = None) -> None:
        self.messages = messages
        self.retry_path = retry_path


@contextmanager
def page_errors(what: str) -> Iterator[None]:
    """Domain errors of the services a page calls, as pages: a missing ``what`` is a 404 (also
    when it belongs to another workspace), an invalid request a 400 with the service's words."""
    try:
        yield
    except NotFound:
        raise PageNotFound(f"There is no such {what} in this workspace.") from None
    except StoreloopError as error:
        if error.status_code >= 500:
            raise
        raise PageInvalid([error.message]) from None


@contextmanager
def read_session(request: Request) -> Iterator[Session]:
    """A session for a page's reads (committed at the end, like every request)."""
    with session_scope(runtime_of(request).session_factory) as session:
        yield session


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
    values: dict[str, Any] = {"staff": staff, "path": request.url.path, "filters": None}
    values.update(context or {})
    # The nav keeps the range and filters: moving between pages keeps what is being looked at.
    filters = values["filters"]
    query = filters.query() if isinstance(filters, Filters) else ""
    values["nav_query"] = f"?{query}" if query else ""
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


def current_filters(request: Request) -> Filters:
    """The range and filters of the page's URL; unreadable ones are a 400 page saying why."""
    try:
        return parse_filters(request.query_params, utcnow().date())
    except InvalidFilters as error:
        raise PageInvalid(error.messages, retry_path=request.url.path) from None


FiltersDep = Annotated[Filters, Depends(current_filters)]


def require_key_access(staff: StaffContext) -> None:
    if not staff.can_manage_keys:
        raise PageForbidden(
            f"API keys are managed by owners and admins; your role is {staff.role.value}."
        )


def login_url(next_path: str) -> str:
    return "/login?next=" + quote(next_path, safe="/")


def safe_next(value: str | None) -> str:
    """Only same-site paths: '/x' yes, '//evil.example' or 'https://...' no."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/dashboard"
    return value
