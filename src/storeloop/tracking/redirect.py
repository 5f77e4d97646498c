"""GET /r/{code}: record the click and send the visitor on with UTM parameters and a click id.

Plain ASGI: one cached link look-up, one queued row, one 302. The click id travels in the URL
(``sl_click``) and in a long-lived HttpOnly cookie set by the server, which browsers keep far
longer than a cookie written by script (Safari caps those at 7 days).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from starlette.types import Scope, Send

from storeloop.kit.tracking_params import LINK_CODE_PATTERN
from storeloop.kit.urls import host_allowed
from storeloop.tracking.bots import NOT_NAVIGATION, user_agent_key
from storeloop.tracking.cookies import (
    CLICK_COOKIE,
    VISITOR_COOKIE,
    VISITOR_ID,
    click_cookie_value,
    cookie_value,
    set_cookie,
)
from storeloop.tracking.ids import new_uuid7
from storeloop.tracking.network import client_ip, peer_is_trusted, truncate_ip
from storeloop.tracking.repository import LinksUnavailable, Redirect
from storeloop.tracking.service import Tracking

MAX_USER_AGENT = 512
MAX_REFERRER = 2000

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
# The same page for a code that never existed, was disabled or points off the allowed domains:
# nothing tells a visitor (or someone guessing codes) which one it was.
NOT_FOUND_PAGE = (
    _templates.get_template("not_found.html")
    .render(
        title="This link isn't available",
        message="The link you followed may be mistyped, or it is no longer active. "
        "Check the address, or visit the store directly.",
    )
    .encode()
)
_PAGE_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


UNAVAILABLE_PAGE = (
    _templates.get_template("not_found.html")
    .render(
        title="This link is briefly unavailable",
        message="We couldn't open this link just now. Please try again in a minute.",
    )
    .encode()
)


async def _send_page(scope: Scope, send: Send, status: int, page: bytes) -> None:
    body = b"" if scope["method"] == "HEAD" else page
    headers = [*_PAGE_HEADERS, (b"content-length", str(len(page)).encode())]
    if status == 503:
        headers.append((b"retry-after", b"30"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_not_found(scope: Scope, send: Send) -> None:
    await _send_page(scope, send, 404, NOT_FOUND_PAGE)


def _is_navigation(fetch_mode: str | None, purpose: str | None) -> bool:
    """False for prefetches and embedded fetches (images, iframes, fetch()): only a top-level
    navigation is a person following the link. Browsers that send neither header navigate."""
    if fetch_mode is not None and fetch_mode.strip().lower() != "navigate":
        return False
    return not (purpose is not None and "prefetch" in purpose.lower())


def cookie_domain_for(configured: str | None, host: str | None, redirect: Redirect) -> str | None:
    """The configured cookie domain when this request's host lies under it and under one of the
    link's store's allowed domains; otherwise None (a host-only cookie), so one store's links
    never write cookies readable on another store's domain."""
    if not configured or not host:
        return None
    domain = configured.lstrip(".").lower()
    name = host.rsplit(":", 1)[0].rstrip(".").lower() if not host.startswith("[") else ""
    if not name or not host_allowed(name, (domain,)):
        return None
    if not host_allowed(name, redirect.allowed_domains):
        return None
    return configured


async def serve_redirect(tracking: Tracking, scope: Scope, send: Send, code: str) -> None:
    """``code``: what follows ``/r/`` in the path."""
    if code.endswith("/"):
        code = code[:-1]
    if not LINK_CODE_PATTERN.fullmatch(code):
        await send_not_found(scope, send)
        return
    try:
        redirect = await tracking.links.get(code.lower())
    except LinksUnavailable:
        await _send_page(scope, send, 503, UNAVAILABLE_PAGE)
        return
    if redirect is None:
        await send_not_found(scope, send)
        return

    user_agent = referrer = cookie_header = forwarded_for = forwarded_proto = None
    host = fetch_mode = purpose = None
    for raw_name, raw_value in scope["headers"]:
        if raw_name == b"user-agent":
            user_agent = raw_value.decode("latin-1")[:MAX_USER_AGENT]
        elif raw_name == b"referer":
            referrer = raw_value.decode("latin-1")[:MAX_REFERRER]
        elif raw_name == b"cookie":
            cookie_header = raw_value.decode("latin-1")
        elif raw_name == b"x-forwarded-for":
            forwarded_for = raw_value.decode("latin-1")
        elif raw_name == b"x-forwarded-proto":
            forwarded_proto = raw_value.decode("latin-1")
        elif raw_name == b"host":
            host = raw_value.decode("latin-1")
        elif raw_name == b"sec-fetch-mode":
            fetch_mode = raw_value.decode("latin-1")
        elif raw_name in (b"sec-purpose", b"purpose"):
            purpose = raw_value.decode("latin-1")

    # PostgreSQL text cannot hold NUL; nothing else in a header can break the insert.
    if user_agent is not None and "\x00" in user_agent:
        user_agent = user_agent.replace("\x00", "")
    if referrer is not None and "\x00" in referrer:
        referrer = referrer.replace("\x00", "")

    if scope["method"] == "HEAD":
        # Link checkers and previews asking where a link goes: answered, never counted.
        headers = [
            (b"location", redirect.location(None).encode()),
            (b"cache-control", b"no-store"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return

    client = scope.get("client")
    peer = client[0] if client else None
    proxies = tracking.trusted_proxies
    ip_range = truncate_ip(client_ip(peer, forwarded_for, proxies))
    secure = scope.get("scheme") == "https" or (
        forwarded_proto == "https" and peer_is_trusted(peer, proxies)
    )

    known_visitor = cookie_value(cookie_header, VISITOR_COOKIE)
    if known_visitor is not None and VISITOR_ID.fullmatch(known_visitor):
        visitor_id, new_visitor = known_visitor, False
    else:
        visitor_id, new_visitor = str(new_uuid7()), True
    click_id = new_uuid7()
    is_navigation = _is_navigation(fetch_mode, purpose)
    # Only the cheap velocity count runs here; the user agent rules run in the click writer's
    # thread (ClickWriter), since the response does not depend on them.
    bot_reason: str | None = None if is_navigation else NOT_NAVIGATION
    if is_navigation and tracking.bots.velocity.exceeded(
        redirect.link_id, ip_range, user_agent_key(user_agent), time.monotonic()
    ):
        bot_reason = "velocity"
    row: dict[str, Any] = {
        "id": click_id,
        "workspace_id": redirect.workspace_id,
        "link_id": redirect.link_id,
        "clicked_at": datetime.now(UTC),
        "ip_truncated": ip_range,
        "user_agent": user_agent,
        "referrer": referrer,
        "anonymous_id": visitor_id,
        "is_bot": bot_reason is not None,
        "bot_reason": bot_reason,
    }
    tracking.clicks.record(row)

    click_text = str(click_id)
    headers = [
        (b"location", redirect.location(click_text).encode()),
        (b"cache-control", b"no-store"),
        (b"content-length", b"0"),
    ]
    if not is_navigation:
        # A prefetch or an embedded fetch is not a visit: it gets no cookie.
        await send({"type": "http.response.start", "status": 302, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    domain = cookie_domain_for(tracking.cookie_domain, host, redirect)
    value = click_cookie_value(redirect.workspace_id, click_text)
    headers.append((b"set-cookie", set_cookie(CLICK_COOKIE, value, secure=secure, domain=domain)))
    if new_visitor:
        cookie = set_cookie(VISITOR_COOKIE, visitor_id, secure=secure, domain=domain)
        headers.append((b"set-cookie", cookie))
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
