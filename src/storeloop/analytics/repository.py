"""Every query of the analytics domain: the dirty-day queue, the raw rows a day is recomputed
from, and the rollups the dashboard reads. Scoped to one workspace, except the queue's claim."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    case,
    delete,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import Session

from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import as_utc, utcnow
from storeloop.models import (
    AttributionCredit,
    AttributionRollup,
    Click,
    ClickRollup,
    CohortRollup,
    CustomerDayRollup,
    Event,
    Link,
    Order,
    OrderRollup,
    Profile,
    RollupDirtyDay,
    StoreSettings,
    Touchpoint,
    TrafficHourRollup,
    TrafficRollup,
    VisitorDayRollup,
)

_DIRTY = cast(Table, RollupDirtyDay.__table__)
# A click's touchpoint is recorded a moment before the landing page view it leads to.
LANDING_SLACK = timedelta(minutes=2)
_CHUNK = 500
# Touchpoints that start a visit; discount codes and shop-provided landings come with orders.
VISIT_TOUCHPOINT_KINDS = ("click", "utm", "referrer")
# How far a merged_into chain is followed (the identity service keeps chains short).
_MAX_MERGE_HOPS = 16


def mark_days(session: Session | Connection, workspace_id: uuid.UUID, days: Iterable[date]) -> None:
    """Queue days of a workspace for recomputation, in the caller's transaction (a session's,
    or a Core connection's like the click writer's). A plain insert: no lock to wait for."""
    ordered = sorted(set(days))
    if not ordered:
        return
    now = utcnow()
    session.execute(
        _DIRTY.insert(),
        [
            {"id": new_id(), "workspace_id": workspace_id, "day": day, "marked_at": now}
            for day in ordered
        ],
    )


def rolled_up_days(session: Session, workspace_id: uuid.UUID) -> list[date]:
    rows = session.scalars(
        select(TrafficRollup.day).where(TrafficRollup.workspace_id == workspace_id).distinct()
    )
    return [_as_date(day) for day in rows]


def link_click_days(session: Session, workspace_id: uuid.UUID, link_id: uuid.UUID) -> list[date]:
    rows = session.scalars(
        select(ClickRollup.day)
        .where(ClickRollup.workspace_id == workspace_id, ClickRollup.link_id == link_id)
        .distinct()
    )
    return [_as_date(day) for day in rows]


class DirtyDay(NamedTuple):
    workspace_id: uuid.UUID
    day: date


def due_days(
    session: Session, marked_before: datetime, limit: int, *, today: date | None = None
) -> list[DirtyDay]:
    """Dirty days of every workspace first marked before ``marked_before``: every workspace's
    today first (a backlog of history must not hold up what the dashboard shows live), then the
    oldest mark first.

    No row lock is taken: ``claim_day`` keeps two workers off the same day."""
    first_marked = func.min(RollupDirtyDay.marked_at)
    is_today = case((RollupDirtyDay.day == today, 0), else_=1) if today else literal(1)
    query = (
        select(RollupDirtyDay.workspace_id, RollupDirtyDay.day)
        .group_by(RollupDirtyDay.workspace_id, RollupDirtyDay.day)
        .having(first_marked <= marked_before)
        .order_by(func.min(is_today), first_marked, RollupDirtyDay.day)
        .limit(limit)
    )
    return [DirtyDay(row[0], _as_date(row[1])) for row in session.execute(query)]


def claim_day(session: Session, dirty: DirtyDay) -> list[uuid.UUID] | None:
    """The marks of the day, read before it is recomputed, or None when another worker is
    recomputing it: on PostgreSQL a transaction-scoped advisory lock per (workspace, day);
    SQLite has one writer at a time already."""
    if session.get_bind().dialect.name == "postgresql":
        key = _advisory_key(dirty.workspace_id, dirty.day.isoformat())
        if not session.scalar(select(func.pg_try_advisory_xact_lock(key))):
            return None
    return list(
        session.scalars(
            select(RollupDirtyDay.id).where(
                RollupDirtyDay.workspace_id == dirty.workspace_id,
                RollupDirtyDay.day == dirty.day,
            )
        )
    )


def _advisory_key(workspace_id: uuid.UUID, name: str) -> int:
    digest = hashlib.blake2b(workspace_id.bytes + name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_cohorts(session: Session, workspace_id: uuid.UUID) -> None:
    """On PostgreSQL, wait for any other rebuild of this workspace's cohorts to commit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_advisory_key(workspace_id, "cohorts"))))


