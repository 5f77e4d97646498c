"""Benchmark data for the dashboard: a store's last N days of raw rows, bulk-loaded.

This is data generation, not the ingestion path (that has its own benchmark): rows go straight
into the tables in the storage format of each backend (UUID hex, "YYYY-MM-DD HH:MM:SS.ffffff" in
UTC, decimals as text), by ``executemany`` on SQLite and ``COPY`` on PostgreSQL, in chunks, from
a writer thread while the next chunk is generated.

What a store looks like here (seeded, so two runs load the same rows):

- Visitors with 1 to ~10 sessions each (geometric, mean 1.67) spread over the days; each visitor
  has a device (mobile 62%, desktop 33%, tablet 4%, bot 1%) and a currency (EUR 90%, USD 10%);
  2% of visitors sign in half-way and get a second profile, the first one merged into it.
- Sessions per day follow weekly seasonality (weekends +10-15%), a slow upward trend, noise and
  two promotion days (Black Friday x2, Cyber Monday x1.6), and a diurnal curve within the day.
- A session: a landing page view, 0-30 more page views (geometric), Product Viewed (55%),
  Product Added, Checkout Started, Order Completed, with 5 s-25 min between events; returning
  visitors convert about twice as often as new ones. About 2.5% of sessions order.
- The landing decides the channel: Direct (no touchpoint), Organic Search/Social and Referral
  (referrer touchpoints), Paid Social/Search, Email, SMS, Affiliate (UTM touchpoints), and
  Influencer: 80% through a tracked link (a click row and a click touchpoint with link,
  influencer, campaign and post), 20% UTM-tagged with the campaign and influencer. Influencer
  traffic follows the posts: a spike on the posting day, decaying over a week.
- Clicks: one per link-driven session, plus 12% that bounce and 25% flagged as bots.
- Orders from Order Completed (EUR or USD, lognormal totals around 65), 5% fully refunded, 3%
  partially, 1% cancelled; a customer id for 60% of buyers and an email index for all.
- Attribution credits for all seven models, computed with storeloop.attribution.models (the
  functions the attribution service calls) over each order's touchpoints in its 30-day lookback:
  the five rule models per order, Markov and Shapley with channel weights learned over every
  converting and non-converting journey, as the service does. Discount codes are not generated.
- Not generated (the dashboard never reads them): identifiers, identity links, trait sets,
  order lines, the inbox. ``payload_sealed`` is one constant random blob (--payload-bytes).
"""

from __future__ import annotations

import math
import os
import queue
import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import Engine, Index, Table, insert, text

from storeloop.attribution import models as attribution_models
from storeloop.attribution.models import JourneySet, Touch
from storeloop.kit.money import MONEY_QUANTUM
from storeloop.models import (
    AttributionCredit,
    Campaign,
    CampaignInfluencer,
    Click,
    Event,
    Influencer,
    Link,
    Post,
    Profile,
    Touchpoint,
)
from storeloop.tracking.repository import CLICK_COLUMNS

DAY_US = 86_400_000_000
LOOKBACK_DAYS = 30
HALF_LIFE_DAYS = 7.0

EVENT_COLUMNS = (
    "id",
    "workspace_id",
    "message_id",
    "type",
    "event",
    "anonymous_id",
    "user_id",
    "profile_id",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "payload_sealed",
    "order_id",
    "revenue",
    "currency",
    "device",
)
TOUCHPOINT_COLUMNS = (
    "id",
    "workspace_id",
    "dedupe_key",
    "profile_id",
    "anonymous_id",
    "occurred_at",
    "kind",
    "channel",
    "source",
    "medium",
    "campaign_name",
    "referrer_host",
    "influencer_id",
    "campaign_id",
    "link_id",
    "post_id",
    "click_id",
    "discount_code_id",
    "order_id",
    "is_bot",
)
ORDER_COLUMNS = (
    "id",
    "workspace_id",
    "external_id",
    "source",
    "source_channel",
    "profile_id",
    "anonymous_id",
    "customer_external_id",
    "customer_email_index",
    "customer_sealed",
    "currency",
    "subtotal",
    "discount_total",
    "shipping",
    "tax",
    "total",
    "refunded_total",
    "status",
    "discount_codes",
    "landing_page",
    "referrer",
    "marketing",
    "placed_at",
    "source_updated_at",
    "attribution_stale",
    "attributed_at",
    "created_at",
    "updated_at",
)
REFUND_COLUMNS = (
    "id",
    "workspace_id",
    "order_id",
    "external_id",
    "amount",
    "refunded_at",
    "reason",
    "source",
    "created_at",
)
PROFILE_COLUMNS = (
    "id",
    "workspace_id",
    "merged_into",
    "first_seen_at",
    "last_seen_at",
    "updated_at",
    "email_index",
    "phone_index",
    "personal_sealed",
    "traits",
)
CREDIT_COLUMNS = (
    "order_id",
    "model",
    "position",
    "workspace_id",
    "touchpoint_id",
    "channel",
    "influencer_id",
    "campaign_id",
    "post_id",
    "link_id",
    "credit",
    "revenue",
    "placed_at",
    "currency",
)

# Bulk-loaded tables whose non-unique indexes are dropped before the load and built after it
# (their keys are random: built in one sort instead of millions of B-tree inserts).
BULK_MODELS = (Event, Touchpoint, Click, Profile, AttributionCredit)

