"""Fuzzing the tracking input path: body decoding, message validation, and the whole request.

The pure properties: arbitrary bytes only ever raise StoreloopError subclasses while being decoded;
arbitrary JSON values (including what Python's own json module produces and orjson never does:
lone surrogates, integers beyond 64 bits, NaN) only ever normalise or raise InvalidEvent; and a
normalised event is always storable. The end-to-end properties: no body gets a 5xx, and exactly
the acknowledged events are stored, through the batch endpoint and the quarantine replay.
"""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from storeloop.ingestion.body import decompress, parse_json, read_envelope
from storeloop.ingestion.validation import (
    ECOMMERCE_EVENTS,
    MESSAGE_TYPES,
    InvalidEvent,
    Limits,
    NormalizedEvent,
    normalize_message,
)
from storeloop.kit.errors import StoreloopError
from storeloop.runtime import Runtime
from tests.factories.events import order_completed, track
from tests.factories.queries import event_count, inbox_count, message_ids
from tests.factories.workspaces import WorkspaceKeys

RECEIVED_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits()
MESSAGE_KEYS = [
    "type",
    "event",
    "name",
    "category",
    "messageId",
    "userId",
    "anonymousId",
    "previousId",
    "groupId",
    "timestamp",
    "originalTimestamp",
    "sentAt",
    "properties",
    "traits",
    "context",
    "integrations",
    "writeKey",
]
PROPERTY_KEYS = [
    "order_id",
    "total",
    "revenue",
    "subtotal",
    "shipping",
    "tax",
    "discount",
    "value",
    "price",
    "quantity",
    "currency",
    "coupon",
    "products",
    "product_id",
    "sku",
    "email",
]
INTERESTING_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "x" * 255,
    "x" * 256,
    "é" * 256,
    "1e1000000",
    "-1e1000000",
    "99999999999999.99999",
    "1e-999999",
    "NaN",
    "sNaN",
    "Infinity",
    "-0",
    "1_000",
    " 12.50 ",
    "eur",
    "EUR ",
    "2024-02-30T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2025-06-01",
    "2025-06-01T11:00:00",
    "2025-06-01T11:00:00Z",
]
INTERESTING_NUMBERS = [0, -1, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30, 10**4000]
INTERESTING_FLOATS = [1e308, -1e308, 5e-324, 0.1, -0.0, float("nan"), float("inf"), -float("inf")]

BODY_ERROR_CODES = {
    "body_too_large",
    "unsupported_encoding",
    "invalid_gzip",
    "invalid_json",
    "invalid_utf8",
    "too_deep",
    "invalid_body",
    "missing_field",
    "wrong_type",
    "invalid_timestamp",
}
EVENT_ERROR_CODES = {
    "wrong_type",
    "event_too_large",
    "too_deep",
    "missing_field",
    "unknown_type",
    "invalid_string",
    "invalid_timestamp",
    "timestamp_out_of_range",
    "invalid_ecommerce_property",
    # A value JSON cannot carry: a lone surrogate, an integer beyond 64 bits (only Python's json
    # module reads those, so they reach validation through the quarantine replay).
    "invalid_json",
}

chars = st.one_of(st.characters(), st.characters(categories=["Cs"]), st.just("\x00"))
texts = st.one_of(st.text(chars, max_size=30), st.sampled_from(INTERESTING_STRINGS))
numbers = st.one_of(
    st.integers(),
    st.floats(),
    st.sampled_from(INTERESTING_NUMBERS),
    st.sampled_from(INTERESTING_FLOATS),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
)
leaves = st.one_of(st.none(), st.booleans(), numbers, texts)
keys = st.one_of(texts, st.sampled_from(MESSAGE_KEYS + PROPERTY_KEYS))
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=25,
)


@st.composite
def deeply_nested(draw: st.DrawFn) -> Any:
    value = draw(leaves)
    shape = draw(st.sampled_from(["list", "dict", "mixed"]))
    for level in range(draw(st.integers(1, 400))):
        wrap_in_list = shape == "list" or (shape == "mixed" and level % 2 == 0)
        value = [value] if wrap_in_list else {"x": value}
    return value