def workspaces_with_orders(session: Session) -> list[uuid.UUID]:
    return list(session.scalars(select(OrderRollup.workspace_id).distinct()))


def clear_marks(session: Session, mark_ids: Sequence[uuid.UUID]) -> None:
    """Delete the marks a recomputation read; later marks stay for the next pass."""
    for chunk in _chunks(sorted(mark_ids)):
        session.execute(delete(RollupDirtyDay).where(RollupDirtyDay.id.in_(chunk)))


def recheck_due_days(session: Session, now: datetime) -> list[tuple[uuid.UUID, date]]:
    """(workspace, day) of rollups computed while checkouts were inside their abandonment
    window, once the last of those windows has closed; oldest first, not already queued."""
    recheck_at = func.min(TrafficRollup.recheck_at)
    rows = session.execute(
        select(TrafficRollup.workspace_id, TrafficRollup.day)
        .where(
            TrafficRollup.recheck_at <= now,
            ~select(RollupDirtyDay.id)
            .where(
                RollupDirtyDay.workspace_id == TrafficRollup.workspace_id,
                RollupDirtyDay.day == TrafficRollup.day,
            )
            .exists(),
        )
        .group_by(TrafficRollup.workspace_id, TrafficRollup.day)
        .order_by(recheck_at)
        .limit(100)
    )
    return [(row[0], _as_date(row[1])) for row in rows]


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


class DayEvent(NamedTuple):
    profile_id: uuid.UUID | None
    anonymous_id: str | None
    timestamp: datetime
    type: str
    event: str | None
    device: str | None


class DayTouchpoint(NamedTuple):
    profile_id: uuid.UUID | None
    anonymous_id: str | None
    occurred_at: datetime
    channel: str
    influencer_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    post_id: uuid.UUID | None


class DayOrder(NamedTuple):
    id: uuid.UUID
    profile_id: uuid.UUID | None
    customer_external_id: str | None
    customer_email_index: str | None
    placed_at: datetime
    currency: str
    total: Decimal
    refunded_total: Decimal
    status: str


class DayCredit(NamedTuple):
    order_id: uuid.UUID
    model: str
    channel: str
    influencer_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    post_id: uuid.UUID | None
    link_id: uuid.UUID | None
    credit: Decimal
    revenue: Decimal


_ORDER_COLUMNS = (
    Order.id,
    Order.profile_id,
    Order.customer_external_id,
    Order.customer_email_index,
    Order.placed_at,
    Order.currency,
    Order.total,
    Order.refunded_total,
    Order.status,
)


def _day_order(row: Any) -> DayOrder:
    return DayOrder(
        row[0],
        row[1],
        row[2],
        row[3],
        as_utc(row[4]),
        row[5],
        Decimal(row[6]),
        Decimal(row[7]),
        row[8],
    )


