"""The Segment-compatible HTTP tracking API (/v1/*) and the quarantine's management routes.

The tracking routes are answered by ``SegmentTrackingApi``, plain ASGI in front of the router:
orjson parses the body, no pydantic or dependency solving on the hot path. Their FastAPI routes
declare the request schema for the OpenAPI document.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from storeloop.dependencies import CallerDep, KeyringDep, SessionDep
from storeloop.ingestion import quarantine
from storeloop.ingestion.body import BodyTooLarge
from storeloop.ingestion.schemas import (
    QuarantineItem,
    QuarantinePage,
    ReplayRequest,
    ReplayResult,
    segment_openapi,
)
from storeloop.ingestion.service import BATCH_SOURCE, AcceptResult, IngestionService
from storeloop.kit.asgi import ClientGone, read_body, route_path, send_error, send_json
from storeloop.kit.errors import StoreloopError

router = APIRouter()


class InvalidEvents(StoreloopError):
    """Every event of the request was refused (and quarantined)."""

    code = "invalid_events"


class EventTooLarge(StoreloopError):
    status_code = 413
    code = "event_too_large"


def _outcome(result: AcceptResult, source: str) -> bytes:
    """The 200 body, or the error when every event of the request was refused."""
    if result.rejected and result.accepted == 0:
        if source != BATCH_SOURCE:
            rejection = result.rejected[0].rejection
            error_type = EventTooLarge if rejection.code == "event_too_large" else InvalidEvents
            error = error_type(rejection.message, field=rejection.field, quarantined=True)
            error.code = rejection.code  # type: ignore[misc]
            raise error
        raise InvalidEvents(
            f"all {len(result.rejected)} events were invalid and have been quarantined",
            rejected=[item.to_dict() for item in result.rejected],
        )
    body: dict[str, Any] = {"success": True, "accepted": result.accepted}
    if result.rejected:
        body["rejected"] = [item.to_dict() for item in result.rejected]
    return orjson.dumps(body)


async def _track(
    service: IngestionService, source: str, scope: Scope, receive: Receive, send: Send
) -> None:
    length = encoding = authorization = None
    for name, value in scope["headers"]:
        # The first of repeated headers, as Starlette's Headers.get answers.
        if name == b"content-length" and length is None:
            length = value.decode("latin-1")
        elif name == b"content-encoding" and encoding is None:
            encoding = value.decode("latin-1")
        elif name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
    try:
        body = await read_body(receive, length, service.max_body_bytes, BodyTooLarge)
        result = await service.accept(
            source=source, body=body, content_encoding=encoding, authorization=authorization
        )
        response = _outcome(result, source)
    except ClientGone:
        return
    except StoreloopError as error:
        await send_error(send, error)
        return
    await send_json(send, 200, response)


class SegmentTrackingApi:
    """``POST /v1/*`` answered as plain ASGI, inside CORS but before FastAPI's routing and
    dependency machinery (a fifth of a request's CPU). The FastAPI routes below declare the same
    paths for the OpenAPI document and serve them the same way if this layer is absent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            source = _SOURCES.get(route_path(scope))
            if source is not None:
                await _track(scope["app"].state.runtime.ingestion, source, scope, receive, send)
                return
        await self.app(scope, receive, send)


_TRACKING_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Stored durably (rejected events, if any, are listed and quarantined)"},
    400: {"description": "Invalid body or events"},
    401: {"description": "Missing or unknown write key"},
    403: {"description": "A secret key was used for tracking"},
    413: {"description": "Body or event too large"},
    415: {"description": "Unsupported Content-Encoding"},
    429: {"description": "Rate limited; see Retry-After"},
}


_SOURCES: dict[str, str] = {}


def _tracking_route(source: str, path: str, summary: str) -> None:
    async def endpoint(request: Request) -> Response:
        service: IngestionService = request.app.state.runtime.ingestion
        headers = request.headers
        body = await read_body(
            request.receive, headers.get("content-length"), service.max_body_bytes, BodyTooLarge
        )
        result = await service.accept(
            source=source,
            body=body,
            content_encoding=headers.get("content-encoding"),
            authorization=headers.get("authorization"),
        )
        return Response(_outcome(result, source), media_type="application/json")

    endpoint.__name__ = f"track_{source}"
    _SOURCES[path] = source
    router.add_api_route(
        path,
        endpoint,
        methods=["POST"],
        summary=summary,
        tags=["tracking"],
        responses=_TRACKING_RESPONSES,
        openapi_extra=segment_openapi(source),
    )


_tracking_route(BATCH_SOURCE, "/v1/batch", "Send a batch of events")
_tracking_route("track", "/v1/track", "Record an action")
_tracking_route("identify", "/v1/identify", "Identify a user and set traits")
_tracking_route("page", "/v1/page", "Record a page view")
_tracking_route("screen", "/v1/screen", "Record a screen view")
_tracking_route("group", "/v1/group", "Associate a user with a group")
_tracking_route("alias", "/v1/alias", "Merge two user identities")


@router.get("/api/v1/quarantine", response_model=QuarantinePage, tags=["quarantine"])
def list_quarantine(
    caller: CallerDep,
    session: SessionDep,
    keyring: KeyringDep,
    status: str = Query("open", pattern="^(open|replayed|discarded|all)$"),
    limit: int = Query(50, ge=1, le=500),
    cursor: uuid.UUID | None = None,
) -> QuarantinePage:
    return quarantine.list_page(
        session, caller.workspace_id, keyring.cipher(caller.workspace_id), status, limit, cursor
    )


@router.get("/api/v1/quarantine/{item_id}", response_model=QuarantineItem, tags=["quarantine"])
def get_quarantined(
    item_id: uuid.UUID, caller: CallerDep, session: SessionDep, keyring: KeyringDep
) -> QuarantineItem:
    return quarantine.get_item(
        session, caller.workspace_id, keyring.cipher(caller.workspace_id), item_id
    )


@router.post(
    "/api/v1/quarantine/{item_id}/replay", response_model=ReplayResult, tags=["quarantine"]
)
def replay_quarantined(
    item_id: uuid.UUID,
    caller: CallerDep,
    session: SessionDep,
    keyring: KeyringDep,
    request: Request,
    fix: ReplayRequest | None = None,
) -> ReplayResult:
    runtime = request.app.state.runtime
    return quarantine.replay(
        session,
        caller.workspace_id,
        keyring.cipher(caller.workspace_id),
        item_id,
        fix.payload if fix is not None else None,
        runtime.limits,
    )


@router.post(
    "/api/v1/quarantine/{item_id}/discard", response_model=QuarantineItem, tags=["quarantine"]
)
def discard_quarantined(
    item_id: uuid.UUID, caller: CallerDep, session: SessionDep, keyring: KeyringDep
) -> QuarantineItem:
    return quarantine.discard(
        session, caller.workspace_id, keyring.cipher(caller.workspace_id), item_id
    )
