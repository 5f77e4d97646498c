"""Recompute one day's rollups from the raw rows (ADR 0008).

A day is always rebuilt whole: its sessions from its events, its orders, its attribution
credits and clicks. Nothing is added to or subtracted from a stored figure, so late, duplicate
or re-attributed data cannot make a rollup drift from a direct computation over the raw rows.

Sessions end after 30 minutes without an event and, as in most web analytics, at midnight
(UTC): a day's sessions depend on that day's events only.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from datasketches import hll_sketch

from storeloop.analytics.repository import (
    LANDING_SLACK,
    AnalyticsRepository,
    DayEvent,
    DayOrder,
    DayTouchpoint,
)
from storeloop.kit.ids import new_id
from storeloop.models import (
    AttributionRollup,
    ClickRollup,
    CustomerDayRollup,
    OrderRollup,
    TrafficHourRollup,
    TrafficRollup,
    VisitorDayRollup,
)

SESSION_GAP = timedelta(minutes=30)
# HyperLogLog precision: 2^12 registers, about 1.6% standard error; exact in its first modes.
SKETCH_LG_K = 12
DIRECT = "Direct"
UNKNOWN_DEVICE = "unknown"
CANCELLED = "cancelled"

PRODUCT_VIEWED = "Product Viewed"
PRODUCT_ADDED = "Product Added"
CHECKOUT_STARTED = "Checkout Started"
ORDER_COMPLETED = "Order Completed"

Dimensions = tuple[str, uuid.UUID | None, uuid.UUID | None, uuid.UUID | None, str]


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(), UTC)
    return start, start + timedelta(days=1)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def new_sketch() -> hll_sketch:
    return hll_sketch(SKETCH_LG_K)


def _net_revenue(order: DayOrder) -> Decimal:
    if order.status == CANCELLED:
        return Decimal(0)
    return max(order.total - order.refunded_total, Decimal(0))


def customer_key(order: DayOrder) -> str:
    """One customer across orders: the shop's customer id, else the email, else the profile;
    a guest order without any is a customer of its own."""
    if order.customer_external_id:
        return "c:" + order.customer_external_id
    if order.customer_email_index:
        return "e:" + order.customer_email_index
    if order.profile_id is not None:
        return "p:" + str(order.profile_id)
    return "o:" + str(order.id)


def canonical_of(merged: Mapping[uuid.UUID, uuid.UUID]) -> Callable[[uuid.UUID], uuid.UUID]:
    def canonical(profile_id: uuid.UUID) -> uuid.UUID:
        current = profile_id
        for _ in range(16):
            following = merged.get(current)
            if following is None:
                break
            current = following
        return current

    return canonical


def visitor_key(profile_id: uuid.UUID | None, anonymous_id: str | None) -> str | None:
    if profile_id is not None:
        return str(profile_id)
    if anonymous_id:
        return "a:" + anonymous_id
    return None


@dataclass
class _Session:
    visitor: str
    start: datetime
    end: datetime
    device: str
    page_views: int = 0
    product_viewed: bool = False
    added_to_cart: bool = False
    checkout_started: bool = False
    ordered: bool = False
    checkouts: list[datetime] = field(default_factory=list)


@dataclass
class _TrafficCell:
    visitors: set[str] = field(default_factory=set)
    sessions: int = 0
    converted_sessions: int = 0
    product_viewed_sessions: int = 0
    added_to_cart_sessions: int = 0
    checkout_started_sessions: int = 0
    page_views: int = 0
    checkouts_started: int = 0
    abandoned_checkouts: int = 0
    pending_checkouts: int = 0
    recheck_at: datetime | None = None


@dataclass
class _OrderCell:
    orders: int = 0
    gross_revenue: Decimal = Decimal(0)
    net_revenue: Decimal = Decimal(0)
    refunded_amount: Decimal = Decimal(0)
    refunded_orders: int = 0
    first_orders: int = 0
    repeat_orders: int = 0


@dataclass
class _CreditCell:
    orders: Decimal = Decimal(0)
    first_orders: Decimal = Decimal(0)
    refunded_orders: Decimal = Decimal(0)
    gross_revenue: Decimal = Decimal(0)
    net_revenue: Decimal = Decimal(0)


def sessionize(
    events: Iterable[DayEvent], canonical: Callable[[uuid.UUID], uuid.UUID]
) -> list[_Session]:
    by_visitor: dict[str, list[DayEvent]] = defaultdict(list)
    for event in events:
        key = visitor_key(
            None if event.profile_id is None else canonical(event.profile_id), event.anonymous_id
        )
        if key is not None:
            by_visitor[key].append(event)
    sessions: list[_Session] = []
    for visitor, visitor_events in by_visitor.items():
        visitor_events.sort(key=lambda event: event.timestamp)
        current: _Session | None = None
        for event in visitor_events:
            if current is None or event.timestamp - current.end > SESSION_GAP:
                current = _Session(
                    visitor=visitor,
                    start=event.timestamp,
                    end=event.timestamp,
                    device=event.device or UNKNOWN_DEVICE,
                )
                sessions.append(current)
            current.end = event.timestamp
            if event.type in ("page", "screen"):
                current.page_views += 1
            elif event.event == PRODUCT_VIEWED:
                current.product_viewed = True
            elif event.event == PRODUCT_ADDED:
                current.added_to_cart = True
            elif event.event == CHECKOUT_STARTED:
                current.checkout_started = True
                current.checkouts.append(event.timestamp)
            elif event.event == ORDER_COMPLETED:
                current.ordered = True
    return sessions


def _landing(
    session: _Session, touchpoints: Sequence[DayTouchpoint]
) -> tuple[str, uuid.UUID | None, uuid.UUID | None, uuid.UUID | None]:
    for touchpoint in touchpoints:
        if session.start - LANDING_SLACK <= touchpoint.occurred_at <= session.end:
            return (
                touchpoint.channel,
                touchpoint.influencer_id,
                touchpoint.campaign_id,
                touchpoint.post_id,
            )
    return (DIRECT, None, None, None)


def compute_day(
    repository: AnalyticsRepository, day: date, now: datetime
) -> dict[type[Any], list[dict[str, Any]]]:
    """Every rollup row of one day of the repository's workspace."""
    start, end = day_bounds(day)
    window = timedelta(minutes=repository.abandonment_minutes())
    events = repository.events_between(start, end)
    touchpoints = repository.visit_touchpoints_between(start - LANDING_SLACK, end)
    # Orders placed today, and up to one abandonment window after, to close today's checkouts.
    orders_near = repository.orders_between(start, end + max(window, SESSION_GAP))
    live_orders = [order for order in orders_near if order.status != CANCELLED]
    profile_ids = {e.profile_id for e in events if e.profile_id is not None}
    profile_ids |= {t.profile_id for t in touchpoints if t.profile_id is not None}
    profile_ids |= {o.profile_id for o in live_orders if o.profile_id is not None}
    canonical = canonical_of(repository.merged_into(profile_ids))

    orders_by_visitor: dict[str, list[datetime]] = defaultdict(list)
    for order in live_orders:
        if order.profile_id is not None:
            orders_by_visitor[str(canonical(order.profile_id))].append(order.placed_at)
    touchpoints_by_visitor: dict[str, list[DayTouchpoint]] = defaultdict(list)
    for touchpoint in touchpoints:
        key = visitor_key(
            None if touchpoint.profile_id is None else canonical(touchpoint.profile_id),
            touchpoint.anonymous_id,
        )
        if key is not None:
            touchpoints_by_visitor[key].append(touchpoint)

    sessions = sessionize(events, canonical)
    traffic: dict[Dimensions, _TrafficCell] = defaultdict(_TrafficCell)
    visitors_by_device: dict[str, set[str]] = defaultdict(set)
    hourly: dict[tuple[datetime, Dimensions], list[int]] = defaultdict(lambda: [0, 0])
    for session in sessions:
        placed = orders_by_visitor.get(session.visitor, ())
        if any(session.start <= moment <= session.end + SESSION_GAP for moment in placed):
            session.ordered = True
        landing = _landing(session, touchpoints_by_visitor.get(session.visitor, ()))
        dimensions: Dimensions = (*landing, session.device)
        cell = traffic[dimensions]
        cell.visitors.add(session.visitor)
        visitors_by_device[session.device].add(session.visitor)
        cell.sessions += 1
        cell.converted_sessions += session.ordered
        cell.product_viewed_sessions += session.product_viewed
        cell.added_to_cart_sessions += session.added_to_cart
        cell.checkout_started_sessions += session.checkout_started
        cell.page_views += session.page_views
        for started in session.checkouts:
            cell.checkouts_started += 1
            if any(started <= moment <= started + window for moment in placed):
                continue
            if now < started + window:
                cell.pending_checkouts += 1
                closes = started + window
                cell.recheck_at = (
                    closes if cell.recheck_at is None else max(cell.recheck_at, closes)
                )
            else:
                cell.abandoned_checkouts += 1
        hour_cell = hourly[(hour_of(session.start), dimensions)]
        hour_cell[0] += 1
        hour_cell[1] += session.ordered

    # The device of each order: the one its customer browsed on last before ordering.
    device_at: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for session in sessions:
        device_at[session.visitor].append((session.start, session.device))
    day_orders = [order for order in live_orders if order.placed_at < end]
    order_device: dict[uuid.UUID, str] = {}
    for order in day_orders:
        device = UNKNOWN_DEVICE
        if order.profile_id is not None:
            for started, session_device in sorted(
                device_at.get(str(canonical(order.profile_id)), ())
            ):
                if started <= order.placed_at:
                    device = session_device
        order_device[order.id] = device

    first_order_ids = _first_orders(repository, day_orders, start)
    order_cells: dict[tuple[datetime, str, str], _OrderCell] = defaultdict(_OrderCell)
    # (device, currency) -> (customers, new customers)
    customer_cells: dict[tuple[str, str], tuple[set[str], set[str]]] = defaultdict(
        lambda: (set(), set())
    )
    for order in day_orders:
        order_cell = order_cells[(hour_of(order.placed_at), order_device[order.id], order.currency)]
        key = customer_key(order)
        order_cell.orders += 1
        order_cell.gross_revenue += order.total
        order_cell.net_revenue += _net_revenue(order)
        order_cell.refunded_amount += min(order.refunded_total, order.total)
        order_cell.refunded_orders += order.refunded_total > 0
        customers, new_customers = customer_cells[(order_device[order.id], order.currency)]
        customers.add(key)
        if order.id in first_order_ids:
            order_cell.first_orders += 1
            new_customers.add(key)
        else:
            order_cell.repeat_orders += 1

    orders_by_id = {order.id: order for order in day_orders}
    credit_cells: dict[tuple[Any, ...], _CreditCell] = defaultdict(_CreditCell)
    for credit in repository.credits_between(start, end):
        credited = orders_by_id.get(credit.order_id)
        if credited is None:  # cancelled
            continue
        credit_cell = credit_cells[
            (
                credit.model,
                credit.channel,
                credit.influencer_id,
                credit.campaign_id,
                credit.post_id,
                credit.link_id,
                order_device[credited.id],
                credited.currency,
            )
        ]
        credit_cell.orders += credit.credit
        credit_cell.gross_revenue += credit.credit * credited.total
        credit_cell.net_revenue += credit.revenue
        if credited.id in first_order_ids:
            credit_cell.first_orders += credit.credit
        if credited.refunded_total > 0:
            credit_cell.refunded_orders += credit.credit

    click_counts: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    for link_id, is_bot, count in repository.click_counts_between(start, end):
        click_counts[link_id][1 if is_bot else 0] += count
    link_dimensions = repository.link_dimensions(set(click_counts))

    return {
        TrafficRollup: [
            {
                "id": new_id(),
                "day": day,
                "channel": dims[0],
                "influencer_id": dims[1],
                "campaign_id": dims[2],
                "post_id": dims[3],
                "device": dims[4],
                "visitors": len(cell.visitors),
                "visitors_sketch": _sketch(cell.visitors),
                "sessions": cell.sessions,
                "converted_sessions": cell.converted_sessions,
                "product_viewed_sessions": cell.product_viewed_sessions,
                "added_to_cart_sessions": cell.added_to_cart_sessions,
                "checkout_started_sessions": cell.checkout_started_sessions,
                "page_views": cell.page_views,
                "checkouts_started": cell.checkouts_started,
                "abandoned_checkouts": cell.abandoned_checkouts,
                "pending_checkouts": cell.pending_checkouts,
                "recheck_at": cell.recheck_at,
                "computed_at": now,
            }
            for dims, cell in traffic.items()
        ],
        TrafficHourRollup: [
            {
                "id": new_id(),
                "day": day,
                "hour": hour,
                "channel": dims[0],
                "influencer_id": dims[1],
                "campaign_id": dims[2],
                "post_id": dims[3],
                "device": dims[4],
                "sessions": counts[0],
                "converted_sessions": counts[1],
            }
            for (hour, dims), counts in hourly.items()
        ],
        OrderRollup: [
            {
                "id": new_id(),
                "day": day,
                "hour": hour,
                "device": device,
                "currency": currency,
                "orders": cell.orders,
                "gross_revenue": cell.gross_revenue,
                "net_revenue": cell.net_revenue,
                "refunded_amount": cell.refunded_amount,
                "refunded_orders": cell.refunded_orders,
                "first_orders": cell.first_orders,
                "repeat_orders": cell.repeat_orders,
            }
            for (hour, device, currency), cell in order_cells.items()
        ],
        VisitorDayRollup: [
            {
                "id": new_id(),
                "day": day,
                "device": device,
                "visitors": len(visitors),
                "visitors_sketch": _sketch(visitors),
            }
            for device, visitors in visitors_by_device.items()
        ],
        CustomerDayRollup: [
            {
                "id": new_id(),
                "day": day,
                "device": device,
                "currency": currency,
                "customers_sketch": _sketch(customers),
                "new_customers_sketch": _sketch(new_customers),
            }
            for (device, currency), (customers, new_customers) in customer_cells.items()
        ],
        AttributionRollup: [
            {
                "id": new_id(),
                "day": day,
                "model": key[0],
                "channel": key[1],
                "influencer_id": key[2],
                "campaign_id": key[3],
                "post_id": key[4],
                "link_id": key[5],
                "device": key[6],
                "currency": key[7],
                "orders": cell.orders,
                "first_orders": cell.first_orders,
                "refunded_orders": cell.refunded_orders,
                "gross_revenue": cell.gross_revenue,
                "net_revenue": cell.net_revenue,
            }
            for key, cell in credit_cells.items()
        ],
        ClickRollup: [
            {
                "id": new_id(),
                "day": day,
                "link_id": link_id,
                "influencer_id": link_dimensions.get(link_id, (None, None, None))[0],
                "campaign_id": link_dimensions.get(link_id, (None, None, None))[1],
                "post_id": link_dimensions.get(link_id, (None, None, None))[2],
                "clicks": counts[0],
                "bot_clicks": counts[1],
            }
            for link_id, counts in click_counts.items()
        ],
    }


