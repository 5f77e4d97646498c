"""Plain ASGI helpers for the hot routes answered before FastAPI's routing (tracking, redirect)."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from storeloop.kit.errors import StoreloopError, error_body


class ClientGone(Exception):
    """The client disconnected before its request body arrived: nothing to answer."""


def route_path(scope: Scope) -> str:
    """The path below the application's mount point. Behind a proxy that mounts the app under a
    prefix, the ASGI server puts it in ``root_path`` and in front of ``path`` (as Starlette's
    routing reads them); the hot routes match what follows the prefix."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of the header ``name`` (lower case), or None."""
    for raw_name, raw_value in scope["headers"]:
        if raw_name == name:
            return str(raw_value.decode("latin-1"))
    return None


async def read_body(
    receive: Receive, declared_length: str | None, max_bytes: int, error: type[StoreloopError]
) -> bytes:
    """The whole request body, or ``error`` as soon as it is known to exceed ``max_bytes``: from
    Content-Length before reading anything, else at the first chunk past the limit."""
    declared = declared_length or ""
    if (
        declared.isascii()
        and declared.isdigit()
        and (len(declared) > len(str(max_bytes)) or int(declared) > max_bytes)
    ):
        raise error(f"the body is larger than {max_bytes} bytes", field="body")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise error(f"the body is larger than {max_bytes} bytes", field="body")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    response_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(headers or ()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, error: StoreloopError) -> None:
    """The error as every route answers it (kit.errors.error_body), never cached."""
    headers = [
        (b"cache-control", b"no-store"),
        *((name.lower().encode(), value.encode()) for name, value in error.headers().items()),
    ]
    await send_json(send, error.status_code, error_body(error), headers)
