"""The rollup job: recompute the dirty days, a few per pass, and the cohorts they changed.

It runs in the worker beside the derivation runner (storeloop.derivation), in transactions of
its own: idempotent, and safe to run from several workers. On SQLite a day is computed in a
read transaction and only its replacement takes the database's write lock, so ingestion never
waits for a computation; on PostgreSQL one transaction per day, under an advisory lock.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from storeloop.analytics import repository as queue
from storeloop.analytics.repository import AnalyticsRepository, DirtyDay
from storeloop.analytics.rollups import cohort_rows, compute_day
from storeloop.db import begin_write
from storeloop.kit.timeutil import utcnow

logger = logging.getLogger(__name__)

DAYS_PER_PASS = 4
# A day keeps its first mark's time until it is recomputed: a day marked without pause (today,
# while events arrive) is recomputed at most about this often.
DEFAULT_SETTLE_SECONDS = 5.0
# Cohorts are rebuilt from every order of the workspace: at most this often while orders arrive.
DEFAULT_COHORT_INTERVAL_SECONDS = 60.0
REST_FACTOR = 4
_REST_MEMORY = timedelta(hours=1)


class RefreshRollups:
    """One pass of the job (a derivation-runner job): returns how many days it recomputed."""

    __name__ = "refresh_rollups"

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        cohort_interval_seconds: float = DEFAULT_COHORT_INTERVAL_SECONDS,
    ) -> None:
        self.session_factory = session_factory
        self.settle = timedelta(seconds=settle_seconds)
        self.cohort_interval = timedelta(seconds=cohort_interval_seconds)
        self._cohorts_due: set[uuid.UUID] | None = None
        self._cohorts_built: dict[uuid.UUID, datetime] = {}
        # (workspace, day) -> (when its last recomputation ended, how long it took)
        self._last_run: dict[tuple[uuid.UUID, date], tuple[datetime, timedelta]] = {}

    def __call__(self) -> int:
        now = utcnow()
        with self.session_factory() as session:
            if self._cohorts_due is None:
                # After a restart, whatever changed just before it is rebuilt once.
                self._cohorts_due = set(queue.workspaces_with_orders(session))
            recheck = queue.recheck_due_days(session, now)
            due = queue.due_days(session, now - self.settle, DAYS_PER_PASS, today=now.date())
            session.rollback()
        if recheck:
            with self.session_factory() as session:
                begin_write(session)
                for workspace_id, day in recheck:
                    queue.mark_days(session, workspace_id, [day])
                session.commit()
        self._last_run = {
            key: value for key, value in self._last_run.items() if now - value[0] < _REST_MEMORY
        }
        done = 0
        for dirty in due:
            if self._resting(dirty, now):
                continue
            started = utcnow()
            try:
                changed = self._refresh_day(dirty, now)
            except Exception:
                logger.exception("rolling up a day of workspace %s failed", dirty.workspace_id)
                continue
            if changed is None:
                continue
            finished = utcnow()
            self._last_run[(dirty.workspace_id, dirty.day)] = (finished, finished - started)
            done += 1
            if changed:
                self._cohorts_due.add(dirty.workspace_id)
        for workspace_id in sorted(self._cohorts_due):
            built = self._cohorts_built.get(workspace_id)
            if built is not None and now - built < self.cohort_interval:
                continue
            try:
                self._rebuild_cohorts(workspace_id)
            except Exception:
                logger.exception("rebuilding the cohorts of workspace %s failed", workspace_id)
                continue
            self._cohorts_built[workspace_id] = now
            self._cohorts_due.discard(workspace_id)
        return done

    def _resting(self, dirty: DirtyDay, now: datetime) -> bool:
        """A day that keeps changing (today, under heavy traffic) costs more to recompute as it
        grows: it waits REST_FACTOR times its last recomputation, so the job takes at most
        about a fifth of a core however busy the store is."""
        last = self._last_run.get((dirty.workspace_id, dirty.day))
        if last is None:
            return False
        ended, took = last
        return now - ended < took * REST_FACTOR

    def _refresh_day(self, dirty: DirtyDay, now: datetime) -> bool | None:
        """Recompute one day; whether its orders changed, or None if another worker has it."""
        with self.session_factory() as session:
            if session.get_bind().dialect.name == "postgresql":
                changed = refresh_day(session, dirty, now)
                session.commit()
                return changed
            marks = queue.claim_day(session, dirty)
            if marks is None:
                return None
            rows = compute_day(AnalyticsRepository(session, dirty.workspace_id), dirty.day, now)
            session.rollback()  # end the read transaction before taking the write lock
        with self.session_factory() as session:
            begin_write(session)
            repository = AnalyticsRepository(session, dirty.workspace_id)
            before = repository.order_rollup_fingerprint(dirty.day)
            repository.replace_day(dirty.day, rows)
            changed = repository.order_rollup_fingerprint(dirty.day) != before
            queue.clear_marks(session, marks)
            session.commit()
            return changed

    def _rebuild_cohorts(self, workspace_id: uuid.UUID) -> None:
        with self.session_factory() as session:
            if session.get_bind().dialect.name == "postgresql":
                rebuild_cohorts(session, workspace_id)
                session.commit()
                return
            rows = cohort_rows(AnalyticsRepository(session, workspace_id).all_orders())
            session.rollback()
        with self.session_factory() as session:
            begin_write(session)
            AnalyticsRepository(session, workspace_id).replace_cohorts(rows)
            session.commit()


def refresh_day(session: Session, dirty: DirtyDay, now: datetime) -> bool | None:
    """Recompute one day in the caller's transaction; whether its orders changed, or None when
    another worker holds the day."""
    marks = queue.claim_day(session, dirty)
    if marks is None:
        return None
    repository = AnalyticsRepository(session, dirty.workspace_id)
    before = repository.order_rollup_fingerprint(dirty.day)
    repository.replace_day(dirty.day, compute_day(repository, dirty.day, now))
    queue.clear_marks(session, marks)
    return repository.order_rollup_fingerprint(dirty.day) != before


def rebuild_cohorts(session: Session, workspace_id: uuid.UUID) -> None:
    """Rebuild a workspace's cohorts in the caller's transaction (one rebuild at a time per
    workspace on PostgreSQL: two would each keep their own rows)."""
    queue.lock_cohorts(session, workspace_id)
    repository = AnalyticsRepository(session, workspace_id)
    repository.replace_cohorts(cohort_rows(repository.all_orders()))


def drain(session: Session) -> int:
    """Recompute every dirty day and the cohorts they changed now, in the caller's transaction
    (tests, the demo, benchmarks). Returns how many days were recomputed."""
    total = 0
    changed: set[uuid.UUID] = set()
    while True:
        now = utcnow()
        for workspace_id, day in queue.recheck_due_days(session, now):
            queue.mark_days(session, workspace_id, [day])
        due = queue.due_days(session, now, DAYS_PER_PASS, today=now.date())
        if not due:
            break
        progress = 0
        for dirty in due:
            result = refresh_day(session, dirty, now)
            if result is None:
                continue  # another worker has it
            progress += 1
            if result:
                changed.add(dirty.workspace_id)
        if not progress:
            break
        total += progress
    for workspace_id in sorted(changed):
        rebuild_cohorts(session, workspace_id)
    return total
