"""Replays a demo store's plan (demostore.scenario) against a running storeloop, over HTTP.

Everything goes in the way a real store's data does, so the demo exercises the system: store
settings, influencers, campaigns, posts, links and discount codes through the management API;
the links' past clicks through the click import; the storefront's events through
``POST /v1/batch``; orders and refunds as signed Shopify webhooks. Nothing is inserted into a
table directly. The one database read here, ``WorkerBacklog``, only watches the background
worker catch up.

The order of the phases is chosen for speed, not chronology. The worker attributes each batch of
new orders as it arrives, relearning the Markov and Shapley weights over all the store's
touchpoints every time; a thousand orders replayed one by one after ninety days of events would
take minutes. So the clicks, then the orders and refunds go first (against an almost empty
history), then the storefront's events, and once the worker has derived every touchpoint one
``POST /api/v1/attribution/recompute`` (what a settings change triggers) attributes every order
against the whole history, in a few large batches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import orjson
from limits import parse_many
from rich.progress import Progress as RichProgressBars
from rich.progress import TaskID
from sqlalchemy import Engine, Uuid, column, func, inspect, select, table

from storeloop.demostore.scenario import (
    CENT,
    CURRENCY,
    SHOP,
    InfluencerPlan,
    OrderPlan,
    RefundPlan,
    Scenario,
    Visit,
)
from storeloop.kit.tracking_params import CLICK_ID_PARAMETER
from storeloop.models import DerivationTask, InboxEntry, Order

# Storefront visitors a day (before weekly seasonality and the trend) of `storeloop demo`: with
# the influencers' clicks about 230 visits and 940 events a day. Measured on SQLite on 2 cores:
# 85,005 events, 4,331 clicks and 988 orders loaded, URL printed after 82 s (180 a day: 96 s).
DEMO_VISITORS_PER_DAY = 150
BATCH_SIZE = 100
CLICK_IMPORT_SIZE = 1000
ORDER_SENDERS = 8
# Where every tracked link of the demo store sends its visitors.
LINK_DESTINATION = f"{SHOP}/collections/autumn"
SHOP_DOMAIN = "shop-example.myshopify.com"
_ATTEMPTS = 8
# derivation.MAX_ATTEMPTS: a queued event that failed this often is set aside, not waited for.
_DERIVATION_GIVE_UP = 5
_UTM_CONTEXT = {
    "utm_source": "source",
    "utm_medium": "medium",
    "utm_campaign": "name",
    "utm_term": "term",
    "utm_content": "content",
}
_COUNTRIES = {"en-GB": "GB", "de-DE": "DE", "sv-SE": "SE", "fr-FR": "FR"}


class LoadError(Exception):
    """The server refused part of the demo store (the message names the request)."""


class PhaseProgress(Protocol):
    def advance(self, count: int) -> None: ...

    def update(self, completed: int, total: int) -> None: ...


class Progress(Protocol):
    """Where the loader reports its phases (the CLI draws them as progress bars)."""

    def phase(self, description: str, total: int) -> PhaseProgress: ...


class _Silent:
    def advance(self, count: int) -> None:
        pass

    def update(self, completed: int, total: int) -> None:
        pass


class _NoProgress:
    def phase(self, description: str, total: int) -> PhaseProgress:
        return _Silent()


@dataclass(frozen=True, slots=True)
class Target:
    base_url: str  # e.g. http://127.0.0.1:8000
    write_key: str
    secret_key: str


@dataclass(slots=True)
class LoadReport:
    influencers: int = 0
    campaigns: int = 0
    posts: int = 0
    links: int = 0
    discount_codes: int = 0
    clicks: int = 0
    bot_clicks: int = 0
    events: int = 0
    rejected_events: int = 0
    # Webhook answers by status ("applied", "duplicate", ...), per topic.
    orders: Counter[str] = field(default_factory=Counter)
    refunds: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)


class _Http:
    """Keep-alive HTTP/1.1 to one server, one connection per thread; retries what a busy
    server asks to retry (429, 5xx, a webhook's concurrent delivery, dropped connections)."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._timeout = timeout
        self._local = threading.local()
        self._opened: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            connection = kind(self._host, self._port, timeout=self._timeout)
            self._local.connection = connection
            with self._lock:
                self._opened.append(connection)
        return connection

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            connection.close()

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
        self._local.connection = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        expect: tuple[int, ...] = (200, 201),
    ) -> tuple[int, bytes, http.client.HTTPResponse]:
        delay = 0.05
        for _ in range(_ATTEMPTS):
            try:
                connection = self._connection()
                connection.request(method, path, body=body, headers=headers or {})
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException):
                self._drop()
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if response.status in expect:
                return response.status, data, response
            busy = response.status == 429 or response.status >= 500
            if busy or (response.status == 409 and _concurrent(data)):
                retry_after = response.getheader("retry-after")
                time.sleep(min(float(retry_after), 2.0) if retry_after else delay)
                delay = min(delay * 2, 2.0)
                continue
            raise LoadError(f"{method} {path} answered {response.status}: {data[:500]!r}")
        raise LoadError(f"{method} {path} kept failing after {_ATTEMPTS} attempts")

    def json(
        self,
        method: str,
        path: str,
        payload: Any,
        headers: dict[str, str],
    ) -> Any:
        body = None if payload is None else orjson.dumps(payload)
        _, data, _ = self.request(
            method, path, body, {**headers, "Content-Type": "application/json"}
        )
        return orjson.loads(data) if data else None


