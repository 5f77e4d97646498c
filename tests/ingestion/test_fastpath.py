"""The request path's fast verdict: it may only ever say "valid" where the validator agrees.

``certainly_valid`` is a shortcut in front of ``normalize_message``; a wrong "valid" would
acknowledge an event the worker later drops. The property tests mutate realistic events one
field at a time (most stay valid, many become subtly invalid) and compare with the validator;
the examples pin the boundaries, and that the realistic traffic does take the fast path.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks import payloads
from storeloop.ingestion.body import read_envelope
from storeloop.ingestion.fastpath import certainly_valid
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


def _fast(raw: Any, forced_type: str | None = None, sent_at: Any = None) -> bool:
    return certainly_valid(
        raw,
        received_at=RECEIVED_AT,
        limits=LIMITS,
        forced_type=forced_type,
        batch_sent_at=sent_at,
    )


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
    assert _validator_accepts(event)


def test_many_brackets_but_shallow_is_still_fast() -> None:
    event = _with(("properties", "products"), [{"sku": str(index)} for index in range(40)])
    assert _fast(event)
    assert _validator_accepts(event)


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
