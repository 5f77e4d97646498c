"""The dirty-day queue: a mark that arrives while a day is recomputed is never lost."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from storeloop.analytics import repository as queue
from storeloop.db import begin_write
from storeloop.kit.timeutil import utcnow
from storeloop.models import RollupDirtyDay
from storeloop.runtime import Runtime
from tests.factories.workspaces import WorkspaceKeys

DAY = date(2026, 3, 14)


def _marks(runtime: Runtime, workspace: WorkspaceKeys) -> int:
    with runtime.session_factory() as session:
        return int(
            session.scalar(select(func.count()).where(RollupDirtyDay.workspace_id == workspace.id))
            or 0
        )


def test_a_mark_during_recomputation_keeps_the_day_queued(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    with runtime.session_factory() as session:
        begin_write(session)
        queue.mark_days(session, workspace.id, [DAY, DAY])
        queue.mark_days(session, workspace.id, [DAY])
        session.commit()
    assert _marks(runtime, workspace) == 2  # one per call: marks are plain inserts

    with runtime.session_factory() as session:
        begin_write(session)
        due = [d for d in queue.due_days(session, utcnow(), 100) if d.workspace_id == workspace.id]
        assert due == [queue.DirtyDay(workspace.id, DAY)]
        read = queue.claim_day(session, due[0])
        assert read is not None
        assert len(read) == 2
        # A writer marks the day while it is being recomputed ...
        queue.mark_days(session, workspace.id, [DAY])
        # ... and clearing what was read leaves that mark for the next pass.
        queue.clear_marks(session, read)
        session.commit()
    assert _marks(runtime, workspace) == 1
