"""Accepting tracking requests: authenticate, validate, seal, and write durably before answering."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import math
import reprlib
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy.orm import Session, sessionmaker

from storeloop.ingestion.body import (
    Envelope,
    InvalidBody,
    decompress,
    pack_body,
    parse_json,
    read_envelope,
)
from storeloop.ingestion.fastpath import (
    FastEnvelope,
    SliceChecker,
    read_fast,
)
from storeloop.ingestion.validation import (
    InvalidEvent,
    Limits,
    NormalizedEvent,
    Rejection,
    normalize_message,
)
from storeloop.ingestion.writer import GroupCommitWriter
from storeloop.kit.crypto import WorkspaceCipher, row_aad
from storeloop.kit.errors import Forbidden, RateLimited, StoreloopError, Unauthorized
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import utcnow
from storeloop.workspaces.keyring import Keyring
from storeloop.workspaces.service import KeyAuthenticator, KeyIdentity, KeyKind

BATCH_SOURCE = "batch"
SINGLE_SOURCES = frozenset({"track", "identify", "page", "screen", "group", "alias"})


class StorageUnavailable(StoreloopError):
    status_code = 503
    code = "storage_unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class BatchOverRateLimit(StoreloopError):
    status_code = 413
    code = "batch_over_rate_limit"


@dataclass(slots=True)
class RejectedEvent:
    index: int
    message_id: str | None
    rejection: Rejection

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"index": self.index, "code": self.rejection.code}
        if self.rejection.field is not None:
            body["field"] = self.rejection.field
        body["message"] = self.rejection.message
        if self.message_id is not None:
            body["messageId"] = self.message_id
        return body


@dataclass(slots=True)
class AcceptResult:
    accepted: int
    rejected: list[RejectedEvent] = field(default_factory=list)


def fallback_message_id(inbox_id: uuid.UUID, index: int) -> str:
    """The id of a message sent without one: derived, so request and worker agree on it."""
    return f"sl-{inbox_id.hex}-{index}"


_INDEX_BITS = 20


def rejection_id(inbox_id: uuid.UUID, index: int) -> uuid.UUID:
    """The quarantine id of a body's message ``index``: derived, so that the request and the
    worker quarantine a message under the same id (ON CONFLICT DO NOTHING makes either write a
    no-op after the other). The inbox id's time-ordered first half, then a hash of the inbox id
    and the index (UUIDv7 variant bits kept), ending in the index so one body's items sort by
    their place in it."""
    digest = hashlib.blake2b(inbox_id.bytes, digest_size=8).digest()
    if index < 1 << _INDEX_BITS:
        tail = (int.from_bytes(digest) >> _INDEX_BITS << _INDEX_BITS) | index
    else:  # not reachable with the body limit's 500 KB, but kept unique all the same
        tail = int.from_bytes(
            hashlib.blake2b(inbox_id.bytes + index.to_bytes(8), digest_size=8).digest()
        )
    low = (0b10 << 62) | (tail & ((1 << 62) - 1))
    return uuid.UUID(int=(inbox_id.int >> 64 << 64) | low)


def rejection_row(
    cipher: WorkspaceCipher,
    *,
    workspace_id: uuid.UUID,
    source: str,
    inbox_id: uuid.UUID,
    received_at: datetime,
    is_batch: bool,
    item: RejectedEvent,
    raw: Any,
) -> dict[str, Any]:
    """The quarantine row of one refused message, with its raw payload sealed."""
    quarantine_id = rejection_id(inbox_id, item.index)
    return {
        "id": quarantine_id,
        "workspace_id": workspace_id,
        "source": source,
        "received_at": received_at,
        "batch_index": item.index if is_batch else None,
        "message_id": item.message_id,
        "reason": item.rejection.code,
        "field": item.rejection.field,
        "detail": item.rejection.message[:1000],
        "payload_sealed": cipher.seal(
            _dump_raw(raw), row_aad("quarantine", quarantine_id, "payload")
        ),
        "status": "open",
    }


def split_messages(
    envelope: Envelope,
    *,
    source: str,
    inbox_id: uuid.UUID,
    received_at: datetime,
    limits: Limits,
    build_documents: bool,
    certain: Sequence[bool] | None = None,
) -> tuple[list[NormalizedEvent], list[RejectedEvent]]:
    """The valid events and the rejections of one body.

    The request calls this to answer and quarantine, the worker to store; with the same body,
    inbox id and receive time they always agree on which events are valid. Without
    ``build_documents`` (the request) only the rejections are wanted: messages the fast path
    finds certainly valid skip the validator and no events are returned; the rest go through
    ``normalize_message``, which alone words the rejections. ``certain`` holds the verdicts the
    request already has from the messages' bytes (``SliceChecker.verdicts``), so that the messages
    found valid there are not checked again.
    """
    forced_type = None if source == BATCH_SOURCE else source
    events: list[NormalizedEvent] = []
    rejected: list[RejectedEvent] = []
    if certain is not None and len(certain) != len(envelope.messages):
        certain = None
    checker = SliceChecker(
        received_at=received_at,
        limits=limits,
        forced_type=forced_type,
        batch_sent_at=envelope.sent_at,
    )
    for index, raw in enumerate(envelope.messages):
        if not build_documents and (
            (certain is not None and certain[index]) or checker.parsed(raw)
        ):
            continue
        try:
            event = normalize_message(
                raw,
                received_at=received_at,
                fallback_message_id=fallback_message_id(inbox_id, index),
                limits=limits,
                forced_type=forced_type,
                batch_sent_at=envelope.sent_at,
                path=f"batch[{index}]" if envelope.is_batch else "",
                build_document=build_documents,
            )
        except InvalidEvent as exc:
            rejected.append(RejectedEvent(index, _message_id_of(raw), exc.rejection))
            continue
        if build_documents:
            events.append(event)
    return events, rejected


def write_key_from_authorization(header: str | None) -> str | None:
    """Segment sends the write key as the HTTP Basic username with an empty password."""
    if not header:
        return None
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, _password = decoded.partition(":")
    return username or None


def _message_id_of(raw: Any) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("messageId")
        if isinstance(value, str) and len(value) <= 255 and "\x00" not in value:
            return value
    return None


class InlineExpiryMemoryStorage(MemoryStorage):
    """limits' in-process storage, expiring old windows inline at most once a second.

    Its own scheduling starts a timer thread 10 ms after a hit whenever none is running: under
    load, a thread start (and a GIL hand-off to it) for every other tracking request, about 4% of
    a request's CPU. Expiring here keeps memory bounded the same way. Called from the event loop's
    thread only (IngestionService.accept). (limits is pinned; the test suite checks that hits
    start no thread and that old windows are dropped.)
    """

    _next_expiry = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_expiry:
            self._next_expiry = now + 1.0
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class WriteKeyRateLimiter:
    """Events per write key, sliding window; Redis-backed when configured so it spans processes."""

    def __init__(self, spec: str, storage_uri: str | None = None) -> None:
        self._items: list[RateLimitItem] = parse_many(spec)
        storage = storage_from_string(storage_uri) if storage_uri else InlineExpiryMemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(storage)

    def check(self, key_id: uuid.UUID, cost: int) -> None:
        ident = key_id.hex
        for item in self._items:
            if cost > item.amount:
                # Retrying could never succeed: say so instead of answering 429 forever.
                raise BatchOverRateLimit(
                    f"{cost} events in one request exceed the write key's limit of {item}; "
                    "send smaller batches",
                    field="batch",
                )
            try:
                allowed = self._limiter.hit(item, ident, cost=max(cost, 1))
            except Exception as exc:
                raise StorageUnavailable(
                    "the rate limiter's storage is unreachable; retry"
                ) from exc
            if not allowed:
                stats = self._limiter.get_window_stats(item, ident)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(
                    f"write key over its rate limit of {item}; retry after {retry_after}s",
                    retry_after=retry_after,
                )


class IngestionService:
    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        keyring: Keyring,
        authenticator: KeyAuthenticator,
        writer: GroupCommitWriter,
        rate_limiter: WriteKeyRateLimiter,
        limits: Limits,
        max_body_bytes: int,
    ) -> None:
        self.session_factory = session_factory
        self.keyring = keyring
        self.authenticator = authenticator
        self.writer = writer
        self.rate_limiter = rate_limiter
        self.limits = limits
        self.max_body_bytes = max_body_bytes

    def authenticate(self, presented: str | None) -> KeyIdentity:
        if not presented:
            raise Unauthorized(
                "a write key is required: HTTP Basic username, or writeKey in the body",
                field="writeKey",
            )
        identity = self.authenticator.authenticate(self.session_factory, presented)
        if identity is None:
            raise Unauthorized("unknown or revoked write key", field="writeKey")
        if identity.kind is not KeyKind.WRITE:
            raise Forbidden(
                "a secret key cannot be used for tracking; use the workspace's write key",
                field="writeKey",
            )
        return identity

    def validate(
        self,
        envelope: Envelope,
        *,
        source: str,
        inbox_id: uuid.UUID,
        received_at: datetime,
        certain: Sequence[bool] | None = None,
    ) -> list[RejectedEvent]:
        _, rejected = split_messages(
            envelope,
            source=source,
            inbox_id=inbox_id,
            received_at=received_at,
            limits=self.limits,
            build_documents=False,
            certain=certain,
        )
        return rejected

    def _verdicts(self, fast: FastEnvelope, *, source: str, received_at: datetime) -> list[bool]:
        """ "Certainly valid" for each message, from its bytes."""
        checker = SliceChecker(
            received_at=received_at,
            limits=self.limits,
            forced_type=None if source == BATCH_SOURCE else source,
            batch_sent_at=fast.sent_at,
        )
        return checker.verdicts(fast.slices)

    async def accept(
        self,
        *,
        source: str,
        body: bytes,
        content_encoding: str | None,
        authorization: str | None,
    ) -> AcceptResult:
        received_at = utcnow()
        header_key = write_key_from_authorization(authorization)
        identity: KeyIdentity | None = None
        if header_key is not None:
            identity = self.authenticate(header_key)
        is_batch = source == BATCH_SOURCE
        envelope: Envelope | None = None
        try:
            data = decompress(body, content_encoding, self.max_body_bytes)
        except InvalidBody as exc:
            if identity is not None:
                await self._quarantine_body(identity, source, body, received_at, exc)
            raise
        # A plain body (valid JSON, the envelope as expected) is read without building Python
        # objects; any other is parsed, and the parse words what is wrong with it.
        fast = read_fast(data, is_batch=is_batch)
        if fast is not None:
            write_key, count = fast.write_key, len(fast.slices)
        else:
            envelope = await self._parse(identity, source, body, data, received_at, is_batch)
            write_key, count = envelope.write_key, len(envelope.messages)
        if identity is None:
            identity = self.authenticate(write_key)
        self.rate_limiter.check(identity.key_id, count)

        inbox_id = new_id()
        rejected: list[RejectedEvent] = []
        certain = (
            None if fast is None else self._verdicts(fast, source=source, received_at=received_at)
        )
        if certain is None or not all(certain):
            # Some message needs the validator (and its words): parse the body after all.
            if envelope is None:
                envelope = await self._parse(identity, source, body, data, received_at, is_batch)
            rejected = self.validate(
                envelope,
                source=source,
                inbox_id=inbox_id,
                received_at=received_at,
                certain=certain,
            )
        accepted = count - len(rejected)
        # The body is kept whole, refused messages included: processing quarantines those from
        # it (ADR 0014), so a request never waits for the main database's write lock, which on
        # SQLite is the worker's for a fraction of a second at a time.
        inbox_row: dict[str, Any] | None = None
        if count:
            cipher = self.keyring.cipher(identity.workspace_id)
            inbox_row = {
                "id": inbox_id,
                "workspace_id": identity.workspace_id,
                "source": source,
                "received_at": received_at,
                "body_sealed": cipher.seal(pack_body(data), row_aad("inbox", inbox_id, "body")),
                "attempts": 0,
                "refused": [item.index for item in rejected] or None,
            }
        # The parsed body is not needed any more: drop it before waiting for the commit, so the
        # collector does not keep walking the containers of every request in flight.
        del envelope, fast
        if inbox_row is not None:
            await self._write([inbox_row], [])
        return AcceptResult(accepted, rejected)

    async def _parse(
        self,
        identity: KeyIdentity | None,
        source: str,
        body: bytes,
        data: bytes,
        received_at: datetime,
        is_batch: bool,
    ) -> Envelope:
        """The body parsed by orjson; an unreadable one is quarantined (key known) and raised."""
        try:
            return read_envelope(parse_json(data), is_batch=is_batch)
        except InvalidBody as exc:
            if identity is not None:
                await self._quarantine_body(identity, source, body, received_at, exc)
            raise

    async def _write(
        self, inbox_rows: list[dict[str, Any]], quarantine_rows: list[dict[str, Any]]
    ) -> None:
        try:
            await asyncio.wrap_future(self.writer.submit(inbox_rows, quarantine_rows))
        except Exception as exc:
            raise StorageUnavailable("the events could not be stored; retry") from exc

    async def _quarantine_body(
        self,
        identity: KeyIdentity,
        source: str,
        body: bytes,
        received_at: datetime,
        error: InvalidBody,
    ) -> None:
        """Keep an unreadable body (bad JSON, bad UTF-8) so the sender's bug can be examined."""
        cipher = self.keyring.cipher(identity.workspace_id)
        quarantine_id = new_id()
        row = {
            "id": quarantine_id,
            "workspace_id": identity.workspace_id,
            "source": source,
            "received_at": received_at,
            "batch_index": None,
            "message_id": None,
            "reason": error.code,
            "field": error.field,
            "detail": error.message[:1000],
            "payload_sealed": cipher.seal(body, row_aad("quarantine", quarantine_id, "payload")),
            "status": "open",
        }
        await self._write([], [row])


def _dump_raw(raw: Any) -> bytes:
    try:
        return orjson.dumps(raw)
    except TypeError:
        # Too deep or not storable as JSON: keep a bounded description rather than nothing.
        return orjson.dumps(reprlib.repr(raw))