class _Pacer:
    """Spreads events over time at ``per_second``, shared by every sender: the write key's rate
    limit answers a burst with 429 and a whole second of Retry-After."""

    def __init__(self, per_second: float | None) -> None:
        self._interval = 1.0 / per_second if per_second else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self, count: int) -> None:
        if not self._interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now)
            self._next = start + count * self._interval
        if start > now:
            time.sleep(start - now)


def events_per_second(rate_limit: str, share: float = 0.9) -> float:
    """``share`` of the strictest rate of a write-key limit in ``limits`` syntax
    (``STORELOOP_RATE_LIMIT``, e.g. ``2000/second;100000/hour``)."""
    items = parse_many(rate_limit)
    return share * min(item.amount / item.get_expiry() for item in items)


def _concurrent(body: bytes) -> bool:
    """A 409 that asks for a retry: another delivery of the same order was being applied."""
    return b'"concurrent_delivery"' in body


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@dataclass(slots=True)
class _Store:
    """What the setup made that later phases need: the workspace, its webhook secret, and where
    each link's redirect sends a visitor."""

    workspace_id: str = ""
    webhook_secret: bytes = b""
    redirects: dict[str, str] = field(default_factory=dict)  # link code -> Location


class Loader:
    def __init__(
        self,
        scenario: Scenario,
        target: Target,
        *,
        progress: Progress | None = None,
        backlog: Callable[[], int] | None = None,
        senders: int = 8,
        events_per_second: float | None = None,
        worker_timeout_s: float = 600.0,
    ) -> None:
        """``backlog`` answers how much work the background worker still has (0 when done; see
        ``WorkerBacklog``); without it the loader does not wait for the worker.
        ``senders`` batches are in flight at once: the group-commit writer puts concurrent
        requests in one transaction (measured on SQLite: 8 load the events a fifth faster than
        4). ``events_per_second`` paces the tracking API below the write key's rate limit (see
        ``events_per_second()``)."""
        self.scenario = scenario
        self.target = target
        self.progress: Progress = progress or _NoProgress()
        self.backlog = backlog
        self.senders = senders
        self.worker_timeout_s = worker_timeout_s
        self.pacer = _Pacer(events_per_second)
        self.http = _Http(target.base_url)
        self.report = LoadReport()
        self.store = _Store()
        # Click id per visit (by position in scenario.visits), from the click import.
        self.click_ids: dict[int, str] = {}
        self._secret_headers = {"Authorization": f"Bearer {target.secret_key}"}
        token = base64.b64encode(f"{target.write_key}:".encode()).decode()
        self._write_headers = {
            "Authorization": f"Basic {token}",
            "Content-Type": "application/json",
        }

    def run(self) -> LoadReport:
        try:
            self._timed("store setup", self._set_up)
            self._timed("link clicks", self._import_clicks)
            self._timed("orders and refunds", self._send_orders)
            self._timed("storefront events", self._send_events)
            self._timed(
                "worker: events",
                lambda: self._wait_for_worker("worker: events → profiles, touchpoints"),
            )
            self._timed("attribution", self._attribute)
        finally:
            self.http.close()
        return self.report

    def _attribute(self) -> None:
        self._api("POST", "/attribution/recompute")
        self._wait_for_worker("worker: attribution of every order")

    def _timed(self, name: str, step: Callable[[], None]) -> None:
        started = time.monotonic()
        step()
        self.report.seconds[name] = round(time.monotonic() - started, 1)

    # -- the management API ------------------------------------------------------------------

    def _api(self, method: str, path: str, payload: Any = None) -> Any:
        return self.http.json(method, f"/api/v1{path}", payload, self._secret_headers)

    def _set_up(self) -> None:
        influencers = self.scenario.influencers
        posts = sum(len(plan.posts) for plan in influencers)
        bar = self.progress.phase("store setup (management API)", 2 + 5 * len(influencers) + posts)
        self.store.workspace_id = self._api("GET", "/workspace")["id"]
        secret = secrets.token_hex(32)
        self._api(
            "PATCH",
            "/settings",
            {"allowed_domains": [urlsplit(SHOP).hostname], "shopify_webhook_secret": secret},
        )
        self.store.webhook_secret = secret.encode()
        bar.advance(2)
        for plan in influencers:
            self._set_up_influencer(plan, bar)

    def _set_up_influencer(self, plan: InfluencerPlan, bar: PhaseProgress) -> None:
        influencer = self._api(
            "POST",
            "/influencers",
            {
                "name": plan.name,
                "handles": {plan.platform: plan.handle},
                "contact": {"email": f"{plan.key}@talent-agency.example"},
            },
        )
        self.report.influencers += 1
        first_post = min((post.posted_at for post in plan.posts), default=self.scenario.start)
        campaign = self._api(
            "POST",
            "/campaigns",
            {
                "name": plan.campaign_name,
                "influencer_ids": [influencer["id"]],
                "starts_at": _iso(max(self.scenario.start, first_post - timedelta(days=3))),
                "ends_at": _iso(self.scenario.end),
                "currency": CURRENCY,
                "fee": str(plan.fee),
                "seeding_cost": str(plan.seeding_cost),
                "paid_boost_cost": str(plan.paid_boost_cost),
            },
        )
        self.report.campaigns += 1
        bar.advance(2)
        for post in plan.posts:
            self._api(
                "POST",
                "/posts",
                {
                    "platform": post.platform,
                    "url": post.url,
                    "kind": post.kind,
                    "posted_at": _iso(post.posted_at),
                    "influencer_id": influencer["id"],
                    "campaign_id": campaign["id"],
                    "reach": post.reach,
                    "views": post.views,
                    "likes": post.likes,
                    "comments": post.comments,
                },
            )
            self.report.posts += 1
            bar.advance(1)
        self._api(
            "POST",
            "/links",
            {
                "destination_url": LINK_DESTINATION,
                "code": plan.link_code,
                "influencer_id": influencer["id"],
                "campaign_id": campaign["id"],
            },
        )
        self.report.links += 1
        self._api(
            "POST",
            "/discount-codes",
            {
                "code": plan.discount_code,
                "influencer_id": influencer["id"],
                "campaign_id": campaign["id"],
            },
        )
        self.report.discount_codes += 1
        # Where the redirect sends a visitor (HEAD records no click): the landing URL of every
        # click is this plus the click id, exactly as GET /r/{code} would answer it.
        _, _, response = self.http.request("HEAD", f"/r/{plan.link_code}", expect=(302,))
        location = response.getheader("location")
        if not location:
            raise LoadError(f"HEAD /r/{plan.link_code} answered no Location")
        self.store.redirects[plan.link_code] = location
        bar.advance(3)

    # -- clicks -------------------------------------------------------------------------------

    def _import_clicks(self) -> None:
        clicked = [
            (index, visit) for index, visit in enumerate(self.scenario.visits) if visit.click
        ]
        bar = self.progress.phase("link clicks (click import)", len(clicked))
        for start in range(0, len(clicked), CLICK_IMPORT_SIZE):
            chunk = clicked[start : start + CLICK_IMPORT_SIZE]
            items = []
            for _, visit in chunk:
                click = visit.click
                assert click is not None
                items.append(
                    {
                        "link_code": click.link_code,
                        "clicked_at": _iso(click.at),
                        "user_agent": click.user_agent,
                        "ip": click.ip,
                        "referrer": click.referrer,
                        "anonymous_id": visit.anonymous_id,
                    }
                )
            result = self._api("POST", "/clicks/import", items)
            for (index, _), imported in zip(chunk, result["clicks"], strict=True):
                self.click_ids[index] = imported["id"]
            self.report.clicks += result["imported"]
            self.report.bot_clicks += result["bots"]
            bar.advance(len(chunk))

    # -- storefront events --------------------------------------------------------------------

    def _landing_url(self, code: str, click_id: str) -> str:
        location = self.store.redirects[code]
        base, hash_mark, fragment = location.partition("#")
        separator = "&" if "?" in base else "?"
        return f"{base}{separator}{CLICK_ID_PARAMETER}={click_id}{hash_mark}{fragment}"

    def _visit_events(self, index: int, visit: Visit) -> list[dict[str, Any]]:
        """The visit's events as the storefront script sends them: after a tracked link, the
        page carries the redirect's landing URL (UTM parameters, ``sl_click``), every event the
        click id, and the landing page view the campaign."""
        click_id = self.click_ids.get(index)
        if visit.click is None or click_id is None:
            return visit.events
        landing = self._landing_url(visit.click.link_code, click_id)
        parts = urlsplit(landing)
        campaign = {
            _UTM_CONTEXT[name]: value
            for name, value in parse_qsl(parts.query)
            if name in _UTM_CONTEXT
        }
        events = []
        for position, event in enumerate(visit.events):
            context = dict(event.get("context") or {})
            context["storeloop"] = {"click_id": click_id}
            page = context.get("page")
            if isinstance(page, dict):
                context["page"] = {
                    **page,
                    "url": landing,
                    "path": parts.path,
                    "search": f"?{parts.query}",
                }
            rewritten = {**event, "context": context}
            if position == 0 and event.get("type") == "page":
                context["campaign"] = campaign
                rewritten["properties"] = {
                    **event.get("properties", {}),
                    "url": landing,
                    "path": parts.path,
                }
            events.append(rewritten)
        return events

    def _batches(self) -> Iterator[list[dict[str, Any]]]:
        batch: list[dict[str, Any]] = []
        for index, visit in enumerate(self.scenario.visits):
            for event in self._visit_events(index, visit):
                batch.append(event)
                if len(batch) == BATCH_SIZE:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _send_batch(self, batch: list[dict[str, Any]]) -> tuple[int, int]:
        self.pacer.wait(len(batch))
        body = orjson.dumps({"batch": batch, "sentAt": _iso(datetime.now(UTC))})
        _, data, _ = self.http.request("POST", "/v1/batch", body, self._write_headers)
        answer = orjson.loads(data)
        return int(answer.get("accepted", 0)), len(answer.get("rejected", ()))

    def _send_events(self) -> None:
        total = sum(len(visit.events) for visit in self.scenario.visits)
        bar = self.progress.phase("storefront events (POST /v1/batch)", total)

        def send(batch: list[dict[str, Any]]) -> tuple[int, int]:
            result = self._send_batch(batch)
            bar.advance(len(batch))
            return result

        with ThreadPoolExecutor(self.senders, thread_name_prefix="demo-events") as pool:
            for accepted, rejected in pool.map(send, self._batches()):
                self.report.events += accepted
                self.report.rejected_events += rejected

    # -- waiting for the worker ---------------------------------------------------------------

    def _wait_for_worker(self, description: str) -> None:
        if self.backlog is None:
            return
        pending = self.backlog()
        total = max(pending, 1)
        bar = self.progress.phase(description, total)
        deadline = time.monotonic() + self.worker_timeout_s
        idle_readings = 0
        while idle_readings < 2:
            if time.monotonic() > deadline:
                raise LoadError(
                    f"the background worker still had {pending} items after "
                    f"{self.worker_timeout_s:.0f} s"
                )
            time.sleep(0.2)
            pending = self.backlog()
            idle_readings = idle_readings + 1 if pending == 0 else 0
            total = max(total, pending)
            bar.update(total - pending, total)

    # -- orders -------------------------------------------------------------------------------

    def _send_orders(self) -> None:
        scenario = self.scenario
        orders = [
            (index, visit, visit.order)
            for index, visit in enumerate(scenario.visits)
            if visit.order is not None
        ]
        bar = self.progress.phase(
            "orders and refunds (Shopify webhooks)", len(orders) + len(scenario.refunds)
        )
        plans: dict[str, OrderPlan] = {}

        def send_order(item: tuple[int, Visit, OrderPlan]) -> str:
            index, visit, order = item
            landing = order.landing_page
            click_id = self.click_ids.get(index)
            if visit.click is not None and click_id is not None:
                parts = urlsplit(self._landing_url(visit.click.link_code, click_id))
                landing = f"{parts.path}?{parts.query}"
            payload = shopify_order(order, landing, click_id, _country(visit))
            status = self._webhook("orders/create", payload, f"order-{order.order_id}")
            bar.advance(1)
            return status

        def send_refund(refund: RefundPlan) -> str:
            payload = shopify_refund(refund, plans[refund.order_id])
            status = self._webhook("refunds/create", payload, f"refund-{refund.refund_id}")
            bar.advance(1)
            return status

        for _, _, order in orders:
            plans[order.order_id] = order
        with ThreadPoolExecutor(ORDER_SENDERS, thread_name_prefix="demo-orders") as pool:
            self.report.orders.update(pool.map(send_order, orders))
            self.report.refunds.update(pool.map(send_refund, scenario.refunds))

    def _webhook(self, topic: str, payload: dict[str, Any], delivery: str) -> str:
        body = orjson.dumps(payload)
        signature = base64.b64encode(
            hmac.new(self.store.webhook_secret, body, hashlib.sha256).digest()
        ).decode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": SHOP_DOMAIN,
            "X-Shopify-API-Version": "2026-04",
            # Stable per delivery: a retried request is recognised as the same delivery.
            "X-Shopify-Webhook-Id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SHOP}/{delivery}")),
        }
        _, data, _ = self.http.request(
            "POST", f"/webhooks/shopify/{self.store.workspace_id}", body, headers
        )
        return str(orjson.loads(data).get("status"))