any_value = st.one_of(json_values, deeply_nested())
ids = st.one_of(texts, numbers, st.booleans(), st.none(), json_values)
timestamps = st.one_of(
    st.timedeltas(min_value=timedelta(days=-1200), max_value=timedelta(days=2)).map(
        lambda offset: (RECEIVED_AT + offset).isoformat()
    ),
    st.builds(
        lambda moment, offset: moment.replace(tzinfo=timezone(offset)).isoformat(),
        st.datetimes(),
        st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)),
    ),
    texts,
    json_values,
)
products = st.one_of(
    st.lists(
        st.dictionaries(
            st.sampled_from(["product_id", "sku", "price", "quantity", "name"]),
            st.one_of(numbers, texts, json_values),
            max_size=5,
        ),
        max_size=3,
    ),
    json_values,
)
properties = st.one_of(
    st.dictionaries(
        st.one_of(st.sampled_from(PROPERTY_KEYS), texts),
        st.one_of(numbers, texts, products, any_value),
        max_size=8,
    ),
    json_values,
)


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """Segment-shaped messages: the right keys, each with a right or wrong value."""
    message: dict[str, Any] = draw(
        st.dictionaries(st.sampled_from(MESSAGE_KEYS), any_value, max_size=4)
    )
    if draw(st.booleans()):
        message["type"] = draw(st.sampled_from(sorted(MESSAGE_TYPES)))
    if draw(st.booleans()):
        message[draw(st.sampled_from(["userId", "anonymousId"]))] = draw(ids)
    if draw(st.booleans()):
        message["event"] = draw(st.one_of(st.sampled_from(sorted(ECOMMERCE_EVENTS)), texts))
    if draw(st.booleans()):
        message["properties"] = draw(properties)
    for key in ("timestamp", "previousId", "groupId", "name", "messageId", "traits"):
        if draw(st.integers(0, 3)) == 0:
            message[key] = draw(timestamps if key == "timestamp" else ids)
    return message


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


# ---------------------------------------------------------------------------------------------
# Pure functions
# ---------------------------------------------------------------------------------------------

