"""The request path's quick verdict on a body: "certainly valid", or "ask the validator".

The answer is only ever a shortcut: ``False`` sends the message to ``normalize_message``, which
decides and words the error, so codes, fields and messages are exactly the validator's.
Soundness is the one rule: ``True`` must imply that ``normalize_message`` accepts the message
(tests/ingestion/test_fastpath.py checks this with generated messages and bodies).

A plain body is read without building Python objects (ADR 0013):

1. simdjson validates the whole body in C (``orjson_would_parse``): what it accepts, orjson
   accepts, so the worker, which parses the body with orjson, will read it too.
2. One msgspec pass cuts the body into each message's bytes (``read_fast``).
3. Each message is decoded into ``_Message``: msgspec checks in C the types of the fields the
   validator reads, skips the rest, and a few Python comparisons finish (``SliceChecker``).
   Its bytes bound its size and depth: an event too close to a limit is left to the validator.

msgspec alone could not promise step 1: it skips undeclared fields without validating them
(invalid UTF-8, numbers beyond float range). On a body orjson accepts, msgspec reads the same
values, except integers beyond 64 bits (orjson makes them floats, msgspec keeps them exact): the
types below refuse those either way, so the verdict is "ask". ``SliceChecker.parsed`` gives the
same verdict from a parsed message, for bodies that went through orjson anyway.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
import orjson
import simdjson
from msgspec import Meta

from storeloop.ingestion.validation import (
    ECOMMERCE_EVENTS,
    EVENTS_REQUIRING_ORDER_ID,
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_NUMBER_DIGITS,
    MESSAGE_TYPES,
    MONEY_FIELDS,
    InvalidEvent,
    Limits,
    _depth_ok,
    parse_timestamp,
)

# Below this magnitude a number needs no Decimal to know it is a storable amount after rounding
# (kit.money allows 11 integer digits).
_SAFE_MAGNITUDE = 1e10
# The validator refuses any number of MAX_NUMBER_DIGITS integer digits or more, quantities too.
_SAFE_INT = 10**MAX_NUMBER_DIGITS

# The validator's limits as msgspec constraints, checked in C. Stricter is fine (the validator
# decides then): integer ids beyond int64, float ids, quantities written as floats.
Id = (
    Annotated[str, Meta(max_length=MAX_ID_LENGTH)] | Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
)
Name = Annotated[str, Meta(max_length=MAX_NAME_LENGTH)]
Money = Annotated[float, Meta(gt=-_SAFE_MAGNITUDE, lt=_SAFE_MAGNITUDE)]
Quantity = Annotated[int, Meta(ge=0, lt=_SAFE_INT)]


# gc=False: decoded JSON cannot form reference cycles, and untracked objects spare the
# collector work on the request path.
class _AnyObject(msgspec.Struct, gc=False):
    """Any JSON object: msgspec checks that it is one and skips its members."""


class _Product(msgspec.Struct, gc=False):
    product_id: Id | None = None
    sku: Id | None = None
    price: Money | None = None
    quantity: Quantity | None = None


class _Order(msgspec.Struct, gc=False):
    """The properties of an event, as far as the e-commerce rules read them. Checked for every
    event: a non-commerce event with, say, a text ``total`` is left to the validator."""

    order_id: Id | None = None
    total: Money | None = None
    revenue: Money | None = None
    subtotal: Money | None = None
    shipping: Money | None = None
    tax: Money | None = None
    discount: Money | None = None
    value: Money | None = None
    price: Money | None = None
    currency: str | None = None
    coupon: str | None = None
    products: list[_Product] | None = None
    # The properties of a Product event are themselves a product.
    product_id: Id | None = None
    sku: Id | None = None
    quantity: Quantity | None = None


class _Message(msgspec.Struct, gc=False):
    """The fields the validator reads; anything else in a message passes through unchecked."""

    type: str | None = None
    messageId: Id | None = None
    userId: Id | None = None
    anonymousId: Id | None = None
    event: Name | None = None
    name: Name | None = None
    category: Name | None = None
    groupId: Id | None = None
    previousId: Id | None = None
    timestamp: str | None = None
    originalTimestamp: str | None = None
    sentAt: str | None = None
    properties: _Order | None = None
    traits: _AnyObject | None = None
    context: _AnyObject | None = None
    integrations: _AnyObject | None = None


class _Batch(msgspec.Struct):
    batch: list[msgspec.Raw]
    sentAt: Any = None
    writeKey: Any = None


class _Single(msgspec.Struct):
    writeKey: Any = None


assert set(MONEY_FIELDS) <= set(_Order.__struct_fields__), "a money field is not checked"
_NO_ORDER = _Order()
# What the checks raise where the answer is "ask the validator".
_ASK = (msgspec.ValidationError, msgspec.DecodeError, ValueError, OverflowError)
_message_decoder = msgspec.json.Decoder(_Message)
_batch_decoder = msgspec.json.Decoder(_Batch)
_single_decoder = msgspec.json.Decoder(_Single)
# Build the types' validators now: a mistake in them must fail at import, not turn every message
# into a silent fallback (the checks catch ValueError, which msgspec raises for both).
msgspec.convert({"properties": {"products": [{}]}, "context": {}}, _Message)
_message_decoder.decode(b'{"properties":{"products":[{}]},"context":{}}')

# How much longer orjson can write a message than it was sent, when the message holds no escape
# (escapes only ever shrink): a number such as 1e15 comes back as 1000000000000000.0, 4.5 times
# its length; strings, literals and punctuation come back as sent and whitespace goes.
_GROWTH = 5


def _instant(raw: str) -> datetime:
    """A non-empty timestamp as the validator reads it (``parse_timestamp``), in UTC. Raises
    ValueError or OverflowError where the validator refuses it."""
    value = datetime.fromisoformat(raw.strip())
    tzinfo = value.tzinfo
    if tzinfo is UTC:  # what fromisoformat gives for Z and +00:00: nothing to convert
        return value
    if tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class SliceChecker:
    """The verdicts for the messages of one request (its receive time, type and sentAt)."""

    __slots__ = ("batch_sent_at", "earliest", "forced_type", "latest", "limits", "received_at")

    def __init__(
        self,
        *,
        received_at: datetime,
        limits: Limits,
        forced_type: str | None,
        batch_sent_at: datetime | None,
    ) -> None:
        self.received_at = received_at
        self.limits = limits
        self.forced_type = forced_type
        self.batch_sent_at = batch_sent_at
        self.earliest = received_at - limits.max_age
        self.latest = received_at + limits.max_future

    def message(self, message: _Message) -> bool:
        """The checks after the types: ids present, names, timestamps in range, e-commerce.
        Raises what the type checks raise (ValueError...) where the answer is "ask".
        (Called for every message of every request: written for speed, with the validator's
        helpers inlined; test_fastpath.py holds it to the validator.)"""
        kind = self.forced_type if self.forced_type is not None else message.type
        if kind not in MESSAGE_TYPES:
            return False
        user = message.userId
        has_user = user is not None and user != ""
        if not has_user:
            anonymous = message.anonymousId
            if anonymous is None or anonymous == "":
                return False
        if kind == "track":
            event_name = message.event
            if not event_name:
                return False
        elif kind == "page" or kind == "screen":
            event_name = message.name
        else:
            event_name = None
            if kind == "group":
                group = message.groupId
                if group is None or group == "":
                    return False
            elif kind == "alias":
                previous = message.previousId
                if not has_user or previous is None or previous == "":
                    return False
        raw = message.timestamp
        if raw is None or raw == "":
            raw = message.originalTimestamp
        raw_sent = message.sentAt
        # sentAt is read (and must be valid) even when there is no timestamp to correct.
        sent_at = self.batch_sent_at if raw_sent is None or raw_sent == "" else _instant(raw_sent)
        if raw is None or raw == "":
            timestamp = self.received_at
        else:
            # Segment's clock-skew correction, as validation.corrected_timestamp computes it.
            original = _instant(raw)
            timestamp = original
            if sent_at is not None:
                try:
                    timestamp = self.received_at - (sent_at - original)
                except OverflowError:
                    timestamp = original
        if timestamp < self.earliest or timestamp > self.latest:
            return False
        if event_name not in ECOMMERCE_EVENTS:
            return True
        order = message.properties or _NO_ORDER
        if event_name in EVENTS_REQUIRING_ORDER_ID:
            order_id = order.order_id
            if order_id is None or order_id == "":
                return False
        currency = order.currency
        return not currency or (len(currency) == 3 and currency.isascii() and currency.isalpha())

    def slice(self, raw: msgspec.Raw) -> bool:
        """From one message's bytes, in a body orjson accepts (see ``verdicts``)."""
        return self.verdicts([raw])[0]

    def verdicts(self, slices: list[msgspec.Raw]) -> list[bool]:
        """The verdict for each message of a body orjson accepts, from its bytes. Stricter than
        the validator on size (an event over a fifth of the limit is left to it) and on depth
        (brackets are counted, not walked)."""
        max_length = self.limits.max_event_bytes // _GROWTH
        max_brackets = self.limits.max_json_depth
        decode = _message_decoder.decode
        check = self.message
        verdicts: list[bool] = []
        for raw in slices:
            verdict = False
            if len(raw) <= max_length:
                encoded = bytes(raw)
                # Counting is a byte-by-byte loop, finding is memchr: most events hold no array.
                brackets = encoded.count(b"{")
                if b"[" in encoded:
                    brackets += encoded.count(b"[")
                # The only way to write NUL in JSON is the escape (a raw control character is
                # refused).
                if brackets <= max_brackets and not (b"\\" in encoded and b"\\u0000" in encoded):
                    try:
                        verdict = check(decode(encoded))
                    except _ASK:
                        verdict = False
            verdicts.append(verdict)
        return verdicts

    def parsed(self, raw: Any) -> bool:
        """From a message orjson parsed."""
        if type(raw) is not dict:
            return False
        limits = self.limits
        try:
            encoded = orjson.dumps(raw)
            # Depth cannot exceed the number of brackets: the walk runs only for bracket-rich
            # events.
            brackets = encoded.count(b"{") + encoded.count(b"[")
            if brackets > limits.max_json_depth and not _depth_ok(raw, limits.max_json_depth):
                return False
            if len(encoded) > limits.max_event_bytes:
                return False
            # orjson writes NUL as \\u0000: one scan clears every string of the event at once,
            # and most events hold no escape at all (memchr for a backslash beats the search).
            if encoded.find(b"\\") >= 0 and b"\\u0000" in encoded:
                return False
            return self.message(msgspec.convert(raw, _Message))
        except (*_ASK, TypeError):
            return False


