"""The storefront script (GET /t.js) and its session context (GET /t/ctx).

``/t/ctx`` hands the page the click id and visitor id from the HttpOnly cookies the redirect set:
those survive Safari's 7-day cap on script-written storage, so they are the source of truth when
storeloop is served from a subdomain of the store. It answers credentialed CORS requests from
the write key's workspace's allowed domains only.
"""

from __future__ import annotations

import gzip
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
from starlette.types import Scope, Send

from storeloop.kit.asgi import header
from storeloop.kit.errors import Forbidden, Unauthorized
from storeloop.tracking.cookies import (
    CLICK_COOKIE,
    VISITOR_COOKIE,
    VISITOR_ID,
    click_id_for,
    cookie_value,
)

SCRIPT = (Path(__file__).parent / "static" / "t.js").read_bytes()
SCRIPT_ETAG = b'"' + hashlib.sha256(SCRIPT).hexdigest()[:20].encode() + b'"'
SCRIPT_GZIP = gzip.compress(SCRIPT, compresslevel=9, mtime=0)
# Browsers revalidate once a day (a 304 when unchanged), so a new script reaches every store
# within a day without versioned URLs in their themes.
_SCRIPT_HEADERS = [
    (b"content-type", b"text/javascript; charset=utf-8"),
    (b"cache-control", b"public, max-age=86400, stale-while-revalidate=604800"),
    (b"etag", SCRIPT_ETAG),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-resource-policy", b"cross-origin"),
    (b"vary", b"Accept-Encoding"),
]


async def serve_script(scope: Scope, send: Send) -> None:
    if_none_match = header(scope, b"if-none-match")
    if if_none_match is not None and SCRIPT_ETAG.decode() in {
        tag.strip().removeprefix("W/") for tag in if_none_match.split(",")
    }:
        await send({"type": "http.response.start", "status": 304, "headers": _SCRIPT_HEADERS})
        await send({"type": "http.response.body", "body": b""})
        return
    accept_encoding = header(scope, b"accept-encoding") or ""
    compressed = "gzip" in accept_encoding.lower()
    content = SCRIPT_GZIP if compressed else SCRIPT
    headers = [*_SCRIPT_HEADERS, (b"content-length", str(len(content)).encode())]
    if compressed:
        headers.append((b"content-encoding", b"gzip"))
    body = b"" if scope["method"] == "HEAD" else content
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class OriginNotAllowed(Forbidden):
    code = "origin_not_allowed"


@dataclass(frozen=True, slots=True)
class ContextRequest:
    write_key: str
    origin_host: str


def parse_context_request(scope: Scope) -> ContextRequest:
    """The write key (``?k=``) and the calling page's host, or the error that refuses them."""
    keys = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("k", [])
    if not keys or not keys[0].strip():
        raise Unauthorized("send the write key as ?k=slw_...", field="k")
    origin = header(scope, b"origin")
    host = None
    if origin:
        try:
            host = urlsplit(origin).hostname
        except ValueError:
            host = None
    if not host:
        raise OriginNotAllowed("only pages of the store's allowed domains may ask", field="Origin")
    return ContextRequest(keys[0].strip(), host.lower())


def context_document(cookie_header: str | None, workspace_id: uuid.UUID) -> dict[str, str | None]:
    """The visitor id, and the click id only when the click was on this store's link."""
    click_id = click_id_for(cookie_value(cookie_header, CLICK_COOKIE), workspace_id)
    visitor = cookie_value(cookie_header, VISITOR_COOKIE)
    anonymous_id = visitor if visitor and VISITOR_ID.fullmatch(visitor) else None
    return {"click_id": click_id, "anonymous_id": anonymous_id}


async def send_context(scope: Scope, send: Send, origin: str, workspace_id: uuid.UUID) -> None:
    body = orjson.dumps(context_document(header(scope, b"cookie"), workspace_id))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"vary", b"Origin, Cookie"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