def load_scenario(
    scenario: Scenario,
    target: Target,
    *,
    progress: Progress | None = None,
    backlog: Callable[[], int] | None = None,
    senders: int = 8,
    events_per_second: float | None = None,
) -> LoadReport:
    """Replay ``scenario`` against the server at ``target.base_url``; see ``Loader``."""
    return Loader(
        scenario,
        target,
        progress=progress,
        backlog=backlog,
        senders=senders,
        events_per_second=events_per_second,
    ).run()


# -- Shopify payloads -------------------------------------------------------------------------


def _money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def _line_item_id(order_id: str, position: int) -> int:
    return int(order_id) * 10 + position


def _country(visit: Visit) -> str | None:
    for event in visit.events:
        locale = (event.get("context") or {}).get("locale")
        if isinstance(locale, str):
            return _COUNTRIES.get(locale)
    return None


def shopify_order(
    order: OrderPlan, landing_site: str, click_id: str | None, country: str | None
) -> dict[str, Any]:
    """The Order resource of an ``orders/create`` webhook, as Shopify sends it."""
    number = int(order.order_id) % 100_000
    lines = []
    allocated = Decimal(0)
    for position, (product, size, quantity) in enumerate(order.lines):
        gross = product.price * quantity
        if position == len(order.lines) - 1:
            discount = order.discount - allocated
        else:
            discount = (order.discount * gross / order.subtotal).quantize(CENT)
        allocated += discount
        lines.append(
            {
                "id": _line_item_id(order.order_id, position),
                "product_id": product.product_id,
                "sku": product.sku(size),
                "title": product.name,
                "variant_title": f"{product.colour} / {size}",
                "quantity": quantity,
                "price": _money(product.price),
                "total_discount": _money(discount),
                "taxable": True,
            }
        )
    notes = [{"name": "sl_aid", "value": order.anonymous_id}]
    if click_id is not None:
        notes.append({"name": "sl_click", "value": click_id})
    created = _iso(order.at)
    return {
        "id": int(order.order_id),
        "name": f"#{number}",
        "order_number": number,
        "email": order.email,
        "created_at": created,
        "processed_at": created,
        "updated_at": _iso(order.at + timedelta(seconds=4)),
        "currency": CURRENCY,
        "presentment_currency": CURRENCY,
        "financial_status": "paid",
        "fulfillment_status": None,
        "taxes_included": True,
        "total_line_items_price": _money(order.subtotal),
        "total_discounts": _money(order.discount),
        "subtotal_price": _money(order.subtotal - order.discount),
        "total_tax": _money(order.tax),
        "total_price": _money(order.total),
        "total_shipping_price_set": {
            "shop_money": {"amount": _money(order.shipping), "currency_code": CURRENCY}
        },
        "shipping_lines": [{"title": "Standard", "price": _money(order.shipping)}],
        "discount_codes": (
            [{"code": order.discount_code, "amount": _money(order.discount), "type": "percentage"}]
            if order.discount_code
            else []
        ),
        "line_items": lines,
        "source_name": "web",
        "landing_site": landing_site,
        "referring_site": order.referrer or "",
        "note_attributes": notes,
        "customer": {
            "id": int(order.customer_id),
            "email": order.email,
            "first_name": order.first_name,
            "last_name": order.last_name,
        },
        "billing_address": {
            "first_name": order.first_name,
            "last_name": order.last_name,
            "country_code": country,
        },
        "refunds": [],
    }