class AnalyticsRepository:
    def __init__(self, session: Session, workspace_id: uuid.UUID) -> None:
        self.session = session
        self.workspace_id = workspace_id

    @property
    def _is_postgresql(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    # -- settings and identity --------------------------------------------------------------

    def abandonment_minutes(self) -> int:
        value = self.session.scalar(
            select(StoreSettings.abandonment_minutes).where(
                StoreSettings.workspace_id == self.workspace_id
            )
        )
        return 60 if value is None else int(value)

    def merged_into(self, profile_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        """profile -> the profile it was merged into, for these profiles and their successors."""
        result: dict[uuid.UUID, uuid.UUID] = {}
        frontier = set(profile_ids)
        for _ in range(_MAX_MERGE_HOPS):
            if not frontier:
                break
            found: set[uuid.UUID] = set()
            for chunk in _chunks(sorted(frontier)):
                for profile_id, merged_into in self.session.execute(
                    select(Profile.id, Profile.merged_into).where(
                        Profile.workspace_id == self.workspace_id,
                        Profile.id.in_(chunk),
                        Profile.merged_into.is_not(None),
                    )
                ):
                    if merged_into is not None:
                        result[profile_id] = merged_into
                        found.add(merged_into)
            frontier = found - set(result)
        return result

    def profile_time_span(
        self, profile_ids: Collection[uuid.UUID]
    ) -> tuple[datetime, datetime] | None:
        first: datetime | None = None
        last: datetime | None = None
        for chunk in _chunks(sorted(profile_ids)):
            row = self.session.execute(
                select(func.min(Event.timestamp), func.max(Event.timestamp)).where(
                    Event.workspace_id == self.workspace_id, Event.profile_id.in_(chunk)
                )
            ).one()
            if row[0] is None:
                continue
            low, high = as_utc(row[0]), as_utc(row[1])
            first = low if first is None else min(first, low)
            last = high if last is None else max(last, high)
        return None if first is None or last is None else (first, last)

    # -- raw rows of a day ------------------------------------------------------------------

    def events_between(self, start: datetime, end: datetime) -> list[DayEvent]:
        rows = self.session.execute(
            select(
                Event.profile_id,
                Event.anonymous_id,
                Event.timestamp,
                Event.type,
                Event.event,
                Event.device,
            ).where(
                Event.workspace_id == self.workspace_id,
                Event.timestamp >= start,
                Event.timestamp < end,
            )
        )
        return [DayEvent(row[0], row[1], as_utc(row[2]), row[3], row[4], row[5]) for row in rows]

    def visit_touchpoints_between(self, start: datetime, end: datetime) -> list[DayTouchpoint]:
        rows = self.session.execute(
            select(
                Touchpoint.profile_id,
                Touchpoint.anonymous_id,
                Touchpoint.occurred_at,
                Touchpoint.channel,
                Touchpoint.influencer_id,
                Touchpoint.campaign_id,
                Touchpoint.post_id,
            )
            .where(
                Touchpoint.workspace_id == self.workspace_id,
                Touchpoint.occurred_at >= start,
                Touchpoint.occurred_at < end,
                Touchpoint.is_bot.is_(False),
                Touchpoint.kind.in_(VISIT_TOUCHPOINT_KINDS),
            )
            .order_by(Touchpoint.occurred_at, Touchpoint.id)
        )
        return [
            DayTouchpoint(row[0], row[1], as_utc(row[2]), row[3], row[4], row[5], row[6])
            for row in rows
        ]

    def orders_between(self, start: datetime, end: datetime) -> list[DayOrder]:
        rows = self.session.execute(
            select(*_ORDER_COLUMNS).where(
                Order.workspace_id == self.workspace_id,
                Order.placed_at >= start,
                Order.placed_at < end,
            )
        )
        return [_day_order(row) for row in rows]

    def earlier_orders_of_customers(
        self,
        before: datetime,
        external_ids: Collection[str],
        email_indexes: Collection[str],
        profile_ids: Collection[uuid.UUID],
    ) -> list[DayOrder]:
        """Orders placed before ``before`` sharing a customer id, email or profile."""
        result: dict[uuid.UUID, DayOrder] = {}
        for column, values in (
            (Order.customer_external_id, sorted(external_ids)),
            (Order.customer_email_index, sorted(email_indexes)),
            (Order.profile_id, sorted(profile_ids)),
        ):
            for chunk in _chunks(values):
                rows = self.session.execute(
                    select(*_ORDER_COLUMNS).where(
                        Order.workspace_id == self.workspace_id,
                        Order.placed_at < before,
                        cast(ColumnElement[Any], column).in_(chunk),
                    )
                )
                for row in rows:
                    result[row[0]] = _day_order(row)
        return list(result.values())

    def later_order_days_of_customers(self, orders: Sequence[Order]) -> set[date]:
        """Days of the orders placed after these by the same customers: whether those are first
        or repeat orders depends on these."""
        conditions: list[ColumnElement[bool]] = []
        for order in orders:
            keys = [
                (Order.customer_external_id, order.customer_external_id),
                (Order.customer_email_index, order.customer_email_index),
                (Order.profile_id, order.profile_id),
            ]
            matches = [column == value for column, value in keys if value is not None]
            if matches:
                conditions.append(and_(Order.placed_at > order.placed_at, or_(*matches)))
        days: set[date] = set()
        for start in range(0, len(conditions), 100):
            rows = self.session.scalars(
                select(Order.placed_at).where(
                    Order.workspace_id == self.workspace_id, or_(*conditions[start : start + 100])
                )
            )
            days.update(as_utc(placed_at).date() for placed_at in rows)
        return days

    def credits_between(self, start: datetime, end: datetime) -> list[DayCredit]:
        rows = self.session.execute(
            select(
                AttributionCredit.order_id,
                AttributionCredit.model,
                AttributionCredit.channel,
                AttributionCredit.influencer_id,
                AttributionCredit.campaign_id,
                AttributionCredit.post_id,
                AttributionCredit.link_id,
                AttributionCredit.credit,
                AttributionCredit.revenue,
            ).where(
                AttributionCredit.workspace_id == self.workspace_id,
                AttributionCredit.placed_at >= start,
                AttributionCredit.placed_at < end,
            )
        )
        return [DayCredit(*row[:7], Decimal(row[7]), Decimal(row[8])) for row in rows]

    def click_counts_between(
        self, start: datetime, end: datetime
    ) -> list[tuple[uuid.UUID, bool, int]]:
        rows = self.session.execute(
            select(Click.link_id, Click.is_bot, func.count())
            .where(
                Click.workspace_id == self.workspace_id,
                Click.clicked_at >= start,
                Click.clicked_at < end,
            )
            .group_by(Click.link_id, Click.is_bot)
        )
        return [(row[0], bool(row[1]), int(row[2])) for row in rows]

    def link_dimensions(
        self, link_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[uuid.UUID | None, uuid.UUID | None, uuid.UUID | None]]:
        result = {}
        for chunk in _chunks(sorted(link_ids)):
            for row in self.session.execute(
                select(Link.id, Link.influencer_id, Link.campaign_id, Link.post_id).where(
                    Link.workspace_id == self.workspace_id, Link.id.in_(chunk)
                )
            ):
                result[row[0]] = (row[1], row[2], row[3])
        return result

    def link_codes(self) -> dict[str | None, str]:
        rows = self.session.execute(
            select(Link.id, Link.code).where(Link.workspace_id == self.workspace_id)
        )
        return {str(row[0]): row[1] for row in rows}

    def all_orders(self) -> list[DayOrder]:
        rows = self.session.execute(
            select(*_ORDER_COLUMNS)
            .where(Order.workspace_id == self.workspace_id)
            .order_by(Order.placed_at, Order.id)
        )
        return [_day_order(row) for row in rows]

    # -- writing rollups --------------------------------------------------------------------

    def order_rollup_fingerprint(self, day: date) -> list[tuple[Any, ...]]:
        rows = self.session.execute(
            select(
                OrderRollup.hour,
                OrderRollup.device,
                OrderRollup.currency,
                OrderRollup.orders,
                OrderRollup.net_revenue,
                OrderRollup.first_orders,
            )
            .where(OrderRollup.workspace_id == self.workspace_id, OrderRollup.day == day)
            .order_by(OrderRollup.hour, OrderRollup.device, OrderRollup.currency)
        )
        return [
            (as_utc(row[0]), row[1], row[2], int(row[3]), Decimal(row[4]), int(row[5]))
            for row in rows
        ]

    def replace_day(self, day: date, rows_by_table: dict[type[Any], list[dict[str, Any]]]) -> None:
        for model in (
            TrafficRollup,
            TrafficHourRollup,
            VisitorDayRollup,
            OrderRollup,
            CustomerDayRollup,
            AttributionRollup,
            ClickRollup,
        ):
            table = cast(Table, model.__table__)
            self.session.execute(
                delete(table).where(table.c.workspace_id == self.workspace_id, table.c.day == day)
            )
            rows = rows_by_table.get(model, [])
            for start in range(0, len(rows), _CHUNK):
                self.session.execute(
                    table.insert(),
                    [
                        {**row, "workspace_id": self.workspace_id}
                        for row in rows[start : _CHUNK + start]
                    ],
                )

    def replace_cohorts(self, rows: list[dict[str, Any]]) -> None:
        table = cast(Table, CohortRollup.__table__)
        self.session.execute(delete(table).where(table.c.workspace_id == self.workspace_id))
        for start in range(0, len(rows), _CHUNK):
            self.session.execute(
                table.insert(),
                [
                    {**row, "workspace_id": self.workspace_id}
                    for row in rows[start : start + _CHUNK]
                ],
            )

    # -- reading rollups --------------------------------------------------------------------

    def traffic(
        self, start: date, end: date, filters: Sequence[ColumnElement[bool]]
    ) -> Sequence[Any]:
        return self.session.execute(
            select(
                func.sum(TrafficRollup.sessions),
                func.sum(TrafficRollup.converted_sessions),
                func.sum(TrafficRollup.product_viewed_sessions),
                func.sum(TrafficRollup.added_to_cart_sessions),
                func.sum(TrafficRollup.checkout_started_sessions),
                func.sum(TrafficRollup.checkouts_started),
                func.sum(TrafficRollup.abandoned_checkouts),
                func.sum(TrafficRollup.pending_checkouts),
                func.min(TrafficRollup.computed_at),
            ).where(
                TrafficRollup.workspace_id == self.workspace_id,
                TrafficRollup.day >= start,
                TrafficRollup.day <= end,
                *filters,
            )
        ).one()

    def traffic_sketches(
        self, start: date, end: date, filters: Sequence[ColumnElement[bool]]
    ) -> Sequence[Any]:
        return self.session.execute(
            select(TrafficRollup.day, TrafficRollup.visitors, TrafficRollup.visitors_sketch).where(
                TrafficRollup.workspace_id == self.workspace_id,
                TrafficRollup.day >= start,
                TrafficRollup.day <= end,
                *filters,
            )
        ).all()

    def traffic_by_day(
        self, start: date, end: date, filters: Sequence[ColumnElement[bool]]
    ) -> Sequence[Any]:
        return self.session.execute(
            select(TrafficRollup.day, func.sum(TrafficRollup.sessions))
            .where(
                TrafficRollup.workspace_id == self.workspace_id,
                TrafficRollup.day >= start,
                TrafficRollup.day <= end,
                *filters,
            )
            .group_by(TrafficRollup.day)
        ).all()

    def traffic_by_hour(
        self, start: date, end: date, filters: Sequence[ColumnElement[bool]]
    ) -> Sequence[Any]:
        return self.session.execute(
            select(TrafficHourRollup.hour, func.sum(TrafficHourRollup.sessions))
            .where(
                TrafficHourRollup.workspace_id == self.workspace_id,
                TrafficHourRollup.day >= start,
                TrafficHourRollup.day <= end,
                *filters,
            )
            .group_by(TrafficHourRollup.hour)
        ).all()

    def traffic_grouped(
        self, column: Any, start: date, end: date, filters: Sequence[ColumnElement[bool]]
    ) -> Sequence[Any]:
        return self.session.execute(
            select(column, func.sum(TrafficRollup.sessions))
            .where(
                TrafficRollup.workspace_id == self.workspace_id,
                TrafficRollup.day >= start,
                TrafficRollup.day <= end,
                *filters,
            )
            .group_by(column)
        ).all()

    def orders(
        self, start: date, end: date, filters: Sequence[ColumnElement[bool]]
    ) -> Sequence[Any]:
        return self.session.execute(
            select(
                OrderRollup.currency,
                func.sum(OrderRollup.orders),
                func.sum(OrderRollup.gross_revenue),
                func.sum(OrderRollup.net_revenue),
                func.sum(OrderRollup.refunded_amount),
                func.sum(OrderRollup.refunded_orders),
                func.sum(OrderRollup.first_orders),
                func.sum(OrderRollup.repeat_orders),
            )
            .where(
                OrderRollup.workspace_id == self.workspace_id,
                OrderRollup.day >= start,
                OrderRollup.day <= end,
                *filters,
            )
            .group_by(OrderRollup.currency)
        ).all()

    def customer_sketches(
        self, start: date, end: date, currency: str, filters: Sequence[ColumnElement[bool]]
    ) -> Sequence[Any]:
        return self.session.execute(
            select(
                CustomerDayRollup.customers_sketch, CustomerDayRollup.new_customers_sketch
            ).where(
                CustomerDayRollup.workspace_id == self.workspace_id,
                CustomerDayRollup.day >= start,
                CustomerDayRollup.day <= end,
                CustomerDayRollup.currency == currency,
                *filters,
            )
        ).all()

    def visitor_day_sketches(
        self, start: date, end: date, filters: Sequence[ColumnElement[bool]]
    ) -> Sequence[Any]:
        return self.session.execute(
            select(
                VisitorDayRollup.day, VisitorDayRollup.visitors, VisitorDayRollup.visitors_sketch
            ).where(
                VisitorDayRollup.workspace_id == self.workspace_id,
                VisitorDayRollup.day >= start,
                VisitorDayRollup.day <= end,
                *filters,
            )
        ).all()

    def orders_by_bucket(
        self, bucket: Any, start: date, end: date, filters: Sequence[ColumnElement[bool]]
    ) -> Sequence[Any]:
        return self.session.execute(
            select(
                bucket,
                OrderRollup.currency,
                func.sum(OrderRollup.orders),
                func.sum(OrderRollup.gross_revenue),
                func.sum(OrderRollup.net_revenue),
            )
            .where(
                OrderRollup.workspace_id == self.workspace_id,
                OrderRollup.day >= start,
                OrderRollup.day <= end,
                *filters,
            )
            .group_by(bucket, OrderRollup.currency)
        ).all()

    def attributed(
        self,
        group: Sequence[Any],
        models: Sequence[str],
        start: date,
        end: date,
        filters: Sequence[ColumnElement[bool]],
    ) -> Sequence[Any]:
        return self.session.execute(
            select(
                *group,
                AttributionRollup.model,
                AttributionRollup.currency,
                func.sum(AttributionRollup.orders),
                func.sum(AttributionRollup.gross_revenue),
                func.sum(AttributionRollup.net_revenue),
                func.sum(AttributionRollup.first_orders),
                func.sum(AttributionRollup.refunded_orders),
            )
            .where(
                AttributionRollup.workspace_id == self.workspace_id,
                AttributionRollup.model.in_(models),
                AttributionRollup.day >= start,
                AttributionRollup.day <= end,
                *filters,
            )
            .group_by(*group, AttributionRollup.model, AttributionRollup.currency)
        ).all()

    def clicks_grouped(
        self, column: Any, start: date, end: date, filters: Sequence[ColumnElement[bool]]
    ) -> Sequence[Any]:
        return self.session.execute(
            select(column, func.sum(ClickRollup.clicks), func.sum(ClickRollup.bot_clicks))
            .where(
                ClickRollup.workspace_id == self.workspace_id,
                ClickRollup.day >= start,
                ClickRollup.day <= end,
                *filters,
            )
            .group_by(column)
        ).all()

    def cohorts(self, start: date, end: date, currency: str | None) -> Sequence[CohortRollup]:
        query = select(CohortRollup).where(
            CohortRollup.workspace_id == self.workspace_id,
            CohortRollup.cohort_month >= start,
            CohortRollup.cohort_month <= end,
        )
        if currency is not None:
            query = query.where(CohortRollup.currency == currency)
        return self.session.scalars(
            query.order_by(CohortRollup.cohort_month, CohortRollup.months_since_first)
        ).all()

    def cohort_currencies(self) -> list[tuple[str, int]]:
        rows = self.session.execute(
            select(CohortRollup.currency, func.sum(CohortRollup.orders))
            .where(CohortRollup.workspace_id == self.workspace_id)
            .group_by(CohortRollup.currency)
        )
        return [(row[0], int(row[1] or 0)) for row in rows]


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
