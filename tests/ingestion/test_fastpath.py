"""The request path's fast verdict: it may only ever say "valid" where the validator agrees.

``SliceChecker`` (ingestion/fastpath.py) is a shortcut in front of ``normalize_message``; a
wrong "valid" would acknowledge an event the worker later drops. The property tests mutate
realistic events one field at a time (most stay valid, many become subtly invalid) and compare
with the validator, from the parsed message and from its bytes written three ways; bodies
mutated byte by byte check that what is read without orjson is what orjson reads. The examples
pin the boundaries, and that the realistic traffic does take the fast path.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import payloads
from storeloop.ingestion.body import read_envelope
from storeloop.ingestion.fastpath import SliceChecker, orjson_would_parse, read_fast
from storeloop.ingestion.service import split_messages
from storeloop.ingestion.validation import InvalidEvent, Limits, normalize_message
from tests.ingestion.test_fuzz import any_value, ids, messages, numbers, texts, timestamps

RECEIVED_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
LIMITS = Limits()
REALISTIC = payloads.events(400, now=RECEIVED_AT)


def _validator_accepts(raw: Any, forced_type: str | None = None, sent_at: Any = None) -> bool:
    try:
        normalize_message(
            raw,
            received_at=RECEIVED_AT,
            fallback_message_id="fallback",
            limits=LIMITS,
            forced_type=forced_type,
            batch_sent_at=sent_at,
            build_document=False,
        )
    except InvalidEvent:
        return False
    return True


def _checker(forced_type: str | None = None, sent_at: Any = None) -> SliceChecker:
    return SliceChecker(
        received_at=RECEIVED_AT, limits=LIMITS, forced_type=forced_type, batch_sent_at=sent_at
    )


def _fast(raw: Any, forced_type: str | None = None, sent_at: Any = None) -> bool:
    """The verdict from a parsed message."""
    return _checker(forced_type, sent_at).parsed(raw)


FIELD_PATHS = [
    ("type",),
    ("event",),
    ("name",),
    ("messageId",),
    ("userId",),
    ("anonymousId",),
    ("previousId",),
    ("groupId",),
    ("timestamp",),
    ("originalTimestamp",),
    ("sentAt",),
    ("properties",),
    ("traits",),
    ("context",),
    ("properties", "order_id"),
    ("properties", "total"),
    ("properties", "revenue"),
    ("properties", "price"),
    ("properties", "quantity"),
    ("properties", "currency"),
    ("properties", "coupon"),
    ("properties", "products"),
    ("properties", "product_id"),
    ("properties", "sku"),
]
replacements = st.one_of(
    ids,
    numbers,
    texts,
    timestamps,
    any_value,
    st.sampled_from(["", None, "Order Completed", "Product Added", "alias", "group", "EUR"]),
    st.floats(min_value=-1e15, max_value=1e15),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.lists(st.dictionaries(st.sampled_from(["price", "quantity", "sku"]), numbers), max_size=3),
)


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A realistic event with one to three fields replaced or removed."""
    event = copy.deepcopy(draw(st.sampled_from(REALISTIC)))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(FIELD_PATHS))
        target = event
        for key in path[:-1]:
            child = target.get(key)
            if not isinstance(child, dict):
                child = {}
                target[key] = child
            target = child
        if draw(st.integers(0, 4)) == 0:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = draw(replacements)
    return event


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=st.one_of(mutated_events(), mutated_events(), mutated_events(), messages()),
    forced_type=st.sampled_from([None, None, "track", "page", "identify", "alias", "group"]),
    sent_at=st.sampled_from([None, RECEIVED_AT, RECEIVED_AT + timedelta(days=400)]),
)
def test_fast_valid_implies_the_validator_accepts(
    raw: dict[str, Any], forced_type: str | None, sent_at: datetime | None
) -> None:
    if _fast(raw, forced_type, sent_at):
        assert _validator_accepts(raw, forced_type, sent_at)


