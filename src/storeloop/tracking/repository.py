"""The link behind a code (with its campaign, influencer and the store's allowed domains), and a
short in-process cache of it so the redirect does no query per click.

A code is unique on the instance, so the code decides the workspace; every joined table is
matched on that workspace too, here and nowhere else.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit, urlunsplit

from anyio import to_thread
from sqlalchemy import Engine, and_, select

from storeloop.models import Campaign, Influencer, Link, StoreSettings

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
CLICK_PARAMETER = "sl_click"
_SLUG_GAPS = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class LinkRow:
    """What the database says about one code."""

    link_id: uuid.UUID
    workspace_id: uuid.UUID
    destination_url: str
    is_active: bool
    link_utm: dict[str, Any]
    campaign_name: str | None
    campaign_channel: str | None
    campaign_utm: dict[str, str | None]
    influencer_name: str | None
    influencer_handles: dict[str, Any] | None
    allowed_domains: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Redirect:
    """A link ready to serve: where to send the visitor, minus the click id.

    ``location_base`` is the destination with the UTM parameters added; the click id goes after
    ``separator`` and the destination's fragment (if any) after that.
    """

    link_id: uuid.UUID
    workspace_id: uuid.UUID
    location_base: str
    separator: str
    fragment: str

    def location(self, click_id: str | None) -> str:
        if click_id is None:
            return self.location_base + self.fragment
        return f"{self.location_base}{self.separator}{CLICK_PARAMETER}={click_id}{self.fragment}"


def fetch_link(engine: Engine, code_key: str) -> LinkRow | None:
    statement = (
        select(
            Link.id,
            Link.workspace_id,
            Link.destination_url,
            Link.is_active,
            Link.utm,
            Campaign.name,
            Campaign.channel,
            Campaign.utm_source,
            Campaign.utm_medium,
            Campaign.utm_campaign,
            Influencer.name,
            Influencer.handles,
            StoreSettings.allowed_domains,
        )
        .outerjoin(
            Campaign,
            and_(Campaign.id == Link.campaign_id, Campaign.workspace_id == Link.workspace_id),
        )
        .outerjoin(
            Influencer,
            and_(Influencer.id == Link.influencer_id, Influencer.workspace_id == Link.workspace_id),
        )
        .outerjoin(StoreSettings, StoreSettings.workspace_id == Link.workspace_id)
        .where(Link.code_key == code_key)
    )
    with engine.connect() as connection:
        row = connection.execute(statement).one_or_none()
    if row is None:
        return None
    return LinkRow(
        link_id=row[0],
        workspace_id=row[1],
        destination_url=row[2],
        is_active=bool(row[3]),
        link_utm=dict(row[4] or {}),
        campaign_name=row[5],
        campaign_channel=row[6],
        campaign_utm={"utm_source": row[7], "utm_medium": row[8], "utm_campaign": row[9]},
        influencer_name=row[10],
        influencer_handles=row[11],
        allowed_domains=tuple(row[12] or ()),
    )


def fetch_allowed_domains(engine: Engine, workspace_id: uuid.UUID) -> tuple[str, ...]:
    statement = select(StoreSettings.allowed_domains).where(
        StoreSettings.workspace_id == workspace_id
    )
    with engine.connect() as connection:
        domains = connection.execute(statement).scalar_one_or_none()
    return tuple(domains or ())


# --- destinations ------------------------------------------------------------------------------


def destination_host(url: str) -> str | None:
    """The lower-case ASCII host of an absolute http(s) URL without user info, else None.

    Anything a browser might read differently from ``urlsplit`` (backslashes, control characters,
    spaces, ``user@host``) is refused rather than interpreted.
    """
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch == "\\" for ch in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    try:
        return host.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None


def host_allowed(host: str, allowed_domains: tuple[str, ...]) -> bool:
    """A domain allows itself and its subdomains, nothing else (not ``store.com.evil.com``)."""
    return any(host == domain or host.endswith("." + domain) for domain in allowed_domains)


def _slug(text: str) -> str:
    return _SLUG_GAPS.sub("-", text.lower()).strip("-")


def _first_handle(handles: dict[str, Any] | None) -> str | None:
    for value in (handles or {}).values():
        if isinstance(value, str) and value.strip().lstrip("@"):
            return value.strip().lstrip("@")
    return None


def utm_parameters(row: LinkRow) -> dict[str, str]:
    """Defaults, then the campaign's UTM fields, then the link's own: the later one wins."""
    source = _first_handle(row.influencer_handles) or (
        _slug(row.influencer_name) if row.influencer_name else None
    )
    values: dict[str, str] = {
        "utm_source": source or "storeloop",
        "utm_medium": (row.campaign_channel or "influencer").lower(),
    }
    if row.campaign_name and _slug(row.campaign_name):
        values["utm_campaign"] = _slug(row.campaign_name)
    for key, value in row.campaign_utm.items():
        if value:
            values[key] = value
    for key in UTM_KEYS:
        value = row.link_utm.get(key)
        if isinstance(value, str) and value:
            values[key] = value
    return values


def build_redirect(row: LinkRow) -> Redirect | None:
    """The redirect of an active link whose destination is on an allowed domain, else None."""
    if not row.is_active:
        return None
    host = destination_host(row.destination_url)
    if host is None or not host_allowed(host, row.allowed_domains):
        return None
    parts = urlsplit(row.destination_url)
    # The destination's own parameters stay exactly as written, apart from a stale click id.
    kept = [
        segment
        for segment in parts.query.split("&")
        if segment and unquote_plus(segment.split("=", 1)[0]) != CLICK_PARAMETER
    ]
    present = {name for name, _ in parse_qsl("&".join(kept), keep_blank_values=True)}
    added = [(name, value) for name, value in utm_parameters(row).items() if name not in present]
    query = "&".join([*kept, urlencode(added)] if added else kept)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    base = urlunsplit((parts.scheme.lower(), netloc, _ascii(parts.path) or "/", _ascii(query), ""))
    return Redirect(
        link_id=row.link_id,
        workspace_id=row.workspace_id,
        location_base=base,
        separator="&" if query else "?",
        fragment=f"#{_ascii(parts.fragment)}" if parts.fragment else "",
    )


def _ascii(text: str) -> str:
    """Percent-encode what an HTTP header cannot carry; existing escapes stay as they are."""
    return quote(text, safe="/?&=+:;,@!$'()*%~#[]-._")


# --- the cache ---------------------------------------------------------------------------------


class LinkCache:
    """code key -> Redirect (or None), kept ``ttl_s`` seconds; a miss is looked up in a thread.

    Concurrent misses of one code share a single look-up. Edits to a link or to the allowed
    domains reach the redirect within ``ttl_s`` on every process.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        ttl_s: float = 5.0,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._ttl = ttl_s
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[float, Redirect | None]] = {}
        self._in_flight: dict[str, asyncio.Future[Redirect | None]] = {}

    def clear(self) -> None:
        self._entries.clear()

    async def get(self, code_key: str) -> Redirect | None:
        entry = self._entries.get(code_key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        waiting = self._in_flight.get(code_key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[Redirect | None] = asyncio.get_running_loop().create_future()
        self._in_flight[code_key] = future
        try:
            row = await to_thread.run_sync(fetch_link, self._engine, code_key)
            redirect = build_redirect(row) if row is not None else None
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                # Retrieved here so a look-up nobody else awaited does not warn at collection.
                future.exception()
            else:
                future.cancel()
            raise
        finally:
            del self._in_flight[code_key]
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[code_key] = (self._clock() + self._ttl, redirect)
        future.set_result(redirect)
        return redirect
