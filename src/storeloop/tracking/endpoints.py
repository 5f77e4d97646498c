"""The tracking routes as an ASGI middleware in front of the application, and the click import
of the management API.

``/r/{code}``, ``/t.js`` and ``/t/ctx`` are answered here, before routing, CORS and the
dependency machinery: the redirect is a hot path, and ``/t/ctx`` sends its own credentialed
CORS headers, which the application-wide ``*`` policy would overwrite. Everything else passes on.
``POST /api/v1/clicks/import`` is an ordinary FastAPI route (``click_import_router``).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Body
from starlette.types import ASGIApp, Receive, Scope, Send

from storeloop.dependencies import CallerDep, RuntimeDep, SessionDep
from storeloop.kit.asgi import route_path, send_error
from storeloop.kit.errors import Forbidden, StoreloopError, Unauthorized
from storeloop.runtime import Runtime
from storeloop.tracking import imports
from storeloop.tracking.redirect import serve_redirect
from storeloop.tracking.script import (
    OriginNotAllowed,
    parse_context_request,
    send_context,
    serve_script,
)
from storeloop.tracking.service import allowed_domains, host_allowed
from storeloop.workspaces.service import KeyKind


class MethodNotAllowed(StoreloopError):
    status_code = 405
    code = "method_not_allowed"

    def headers(self) -> dict[str, str]:
        return {"Allow": "GET, HEAD"}


def _allowed_domains(runtime: Runtime, write_key: str) -> tuple[uuid.UUID, tuple[str, ...]]:
    identity = runtime.authenticator.authenticate(runtime.session_factory, write_key)
    if identity is None:
        raise Unauthorized("unknown or revoked write key", field="k")
    if identity.kind is not KeyKind.WRITE:
        raise Forbidden("the storefront script takes the public write key only", field="k")
    return identity.workspace_id, allowed_domains(runtime.engine, identity.workspace_id)


async def serve_context(runtime: Runtime, scope: Scope, send: Send) -> None:
    try:
        request = parse_context_request(scope)
        workspace_id, domains = await to_thread.run_sync(
            _allowed_domains, runtime, request.write_key
        )
        if not host_allowed(request.origin_host, domains):
            raise OriginNotAllowed(
                "this page's domain is not one of the store's allowed domains", field="Origin"
            )
    except StoreloopError as error:
        await send_error(send, error)
        return
    origin = next(value for name, value in scope["headers"] if name == b"origin")
    await send_context(scope, send, origin.decode("latin-1"), workspace_id)


class TrackingRoutes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        is_redirect = path.startswith("/r/")
        if not (is_redirect or path == "/t.js" or path == "/t/ctx"):
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            error = MethodNotAllowed(f"{path} answers GET and HEAD only")
            await send_error(send, error)
            return
        runtime: Runtime = scope["app"].state.runtime
        if is_redirect:
            await serve_redirect(runtime.tracking, scope, send, path[3:])
        elif path == "/t.js":
            await serve_script(scope, send)
        else:
            await serve_context(runtime, scope, send)


# -- importing click history ------------------------------------------------------------------

click_import_router = APIRouter(prefix="/api/v1", tags=["links"])


@click_import_router.post(
    "/clicks/import", response_model=imports.ClickImportResult, status_code=201
)
def import_clicks(
    clicks: Annotated[
        list[imports.ClickIn],
        Body(min_length=1, max_length=imports.MAX_CLICKS_PER_IMPORT),
    ],
    caller: CallerDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> imports.ClickImportResult:
    """Store up to 1,000 past clicks on the workspace's tracked links (from another tool), with
    the redirect's bot rules; all or none. Answers the click ids in the order sent."""
    settings = runtime.settings
    return imports.import_clicks(
        session,
        caller.workspace_id,
        clicks,
        velocity_per_minute=settings.click_velocity_per_minute,
        max_age=timedelta(days=settings.max_event_age_days),
        max_future=timedelta(hours=settings.max_event_future_hours),
    )