def test_realistic_traffic_takes_the_fast_path() -> None:
    assert len(REALISTIC) == 400
    assert sum(_fast(event) for event in REALISTIC) == 400
    assert sum(_validator_accepts(event) for event in REALISTIC) == 400


ORDER = {
    "type": "track",
    "event": "Order Completed",
    "userId": "u1",
    "timestamp": "2025-06-01T11:00:00+00:00",
    "properties": {
        "order_id": "1001",
        "total": 59.8,
        "currency": "EUR",
        "products": [{"product_id": 7, "sku": "S-1", "price": 29.9, "quantity": 2}],
    },
}


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


DEEP = _nested(LIMITS.max_json_depth)


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    event = copy.deepcopy(ORDER)
    target: Any = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("userId",), "u\x00"),
        (("userId",), "u" * 256),
        (("userId",), True),
        (("userId",), 2**64),
        (("properties", "order_id"), None),
        (("properties", "order_id"), ""),
        (("properties", "total"), 1e14),
        (("properties", "total"), "not a number"),
        (("properties", "currency"), "EURO"),
        (("properties", "coupon"), 5),
        (("properties", "products"), [{"quantity": -1}]),
        (("properties", "products"), [{"quantity": 10**11}]),
        (("properties", "products"), [{"quantity": 2.5}]),
        (("properties", "products"), ["sku"]),
        (("timestamp",), "2019-01-01T00:00:00+00:00"),
        (("timestamp",), "yesterday"),
        (("properties", "deep"), DEEP),
        (("properties", "blob"), "x" * 33_000),
        (("type",), "purchase"),
    ],
)
def test_invalid_events_are_left_to_the_validator(path: tuple[str, ...], value: Any) -> None:
    event = _with(path, value)
    assert not _fast(event)
    assert not _slice_fast(json.dumps(event).encode())
    assert not _validator_accepts(event)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("properties", "total"), "19.90"),  # numeric strings: accepted, not by the fast path
        (("userId",), 12.5),  # float ids: accepted, kept as written
        (("properties", "products"), [{"quantity": 2.0}]),
    ],
)
def test_valid_but_unusual_events_fall_back_and_are_accepted(
    path: tuple[str, ...], value: Any
) -> None:
    event = _with(path, value)
    assert not _fast(event)
    assert not _slice_fast(json.dumps(event).encode())
    assert _validator_accepts(event)


@pytest.mark.parametrize(("quantity", "valid"), [(10**11 - 1, True), (10**11, False)])
def test_the_largest_quantity_is_the_validators(quantity: int, valid: bool) -> None:
    """The validator refuses 11 integer digits; the fast path must not let them through."""
    event = {
        "type": "track",
        "event": "Product Added",
        "userId": "u",
        "properties": {"product_id": "p", "quantity": quantity},
    }
    assert _validator_accepts(event) is valid
    assert _fast(event) is valid
    assert _slice_fast(orjson.dumps(event)) is valid


def test_many_brackets_but_shallow_is_still_fast() -> None:
    event = _with(("properties", "products"), [{"sku": str(index)} for index in range(40)])
    assert _fast(event)
    assert _validator_accepts(event)
    # From bytes, brackets are counted, not walked: the validator decides (and accepts).
    assert not _slice_fast(orjson.dumps(event))


def test_the_deepest_event_allowed_takes_the_fast_path_from_bytes() -> None:
    event = {"type": "track", "event": "e", "userId": "u", "properties": _nested(22)}
    assert orjson.dumps(event).count(b"{") == LIMITS.max_json_depth
    assert _slice_fast(orjson.dumps(event))
    assert _validator_accepts(event)
    deeper = {**event, "properties": _nested(23)}
    assert not _slice_fast(orjson.dumps(deeper))
    assert not _validator_accepts(deeper)


