"""Marking the days whose rollups must be recomputed, called in the transaction that changed
the data (ADR 0008): the processor marks event days itself; orders, attribution and profile
merges mark through here."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import timedelta

from sqlalchemy.orm import Session

from storeloop.analytics.repository import AnalyticsRepository, mark_days
from storeloop.kit.timeutil import as_utc
from storeloop.models import Order

# Beyond this, a merged profile's days are not recomputed (they age out of every report).
MAX_MERGE_SPAN = timedelta(days=400)


def mark_order_days(session: Session, workspace_id: uuid.UUID, orders: Collection[Order]) -> None:
    """An order was stored, changed or attributed: its day, and the days of its customer's later
    orders (first or repeat depends on it), must be recomputed."""
    if not orders:
        return
    days = {as_utc(order.placed_at).date() for order in orders}
    days |= AnalyticsRepository(session, workspace_id).later_order_days_of_customers(list(orders))
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