raw_bodies = st.one_of(
    st.binary(max_size=512),
    json_values.map(lambda value: json.dumps(value).encode()),
    messages().map(lambda message: json.dumps({"batch": [message]}).encode()),
    st.integers(1, 3000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 3000).map(lambda depth: b'{"batch":' + b"[" * depth),
    st.tuples(json_values.map(lambda value: json.dumps(value).encode()), st.binary(max_size=4)).map(
        lambda parts: parts[0][: len(parts[0]) // 2] + parts[1]
    ),
)


@st.composite
def encoded_bodies(draw: st.DrawFn) -> tuple[bytes, str | None]:
    body = draw(raw_bodies)
    encoding = draw(
        st.one_of(
            st.none(),
            st.sampled_from(["gzip", "x-gzip", "deflate", "identity", " GZIP ", "", "br", "zstd"]),
            st.text(max_size=8),
        )
    )
    if encoding is not None and encoding.strip().lower() in ("gzip", "x-gzip"):
        body = gzip.compress(body)
    elif encoding is not None and encoding.strip().lower() == "deflate":
        body = zlib.compress(body)
    cut = draw(st.sampled_from([None, 1, 10, -1, -5]))  # truncated or corrupt compressed data
    if cut is not None:
        body = body[:cut]
    return body, encoding


@settings(max_examples=400, deadline=None)
@given(body=encoded_bodies(), max_bytes=st.integers(0, 4096), is_batch=st.booleans())
@example(body=(b"[" * 100_000, None), max_bytes=500 * 1024, is_batch=True)
@example(body=(gzip.compress(b" " * 10_000), "gzip"), max_bytes=100, is_batch=True)
@example(body=(b'{"batch": [], "sentAt": "\\u0000"}', None), max_bytes=4096, is_batch=True)
def test_body_decoding_raises_only_storeloop_errors(
    body: tuple[bytes, str | None], max_bytes: int, is_batch: bool
) -> None:
    data, encoding = body
    failure: StoreloopError | None = None
    try:
        decoded = decompress(data, encoding, max_bytes)
        document = parse_json(decoded)
        envelope = read_envelope(document, is_batch=is_batch)
    except StoreloopError as error:
        failure = error
    if failure is not None:
        assert 400 <= failure.status_code < 500
        assert failure.code in BODY_ERROR_CODES
        return
    assert len(decoded) <= max(max_bytes, len(data))
    assert isinstance(envelope.messages, list)
    assert envelope.is_batch is is_batch
    if not is_batch:
        assert envelope.messages == [document]
    assert envelope.write_key is None or (
        isinstance(envelope.write_key, str) and envelope.write_key
    )
    assert envelope.sent_at is None or envelope.sent_at.tzinfo is not None


def _check_storable(event: NormalizedEvent) -> None:
    assert isinstance(event, NormalizedEvent)
    assert event.type in MESSAGE_TYPES
    # The document is what the processor seals and stores.
    assert isinstance(orjson.loads(orjson.dumps(event.document)), dict)
    assert event.user_id is not None or event.anonymous_id is not None
    for value in (event.message_id, event.user_id, event.anonymous_id, event.previous_id):
        if value is not None:
            assert isinstance(value, str)
            assert value
            assert "\x00" not in value
            assert len(value) <= 255
    for value in (event.event, event.order_id):
        if value is not None:
            assert "\x00" not in value
            assert len(value) <= 255
    assert event.timestamp.tzinfo is not None
    if event.revenue is not None:
        # events.revenue is NUMERIC(18, 4): rounded to 4 places it must stay below 10^14.
        assert abs(event.revenue.quantize(Decimal("0.0001"))) < Decimal("1e14")
    if event.currency is not None:
        assert len(event.currency) == 3
        assert event.currency.isascii()
        assert event.currency.isupper()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=st.one_of(messages(), any_value),
    forced_type=st.one_of(st.none(), st.sampled_from(sorted(MESSAGE_TYPES))),
    batch_sent_at=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
    path=st.sampled_from(["", "batch[3]"]),
)
@example(
    raw={"type": "track", "event": "x", "userId": "u", "properties": {"s": "\ud800"}},
    forced_type=None,
    batch_sent_at=None,
    path="",
)
@example(
    raw={"type": "track", "event": "x", "userId": "u", "properties": {"n": 10**30}},
    forced_type=None,
    batch_sent_at=None,
    path="",
)
@example(
    raw={"type": "track", "event": "x", "userId": "u", "properties": nested(300)},
    forced_type=None,
    batch_sent_at=None,
    path="batch[0]",
)
@example(
    raw={
        "type": "track",
        "event": "Order Completed",
        "userId": "u",
        "properties": {"order_id": "1", "total": "1e1000000"},
    },
    forced_type=None,
    batch_sent_at=None,
    path="",
)
@example(
    raw={
        "type": "track",
        "event": "Order Completed",
        "userId": "u",
        "properties": {"order_id": "1", "revenue": "99999999999999.99999"},
    },
    forced_type=None,
    batch_sent_at=None,
    path="",
)
def test_normalize_message_returns_an_event_or_raises_invalid_event(
    raw: Any, forced_type: str | None, batch_sent_at: datetime | None, path: str
) -> None:
    try:
        event = normalize_message(
            raw,
            received_at=RECEIVED_AT,
            fallback_message_id="sl-fallback-0",
            limits=LIMITS,
            forced_type=forced_type,
            batch_sent_at=batch_sent_at,
            path=path,
        )
    except InvalidEvent as error:
        rejection = error.rejection
    else:
        _check_storable(event)
        if forced_type is not None:
            assert event.type == forced_type
        return
    assert rejection.code in EVENT_ERROR_CODES
    assert rejection.field is None or rejection.field.startswith(path)