DEVICES = ("mobile", "desktop", "tablet", "bot")
DEVICE_SHARES = (0.62, 0.33, 0.04, 0.01)
USER_AGENTS = {
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/126.0.0.0 Safari/537.36",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "bot": "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
}

# (channel, share of sessions, touchpoint kind, source, medium, campaign name, referrer host)
CHANNELS: tuple[
    tuple[str, float, str | None, str | None, str | None, str | None, str | None], ...
] = (
    ("Direct", 0.27, None, None, None, None, None),
    ("Organic Search", 0.21, "referrer", "google", "organic", None, "www.google.com"),
    ("Organic Social", 0.11, "referrer", "instagram", "social", None, "l.instagram.com"),
    ("Paid Social", 0.09, "utm", "facebook", "paid_social", "autumn-prospecting", None),
    ("Paid Search", 0.08, "utm", "google", "cpc", "brand-search", None),
    ("Influencer", 0.11, "click", "instagram", "influencer", None, "l.instagram.com"),
    ("Email", 0.07, "utm", "newsletter", "email", "weekly-digest", None),
    ("Referral", 0.04, "referrer", "fashionblog.example", "referral", None, "fashionblog.example"),
    ("Affiliate", 0.015, "utm", "partnernet", "affiliate", "partners", None),
    ("SMS", 0.005, "utm", "sms", "sms", "flash-sale", None),
)
INFLUENCER_CHANNEL = 5
DIRECT_CHANNEL = 0

# Hour-of-day weights (UTC): low at night, a lunch bump, the peak in the evening.
HOURS = (
    0.35, 0.25, 0.18, 0.15, 0.15, 0.2, 0.35, 0.6, 0.8, 0.9, 0.95, 1.0,
    1.05, 1.0, 0.95, 0.95, 1.0, 1.1, 1.25, 1.4, 1.5, 1.4, 1.1, 0.7,
)  # fmt: skip
WEEKDAYS = (0.95, 0.93, 0.95, 1.0, 1.02, 1.1, 1.15)  # Monday first


def _hex_uuid(value: str) -> uuid.UUID:
    return uuid.UUID(hex=value)


class Ids:
    """UUIDv7-shaped ids as 32 hex digits, time-ordered (they land at the end of the primary
    key's B-tree), unique through a counter: millions per second without ``uuid``."""

    def __init__(self, seed: int) -> None:
        self.counter = (seed * 0x9E3779B97F4A7C15) & 0x0FF_FFFF_FFFF_FFFF
        # Version 7, 12 bits from the seed, the RFC 4122 variant.
        self.middle = f"7{seed & 0xFFF:03x}8"

    def at(self, epoch_ms: int) -> str:
        self.counter += 1
        return f"{epoch_ms:012x}{self.middle}{self.counter:015x}"


# "HH:MM:SS." of every second of a day: a timestamp is then two concatenations.
_SECONDS = [
    f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}." for second in range(86_400)
]