def _first_orders(
    repository: AnalyticsRepository, orders: Sequence[DayOrder], day_start: datetime
) -> set[uuid.UUID]:
    """The orders that are their customer's first (cancelled orders don't count)."""
    earlier = repository.earlier_orders_of_customers(
        day_start,
        {o.customer_external_id for o in orders if o.customer_external_id},
        {o.customer_email_index for o in orders if o.customer_email_index},
        {o.profile_id for o in orders if o.profile_id is not None},
    )
    seen = {customer_key(order) for order in earlier if order.status != CANCELLED}
    first: set[uuid.UUID] = set()
    for order in sorted(orders, key=lambda o: (o.placed_at, o.id)):
        key = customer_key(order)
        if key not in seen:
            first.add(order.id)
            seen.add(key)
    return first


def _sketch(keys: Iterable[str]) -> bytes:
    sketch = new_sketch()
    for key in keys:
        sketch.update(key)
    return bytes(sketch.serialize_compact())


def cohort_rows(orders: Sequence[DayOrder]) -> list[dict[str, Any]]:
    """Customers by the month of their first order, and their orders in each later month."""
    first_month: dict[str, date] = {}
    cells: dict[tuple[str, date, int], list[Any]] = {}
    for order in sorted(orders, key=lambda o: (o.placed_at, o.id)):
        if order.status == CANCELLED:
            continue
        key = customer_key(order)
        month = order.placed_at.date().replace(day=1)
        cohort = first_month.setdefault(key, month)
        offset = (month.year - cohort.year) * 12 + month.month - cohort.month
        cell = cells.setdefault((order.currency, cohort, offset), [set(), 0, Decimal(0)])
        cell[0].add(key)
        cell[1] += 1
        cell[2] += _net_revenue(order)
    return [
        {
            "id": new_id(),
            "currency": currency,
            "cohort_month": cohort,
            "months_since_first": offset,
            "customers": len(cell[0]),
            "orders": cell[1],
            "revenue": cell[2],
        }
        for (currency, cohort, offset), cell in sorted(cells.items(), key=lambda item: item[0])
    ]