def test_the_request_and_the_worker_split_a_batch_the_same_way() -> None:
    batch = [copy.deepcopy(ORDER) for _ in range(4)] + [_with(("properties", "total"), 1e14)]
    batch[1]["properties"]["total"] = "19.90"
    batch[2]["userId"] = "u\x00"
    body = orjson.dumps({"batch": batch})
    envelope = read_envelope(orjson.loads(body), is_batch=True)
    arguments: dict[str, Any] = {
        "source": "batch",
        "inbox_id": uuid.UUID(int=1),
        "received_at": RECEIVED_AT,
        "limits": LIMITS,
    }
    request_events, request_rejected = split_messages(envelope, build_documents=False, **arguments)
    worker_events, worker_rejected = split_messages(envelope, build_documents=True, **arguments)
    assert request_events == []
    assert [event.message_id for event in worker_events] == [
        f"sl-{uuid.UUID(int=1).hex}-0",
        f"sl-{uuid.UUID(int=1).hex}-1",
        f"sl-{uuid.UUID(int=1).hex}-3",
    ]
    assert [(item.index, item.rejection) for item in request_rejected] == [
        (item.index, item.rejection) for item in worker_rejected
    ]
    assert [
        (item.index, item.rejection.code, item.rejection.field) for item in worker_rejected
    ] == [
        (2, "invalid_string", "batch[2].userId"),
        (4, "invalid_ecommerce_property", "batch[4].properties.total"),
    ]


# ---------------------------------------------------------------------------------------------
# Reading a body without parsing it (simdjson + msgspec): the same soundness, from bytes
# ---------------------------------------------------------------------------------------------


def _slice_fast(message: bytes, forced_type: str | None = None, sent_at: Any = None) -> bool:
    """The verdict from a message's bytes."""
    return _checker(forced_type, sent_at).slice(msgspec.Raw(message))


def _spaced(value: Any) -> bytes:
    return json.dumps(value, indent=1, ensure_ascii=False).encode()


# How a client may write the same message: compact (orjson, JSON.stringify), with \\u escapes
# for every non-ASCII character (Python's json), indented.
SERIALIZERS = [orjson.dumps, lambda value: json.dumps(value).encode(), _spaced]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    raw=st.one_of(mutated_events(), mutated_events(), messages()),
    serializer=st.sampled_from(SERIALIZERS),
    forced_type=st.sampled_from([None, None, "track", "page", "identify", "alias", "group"]),
    sent_at=st.sampled_from([None, RECEIVED_AT, RECEIVED_AT + timedelta(days=400)]),
)
def test_fast_valid_from_bytes_implies_the_validator_accepts(
    raw: dict[str, Any], serializer: Any, forced_type: str | None, sent_at: datetime | None
) -> None:
    try:
        message = serializer(raw)
        parsed = orjson.loads(message)  # the body reached the checks only if orjson reads it
    except (TypeError, ValueError, RecursionError):
        return
    if _slice_fast(message, forced_type, sent_at):
        assert _validator_accepts(parsed, forced_type, sent_at)


def test_realistic_traffic_takes_the_fast_path_from_bytes() -> None:
    for serializer in SERIALIZERS:
        assert sum(_slice_fast(serializer(event)) for event in REALISTIC) == 400


def test_a_body_s_verdicts_are_its_messages_verdicts_in_order() -> None:
    """The request reads all of a body's messages in one loop (``verdicts``): each message gets
    its own verdict, whatever the verdict of the one before."""
    deep: dict[str, Any] = {}
    for _ in range(LIMITS.max_json_depth + 1):
        deep = {"nested": deep}
    messages = [
        REALISTIC[0],
        REALISTIC[1] | {"context": {"padding": "x" * LIMITS.max_event_bytes}},  # too large
        REALISTIC[2],
        REALISTIC[3] | {"properties": deep},  # too deep
        REALISTIC[4] | {"userId": "u\x00"},  # NUL
        REALISTIC[5] | {"timestamp": "yesterday"},
        REALISTIC[6],
    ]
    body = orjson.dumps({"batch": messages})
    fast = read_fast(body, is_batch=True)
    assert fast is not None
    verdicts = _checker().verdicts(fast.slices)
    assert verdicts == [True, False, True, False, False, False, True]
    assert verdicts == [_slice_fast(orjson.dumps(message)) for message in messages]