def shopify_refund(refund: RefundPlan, order: OrderPlan) -> dict[str, Any]:
    """The Refund resource of a ``refunds/create`` webhook."""
    positions = {(product.product_id, size): i for i, (product, size, _) in enumerate(order.lines)}
    moment = _iso(refund.at)
    return {
        "id": int(refund.refund_id),
        "order_id": int(order.order_id),
        "created_at": moment,
        "processed_at": moment,
        "note": refund.reason,
        "restock": True,
        "refund_line_items": [
            {
                "line_item_id": _line_item_id(
                    order.order_id, positions[(product.product_id, size)]
                ),
                "quantity": quantity,
                "restock_type": "return",
            }
            for product, size, quantity in refund.lines
        ],
        "transactions": [
            {
                "id": int(refund.refund_id) * 10,
                "order_id": int(order.order_id),
                "kind": "refund",
                "status": "success",
                "amount": _money(refund.amount),
                "currency": CURRENCY,
                "gateway": "shopify_payments",
                "processed_at": moment,
            }
        ],
    }


# -- the worker's backlog ---------------------------------------------------------------------


class WorkerBacklog:
    """How much the background worker still has to do for one workspace: inbox entries, queued
    derivations, orders waiting for attribution and, where the analytics tables exist, days
    whose rollups wait to be rebuilt. Read in pipeline order, so an item moving on is counted
    in its next stage rather than missed."""

    DIRTY_DAYS = "rollup_dirty_days"

    def __init__(
        self, engine: Engine, workspace_id: uuid.UUID, spool: Engine | None = None
    ) -> None:
        """``spool``: SQLite's inbox spool (ingestion.spool), where accepted bodies wait."""
        self.engine = engine
        self.spool = spool
        self.workspace_id = workspace_id
        inspector = inspect(engine)
        self._dirty_days = None
        if inspector.has_table(self.DIRTY_DAYS):
            names = {item["name"] for item in inspector.get_columns(self.DIRTY_DAYS)}
            dirty = table(self.DIRTY_DAYS, column("workspace_id", Uuid()))
            query = select(func.count()).select_from(dirty)
            if "workspace_id" in names:
                query = query.where(dirty.c.workspace_id == workspace_id)
            self._dirty_days = query

    def __call__(self) -> int:
        workspace_id = self.workspace_id
        inbox = (
            select(func.count())
            .select_from(InboxEntry)
            .where(InboxEntry.workspace_id == workspace_id)
        )
        waiting = 0
        if self.spool is not None:
            with self.spool.connect() as connection:
                waiting = int(connection.execute(inbox).scalar_one())
        queries: Sequence[Any] = [
            inbox,
            select(func.count())
            .select_from(DerivationTask)
            .where(
                DerivationTask.workspace_id == workspace_id,
                DerivationTask.attempts < _DERIVATION_GIVE_UP,
            ),
            select(func.count())
            .select_from(Order)
            .where(Order.workspace_id == workspace_id, Order.attribution_stale.is_(True)),
        ]
        if self._dirty_days is not None:
            queries = [*queries, self._dirty_days]
        with self.engine.connect() as connection:
            return waiting + sum(int(connection.execute(query).scalar_one()) for query in queries)


# -- progress bars ----------------------------------------------------------------------------


class _RichPhase:
    def __init__(self, progress: RichProgressBars, task: TaskID) -> None:
        self._progress = progress
        self._task = task

    def advance(self, count: int) -> None:
        self._progress.advance(self._task, count)

    def update(self, completed: int, total: int) -> None:
        self._progress.update(self._task, completed=completed, total=total)


class RichProgress:
    """One rich progress bar per phase."""

    def __init__(self, progress: RichProgressBars) -> None:
        self._progress = progress

    def phase(self, description: str, total: int) -> PhaseProgress:
        return _RichPhase(self._progress, self._progress.add_task(description, total=total))
