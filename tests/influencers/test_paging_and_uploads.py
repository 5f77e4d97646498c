"""The shared helpers the influencer API pages with (storeloop.kit.pagination) and reads CSV
uploads with (storeloop.kit.http)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.requests import Request

from storeloop.kit.errors import PayloadTooLarge, ValidationFailed
from storeloop.kit.http import read_limited_body
from storeloop.kit.pagination import MAX_PAGE_SIZE, check_limit, decode_cursor, encode_cursor

MOMENT = datetime(2026, 3, 1, 10, 0, 0, 123456, tzinfo=UTC)
ROW_ID = uuid.UUID("018f0000-0000-7000-8000-000000000001")


def test_a_cursor_names_the_last_row_exactly() -> None:
    cursor = encode_cursor(MOMENT, ROW_ID)
    assert cursor == (
        base64.urlsafe_b64encode(b'[1772359200123456,"018f0000-0000-7000-8000-000000000001"]')
        .decode()
        .rstrip("=")
    )
    assert decode_cursor(cursor) == (MOMENT, ROW_ID)
    # SQLite hands times back naive (stored as UTC): the same row, the same cursor.
    assert encode_cursor(MOMENT.replace(tzinfo=None), ROW_ID) == cursor
    assert decode_cursor(None) is None


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "nope",
        "!!!!",
        base64.urlsafe_b64encode(b"[1]").decode(),
        base64.urlsafe_b64encode(b'[1, "not-a-uuid"]').decode(),
        base64.urlsafe_b64encode(b'[1e300, "018f0000-0000-7000-8000-000000000001"]').decode(),
        base64.urlsafe_b64encode(b'{"a": 1}').decode(),
    ],
)
def test_a_bad_cursor_is_the_callers_mistake(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        decode_cursor(cursor)
    assert (refused.value.status_code, refused.value.field) == (422, "cursor")


def test_page_sizes() -> None:
    assert MAX_PAGE_SIZE == 200
    check_limit(1)
    check_limit(200)
    check_limit(500, maximum=500)
    for limit, maximum in ((0, 200), (201, 200), (-1, 200), (501, 500)):
        with pytest.raises(ValidationFailed, match=f"between 1 and {maximum}") as refused:
            check_limit(limit, maximum=maximum)
        assert refused.value.field == "limit"


def _request(chunks: list[bytes], content_length: int | None = None) -> tuple[Request, list[int]]:
    """A request whose body arrives in ``chunks``; the list returned counts the chunks read."""
    read: list[int] = []

    async def receive() -> dict[str, Any]:
        index = len(read)
        read.append(index)
        return {
            "type": "http.request",
            "body": chunks[index],
            "more_body": index < len(chunks) - 1,
        }

    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    return Request(scope, receive), read


def test_a_body_within_the_limit_is_read_whole() -> None:
    request, read = _request([b"abcd", b"efgh", b"ij"], content_length=10)
    assert asyncio.run(read_limited_body(request, 10, "body")) == b"abcdefghij"
    assert read == [0, 1, 2]


def test_an_oversized_body_is_refused_at_the_first_chunk_past_the_limit() -> None:
    request, read = _request([b"abcd", b"efgh", b"ijkl", b"mnop"])
    with pytest.raises(PayloadTooLarge) as refused:
        asyncio.run(read_limited_body(request, 10, "body"))
    assert read == [0, 1, 2]  # the fourth chunk is never read
    assert refused.value.status_code == 413
    assert refused.value.to_dict() == {
        "code": "payload_too_large",
        "message": "the body is larger than 10 bytes",
        "field": "body",
        "max_bytes": 10,
    }


def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    request, read = _request([b"x"], content_length=11 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge) as refused:
        asyncio.run(read_limited_body(request, 10 * 1024 * 1024, "file"))
    assert read == []
    assert refused.value.to_dict() == {
        "code": "payload_too_large",
        "message": "the body is larger than 10 MiB",
        "field": "file",
        "max_bytes": 10 * 1024 * 1024,
    }
