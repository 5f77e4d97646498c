"""The quarantine: refused events kept with their raw payload, listed, and replayed after a fix."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from storeloop.ingestion.body import InvalidBody, read_envelope
from storeloop.ingestion.repository import QuarantineRepository
from storeloop.ingestion.schemas import (
    QuarantineItem,
    QuarantinePage,
    RefusedMessage,
    ReplayResult,
)
from storeloop.ingestion.service import (
    BATCH_SOURCE,
    SINGLE_SOURCES,
    fallback_message_id,
    split_messages,
)
from storeloop.ingestion.validation import InvalidEvent, Limits, normalize_message
from storeloop.kit.crypto import WorkspaceCipher, row_aad
from storeloop.kit.errors import Conflict, NotFound, StoreloopError
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.models import InboxEntry, QuarantinedEvent


class ReplayRejected(StoreloopError):
    status_code = 422
    code = "replay_invalid"


def _payload(cipher: WorkspaceCipher, item: QuarantinedEvent) -> Any:
    raw = cipher.open(item.payload_sealed, row_aad("quarantine", item.id, "payload"))
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # An unreadable body is shown as text, with undecodable bytes replaced.
        return raw.decode("utf-8", "replace")


def _to_schema(cipher: WorkspaceCipher, item: QuarantinedEvent) -> QuarantineItem:
    return QuarantineItem(
        id=item.id,
        source=item.source,
        received_at=as_utc(item.received_at),
        batch_index=item.batch_index,
        message_id=item.message_id,
        reason=item.reason,
        field=item.field,
        detail=item.detail,
        status=item.status,
        resolved_at=as_utc(item.resolved_at) if item.resolved_at else None,
        payload=_payload(cipher, item),
    )


def list_page(
    session: Session,
    workspace_id: uuid.UUID,
    cipher: WorkspaceCipher,
    status: str,
    limit: int,
    cursor: uuid.UUID | None,
) -> QuarantinePage:
    rows = QuarantineRepository(session, workspace_id).page(
        None if status == "all" else status, limit + 1, cursor
    )
    items = [_to_schema(cipher, row) for row in rows[:limit]]
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return QuarantinePage(items=items, next_cursor=next_cursor)


def _get(session: Session, workspace_id: uuid.UUID, item_id: uuid.UUID) -> QuarantinedEvent:
    item = QuarantineRepository(session, workspace_id).get(item_id)
    if item is None:
        raise NotFound(f"no quarantined event {item_id} in this workspace", field="item_id")
    return item


def _resolve(
    session: Session, workspace_id: uuid.UUID, item_id: uuid.UUID, status: str
) -> QuarantinedEvent:
    """Move an open item to ``status``. The update is conditional on the item still being open,
    so two concurrent replays cannot both queue it."""
    item = _get(session, workspace_id, item_id)
    if not QuarantineRepository(session, workspace_id).close_if_open(item_id, status, utcnow()):
        session.refresh(item)
        raise Conflict(f"this event is already {item.status}", field="status")
    session.refresh(item)
    return item


def get_item(
    session: Session, workspace_id: uuid.UUID, cipher: WorkspaceCipher, item_id: uuid.UUID
) -> QuarantineItem:
    return _to_schema(cipher, _get(session, workspace_id, item_id))


def discard(
    session: Session, workspace_id: uuid.UUID, cipher: WorkspaceCipher, item_id: uuid.UUID
) -> QuarantineItem:
    return _to_schema(cipher, _resolve(session, workspace_id, item_id, "discarded"))


def _is_whole_body(item: QuarantinedEvent, message: Any) -> bool:
    """A body the processor set aside whole (not one event of it): replayed as it was."""
    return (
        item.source == BATCH_SOURCE
        and item.batch_index is None
        and isinstance(message, dict)
        and isinstance(message.get("batch"), list)
    )


def replay(
    session: Session,
    workspace_id: uuid.UUID,
    cipher: WorkspaceCipher,
    item_id: uuid.UUID,
    corrected: dict[str, Any] | None,
    limits: Limits,
) -> ReplayResult:
    """Validate the (corrected) event again and, if it passes now, queue it like a new request.

    The original receive time is kept, so clock-skew correction and ordering are as they would
    have been had the event been valid when it arrived. A whole body the processor could not
    handle is queued again unchanged: its events were validated when it was accepted. Unless
    corrected, it keeps the id it had in the inbox (the item's id) and the request's refusals
    (``refused``), so its refused messages map to the same quarantine ids
    (``service.rejection_id``), its messages without an id to the same fallback ids, and the
    refusals the sender was told of are not reported again: nothing is quarantined or stored
    twice.
    """
    item = _get(session, workspace_id, item_id)
    if item.status != "open":
        raise Conflict(f"this event is already {item.status}", field="status")
    message = corrected if corrected is not None else _payload(cipher, item)
    source = item.source if item.source in SINGLE_SOURCES else BATCH_SOURCE
    inbox_id = new_id()
    received_at = as_utc(item.received_at)
    refused: list[int] | None = None
    rejected: list[RefusedMessage] = []
    if _is_whole_body(item, message):
        if corrected is None:
            inbox_id, refused = item.id, item.refused
        else:
            # Checked as a request checks a body: its refusals are answered now, and processing
            # quarantines them as refusals the sender was told of.
            rejected = _refusals(message, inbox_id, received_at, limits)
            refused = [refusal.index for refusal in rejected] or None
        body = orjson.dumps(message)
    else:
        try:
            normalize_message(
                message,
                received_at=received_at,
                fallback_message_id=fallback_message_id(inbox_id, 0),
                limits=limits,
                forced_type=None if source == BATCH_SOURCE else source,
            )
        except InvalidEvent as exc:
            rejection = exc.rejection
            raise ReplayRejected(
                f"the event is still invalid: {rejection.message}",
                field=rejection.field,
                reason=rejection.code,
            ) from None
        body = orjson.dumps({"batch": [message]} if source == BATCH_SOURCE else message)
    item = _resolve(session, workspace_id, item_id, "replayed")
    QuarantineRepository(session, workspace_id).add_inbox_entry(
        InboxEntry(
            id=inbox_id,
            source=source,
            received_at=received_at,
            body_sealed=cipher.seal(body, row_aad("inbox", inbox_id, "body")),
            attempts=0,
            refused=refused,
        )
    )
    return ReplayResult(item=_to_schema(cipher, item), inbox_id=inbox_id, rejected=rejected)


def _refusals(
    body: dict[str, Any], inbox_id: uuid.UUID, received_at: datetime, limits: Limits
) -> list[RefusedMessage]:
    """The messages of a corrected whole body that are refused; every one refused (or the body
    itself unreadable) is an error, as for a request."""
    try:
        envelope = read_envelope(body, is_batch=True)
    except InvalidBody as exc:
        raise ReplayRejected(
            f"the body is still invalid: {exc.message}", field=exc.field, reason=exc.code
        ) from None
    _, refused = split_messages(
        envelope,
        source=BATCH_SOURCE,
        inbox_id=inbox_id,
        received_at=received_at,
        limits=limits,
        build_documents=False,
    )
    rejected = [RefusedMessage.model_validate(item.to_dict()) for item in refused]
    if refused and len(refused) == len(envelope.messages):
        first = refused[0].rejection
        raise ReplayRejected(
            f"every message of the body is still invalid; the first: {first.message}",
            field=first.field,
            reason=first.code,
            rejected=[item.model_dump(exclude_none=True) for item in rejected],
        )
    return rejected
