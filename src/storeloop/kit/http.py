"""Reading request bodies with a size limit, so no route buffers more than it will accept."""

from __future__ import annotations

from starlette.requests import Request

from storeloop.kit.errors import PayloadTooLarge


async def read_limited_body(request: Request, max_bytes: int, field: str = "body") -> bytes:
    """The whole body, or ``PayloadTooLarge`` (413, code ``payload_too_large``) as soon as it is
    known to exceed ``max_bytes``: from Content-Length before reading anything, else at the
    first chunk past the limit, so an oversized upload is never read to its end."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes, field)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes, field)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(max_bytes: int, field: str) -> PayloadTooLarge:
    if max_bytes % (1024 * 1024) == 0:
        limit = f"{max_bytes // (1024 * 1024)} MiB"
    else:
        limit = f"{max_bytes} bytes"
    return PayloadTooLarge(f"the body is larger than {limit}", field=field, max_bytes=max_bytes)