# ---------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------


def _acceptable_id(value: Any) -> bool:
    """What validation would take as a messageId (so a fuzzed one may collide across examples)."""
    if isinstance(value, bool) or value is None or value == "":
        return False
    if isinstance(value, str):
        return len(value) <= 255 and "\x00" not in value
    return isinstance(value, int | float)


def _unique_message_ids(document: Any) -> Any:
    """Replace every usable messageId with a fresh one, so each accepted event is a new event."""
    messages_ = document.get("batch") if isinstance(document, dict) else None
    for message in messages_ if isinstance(messages_, list) else [document]:
        if isinstance(message, dict) and _acceptable_id(message.get("messageId")):
            message["messageId"] = f"fuzz-{uuid.uuid4()}"
    return document


bodies = st.one_of(
    any_value,
    st.fixed_dictionaries(
        {"batch": st.lists(st.one_of(messages(), messages(), any_value), max_size=4)},
        optional={"sentAt": timestamps, "context": json_values},
    ),
)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@FUZZ
@given(document=bodies)
def test_batch_endpoint_stores_exactly_what_it_acknowledges(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, document: Any
) -> None:
    document = _unique_message_ids(document)
    before = event_count(runtime, workspace.id)
    response = client.post(
        "/v1/batch",
        content=json.dumps(document).encode(),
        headers={**workspace.basic_auth, "Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text
    answer = response.json()
    if response.status_code == 200:
        accepted = answer["accepted"]
        rejected = answer.get("rejected", [])
        assert accepted + len(rejected) == len(document["batch"])
        assert accepted >= 1 or rejected == []  # all refused is a 400; an empty batch is not
    else:
        assert isinstance(answer["error"]["code"], str)
        accepted = 0
    runtime.processor.drain()
    assert event_count(runtime, workspace.id) - before == accepted
    assert inbox_count(runtime, workspace.id) == 0


def _quarantine_one(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, source: str = "track"
) -> str:
    """A fresh open quarantine item (an event without any identity, quarantined by processing);
    returns its id."""
    marker = f"q-{uuid.uuid4()}"
    event = {"type": "track", "event": "Product Viewed", "messageId": marker}
    if source == "batch":
        refused = client.post("/v1/batch", json={"batch": [event]}, headers=workspace.basic_auth)
    else:
        refused = client.post(f"/v1/{source}", json=event, headers=workspace.basic_auth)
    assert refused.status_code == 400
    runtime.processor.drain()
    listing = client.get("/api/v1/quarantine", params={"limit": 500}, headers=workspace.bearer)
    matches = [item["id"] for item in listing.json()["items"] if item["message_id"] == marker]
    assert len(matches) == 1
    return str(matches[0])


def _replay(client: TestClient, workspace: WorkspaceKeys, item_id: str, payload: Any):  # type: ignore[no-untyped-def]
    # Python's json, like the management API's parser, writes and reads NaN, lone surrogates
    # (as \\ud800 escapes) and integers of any size.
    return client.post(
        f"/api/v1/quarantine/{item_id}/replay",
        content=json.dumps({"payload": payload}).encode(),
        headers={**workspace.bearer, "Content-Type": "application/json"},
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=messages(), source=st.sampled_from(["batch", "track", "page", "identify"]))
def test_replay_stores_exactly_what_it_accepts(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    payload: dict[str, Any],
    source: str,
) -> None:
    payload = _unique_message_ids(payload)
    item_id = _quarantine_one(client, runtime, workspace, source)
    before = event_count(runtime, workspace.id)
    response = _replay(client, workspace, item_id, payload)
    assert response.status_code in (200, 422), response.text
    runtime.processor.drain()
    stored = 1 if response.status_code == 200 else 0
    assert event_count(runtime, workspace.id) - before == stored
    assert inbox_count(runtime, workspace.id) == 0
    item = client.get(f"/api/v1/quarantine/{item_id}", headers=workspace.bearer).json()
    assert item["status"] == ("replayed" if stored else "open")
    if not stored:  # keep the open list short for the next example's lookup
        discarded = client.post(f"/api/v1/quarantine/{item_id}/discard", headers=workspace.bearer)
        assert discarded.status_code == 200


# ---------------------------------------------------------------------------------------------
# Regressions: the inputs the fuzzers found, pinned down one by one
# ---------------------------------------------------------------------------------------------


def _post_batch(client: TestClient, workspace: WorkspaceKeys, batch: list[dict[str, Any]]):  # type: ignore[no-untyped-def]
    return client.post("/v1/batch", json={"batch": batch}, headers=workspace.basic_auth)


@pytest.mark.parametrize("depth", [30, 254, 255, 300, 1000])
def test_deep_nesting_in_a_batch_is_rejected_as_too_deep(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, depth: int
) -> None:
    good = track()
    deep = track(properties={"marker": 1})
    # Written by hand: Python's json and orjson both refuse to write this much nesting.
    text = orjson.dumps({"batch": [good, deep]}).replace(
        b'{"marker":1}', b'{"x":' * depth + b"{}" + b"}" * depth
    )
    response = client.post(
        "/v1/batch",
        content=text,
        headers={**workspace.basic_auth, "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1
    assert [(r["code"], r["field"]) for r in response.json()["rejected"]] == [
        ("too_deep", "batch[1]")
    ]
    runtime.processor.drain()
    assert message_ids(runtime, workspace.id) == [good["messageId"]]


@pytest.mark.parametrize(
    ("properties", "field"),
    [
        ({"order_id": "1", "total": "1e1000000"}, "properties.total"),
        ({"order_id": "1", "revenue": "-1e1000000"}, "properties.revenue"),
        (
            {"order_id": "1", "products": [{"product_id": "p", "price": "1e999999999"}]},
            "properties.products[0].price",
        ),
    ],
)
def test_huge_money_strings_are_rejected_not_a_500(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    properties: dict[str, Any],
    field: str,
) -> None:
    good = track()
    response = _post_batch(client, workspace, [good, order_completed(properties=properties)])
    assert response.status_code == 200, response.text
    assert [(r["code"], r["field"]) for r in response.json()["rejected"]] == [
        ("invalid_ecommerce_property", f"batch[1].{field}")
    ]
    runtime.processor.drain()
    assert message_ids(runtime, workspace.id) == [good["messageId"]]


@pytest.mark.parametrize(
    "revenue", ["99999999999999.99999", "99999999999999.99994", "1e-999999", "0.00001", "-0"]
)
def test_an_accepted_revenue_is_always_storable(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, revenue: str
) -> None:
    """events.revenue is NUMERIC(18, 4); whatever validation lets through must fit it on every
    backend, or the event is acknowledged and then never stored."""
    order = order_completed(properties={"order_id": "R-1", "revenue": revenue, "currency": "EUR"})
    response = _post_batch(client, workspace, [order])
    assert response.status_code in (200, 400), response.text
    accepted = response.json()["accepted"] if response.status_code == 200 else 0
    runtime.processor.drain()
    assert inbox_count(runtime, workspace.id) == 0
    assert message_ids(runtime, workspace.id) == ([order["messageId"]] if accepted else [])


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"text": "\ud800"}, 422),  # a lone surrogate: cannot be stored as UTF-8
        ({"big": 10**30}, 422),  # beyond 64 bits: orjson cannot write it
        ({"ratio": float("nan")}, 200),  # NaN is written as null
    ],
)
def test_replay_of_values_only_python_json_reads(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    extra: dict[str, Any],
    status: int,
) -> None:
    item_id = _quarantine_one(client, runtime, workspace)
    fixed = track(properties=extra)
    response = _replay(client, workspace, item_id, fixed)
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["error"]["code"] == "replay_invalid"
    runtime.processor.drain()
    assert message_ids(runtime, workspace.id) == ([fixed["messageId"]] if status == 200 else [])
