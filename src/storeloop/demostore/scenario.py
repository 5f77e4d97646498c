"""The demo store's 90 days, generated from a seed: influencers, posts, visits, carts, orders.

Nothing here touches a database or the network: the loader (demostore.loader) replays the plan
through the real endpoints. Three stories are planted for the dashboard to reveal: an
influencer whose clicks are mostly bots, one whose discount code leaked to a coupon site, and
one with few clicks but high-value buyers.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from storeloop.demostore.catalog import Product, build_catalog

DAYS = 90
SHOP = "https://shop.example"
CURRENCY = "EUR"
FREE_SHIPPING_FROM = Decimal("75")
SHIPPING = Decimal("4.90")
CENT = Decimal("0.01")
COUPON_SITE = "https://www.couponfollow.example/site/shop.example"
# Saturday and Sunday sell more; Monday least.
WEEKDAY_FACTOR = (0.85, 0.95, 1.0, 1.0, 1.1, 1.35, 1.3)

BROWSERS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
)
IN_APP_BROWSERS = {
    "instagram": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 Instagram 357.0.0.25.101 (iPhone15,3; iOS 18_1; en_GB)",
    "tiktok": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 musical_ly_37.5.0 BytedanceWebview/d8a21c6",
    "youtube": BROWSERS[1],
}
BOT_AGENTS = (
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "python-requests/2.32.3",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "curl/8.5.0",
)
FIRST_NAMES = (
    "Ana",
    "Ben",
    "Chloé",
    "Dev",
    "Elif",
    "Finn",
    "Grace",
    "Hugo",
    "Ines",
    "Jonas",
    "Kaia",
    "Luca",
    "Maya",
    "Noor",
    "Omar",
    "Pia",
    "Rosa",
    "Sami",
    "Tess",
    "Yara",
)
LAST_NAMES = (
    "Berg",
    "Costa",
    "Dubois",
    "Ekström",
    "Fischer",
    "García",
    "Hansen",
    "Ivanova",
    "Jansen",
    "Kowalski",
    "Laurent",
    "Moreau",
    "Novak",
    "O'Brien",
    "Rossi",
    "Silva",
)


@dataclass(frozen=True, slots=True)
class PostPlan:
    platform: str
    kind: str
    url: str
    posted_at: datetime
    reach: int
    views: int
    likes: int
    comments: int


@dataclass(slots=True)
class InfluencerPlan:
    key: str
    name: str
    platform: str
    handle: str
    reach: int
    link_code: str
    discount_code: str
    fee: Decimal
    seeding_cost: Decimal
    paid_boost_cost: Decimal
    # The planted stories: share of clicks from bots, a leaked code, richer buyers.
    bot_share: float = 0.03
    code_leaks_on_day: int | None = None
    spend_multiplier: float = 1.0
    click_rate: float = 0.012
    posts: list[PostPlan] = field(default_factory=list)

    @property
    def campaign_name(self) -> str:
        return f"Autumn edit with {self.name}"


@dataclass(slots=True)
class Click:
    link_code: str
    at: datetime
    user_agent: str
    ip: str
    referrer: str | None
    is_bot: bool


@dataclass(slots=True)
class OrderPlan:
    order_id: str
    at: datetime
    customer_id: str
    email: str
    first_name: str
    last_name: str
    anonymous_id: str
    lines: list[tuple[Product, str, int]]
    discount_code: str | None
    discount: Decimal
    subtotal: Decimal
    shipping: Decimal
    tax: Decimal
    total: Decimal
    landing_page: str
    referrer: str | None
    # Set when the visit came through a tracked link: the loader fills in the click id.
    via_link: str | None = None


@dataclass(slots=True)
class RefundPlan:
    order_id: str
    refund_id: str
    at: datetime
    amount: Decimal
    lines: list[tuple[Product, str, int]]
    reason: str


@dataclass(slots=True)
class Visit:
    """One session: maybe a tracked-link click first, then browser events, maybe an order."""

    at: datetime
    anonymous_id: str
    channel: str
    click: Click | None
    events: list[dict[str, Any]]
    order: OrderPlan | None = None


@dataclass(slots=True)
class Scenario:
    start: datetime
    end: datetime
    products: list[Product]
    influencers: list[InfluencerPlan]
    visits: list[Visit]
    refunds: list[RefundPlan]

    @property
    def orders(self) -> list[OrderPlan]:
        return [visit.order for visit in self.visits if visit.order is not None]


def _money(value: Decimal | float) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def _influencers(rng: random.Random, start: datetime, days: int) -> list[InfluencerPlan]:
    people = [
        ("maya", "Maya Lindqvist", "instagram", "@maya.wears", 180_000),
        ("noor", "Noor Haddad", "instagram", "@noorstyle", 95_000),
        ("elif", "Elif Demir", "instagram", "@elif.daily", 60_000),
        ("rosa", "Rosa Marquez", "instagram", "@rosa.in.linen", 240_000),
        ("kaia", "Kaia Brandt", "instagram", "@kaia.thrifts", 38_000),
        ("lena", "Lena Vogt", "tiktok", "@lenavogt", 420_000),
        ("jade", "Jade Okafor", "tiktok", "@jadeokafor", 310_000),
        ("pia", "Pia Sørensen", "tiktok", "@pia.fits", 150_000),
        ("sami", "Sami Aalto", "tiktok", "@samiaalto", 85_000),
        ("theo", "Theo Marlow", "youtube", "@TheoMarlowMenswear", 22_000),
        ("ines", "Ines Ferreira", "youtube", "@inesferreira", 130_000),
        ("hugo", "Hugo Laurent", "youtube", "@hugolaurent", 70_000),
    ]
    plans = []
    for key, name, platform, handle, reach in people:
        fee = _money(Decimal(reach) / 1000 * Decimal(rng.choice((6, 8, 10))))
        plan = InfluencerPlan(
            key=key,
            name=name,
            platform=platform,
            handle=handle,
            reach=reach,
            link_code=key,
            discount_code=f"{key.upper()}15",
            fee=fee,
            seeding_cost=_money(rng.randint(3, 8) * 45),
            paid_boost_cost=_money(rng.choice((0, 0, 250, 500))),
        )
        if key == "lena":  # clicks mostly from bots and click farms
            plan.bot_share = 0.78
            plan.click_rate = 0.02
        if key == "jade":  # her code ends up on a coupon site
            plan.code_leaks_on_day = round(38 * days / DAYS)
        if key == "theo":  # a small audience that buys outerwear and knitwear
            plan.spend_multiplier = 3.2
            plan.click_rate = 0.02
        kinds = {
            "instagram": ("post", "reel", "story"),
            "tiktok": ("video",),
            "youtube": ("video", "short"),
        }
        # Posts fall between the first days and the last few; a short span has room anywhere.
        first, last = (5, days - 3) if days >= 20 else (0, days)
        count = rng.randint(3, 6)
        post_days = sorted(rng.sample(range(first, last), min(count, last - first)))
        for number, day in enumerate(post_days, start=1):
            posted_at = start + timedelta(days=day, hours=rng.randint(8, 20))
            post_reach = int(reach * rng.uniform(0.25, 0.8))
            views = int(post_reach * rng.uniform(0.9, 2.5))
            plan.posts.append(
                PostPlan(
                    platform=platform,
                    kind=rng.choice(kinds[platform]),
                    url=f"https://www.{platform}.com/{handle.lstrip('@')}/{key}-{number:02d}",
                    posted_at=posted_at,
                    reach=post_reach,
                    views=views,
                    likes=int(views * rng.uniform(0.02, 0.08)),
                    comments=int(views * rng.uniform(0.001, 0.004)),
                )
            )
        plans.append(plan)
    return plans


@dataclass(frozen=True, slots=True)
class _Source:
    channel: str
    url_query: str
    referrer: str | None
    influencer: InfluencerPlan | None = None


_ORGANIC = (
    (0.30, _Source("Direct", "", None)),
    (0.22, _Source("Organic Search", "", "https://www.google.com/")),
    (
        0.10,
        _Source(
            "Paid Search",
            "utm_source=google&utm_medium=cpc&utm_campaign=brand&gclid=",
            "https://www.google.com/",
        ),
    ),
    (
        0.10,
        _Source(
            "Paid Social",
            "utm_source=facebook&utm_medium=paid_social&utm_campaign=autumn_prospecting&fbclid=",
            "https://m.facebook.com/",
        ),
    ),
    (0.09, _Source("Organic Social", "", "https://www.instagram.com/")),
    (0.08, _Source("Email", "utm_source=newsletter&utm_medium=email&utm_campaign=weekly", None)),
    (0.06, _Source("Referral", "", "https://www.vogue-scandinavia.example/edit/autumn")),
    (0.05, _Source("Organic Social", "", "https://www.pinterest.com/")),
)
# Conversion multipliers per channel (email readers buy more often).
_CONVERSION = {"Email": 1.6, "Paid Search": 1.3, "Direct": 1.1, "Influencer": 1.0, "Affiliate": 1.2}


class _Builder:
    def __init__(self, rng: random.Random, start: datetime, products: list[Product]) -> None:
        self.rng = rng
        self.start = start
        self.products = products
        self.weights = [product.popularity for product in products]
        self.premium = [p for p in products if p.category in ("Outerwear", "Knitwear", "Shoes")]
        self.premium_weights = [p.popularity for p in self.premium]
        self.customers: list[tuple[str, str, str, str, str]] = []  # id, email, first, last, anon
        self.visits: list[Visit] = []
        self.refunds: list[RefundPlan] = []
        self.order_number = 1000
        self.message_number = 0

    def message_id(self) -> str:
        self.message_number += 1
        return str(uuid.UUID(int=self.rng.getrandbits(128)))

    def _event(
        self, at: datetime, anonymous_id: str, message: dict[str, Any], context: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            **message,
            "messageId": self.message_id(),
            "anonymousId": anonymous_id,
            "timestamp": at.isoformat(),
            "context": context,
        }

    def visit(self, at: datetime, source: _Source, *, returning: bool = False) -> None:
        rng = self.rng
        customer = rng.choice(self.customers) if returning and self.customers else None
        anonymous_id = customer[4] if customer else str(uuid.UUID(int=rng.getrandbits(128)))
        influencer = source.influencer
        click: Click | None = None
        if influencer is not None:
            is_bot = rng.random() < influencer.bot_share
            user_agent = rng.choice(BOT_AGENTS) if is_bot else IN_APP_BROWSERS[influencer.platform]
            # Bots come from a few data-centre addresses; people from many home addresses.
            ip = (
                f"185.220.{rng.randint(100, 103)}.{rng.randint(1, 254)}"
                if is_bot
                else ".".join(
                    str(rng.randint(low, high))
                    for low, high in ((11, 220), (0, 255), (0, 255), (1, 254))
                )
            )
            click = Click(
                influencer.link_code,
                at,
                user_agent,
                ip,
                f"https://www.{influencer.platform}.com/",
                is_bot,
            )
            if is_bot:
                self.visits.append(Visit(at, anonymous_id, "Influencer", click, []))
                return
        user_agent = click.user_agent if click else rng.choice(BROWSERS)
        query = source.url_query
        if query.endswith("="):
            query += uuid.UUID(int=rng.getrandbits(128)).hex[:16]
        landing_path = rng.choice(
            ("/", "/collections/new", "/collections/autumn", "/collections/knitwear")
        )
        landing = f"{SHOP}{landing_path}" + (f"?{query}" if query else "")
        context: dict[str, Any] = {
            "userAgent": user_agent,
            "locale": rng.choice(("en-GB", "de-DE", "sv-SE", "fr-FR")),
        }
        clock = at + timedelta(seconds=2)
        events = [
            self._event(
                clock,
                anonymous_id,
                {
                    "type": "page",
                    "name": "Landing",
                    "properties": {"url": landing, "path": landing_path},
                },
                {
                    **context,
                    "page": {
                        "url": landing,
                        "path": landing_path,
                        "referrer": source.referrer or "",
                        "search": f"?{query}" if query else "",
                    },
                },
            ),
        ]
        premium = influencer is not None and influencer.spend_multiplier > 1
        pool, weights = (
            (self.premium, self.premium_weights) if premium else (self.products, self.weights)
        )
        viewed = rng.choices(pool, weights=weights, k=rng.randint(3 if premium else 1, 5))
        page = {"url": landing, "path": landing_path, "referrer": source.referrer or ""}
        for product in viewed:
            clock += timedelta(seconds=rng.uniform(8, 90))
            events.append(
                self._event(
                    clock,
                    anonymous_id,
                    {
                        "type": "track",
                        "event": "Product Viewed",
                        "properties": _product(product, None, 1),
                    },
                    {**context, "page": page},
                )
            )
        conversion = (
            _CONVERSION.get(source.channel, 0.9)
            * (1.5 if customer else 1.0)
            * (1.4 if premium else 1.0)
        )
        if source.referrer == COUPON_SITE:  # coupon hunters arrive ready to buy
            conversion *= 2.5
        if rng.random() > 0.09 * min(conversion, 2.5):
            self.visits.append(Visit(at, anonymous_id, source.channel, click, events))
            return
        cart = []
        # Most carts hold one item; buyers of the high-value audience fill theirs.
        items = min(3, len(viewed)) if premium or rng.random() >= 0.6 else 1
        for product in viewed[:items]:
            size = rng.choice(product.sizes)
            quantity = 1 if rng.random() < 0.85 else 2
            cart.append((product, size, quantity))
            clock += timedelta(seconds=rng.uniform(5, 40))
            events.append(
                self._event(
                    clock,
                    anonymous_id,
                    {
                        "type": "track",
                        "event": "Product Added",
                        "properties": {
                            **_product(product, size, quantity),
                            "cart_id": anonymous_id[:8],
                        },
                    },
                    {**context, "page": page},
                )
            )
        subtotal = sum((product.price * quantity for product, _, quantity in cart), Decimal(0))
        clock += timedelta(seconds=rng.uniform(20, 120))
        events.append(
            self._event(
                clock,
                anonymous_id,
                {
                    "type": "track",
                    "event": "Checkout Started",
                    "properties": {
                        "value": float(subtotal),
                        "currency": CURRENCY,
                        "products": [_product(p, s, q) for p, s, q in cart],
                    },
                },
                {**context, "page": page},
            )
        )
        if rng.random() > 0.42 * min(conversion, 1.6):
            self.visits.append(Visit(at, anonymous_id, source.channel, click, events))
            return
        if customer is None:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            customer_id = f"{7_000_000_000 + len(self.customers) * 7919}"
            local = f"{first}.{last}".lower().replace("é", "e").replace("'", "")
            email = f"{local}.{len(self.customers)}@mail.example"
            customer = (customer_id, email, first, last, anonymous_id)
            self.customers.append(customer)
        customer_id, email, first, last, _ = customer
        code = None
        if influencer is not None and rng.random() < 0.7:
            code = influencer.discount_code
        discount = _money(subtotal * Decimal("0.15")) if code else Decimal("0.00")
        shipping = Decimal("0.00") if subtotal - discount >= FREE_SHIPPING_FROM else SHIPPING
        total = subtotal - discount + shipping
        self.order_number += 1
        clock += timedelta(seconds=rng.uniform(60, 300))
        order = OrderPlan(
            order_id=f"{5_100_000_000_000 + self.order_number * 7}",
            at=clock,
            customer_id=customer_id,
            email=email,
            first_name=first,
            last_name=last,
            anonymous_id=anonymous_id,
            lines=cart,
            discount_code=code,
            discount=discount,
            subtotal=subtotal,
            shipping=shipping,
            tax=_money(total / 6),  # 20% VAT included in prices
            total=total,
            landing_page=landing.removeprefix(SHOP),
            referrer=source.referrer,
            via_link=influencer.link_code if influencer is not None else None,
        )
        events.append(
            self._event(
                clock - timedelta(seconds=5),
                anonymous_id,
                {
                    "type": "identify",
                    "userId": f"shopify:{customer_id}",
                    "traits": {"email": email, "first_name": first, "last_name": last},
                },
                context,
            )
        )
        self.visits.append(Visit(at, anonymous_id, source.channel, click, events, order))
        if rng.random() < 0.07:
            self._refund(order)

    def _refund(self, order: OrderPlan) -> None:
        rng = self.rng
        at = order.at + timedelta(days=rng.uniform(3, 20))
        if len(order.lines) > 1 and rng.random() < 0.5:
            product, size, quantity = order.lines[-1]
            amount = _money(product.price * quantity * (1 - (order.discount / order.subtotal)))
            lines = [(product, size, quantity)]
            reason = "size did not fit"
        else:
            amount, lines, reason = order.total, list(order.lines), "changed my mind"
        self.refunds.append(
            RefundPlan(
                order.order_id,
                f"{order.order_id[-8:]}{len(self.refunds):04d}",
                at,
                amount,
                lines,
                reason,
            )
        )


def _product(product: Product, size: str | None, quantity: int) -> dict[str, Any]:
    return {
        "product_id": product.product_id,
        "sku": product.sku(size or product.sizes[0]),
        "name": product.name,
        "category": product.category,
        "variant": f"{product.colour} / {size}" if size else product.colour,
        "price": float(product.price),
        "quantity": quantity,
        "currency": CURRENCY,
    }


def build_scenario(
    *,
    seed: int = 2026,
    end: datetime | None = None,
    visitors_per_day: int = 260,
    days: int = DAYS,
    influencer_audience: float = 1.0,
) -> Scenario:
    """``days`` (ninety by default) up to ``end`` (default: now), deterministic for a seed and an
    end time. ``influencer_audience`` scales the clicks after posts (tests load a small store)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    rng = random.Random(seed)
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    start = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0)
    products = build_catalog(rng)
    influencers = _influencers(rng, start, days)
    builder = _Builder(rng, start, products)
    shares = [share for share, _ in _ORGANIC]
    sources = [source for _, source in _ORGANIC]
    for day in range(days):
        day_start = start + timedelta(days=day)
        trend = 1 + 0.25 * day / days
        expected = visitors_per_day * WEEKDAY_FACTOR[day_start.weekday()] * trend
        for _ in range(_poisson(rng, expected)):
            at = day_start + timedelta(seconds=_daytime_seconds(rng))
            if at >= end:
                continue
            builder.visit(
                at, rng.choices(sources, weights=shares)[0], returning=rng.random() < 0.18
            )
        for influencer in influencers:
            # Clicks after each post: most on the day, halving every day after.
            for post in influencer.posts:
                age = (day_start - post.posted_at.replace(hour=0)).days
                if not 0 <= age <= 6:
                    continue
                clicks = _poisson(
                    rng,
                    post.reach * influencer.click_rate * 0.5**age * 0.04 * influencer_audience,
                )
                for _ in range(clicks):
                    at = max(post.posted_at, day_start) + timedelta(
                        seconds=rng.uniform(0, 6 * 3600)
                    )
                    if at < end:
                        builder.visit(
                            at,
                            _Source(
                                "Influencer",
                                "",
                                f"https://www.{influencer.platform}.com/",
                                influencer,
                            ),
                        )
            if influencer.code_leaks_on_day is not None and day >= influencer.code_leaks_on_day:
                for _ in range(_poisson(rng, 9.0)):
                    at = day_start + timedelta(seconds=_daytime_seconds(rng))
                    if at < end:
                        builder.visit(at, _Source("Referral", "", COUPON_SITE, None))
                        order = builder.visits[-1].order
                        if order is not None and order.discount_code is None:
                            order.discount_code = influencer.discount_code
                            order.discount = _money(order.subtotal * Decimal("0.15"))
                            order.total = order.subtotal - order.discount + order.shipping
                            order.tax = _money(order.total / 6)
    builder.visits.sort(key=lambda visit: visit.at)
    refunds = sorted((r for r in builder.refunds if r.at < end), key=lambda refund: refund.at)
    return Scenario(start, end, products, influencers, builder.visits, refunds)


def _poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count


def _daytime_seconds(rng: random.Random) -> float:
    # Shopping peaks in the evening.
    hour = min(23.99, max(0.0, rng.gauss(19.0, 4.0)))
    return hour * 3600