# simdjson validates a whole body (UTF-8, numbers, escapes, depth) without building a Python
# object. Where it and orjson differ it is the stricter (integers beyond 64 bits, a document
# nesting exactly 1024 objects), except for a leading byte order mark, which it skips and orjson
# refuses: such bodies are left to orjson. tests/ingestion/test_fastpath.py holds the evidence.
_BOM = b"\xef\xbb\xbf"
_parsers = threading.local()  # a Parser reuses its buffers; one per thread


def orjson_would_parse(data: bytes) -> bool:
    """True only when ``orjson.loads(data)`` succeeds (False: maybe not; ask orjson)."""
    if data.startswith(_BOM):
        return False
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = simdjson.Parser()
    try:
        # The document proxy is dropped at once: the parser is free for the next body.
        parser.parse(data)
    except (ValueError, RuntimeError):  # UnicodeDecodeError is a ValueError
        return False
    return True


@dataclass(frozen=True, slots=True)
class FastEnvelope:
    """A body read without parsing it into Python objects: each message's bytes, and what
    ``read_envelope`` would have found in it."""

    slices: list[msgspec.Raw]
    sent_at: datetime | None
    write_key: str | None


def read_fast(data: bytes, *, is_batch: bool) -> FastEnvelope | None:
    """The body's messages as bytes, when orjson and ``read_envelope`` would accept the body;
    None otherwise (the usual path then parses it and words the error)."""
    if not orjson_would_parse(data):
        return None
    try:
        if is_batch:
            envelope = _batch_decoder.decode(data)
            slices = envelope.batch
            sent_at = parse_timestamp(envelope.sentAt, "sentAt")
            key = envelope.writeKey
        else:
            key = _single_decoder.decode(data).writeKey
            slices = [msgspec.Raw(data)]
            sent_at = None
    # (RecursionError: msgspec stops at a depth that depends on the stack; orjson decides then.)
    except (msgspec.ValidationError, msgspec.DecodeError, InvalidEvent, RecursionError):
        return None
    return FastEnvelope(slices, sent_at, key if isinstance(key, str) and key else None)