NUMBER_TEXTS = st.from_regex(
    r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?", fullmatch=True
)


@settings(max_examples=3000, deadline=None)
@given(text=NUMBER_TEXTS)
def test_orjson_writes_a_number_at_most_five_times_as_long_as_it_was_sent(text: str) -> None:
    """The size bound of the fast path: an event of n bytes is written back in at most 5n."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    assert len(orjson.dumps(value)) <= 5 * len(text)


def test_numbers_written_short_are_bounded_by_their_growth() -> None:
    # 1e15 comes back as 1000000000000000.0: an event of such numbers just under a fifth of the
    # limit takes the fast path and stays under the limit once the worker writes it.
    body = b'{"type":"track","event":"e","userId":"u","properties":{"x":[' + b"1e15," * 1000
    body += b"1e15]}}"
    assert len(body) * 5 <= LIMITS.max_event_bytes
    assert _slice_fast(body)
    assert len(orjson.dumps(orjson.loads(body))) <= LIMITS.max_event_bytes
    # Over a fifth of the limit, the validator decides (and here accepts).
    longer = body.replace(b"[1e15", b"[" + b"1e15," * 400 + b"1e15")
    assert not _slice_fast(longer)
    assert _validator_accepts(orjson.loads(longer))


# Where simdjson and orjson could disagree: each pair shows the fast reading stands aside
# whenever orjson refuses.
TRICKY_BODIES = [
    b'{"a":1e400}',
    b'{"a":-1e400}',
    b'{"a":1e-400}',
    b'{"a":1.8e308}',
    b'{"a":123456789012345678901234567890}',
    b'{"a":18446744073709551616}',
    b'{"a":1' + b"0" * 400 + b"}",
    b'{"a":"\\ud800"}',
    b'{"a":"\\udc00x"}',
    b'{"a":"\\ud83d\\ude00"}',
    b'{"a":"\xff"}',
    b'{"a":"\xed\xa0\x80"}',
    b'{"a":"\xc0\xaf"}',
    b'{"a":"\xf4\x90\x80\x80"}',
    b'{"a":"\xef\xbf\xbf"}',
    b'{"a":"a\tb"}',
    b'{"a":"a\x00b"}',
    b'{"a":"a\x1fb"}',
    b'{"a":"a\x7fb"}',
    b"\xef\xbb\xbf{}",
    b'{"a":1} x',
    b'{"a":1}\x00',
    b'{\x0b"a":1}',
    b'{"a":01}',
    b'{"a":1.}',
    b'{"a":"\\x"}',
    b'{"a":"\\u12"}',
    b"[" * 1024 + b"]" * 1024,
    b"[" * 1025 + b"]" * 1025,
    b'{"a":' * 1023 + b"1" + b"}" * 1023,
    b'{"a":' * 1024 + b"1" + b"}" * 1024,
    b'{"a":' * 1025 + b"1" + b"}" * 1025,
    b"",
    b" ",
    b"1",
]


def _orjson_reads(data: bytes) -> bool:
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return True


@pytest.mark.parametrize("data", TRICKY_BODIES)
def test_simdjson_vouches_only_for_what_orjson_reads(data: bytes) -> None:
    if orjson_would_parse(data):
        assert _orjson_reads(data)


def test_simdjson_accepts_plain_bodies() -> None:
    assert all(orjson_would_parse(body) for body in payloads.batch_bodies(3, 100))
    assert orjson_would_parse(b'{"a":"\\ud83d\\ude00","b":"\xc3\xa9","c":[1e300,-0]}')


MUTATIONS = st.sampled_from(
    [b"", b"\x00", b"\xff", b"\xef\xbb\xbf", b"\xed\xa0\x80", b'"', b"\\", b"\\ud800", b"1e400",
     b"99999999999999999999999", b"[", b"]", b"{", b"}", b",", b":", b"\t", b"\n", b"\x0b", b"e"]
)  # fmt: skip


@st.composite
def mutated_bodies(draw: st.DrawFn) -> bytes:
    """A realistic batch body with a few bytes replaced, inserted or removed."""
    body = draw(st.sampled_from(SMALL_BODIES))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(body)))
        cut = draw(st.integers(0, 3))
        body = body[:at] + draw(MUTATIONS) + body[at + cut :]
    return body


SMALL_BODIES = [
    orjson.dumps({"batch": REALISTIC[start : start + 3], "sentAt": RECEIVED_AT.isoformat()})
    for start in range(0, 60, 3)
] + [orjson.dumps({**REALISTIC[0], "writeKey": "wk"})]


@settings(max_examples=2000, deadline=None)
@given(
    data=st.one_of(mutated_bodies(), mutated_bodies(), st.binary(max_size=64)),
    is_batch=st.booleans(),
)
def test_a_body_read_fast_is_the_body_orjson_reads(data: bytes, is_batch: bool) -> None:
    fast = read_fast(data, is_batch=is_batch)
    if fast is None:
        return
    envelope = read_envelope(orjson.loads(data), is_batch=is_batch)
    assert len(fast.slices) == len(envelope.messages)
    assert fast.write_key == envelope.write_key
    assert fast.sent_at == envelope.sent_at
    for index, message in enumerate(fast.slices):
        assert orjson.loads(bytes(message)) == envelope.messages[index]
        if _checker(None if is_batch else "track", fast.sent_at).slice(message):
            assert _validator_accepts(
                envelope.messages[index], None if is_batch else "track", fast.sent_at
            )


A = orjson.dumps({"type": "track", "event": "a", "userId": "u"})
B = orjson.dumps({"type": "track", "event": "b", "anonymousId": "v"})


@pytest.mark.parametrize(
    "data",
    [
        b'{"batch":[' + A + b'],"batch":[' + A + b"," + B + b"]}",
        b'{"\\u0062atch":[' + A + b"]}",
        b'{"batch":[' + A + b'],"writeKey":"k1","writeKey":"k2","sentAt":5,"sentAt":null}',
        b'{"batch":[' + A + b'],"wr\\u0069teKey":"k3"}',
    ],
)
def test_duplicate_and_escaped_keys_read_as_orjson_reads_them(data: bytes) -> None:
    """Both keep the last of duplicate keys and unescape keys: the same envelope either way."""
    fast = read_fast(data, is_batch=True)
    assert fast is not None
    envelope = read_envelope(orjson.loads(data), is_batch=True)
    assert [orjson.loads(bytes(message)) for message in fast.slices] == envelope.messages
    assert (fast.write_key, fast.sent_at) == (envelope.write_key, envelope.sent_at)


@pytest.mark.parametrize(
    ("message", "valid"),
    [
        (b'{"type":"bogus","type":"track","event":"e","userId":"u"}', True),
        (b'{"type":"track","type":"bogus","event":"e","userId":"u"}', False),
        (b'{"type":"track","event":"e","userId":"u","userId":""}', False),
        (b'{"type":"track","event":"e","us\\u0065rId":"u"}', True),
        (b'{"type":"track","event":"Order Completed","userId":"u",'
         b'"properties":{"order_id":"1","order_id":""}}', False),
    ],
)  # fmt: skip
def test_duplicate_and_escaped_keys_in_a_message(message: bytes, valid: bool) -> None:
    assert _validator_accepts(orjson.loads(message)) is valid
    assert _slice_fast(message) is valid
