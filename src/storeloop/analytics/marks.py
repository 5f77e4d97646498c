"""Marking the days whose rollups must be recomputed, called in the transaction that changed
the data (ADR 0008): the processor marks event days itself; orders, attribution and profile
merges mark through here."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import date, timedelta

from sqlalchemy.orm import Session

from storeloop.analytics.repository import AnalyticsRepository, mark_days
from storeloop.analytics.rollups import SESSION_GAP
from storeloop.kit.timeutil import as_utc
from storeloop.models import Order

# Beyond this, a merged profile's days are not recomputed (they age out of every report).
MAX_MERGE_SPAN = timedelta(days=731)


def mark_order_days(session: Session, workspace_id: uuid.UUID, orders: Collection[Order]) -> None:
    """An order was stored, changed or attributed: its day; the days before it whose sessions
    it converts or whose checkouts it completes (30 minutes, or the abandonment window if
    longer); and the days of its customer's later orders (first or repeat depends on it)."""
    if not orders:
        return
    repository = AnalyticsRepository(session, workspace_id)
    reach = max(timedelta(minutes=repository.abandonment_minutes()), SESSION_GAP)
    days: set[date] = set()
    for order in orders:
        placed_at = as_utc(order.placed_at)
        day = (placed_at - reach).date()
        while day <= placed_at.date():
            days.add(day)
            day += timedelta(days=1)
    days |= repository.later_order_days_of_customers(list(orders))
    mark_days(session, workspace_id, days)


def mark_profile_days(
    session: Session, workspace_id: uuid.UUID, profile_ids: Collection[uuid.UUID]
) -> None:
    """Profiles were merged: their events now count as one visitor, on every day they span."""
    span = AnalyticsRepository(session, workspace_id).profile_time_span(profile_ids)
    if span is None:
        return
    first, last = span
    first = max(first, last - MAX_MERGE_SPAN)
    days = [(first + timedelta(days=offset)).date() for offset in range((last - first).days + 2)]
    mark_days(session, workspace_id, [day for day in days if day <= last.date()])
