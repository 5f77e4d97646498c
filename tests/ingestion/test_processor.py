"""The inbox processor's derivation hook across transactions: a retried body queues nothing twice.

Within one processor transaction duplicates are merged before the insert; across transactions
only the database knows which events are new (on PostgreSQL the processor asks for its fresh ids
after a plain executemany, on SQLite it reads them from RETURNING).
"""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from storeloop.models import DerivationTask, Event
from storeloop.runtime import Runtime
from tests.factories.events import order_completed, track
from tests.factories.workspaces import WorkspaceKeys


def _count(
    runtime: Runtime, model: type[DerivationTask] | type[Event], workspace_id: uuid.UUID
) -> int:
    with runtime.session_factory() as session:
        query = select(func.count()).select_from(model).where(model.workspace_id == workspace_id)
        return int(session.scalar(query) or 0)


def test_a_body_sent_again_after_processing_queues_no_derivation_twice(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, other_workspace: WorkspaceKeys
) -> None:
    order = order_completed(order_id="R-1")
    batch = [order, track(), order_completed(order_id="R-2")]
    first = client.post("/v1/batch", json={"batch": batch}, headers=workspace.basic_auth)
    assert first.status_code == 200
    assert runtime.processor.drain() == 1
    assert (
        _count(runtime, Event, workspace.id),
        _count(runtime, DerivationTask, workspace.id),
    ) == (
        3,
        2,
    )

    # The SDK retries (its first answer was lost) and adds one new order: only that one is new.
    again = [*batch, order_completed(order_id="R-3")]
    second = client.post("/v1/batch", json={"batch": again}, headers=workspace.basic_auth)
    assert second.status_code == 200
    assert runtime.processor.drain() == 1
    assert (
        _count(runtime, Event, workspace.id),
        _count(runtime, DerivationTask, workspace.id),
    ) == (
        4,
        3,
    )

    # The same messageIds in another workspace are other events.
    client.post("/v1/batch", json={"batch": batch}, headers=other_workspace.basic_auth)
    assert runtime.processor.drain() == 1
    assert _count(runtime, DerivationTask, other_workspace.id) == 2
    assert _count(runtime, DerivationTask, workspace.id) == 3
