"""The Segment-compatible HTTP tracking API (/v1/*) and the quarantine's management routes.

The tracking routes take the raw request: orjson parses the body, no pydantic on the hot path.
Their request schema is declared for the OpenAPI document only.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

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
from storeloop.ingestion.service import BATCH_SOURCE, AcceptResult
from storeloop.kit.errors import StoreloopError

router = APIRouter()


class InvalidEvents(StoreloopError):
    """Every event of the request was refused (and quarantined)."""

    code = "invalid_events"


class EventTooLarge(StoreloopError):
    status_code = 413
    code = "event_too_large"


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is larger than {limit} bytes", field="body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"the body is larger than {limit} bytes", field="body")
        chunks.append(chunk)
    return b"".join(chunks)


def _ok(result: AcceptResult) -> Response:
    body: dict[str, Any] = {"success": True, "accepted": result.accepted}
    if result.rejected:
        body["rejected"] = [item.to_dict() for item in result.rejected]
    return Response(orjson.dumps(body), media_type="application/json")


async def _accept(request: Request, source: str) -> Response:
    service = request.app.state.runtime.ingestion
    body = await _read_body(request, service.max_body_bytes)
    result = await service.accept(
        source=source,
        body=body,
        content_encoding=request.headers.get("content-encoding"),
        authorization=request.headers.get("authorization"),
    )
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
    return _ok(result)


_TRACKING_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Stored durably (rejected events, if any, are listed and quarantined)"},
    400: {"description": "Invalid body or events"},
    401: {"description": "Missing or unknown write key"},
    403: {"description": "A secret key was used for tracking"},
    413: {"description": "Body or event too large"},
    415: {"description": "Unsupported Content-Encoding"},
    429: {"description": "Rate limited; see Retry-After"},
}


def _tracking_route(source: str, path: str, summary: str) -> None:
    async def endpoint(request: Request) -> Response:
        return await _accept(request, source)

    endpoint.__name__ = f"track_{source}"
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