def _timestamp(day_prefix: str, us: int) -> str:
    return day_prefix + _SECONDS[us // 1_000_000] + f"{us % 1_000_000:06d}"


def _as_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _money(value: Decimal) -> str:
    return str(value.quantize(MONEY_QUANTUM))


# -- the store's marketing set-up ------------------------------------------------------------


@dataclass
class LinkSpec:
    id: str
    code: str
    influencer_id: str
    campaign_id: str | None
    post_id: str | None
    posted_day: int  # index of the day the post went live (-1: evergreen bio link)
    popularity: float


@dataclass
class Marketing:
    influencers: list[tuple[str, str]]  # (id hex, name)
    campaigns: list[dict[str, Any]]
    posts: list[dict[str, Any]]
    links: list[LinkSpec]
    # Per day: probability of each link among that day's link clicks, and the day's influencer
    # traffic relative to an average day.
    link_weights: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    influencer_factor: np.ndarray = field(default_factory=lambda: np.zeros(0))


def plan_marketing(rng: np.random.Generator, ids: Ids, first_day: date, days: int) -> Marketing:
    """A dozen influencers, six campaigns with costs, their posts and tracked links."""
    base_ms = int(datetime.combine(first_day, datetime.min.time(), UTC).timestamp() * 1000)
    names = (
        "Ana Styles", "Ben Outdoors", "Chloe Looks", "Dev Runs", "Eva Home", "Finn Fits",
        "Gia Glow", "Hugo Grooming", "Ines Travel", "Jon Sneakers", "Kim Minimal", "Leo Vintage",
    )  # fmt: skip
    influencers = [(ids.at(base_ms - 86_400_000 * 30), name) for name in names]
    campaigns = []
    posts = []
    links: list[LinkSpec] = []
    for number in range(6):
        start_day = int(rng.integers(0, max(days - 20, 1)))
        length = int(rng.integers(14, 40))
        members = rng.choice(len(influencers), size=int(rng.integers(2, 5)), replace=False)
        campaign_id = ids.at(base_ms + start_day * 86_400_000 - 86_400_000)
        campaigns.append(
            {
                "id": campaign_id,
                "name": f"Campaign {number + 1}",
                "start_day": start_day,
                "end_day": min(start_day + length, days - 1),
                "fee": Decimal(int(rng.integers(5, 40)) * 100),
                "seeding_cost": Decimal(int(rng.integers(1, 10)) * 50),
                "paid_boost_cost": Decimal(int(rng.integers(0, 6)) * 100),
                "utm_campaign": f"campaign-{number + 1}",
                "influencers": [influencers[int(index)][0] for index in members],
            }
        )
        for member in members:
            for _ in range(int(rng.integers(1, 4))):
                posted = start_day + int(rng.integers(0, length))
                posted = min(posted, days - 1)
                post_id = ids.at(base_ms + posted * 86_400_000)
                kind = ("post", "story", "reel")[int(rng.integers(0, 3))]
                posts.append(
                    {
                        "id": post_id,
                        "influencer_id": influencers[int(member)][0],
                        "campaign_id": campaign_id,
                        "posted_day": posted,
                        "kind": kind,
                        "url": f"https://www.instagram.com/p/bench{len(posts):04d}/",
                    }
                )
                links.append(
                    LinkSpec(
                        id=ids.at(base_ms + posted * 86_400_000),
                        code=f"bench-{len(links):03d}",
                        influencer_id=influencers[int(member)][0],
                        campaign_id=campaign_id,
                        post_id=post_id,
                        posted_day=posted,
                        popularity=float(rng.pareto(1.5) + 0.3),
                    )
                )
    for influencer_id, _ in influencers:  # an evergreen link in every bio
        links.append(
            LinkSpec(
                id=ids.at(base_ms - 86_400_000 * 29),
                code=f"bench-{len(links):03d}",
                influencer_id=influencer_id,
                campaign_id=None,
                post_id=None,
                posted_day=-1,
                popularity=0.15,
            )
        )
    marketing = Marketing(influencers, campaigns, posts, links)
    activity = np.zeros((days, len(links)))
    day_index = np.arange(days)
    for column, link in enumerate(links):
        if link.posted_day < 0:
            activity[:, column] = link.popularity
        else:
            since = day_index - link.posted_day
            decay = np.where(since >= 0, np.exp(-np.maximum(since, 0) / 3.0), 0.0)
            activity[:, column] = link.popularity * (decay + 0.02 * (since >= 0))
    totals = activity.sum(axis=1)
    marketing.link_weights = activity / totals[:, None]
    marketing.influencer_factor = 0.5 + 0.5 * totals / totals.mean()
    return marketing


def marketing_rows(
    marketing: Marketing, workspace_id: uuid.UUID, first_day: date, now: datetime
) -> dict[Table, list[dict[str, Any]]]:
    """The influencers, campaigns, posts and links as Core rows (a few dozen)."""

    def day_at(index: int) -> datetime:
        return datetime.combine(first_day + timedelta(days=index), datetime.min.time(), UTC)

    common = {"workspace_id": workspace_id, "created_at": now, "updated_at": now}
    influencers = [
        {
            **common,
            "id": _hex_uuid(influencer_id),
            "name": name,
            "handles": {"instagram": "@" + name.lower().replace(" ", ".")},
            "status": "active",
        }
        for influencer_id, name in marketing.influencers
    ]
    campaigns = [
        {
            **common,
            "id": _hex_uuid(campaign["id"]),
            "name": campaign["name"],
            "channel": "Influencer",
            "starts_at": day_at(campaign["start_day"]),
            "ends_at": day_at(campaign["end_day"] + 1),
            "currency": "EUR",
            "fee": campaign["fee"],
            "seeding_cost": campaign["seeding_cost"],
            "paid_boost_cost": campaign["paid_boost_cost"],
            "utm_source": "instagram",
            "utm_medium": "influencer",
            "utm_campaign": campaign["utm_campaign"],
            "status": "active",
        }
        for campaign in marketing.campaigns
    ]
    members = [
        {
            "campaign_id": _hex_uuid(campaign["id"]),
            "influencer_id": _hex_uuid(influencer_id),
            "workspace_id": workspace_id,
        }
        for campaign in marketing.campaigns
        for influencer_id in campaign["influencers"]
    ]
    posts = [
        {
            **common,
            "id": _hex_uuid(post["id"]),
            "platform": "instagram",
            "kind": post["kind"],
            "url": post["url"],
            "posted_at": day_at(post["posted_day"]) + timedelta(hours=18),
            "influencer_id": _hex_uuid(post["influencer_id"]),
            "campaign_id": _hex_uuid(post["campaign_id"]),
            "reach": 20_000 + 1_000 * index,
        }
        for index, post in enumerate(marketing.posts)
    ]
    links = [
        {
            **common,
            "id": _hex_uuid(link.id),
            "code": link.code,
            "code_key": link.code.lower() + "-" + workspace_id.hex[:12],
            "destination_url": "https://shop.example/collections/new",
            "influencer_id": _hex_uuid(link.influencer_id),
            "campaign_id": _hex_uuid(link.campaign_id) if link.campaign_id else None,
            "post_id": _hex_uuid(link.post_id) if link.post_id else None,
            "utm": {},
            "is_active": True,
        }
        for link in marketing.links
    ]
    return {
        Influencer.__table__: influencers,  # type: ignore[dict-item]
        Campaign.__table__: campaigns,  # type: ignore[dict-item]
        CampaignInfluencer.__table__: members,  # type: ignore[dict-item]
        Post.__table__: posts,  # type: ignore[dict-item]
        Link.__table__: links,  # type: ignore[dict-item]
    }


# -- sessions ----------------------------------------------------------------------------------


@dataclass
class Plan:
    """Every session of the run as numpy columns, sorted by (day, start time)."""

    visitors: int
    day: np.ndarray
    start_us: np.ndarray
    visitor: np.ndarray
    returning: np.ndarray


def day_weights(first_day: date, days: int, rng: np.random.Generator) -> np.ndarray:
    weights = np.empty(days)
    for index in range(days):
        day = first_day + timedelta(days=index)
        weight = WEEKDAYS[day.weekday()] * (1 + 0.3 * index / max(days, 1))
        # Black Friday (the day after the fourth Thursday of November) and Cyber Monday.
        if day.month == 11 and day.weekday() == 4 and 23 <= day.day <= 29:
            weight *= 2.0
        if (day.month, day.weekday()) in ((11, 0), (12, 0)) and (
            (day.month == 11 and day.day >= 26) or (day.month == 12 and day.day <= 2)
        ):
            weight *= 1.6
        weights[index] = weight * math.exp(rng.normal(0, 0.05))
    return weights / weights.sum()


# Funnel of a session: viewed a product, added to cart, started a checkout, ordered (the
# conditional probabilities), for a new visitor and for a returning one.
FUNNEL_NEW = (0.55, 0.20, 0.45, 0.37)
FUNNEL_RETURNING = (0.55, 0.30, 0.50, 0.47)
MEAN_PAGE_VIEWS_AFTER_LANDING = 1.9  # geometric, p = 1 / (1 + mean)


def events_per_session(rng: np.random.Generator) -> float:
    """Mean events of a session under the model above (simulated, 200,000 sessions)."""
    sample = 200_000
    page_views = 1 + rng.geometric(1 / (1 + MEAN_PAGE_VIEWS_AFTER_LANDING), sample) - 1
    returning = rng.random(sample) < 0.4
    funnel = np.where(returning[:, None], FUNNEL_RETURNING, FUNNEL_NEW)
    draws = rng.random((sample, 4)) < funnel
    viewed = draws[:, 0]
    added = viewed & draws[:, 1]
    checkout = added & draws[:, 2]
    ordered = checkout & draws[:, 3]
    product_views = np.where(viewed, rng.geometric(0.55, sample), 0)
    total = page_views + product_views + added + checkout * 2 + ordered
    # A bot's session is its landing page view only.
    bots = rng.random(sample) < DEVICE_SHARES[DEVICES.index("bot")]
    return float(np.where(bots, 1, total).mean())


def plan_sessions(
    rng: np.random.Generator, events: int, first_day: date, days: int
) -> tuple[Plan, float]:
    per_session = events_per_session(rng)
    sessions = max(int(events / per_session), 10)
    counts = rng.geometric(0.6, int(sessions / 1.6) + 10)
    cumulative = np.cumsum(counts)
    visitors = int(np.searchsorted(cumulative, sessions)) + 1
    counts = counts[:visitors]
    counts[-1] -= int(cumulative[visitors - 1] - sessions)
    visitor = np.repeat(np.arange(visitors, dtype=np.int64), counts)
    day = rng.choice(days, size=len(visitor), p=day_weights(first_day, days, rng))
    hours = np.array(HOURS) / sum(HOURS)
    start_us = rng.choice(24, size=len(visitor), p=hours) * 3_600_000_000 + rng.integers(
        0, 3_600_000_000, len(visitor)
    )
    # Returning: not the visitor's first session (by time).
    order = np.lexsort((start_us, day, visitor))
    first = np.ones(len(visitor), dtype=bool)
    first[1:] = visitor[order][1:] != visitor[order][:-1]
    returning = np.empty(len(visitor), dtype=bool)
    returning[order] = ~first
    order = np.lexsort((start_us, day))
    return (
        Plan(visitors, day[order], start_us[order], visitor[order], returning[order]),
        per_session,
    )


# -- the generator -----------------------------------------------------------------------------


@dataclass
class Batch:
    table: str
    columns: Sequence[str]
    rows: list[tuple[Any, ...]]
    events: int = 0  # for the progress bar


@dataclass
class OrderRecord:
    id: str
    visitor: int
    placed_ms: int
    placed_text: str
    currency: str
    net: Decimal
    cancelled: bool


@dataclass
class Generated:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    influencer_ids: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


class Generator:
    """Yields batches of rows day by day, in time order, then profiles and credits."""

    def __init__(
        self,
        *,
        workspace_id: uuid.UUID,
        events: int,
        first_day: date,
        days: int,
        seed: int,
        payload_bytes: int,
        marketing: Marketing,
        ids: Ids,
    ) -> None:
        self.workspace = workspace_id.hex
        self.first_day = first_day
        self.days = days
        self.rng = np.random.default_rng(seed)
        self.ids = ids
        self.marketing = marketing
        self.payload = os.urandom(payload_bytes)
        self.plan, self.events_per_session = plan_sessions(self.rng, events, first_day, days)
        visitors = self.plan.visitors
        self.device = self.rng.choice(len(DEVICES), size=visitors, p=DEVICE_SHARES).tolist()
        self.usd = (self.rng.random(visitors) < 0.1).tolist()
        self.splits = (self.rng.random(visitors) < 0.02).tolist()
        self.anonymous_bytes = os.urandom(16 * visitors)
        self.anonymous: list[str | None] = [None] * visitors
        self.profile: list[str | None] = [None] * visitors
        self.profile_first: dict[str, str] = {}
        self.profile_last: dict[str, str] = {}
        self.merged: dict[str, str] = {}
        self.user_id: list[str | None] = [None] * visitors
        self.sessions_seen = [0] * visitors
        self.touches: dict[int, list[tuple[int, str, int, int]]] = defaultdict(list)
        self.orders: list[OrderRecord] = []
        self.order_count = [0] * visitors
        self.stats = Generated()
        self.stats.influencer_ids = [influencer_id for influencer_id, _ in marketing.influencers]

    @property
    def sessions(self) -> int:
        return len(self.plan.day)

    def _anonymous_id(self, visitor: int) -> str:
        value = self.anonymous[visitor]
        if value is None:
            raw = self.anonymous_bytes[16 * visitor : 16 * visitor + 16].hex()
            value = f"{raw[:8]}-{raw[8:12]}-4{raw[13:16]}-a{raw[17:20]}-{raw[20:]}"
            self.anonymous[visitor] = value
        return value

    def _profile_id(self, visitor: int, epoch_ms: int, text_at: str) -> str:
        profile = self.profile[visitor]
        if profile is None or (
            self.splits[visitor]
            and self.sessions_seen[visitor] == 2
            and profile not in self.merged
            and profile not in self.merged.values()
        ):
            new = self.ids.at(epoch_ms)
            if profile is not None:  # signed in: the old profile is folded into a new one
                self.merged[profile] = new
            self.profile[visitor] = profile = new
            self.profile_first[new] = text_at
        self.profile_last[profile] = text_at
        return profile

    def batches(self) -> Iterator[Batch]:
        plan = self.plan
        boundaries = np.searchsorted(plan.day, np.arange(self.days + 1))
        for day_index in range(self.days):
            low, high = int(boundaries[day_index]), int(boundaries[day_index + 1])
            yield from self._day(day_index, low, high)
        started = time.perf_counter()
        yield from self._profiles()
        self.stats.seconds["profiles_generate"] = time.perf_counter() - started
        started = time.perf_counter()
        yield from self._credits()
        self.stats.seconds["credits_generate"] = time.perf_counter() - started

    def _day(self, day_index: int, low: int, high: int) -> Iterator[Batch]:
        plan = self.plan
        rng = self.rng
        day = self.first_day + timedelta(days=day_index)
        prefix = day.isoformat() + " "
        day_ms = int(datetime.combine(day, datetime.min.time(), UTC).timestamp() * 1000)
        count = high - low
        marketing = self.marketing
        mix = np.array([channel[1] for channel in CHANNELS])
        mix[INFLUENCER_CHANNEL] *= marketing.influencer_factor[day_index]
        mix /= mix.sum()
        channel_of = rng.choice(len(CHANNELS), size=count, p=mix).tolist()
        link_of = rng.choice(
            len(marketing.links), size=count, p=marketing.link_weights[day_index]
        ).tolist()
        via_link = (rng.random(count) < 0.8).tolist()
        page_views = (rng.geometric(1 / (1 + MEAN_PAGE_VIEWS_AFTER_LANDING), count) - 1).tolist()
        product_views = rng.geometric(0.55, count).tolist()
        funnel_draws = rng.random((count, 4))
        gaps = np.minimum(rng.exponential(40.0, (count, 8)) + 5, 1500) * 1_000_000
        gaps_list = gaps.astype(np.int64).tolist()
        amounts = np.round(np.exp(rng.normal(math.log(55), 0.55, count)), 2).tolist()
        refund_draw = rng.random(count).tolist()
        workspace = self.workspace
        payload = self.payload
        ids = self.ids
        events: list[tuple[Any, ...]] = []
        touchpoints: list[tuple[Any, ...]] = []
        clicks: list[tuple[Any, ...]] = []
        orders: list[tuple[Any, ...]] = []
        refunds: list[tuple[Any, ...]] = []
        links = marketing.links
        for row in range(count):
            index = low + row
            visitor = int(plan.visitor[index])
            start = int(plan.start_us[index])
            returning = bool(plan.returning[index])
            device = DEVICES[self.device[visitor]]
            bot = device == "bot"
            funnel = FUNNEL_RETURNING if returning else FUNNEL_NEW
            draws = funnel_draws[row]
            viewed = not bot and draws[0] < funnel[0]
            added = viewed and draws[1] < funnel[1]
            checkout = added and draws[2] < funnel[2]
            ordered = checkout and draws[3] < funnel[3]
            steps: list[str | None] = [None]  # None: a page view
            if viewed:
                steps += ["Product Viewed"] * product_views[row]
            steps += [None] * (0 if bot else page_views[row])
            if added:
                steps.append("Product Added")
            if checkout:
                steps += ["Checkout Started", None]
            if ordered:
                steps.append("Order Completed")
            offsets = [0]
            gap_row = gaps_list[row]
            for position in range(1, len(steps)):
                offsets.append(offsets[-1] + gap_row[position % 8])
            if start + offsets[-1] >= DAY_US - 1_000_000:
                start = max(DAY_US - offsets[-1] - 1_000_000, 0)
            self.sessions_seen[visitor] += 1
            anonymous = self._anonymous_id(visitor)
            start_text = _timestamp(prefix, start)
            start_ms = day_ms + start // 1000
            profile = self._profile_id(visitor, start_ms, start_text)
            user_id = self.user_id[visitor]
            currency = "USD" if self.usd[visitor] else "EUR"
            channel = channel_of[row]
            order_hex = None
            external = None
            amount = None
            landing_id = None
            for step, offset in zip(steps, offsets, strict=True):
                at_us = start + offset
                at_text = _timestamp(prefix, at_us)
                at_ms = day_ms + at_us // 1000
                event_id = ids.at(at_ms)
                if landing_id is None:
                    landing_id = event_id
                if step == "Order Completed":
                    order_hex = ids.at(at_ms)
                    external = f"#{100_000 + len(self.orders)}"
                    amount = Decimal(str(amounts[row])).quantize(MONEY_QUANTUM)
                    events.append(
                        (event_id, workspace, "sl-" + event_id, "track", step, anonymous,
                         user_id, profile, at_text, at_text, at_text, at_text, payload,
                         external, str(amount), currency, device)
                    )  # fmt: skip
                    placed_text = at_text
                    placed_ms = at_ms
                else:
                    events.append(
                        (event_id, workspace, "sl-" + event_id, "page" if step is None
                         else "track", step, anonymous, user_id, profile, at_text, at_text,
                         at_text, at_text, payload, None, None, None, device)
                    )  # fmt: skip
            if channel != DIRECT_CHANNEL and not bot:
                name, _, kind, source, medium, campaign_name, host = CHANNELS[channel]
                link_index = -1
                influencer_id = campaign_id = link_id = post_id = click_id = None
                if channel == INFLUENCER_CHANNEL:
                    link = links[link_of[row]]
                    influencer_id, campaign_id = link.influencer_id, link.campaign_id
                    if via_link[row]:
                        link_index = link_of[row]
                        link_id, post_id = link.id, link.post_id
                        click_ms = start_ms - 2_000
                        click_text = _timestamp(prefix, max(start - 2_000_000, 0))
                        click_id = ids.at(click_ms)
                        clicks.append(
                            (click_id, workspace, link_id, click_text, "203.0.113.0/24",
                             USER_AGENTS[device], "https://l.instagram.com/",
                             anonymous if returning else None, 0, None)
                        )  # fmt: skip
                        touchpoints.append(
                            (ids.at(click_ms), workspace, "click:" + click_id, profile,
                             anonymous, click_text, "click", name, source, medium,
                             campaign_name, host, influencer_id, campaign_id, link_id, post_id,
                             click_id, None, None, 0)
                        )  # fmt: skip
                        touch_ms = click_ms
                    else:
                        kind = "utm"
                        campaign_name = "bio" if campaign_id is None else "campaign"
                        link_index = -2 - link_of[row]  # the link's influencer, without a link
                if click_id is None:
                    touchpoints.append(
                        (ids.at(start_ms), workspace, "event:" + landing_id, profile,
                         anonymous, start_text, kind, name, source, medium, campaign_name, host,
                         influencer_id, campaign_id, None, None, None, None, None, 0)
                    )  # fmt: skip
                    touch_ms = start_ms
                self.touches[visitor].append((touch_ms, touchpoints[-1][0], channel, link_index))
            if order_hex is not None and amount is not None and external is not None:
                self.order_count[visitor] += 1
                shipping = Decimal("0") if amount >= 50 else Decimal("4.9000")
                subtotal = amount - shipping
                tax = (subtotal * Decimal(19) / Decimal(119)).quantize(MONEY_QUANTUM)
                draw = refund_draw[row]
                status, refunded = "paid", Decimal(0)
                if draw < 0.05:
                    status, refunded = "refunded", amount
                elif draw < 0.08:
                    status = "partially_refunded"
                    refunded = (amount * Decimal("0.4")).quantize(MONEY_QUANTUM)
                elif draw < 0.09:
                    status = "cancelled"
                customer = f"cust-{visitor}" if visitor % 5 < 3 else None
                email_index = f"{visitor:032x}"
                net = Decimal(0) if status == "cancelled" else amount - refunded
                orders.append(
                    (order_hex, workspace, external, "event", "web", profile, anonymous,
                     customer, email_index, payload[:64], currency, _money(subtotal), "0",
                     _money(shipping), _money(tax), _money(amount), _money(refunded), status,
                     "[]", None, None, "{}", placed_text, placed_text, 0, placed_text,
                     placed_text, placed_text)
                )  # fmt: skip
                if refunded > 0:
                    refund_us = min(start + offsets[-1] + 3_600_000_000, DAY_US - 1)
                    refunds.append(
                        (ids.at(placed_ms), workspace, order_hex, "r-" + external,
                         _money(refunded), _timestamp(prefix, refund_us), "returned", "event",
                         placed_text)
                    )  # fmt: skip
                self.orders.append(
                    OrderRecord(
                        order_hex, visitor, placed_ms, placed_text, currency, net,
                        status == "cancelled",
                    )
                )  # fmt: skip
                if customer is not None:
                    self.user_id[visitor] = customer
        # Clicks without a session: 12% bounce before the page loads, 25% are bots.
        link_clicks = len(clicks)
        extra = int(link_clicks * 0.37)
        if extra:
            extra_links = rng.choice(
                len(links), size=extra, p=marketing.link_weights[day_index]
            ).tolist()
            extra_times = np.sort(rng.integers(0, DAY_US, extra)).tolist()
            for number in range(extra):
                at_us = extra_times[number]
                is_bot = number % 37 >= 12
                clicks.append(
                    (ids.at(day_ms + at_us // 1000), workspace, links[extra_links[number]].id,
                     _timestamp(prefix, at_us), "198.51.100.0/24",
                     USER_AGENTS["bot" if is_bot else "mobile"], None, None,
                     1 if is_bot else 0, "user_agent" if is_bot else None)
                )  # fmt: skip
        events.sort(key=lambda item: item[8])
        touchpoints.sort(key=lambda item: item[5])
        clicks.sort(key=lambda item: item[3])
        counts = self.stats.counts
        counts["events"] += len(events)
        counts["sessions"] += count
        counts["touchpoints"] += len(touchpoints)
        counts["clicks"] += len(clicks)
        counts["orders"] += len(orders)
        counts["refunds"] += len(refunds)
        yield Batch("events", EVENT_COLUMNS, events, events=len(events))
        yield Batch("touchpoints", TOUCHPOINT_COLUMNS, touchpoints)
        yield Batch("clicks", CLICK_COLUMNS, clicks)
        yield Batch("orders", ORDER_COLUMNS, orders)
        yield Batch("refunds", REFUND_COLUMNS, refunds)

    def _profiles(self) -> Iterator[Batch]:
        workspace = self.workspace
        rows: list[tuple[Any, ...]] = []
        for profile, first in self.profile_first.items():
            last = self.profile_last[profile]
            rows.append(
                (profile, workspace, self.merged.get(profile), first, last, last, None, None,
                 None, "{}")
            )  # fmt: skip
            if len(rows) >= 50_000:
                self.stats.counts["profiles"] += len(rows)
                yield Batch("profiles", PROFILE_COLUMNS, rows)
                rows = []
        self.stats.counts["profiles"] += len(rows)
        self.stats.counts["merged_profiles"] = len(self.merged)
        yield Batch("profiles", PROFILE_COLUMNS, rows)

    def _touch_details(self, link_index: int) -> tuple[str | None, ...]:
        """(influencer, campaign, post, link) of a touch, from the link it came through."""
        if link_index == -1:
            return (None, None, None, None)
        if link_index >= 0:
            link = self.marketing.links[link_index]
            return (link.influencer_id, link.campaign_id, link.post_id, link.id)
        link = self.marketing.links[-2 - link_index]
        return (link.influencer_id, link.campaign_id, None, None)

    def _journey(self, order: OrderRecord) -> attribution_models.Journey:
        window_start = order.placed_ms - LOOKBACK_DAYS * 86_400_000
        touches = [
            Touch(
                id=_hex_uuid(touch_id),
                key=touch_id,
                channel=CHANNELS[channel][0],
                occurred_at=datetime.fromtimestamp(at_ms / 1000, UTC),
                kind=CHANNELS[channel][2] or "utm",
            )
            for at_ms, touch_id, channel, _ in self.touches.get(order.visitor, ())
            if window_start <= at_ms <= order.placed_ms
        ]
        return attribution_models.select_journey(
            _hex_uuid(order.id),
            datetime.fromtimestamp(order.placed_ms / 1000, UTC),
            touches,
            lookback_days=LOOKBACK_DAYS,
            code_precedence=True,
        )

    def learn_weights(self) -> dict[str, dict[str, float]]:
        """Markov and Shapley channel weights over every journey, converting or not, as
        storeloop.attribution.service.learn_weights builds them."""
        paths: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0.0, 0.0])
        buyers = set()
        for order in self.orders:
            buyers.add(order.visitor)
            journey = self._journey(order)
            if journey.considered:
                paths[tuple(touch.channel for touch in journey.considered)][0] += 1
        window = LOOKBACK_DAYS * 86_400_000
        for visitor, touches in self.touches.items():
            if visitor in buyers:
                continue
            last = touches[-1][0]
            path = tuple(
                CHANNELS[channel][0] for at, _, channel, _ in touches if at >= last - window
            )
            paths[path][1] += 1
        journeys = JourneySet.from_paths(
            [(list(path), counts[0], counts[1]) for path, counts in sorted(paths.items())]
        )
        return {
            model: attribution_models.channel_weights(journeys, model)
            for model in attribution_models.DATA_DRIVEN_MODELS
        }

    def _credits(self) -> Iterator[Batch]:
        weights = self.learn_weights()
        workspace = self.workspace
        rows: list[tuple[Any, ...]] = []
        touch_links: dict[str, int] = {}
        for touches in self.touches.values():
            for _, touch_id, _, link_index in touches:
                touch_links[touch_id] = link_index
        for order in self.orders:
            journey = self._journey(order)
            placed = datetime.fromtimestamp(order.placed_ms / 1000, UTC)
            for model in attribution_models.MODELS:
                shares = attribution_models.order_credits(
                    journey,
                    model,
                    placed,
                    half_life_days=HALF_LIFE_DAYS,
                    channel_weights=weights.get(model),
                )
                revenues = attribution_models.exact_amounts(
                    order.net, [share.credit for share in shares], MONEY_QUANTUM
                )
                for position, (share, revenue) in enumerate(zip(shares, revenues, strict=True)):
                    touch_id = share.touch.key if share.touch is not None else None
                    details = self._touch_details(
                        touch_links[touch_id] if touch_id is not None else -1
                    )
                    rows.append(
                        (order.id, model, position, workspace, touch_id, share.channel,
                         *details, str(share.credit), str(revenue), order.placed_text,
                         order.currency)
                    )  # fmt: skip
            if len(rows) >= 50_000:
                self.stats.counts["attribution_credits"] += len(rows)
                yield Batch("attribution_credits", CREDIT_COLUMNS, rows)
                rows = []
        self.stats.counts["attribution_credits"] += len(rows)
        yield Batch("attribution_credits", CREDIT_COLUMNS, rows)


