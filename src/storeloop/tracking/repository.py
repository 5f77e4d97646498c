"""The link behind a code (with its campaign, influencer and the store's allowed domains), a
short in-process cache of it so the redirect does no query per click, and the one insert of
click rows (the click writer's and the click import's).

A code is unique on the instance, so the code decides the workspace; every joined table is
matched on that workspace too, here and nowhere else.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlunsplit

from anyio import to_thread
from sqlalchemy import Connection, Engine, and_, insert, or_, select

from storeloop.analytics.repository import mark_days
from storeloop.db import multi_row_insert, sqlite_datetime, sqlite_uuid
from storeloop.kit import urls
from storeloop.kit.errors import StoreloopError
from storeloop.kit.timeutil import as_utc
from storeloop.kit.tracking_params import CLICK_ID_PARAMETER, UTM_PARAMETERS
from storeloop.models import Campaign, Click, Influencer, Link, StoreSettings

logger = logging.getLogger(__name__)

UTM_KEYS = UTM_PARAMETERS
CLICK_PARAMETER = CLICK_ID_PARAMETER
# Which handle names the traffic source when an influencer has several: an explicit order, not
# the order the database returns JSON keys in (PostgreSQL's JSONB sorts them, SQLite does not).
HANDLE_PLATFORM_ORDER = (
    "instagram",
    "tiktok",
    "youtube",
    "x",
    "twitter",
    "facebook",
    "pinterest",
    "snapchat",
    "twitch",
    "linkedin",
    "threads",
    "bluesky",
)
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
    allowed_domains: tuple[str, ...] = ()

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

# The storefront script's origin check (tracking.endpoints) applies the same domain rule.
host_allowed = urls.host_allowed


def _slug(text: str) -> str:
    return _SLUG_GAPS.sub("-", text.lower()).strip("-")


def _first_handle(handles: dict[str, Any] | None) -> str | None:
    """The handle on the first platform of HANDLE_PLATFORM_ORDER, then other platforms by name."""
    handles = handles or {}
    known = [name for name in HANDLE_PLATFORM_ORDER if name in handles]
    others = sorted(name for name in handles if name not in HANDLE_PLATFORM_ORDER)
    for name in (*known, *others):
        value = handles[name]
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
    # The same check as at link creation, again: the allowed domains may have changed since.
    if not row.is_active or not urls.destination_allowed(row.destination_url, row.allowed_domains):
        return None
    parts = urls.parse_web_url(row.destination_url)
    assert parts is not None  # destination_allowed parsed it
    # The destination's own parameters stay exactly as written, apart from a stale click id.
    kept = [
        segment
        for segment in parts.query.split("&")
        if segment and unquote_plus(segment.split("=", 1)[0]) != CLICK_PARAMETER
    ]
    present = {name for name, _ in parse_qsl("&".join(kept), keep_blank_values=True)}
    added = [(name, value) for name, value in utm_parameters(row).items() if name not in present]
    query = "&".join([*kept, urlencode(added)] if added else kept)
    # The host written is the one checked (lower-case ASCII), never the destination's spelling.
    netloc = parts.host if parts.port is None else f"{parts.host}:{parts.port}"
    base = urlunsplit((parts.scheme, netloc, _ascii(parts.path) or "/", _ascii(query), ""))
    return Redirect(
        link_id=row.link_id,
        workspace_id=row.workspace_id,
        location_base=base,
        separator="&" if query else "?",
        fragment=f"#{_ascii(parts.fragment)}" if parts.fragment else "",
        allowed_domains=row.allowed_domains,
    )


def _ascii(text: str) -> str:
    """Percent-encode what an HTTP header cannot carry; existing escapes stay as they are."""
    return quote(text, safe="/?&=+:;,@!$'()*%~#[]-._")


# --- the cache ---------------------------------------------------------------------------------


class LinksUnavailable(StoreloopError):
    """A code not in the cache could not be looked up (the database is unreachable)."""

    status_code = 503
    code = "links_unavailable"


class LinkCache:
    """code key -> Redirect, kept ``ttl_s`` seconds; a miss is looked up in a thread.

    Concurrent misses of one code share a single look-up, and at most ``max_lookups`` look-ups run
    at once, so a flood of random codes cannot take every database connection. Unknown codes are
    remembered in their own small LRU (``max_unknown``), so such a flood cannot push the links
    people actually follow out of the cache. When a look-up fails (database outage) a link seen
    before keeps being served from its expired entry (stale-if-error); a code never seen raises
    LinksUnavailable. Edits reach the redirect within ``ttl_s`` on every process.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        ttl_s: float = 5.0,
        max_entries: int = 50_000,
        max_unknown: int = 10_000,
        max_lookups: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._ttl = ttl_s
        self._max_entries = max_entries
        self._max_unknown = max_unknown
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Redirect]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()
        self._in_flight: dict[str, asyncio.Future[Redirect | None]] = {}
        self._max_lookups = max_lookups
        self._lookups: asyncio.Semaphore | None = None
        self._lookups_loop: asyncio.AbstractEventLoop | None = None
        self.stale_served = 0

    def clear(self) -> None:
        self._entries.clear()
        self._unknown.clear()

    async def get(self, code_key: str) -> Redirect | None:
        now = self._clock()
        entry = self._entries.get(code_key)
        if entry is not None and entry[0] > now:
            return entry[1]
        unknown_until = self._unknown.get(code_key)
        if unknown_until is not None and unknown_until > now:
            return None
        waiting = self._in_flight.get(code_key)
        if waiting is not None:
            return await asyncio.shield(waiting)
        future: asyncio.Future[Redirect | None] = asyncio.get_running_loop().create_future()
        self._in_flight[code_key] = future
        try:
            try:
                async with self._lookup_slots():
                    row = await to_thread.run_sync(fetch_link, self._engine, code_key)
            except Exception as exc:
                if entry is None:
                    logger.error("link look-up failed: %s", type(exc).__name__)
                    raise LinksUnavailable("links cannot be looked up right now") from exc
                # The database is away: the last known answer beats an error page.
                self.stale_served += 1
                row = None
                redirect: Redirect | None = entry[1]
            else:
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
        self._remember(code_key, redirect)
        future.set_result(redirect)
        return redirect

    def _lookup_slots(self) -> asyncio.Semaphore:
        # A semaphore belongs to one event loop; a runtime can outlive one (tests, reloads).
        loop = asyncio.get_running_loop()
        if self._lookups is None or self._lookups_loop is not loop:
            self._lookups = asyncio.Semaphore(self._max_lookups)
            self._lookups_loop = loop
        return self._lookups

    def _remember(self, code_key: str, redirect: Redirect | None) -> None:
        expires = self._clock() + self._ttl
        if redirect is None:
            self._entries.pop(code_key, None)
            self._unknown[code_key] = expires
            self._unknown.move_to_end(code_key)
            while len(self._unknown) > self._max_unknown:
                self._unknown.popitem(last=False)
            return
        self._unknown.pop(code_key, None)
        self._entries[code_key] = (expires, redirect)
        self._entries.move_to_end(code_key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


# --- clicks ------------------------------------------------------------------------------------

CLICK_COLUMNS = (
    "id",
    "workspace_id",
    "link_id",
    "clicked_at",
    "ip_truncated",
    "user_agent",
    "referrer",
    "anonymous_id",
    "is_bot",
    "bot_reason",
)
# SQLite runs in the API process, so the writer's CPU is the redirect's CPU: there the rows go
# to the driver already in SQLAlchemy's SQLite storage format (UUID hex, "YYYY-MM-DD HH:MM:SS.f"),
# skipping per-value bind processing (measured: about half the cost of a Core executemany).
# Many rows per statement, not an executemany: the sqlite3 module releases the GIL around every
# statement step, and taking it back waits for the event loop (up to the 5 ms switch interval).
# One step per row let the writer fall behind a busy redirect (measured: about 7,000 rows/s
# written while 22,500 redirects/s were answered, until the queue was full); one step per 500
# rows keeps up. 500 rows x 10 columns stays under SQLite's 32,766 variables.
_SQLITE_ROWS_PER_STATEMENT = 500


def _sqlite_values(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        sqlite_uuid(row["id"]),
        sqlite_uuid(row["workspace_id"]),
        sqlite_uuid(row["link_id"]),
        sqlite_datetime(row["clicked_at"]),
        row["ip_truncated"],
        row["user_agent"],
        row["referrer"],
        row["anonymous_id"],
        1 if row["is_bot"] else 0,
        row["bot_reason"],
    )


def insert_clicks(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert click rows (the columns of ``clicks``, already through ``clicks.prepare``) in one
    statement, in the caller's transaction. Every click is stored here: the click writer's
    batches and the click import alike."""
    if not rows:
        return
    if connection.dialect.name == "sqlite":
        for start in range(0, len(rows), _SQLITE_ROWS_PER_STATEMENT):
            chunk = rows[start : start + _SQLITE_ROWS_PER_STATEMENT]
            values = tuple(itertools.chain.from_iterable(_sqlite_values(row) for row in chunk))
            connection.exec_driver_sql(
                multi_row_insert(Click.__tablename__, CLICK_COLUMNS, len(chunk)), values
            )
    else:
        connection.execute(insert(Click), list(rows))
    # The days these clicks fall on are rolled up again (ADR 0008), in the same transaction.
    days: dict[uuid.UUID, set[date]] = defaultdict(set)
    for row in rows:
        clicked_at = row["clicked_at"]
        days[row["workspace_id"]].add(as_utc(clicked_at).date())
    for workspace_id, workspace_days in days.items():
        mark_days(connection, workspace_id, workspace_days)


def find_workspace_links(
    connection: Connection,
    workspace_id: uuid.UUID,
    *,
    code_keys: Collection[str] = (),
    link_ids: Collection[uuid.UUID] = (),
) -> list[tuple[uuid.UUID, str]]:
    """``(link id, code key)`` of the workspace's links among ``code_keys`` (lower-cased codes)
    and ``link_ids``; another workspace's links are not found."""
    conditions = []
    if code_keys:
        conditions.append(Link.code_key.in_(list(code_keys)))
    if link_ids:
        conditions.append(Link.id.in_(list(link_ids)))
    if not conditions:
        return []
    statement = select(Link.id, Link.code_key).where(
        Link.workspace_id == workspace_id, or_(*conditions)
    )
    return [(row[0], row[1]) for row in connection.execute(statement)]
