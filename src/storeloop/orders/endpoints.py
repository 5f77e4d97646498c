"""HTTP routes: shop webhooks, the orders read API, and CSV import."""

from __future__ import annotations

import io
import uuid
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from storeloop.db import session_scope
from storeloop.dependencies import CallerDep, KeyringDep, RuntimeDep, SessionDep
from storeloop.kit.errors import ValidationFailed
from storeloop.kit.http import read_limited_body
from storeloop.orders import csv_import, service, webhooks
from storeloop.orders.schemas import (
    ORDER_STATUSES,
    ImportResult,
    InvalidPayload,
    OrderDetail,
    OrderPage,
)
from storeloop.runtime import Runtime

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])
webhooks_router = APIRouter(prefix="/webhooks", tags=["webhooks"])
MAX_IMPORT_BYTES = 64 * 1024 * 1024


def _handle(
    runtime: Runtime, provider: str, workspace_ref: str, body: bytes, headers: dict[str, str]
) -> webhooks.WebhookOutcome:
    workspace_id = webhooks.parse_workspace_id(workspace_ref)
    with runtime.session_factory() as session:
        webhooks.verify(session, runtime.keyring, workspace_id, provider, body, headers)
        try:
            outcome = webhooks.receive(
                session, runtime.keyring, workspace_id, provider, body, headers
            )
            session.commit()
            return outcome
        except InvalidPayload as error:
            session.rollback()
            # The refusal is answered with a 4xx, but the payload is kept to fix and replay
            # (once: the platform's retries of the same delivery find the open entry).
            webhooks.quarantine(
                session, runtime.keyring, workspace_id, provider, error, body, headers
            )
            session.commit()
            raise
        except IntegrityError:
            # Another delivery of the same order (or this one, retried) was applied at the same
            # moment: answer 409 so the platform retries; the retry sees the other's result.
            session.rollback()
            raise webhooks.ConcurrentDelivery(
                "another delivery of this order is being applied; retry"
            ) from None


async def _webhook(
    request: Request, runtime: Runtime, provider: str, workspace_ref: str
) -> Response:
    body = await read_limited_body(request, webhooks.MAX_WEBHOOK_BYTES)
    headers = {key.lower(): value for key, value in request.headers.items()}
    if provider == "woocommerce" and webhooks.is_woocommerce_ping(body, headers):
        return Response(orjson.dumps({"status": "ping"}), media_type="application/json")
    outcome = await run_in_threadpool(_handle, runtime, provider, workspace_ref, body, headers)
    return Response(orjson.dumps(outcome.body()), media_type="application/json")


@webhooks_router.post("/shopify/{workspace_id}", response_model=None)
async def shopify_webhook(workspace_id: str, request: Request, runtime: RuntimeDep) -> Response:
    """Shopify order and refund webhooks, signed with X-Shopify-Hmac-Sha256."""
    return await _webhook(request, runtime, "shopify", workspace_id)


@webhooks_router.post("/woocommerce/{workspace_id}", response_model=None)
async def woocommerce_webhook(workspace_id: str, request: Request, runtime: RuntimeDep) -> Response:
    """WooCommerce order webhooks, signed with X-WC-Webhook-Signature; the ping is answered."""
    return await _webhook(request, runtime, "woocommerce", workspace_id)


@router.get("", response_model=OrderPage)
def list_orders(
    caller: CallerDep,
    session: SessionDep,
    status: str | None = Query(None, max_length=24),
    source: str | None = Query(None, max_length=16),
    placed_from: datetime | None = None,
    placed_to: datetime | None = None,
    profile_id: uuid.UUID | None = None,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=200),
) -> OrderPage:
    """Orders, most recently placed first."""
    if status is not None and status not in ORDER_STATUSES:
        raise ValidationFailed(f"status must be one of {', '.join(ORDER_STATUSES)}", field="status")
    return service.list_orders(
        session,
        caller.workspace_id,
        limit=limit,
        cursor=cursor,
        status=status,
        source=source,
        placed_from=placed_from,
        placed_to=placed_to,
        profile_id=profile_id,
    )


@router.post("/import", response_model=ImportResult)
async def import_orders(
    request: Request,
    caller: CallerDep,
    runtime: RuntimeDep,
    preset: str | None = Query(None, max_length=64),
    map: Annotated[list[str] | None, Query(max_length=100)] = None,
    currency: str | None = Query(None, min_length=3, max_length=3),
    date_format: str | None = Query(None, max_length=64),
) -> ImportResult:
    """Import orders from a CSV body (one row per order line) with a preset or column=field
    mappings; rows that cannot be read are reported, the rest imported. Idempotent.
    ``date_format``: ``iso`` (the default), ``dmy``, ``mdy`` or a strptime pattern."""
    settings = csv_import.import_settings(preset, map or [], currency, date_format)
    body = await read_limited_body(request, MAX_IMPORT_BYTES)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("the CSV must be UTF-8", field="body") from None

    def run() -> ImportResult:
        with session_scope(runtime.session_factory) as session:
            return csv_import.import_lines(
                session,
                runtime.keyring.cipher(caller.workspace_id),
                caller.workspace_id,
                # Rows are split by the csv module only: str.splitlines would also split at
                # U+2028 and other separators inside quoted cells.
                io.StringIO(text, newline=""),
                settings,
            )

    return await run_in_threadpool(run)


@router.get("/{order_id}", response_model=OrderDetail)
def get_order(
    order_id: uuid.UUID, caller: CallerDep, session: SessionDep, keyring: KeyringDep
) -> OrderDetail:
    """One order with its lines, refunds, marketing fields and (opened) customer."""
    return service.get_order(
        session, caller.workspace_id, keyring.cipher(caller.workspace_id), order_id
    )