# -- sinks: the backends' bulk paths -----------------------------------------------------------


class SqliteSink:
    """``executemany`` on one sqlite3 connection, a transaction per batch; no journal and no
    fsync while loading, a large page cache. The benchmark's engine then runs with the
    production settings (WAL, synchronous=FULL)."""

    def __init__(self, path: str) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # No journal while loading benchmark data (about twice as fast as WAL); WAL again after.
        self.connection.execute("PRAGMA journal_mode=OFF")
        self.connection.execute("PRAGMA synchronous=OFF")
        self.connection.execute("PRAGMA cache_size=-1000000")
        self.connection.execute("PRAGMA temp_store=MEMORY")

    def write(self, batch: Batch) -> None:
        if not batch.rows:
            return
        marks = ", ".join("?" for _ in batch.columns)
        statement = f"INSERT INTO {batch.table} ({', '.join(batch.columns)}) VALUES ({marks})"
        self.connection.execute("BEGIN")
        self.connection.executemany(statement, batch.rows)
        self.connection.execute("COMMIT")

    def close(self) -> None:
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.close()


class PostgresSink:
    """``COPY ... FROM STDIN`` (text format) through psycopg, a transaction per batch."""

    def __init__(self, url: str) -> None:
        self.connection = psycopg.connect(url)
        self.connection.execute("SET TIME ZONE 'UTC'")
        self.connection.execute("SET synchronous_commit = off")
        self.connection.commit()

    def write(self, batch: Batch) -> None:
        if not batch.rows:
            return
        with self.connection.cursor() as cursor:
            statement = f"COPY {batch.table} ({', '.join(batch.columns)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in batch.rows:
                    copy.write_row(row)
        self.connection.commit()

    def close(self) -> None:
        self.connection.close()


