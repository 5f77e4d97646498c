"""The rollup job: recompute the dirty days, a few per pass, and the cohorts they changed.

It runs as a follow-up of the derivation runner (storeloop.derivation), in the worker's
transaction: idempotent, and safe to run from several workers (claims skip locked rows).
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from storeloop.analytics import repository as queue
from storeloop.analytics.repository import AnalyticsRepository
from storeloop.analytics.rollups import cohort_rows, compute_day
from storeloop.kit.timeutil import utcnow
from storeloop.workspaces.keyring import Keyring

logger = logging.getLogger(__name__)

DAYS_PER_PASS = 4
# A day keeps its first mark's time until it is recomputed: a day marked without pause (today,
# while events arrive) is recomputed at most about this often.
DEFAULT_SETTLE_SECONDS = 5.0


class RefreshRollups:
    """Derivation follow-up: returns how many days it recomputed (0 when nothing was due)."""

    __name__ = "refresh_rollups"

    def __init__(self, settle_seconds: float = DEFAULT_SETTLE_SECONDS) -> None:
        self.settle = timedelta(seconds=settle_seconds)

    def __call__(self, session: Session, keyring: Keyring) -> int:
        del keyring  # rollups hold no sealed data
        return refresh_rollups(session, self.settle)


def refresh_rollups(session: Session, settle: timedelta = timedelta(0)) -> int:
    now = utcnow()
    _remark_pending_checkouts(session, now)
    due = queue.due_days(session, now - settle, DAYS_PER_PASS)
    changed_orders: set[uuid.UUID] = set()
    done = 0
    for dirty in due:
        marks = queue.claim_day(session, dirty)
        if marks is None:
            continue
        done += 1
        repository = AnalyticsRepository(session, dirty.workspace_id)
        before = repository.order_rollup_fingerprint(dirty.day)
        rows = compute_day(repository, dirty.day, now)
        repository.replace_day(dirty.day, rows)
        if repository.order_rollup_fingerprint(dirty.day) != before:
            changed_orders.add(dirty.workspace_id)
        queue.clear_marks(session, marks)
    for workspace_id in sorted(changed_orders):
        repository = AnalyticsRepository(session, workspace_id)
        repository.replace_cohorts(cohort_rows(repository.all_orders()))
    return done


def drain(session: Session) -> int:
    """Recompute every dirty day now (tests, the demo, `storeloop analytics rebuild`)."""
    total = 0
    while done := refresh_rollups(session):
        total += done
    return total


def _remark_pending_checkouts(session: Session, now: datetime) -> None:
    """Days computed while some checkout was inside its abandonment window are computed again
    once that window has passed: only then is the checkout abandoned or not."""
    windows: dict[uuid.UUID, timedelta] = {}
    for workspace_id, day, computed_at in queue.pending_checkout_days(session, now):
        if workspace_id not in windows:
            minutes = AnalyticsRepository(session, workspace_id).abandonment_minutes()
            windows[workspace_id] = timedelta(minutes=minutes)
        if computed_at + windows[workspace_id] <= now:
            queue.mark_days(session, workspace_id, [day])
