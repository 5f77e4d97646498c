"""Reading request bodies in plain ASGI: chunks, limits, disconnects, odd Content-Length values."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from storeloop.kit.asgi import ClientGone, read_body, route_path
from storeloop.kit.errors import PayloadTooLarge


class Receiver:
    """An ASGI receive() that hands out scripted messages and counts the calls."""

    def __init__(self, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.calls = 0

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return self.messages.pop(0)


def chunks(*parts: bytes) -> list[dict[str, Any]]:
    return [
        {"type": "http.request", "body": part, "more_body": index < len(parts) - 1}
        for index, part in enumerate(parts)
    ]


def read(receive: Receiver, declared: str | None = None, limit: int = 10) -> bytes:
    return asyncio.run(read_body(receive, declared, limit, PayloadTooLarge))


def test_chunks_are_joined_in_order() -> None:
    receive = Receiver(chunks(b"ab", b"", b"cde", b"f"))
    assert read(receive) == b"abcdef"
    assert receive.calls == 4


def test_refused_at_the_first_chunk_past_the_limit() -> None:
    receive = Receiver(chunks(b"12345", b"678901", b"never read"))
    with pytest.raises(PayloadTooLarge):
        read(receive)
    assert receive.calls == 2


def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    receive = Receiver(chunks(b"x"))
    with pytest.raises(PayloadTooLarge):
        read(receive, declared="11")
    with pytest.raises(PayloadTooLarge):
        read(receive, declared="9" * 5000)  # beyond int()'s digit limit: still a 413, not a 500
    assert receive.calls == 0


@pytest.mark.parametrize("declared", ["abc", "-1", "\u00b2", "", " 5"])
def test_unusable_content_length_is_ignored(declared: str) -> None:
    assert read(Receiver(chunks(b"12", b"3")), declared=declared) == b"123"


def test_disconnect_before_the_end_of_the_body() -> None:
    receive = Receiver([*chunks(b"12", b"3")[:1], {"type": "http.disconnect"}])
    with pytest.raises(ClientGone):
        read(receive)


@pytest.mark.parametrize(
    ("root_path", "path", "expected"),
    [
        ("", "/v1/batch", "/v1/batch"),
        ("/growth", "/growth/v1/batch", "/v1/batch"),
        ("/growth", "/growth/r/abc", "/r/abc"),
        ("/growth", "/growthy/t.js", "/growthy/t.js"),
        ("/growth", "/growth", "/growth"),
        ("/growth", "/v1/batch", "/v1/batch"),
    ],
)
def test_the_route_path_is_what_follows_the_mount_point(
    root_path: str, path: str, expected: str
) -> None:
    assert route_path({"type": "http", "path": path, "root_path": root_path}) == expected