Sink = SqliteSink | PostgresSink


def drop_bulk_indexes(engine: Engine) -> list[Index]:
    dropped = []
    with engine.begin() as connection:
        for model in BULK_MODELS:
            table: Table = model.__table__  # type: ignore[assignment]
            for index in sorted(table.indexes, key=lambda item: str(item.name)):
                if not index.unique:
                    index.drop(connection)
                    dropped.append(index)
    return dropped


def create_indexes(engine: Engine, indexes: Sequence[Index]) -> dict[str, float]:
    seconds = {}
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SET maintenance_work_mem = '1GB'"))
        for index in indexes:
            started = time.perf_counter()
            index.create(connection)
            seconds[str(index.name)] = round(time.perf_counter() - started, 2)
    return seconds


def insert_small(engine: Engine, rows: dict[Table, list[dict[str, Any]]]) -> None:
    with engine.begin() as connection:
        for table, values in rows.items():
            if values:
                connection.execute(insert(table), values)


def load(
    generator: Generator,
    sink_factory: Callable[[], Sink],
    events_target: int,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Generate and write everything; the writer runs in a thread so that inserting one batch
    overlaps generating the next. Returns seconds spent generating, waiting and in total."""
    pending: queue.Queue[Batch | None] = queue.Queue(maxsize=6)
    failure: list[BaseException] = []
    written: dict[str, int] = defaultdict(int)
    write_seconds = [0.0]

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )

    def writer() -> None:
        sink = sink_factory()
        try:
            while (batch := pending.get()) is not None:
                started = time.perf_counter()
                sink.write(batch)
                write_seconds[0] += time.perf_counter() - started
                written[batch.table] += len(batch.rows)
                if batch.events:
                    elapsed = time.perf_counter() - began
                    rate = f"{written['events'] / max(elapsed, 1e-9):,.0f} events/s"
                    progress.update(events_task, advance=batch.events, rate=rate)
                else:
                    progress.update(other_task, advance=len(batch.rows))
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)
            while pending.get() is not None:
                pass
        finally:
            sink.close()

    began = time.perf_counter()
    generate_seconds = 0.0
    with progress:
        events_task = progress.add_task("events", total=events_target, rate="")
        other_task = progress.add_task("profiles, credits", total=None, rate="")
        thread = threading.Thread(target=writer, name="bench-writer", daemon=True)
        thread.start()
        batches = generator.batches()
        while True:
            started = time.perf_counter()
            batch = next(batches, None)
            generate_seconds += time.perf_counter() - started
            if batch is None or failure:
                break
            pending.put(batch)
        pending.put(None)
        thread.join()
    if failure:
        raise failure[0]
    total = time.perf_counter() - began
    if on_progress is not None:
        on_progress(f"loaded in {total:.0f}s")
    return {
        "total_s": round(total, 1),
        "generate_s": round(generate_seconds, 1),
        "write_s": round(write_seconds[0], 1),
    }


def first_day_for(days: int, today: date) -> date:
    """The run covers the ``days`` complete days before today (UTC)."""
    return today - timedelta(days=days)


def as_text(moment: datetime) -> str:
    return _as_text(moment)
