"""The derivation queue: which stored events are queued, and the runner that hands them on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storeloop.derivation import DerivationRunner, StoredEvent
from storeloop.ingestion.derivation import needs_derivation
from storeloop.kit.crypto import WorkspaceCipher
from storeloop.models import DerivationTask
from storeloop.runtime import Runtime
from tests.factories.events import order_completed, track
from tests.factories.workspaces import WorkspaceKeys


def _page(url: str, referrer: str = "") -> dict[str, object]:
    return {"type": "page", "context": {"page": {"url": url, "referrer": referrer}}}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"type": "track", "event": "Order Completed"}, True),
        ({"type": "track", "event": "Coupon Applied"}, True),
        ({"type": "track", "event": "Product Viewed"}, False),
        (_page("https://shop.example/p/1"), False),
        (_page("https://shop.example/p/1", "https://shop.example/"), False),
        (_page("https://www.shop.example/p/1", "https://shop.example/"), False),
        (_page("https://shop.example/p/1", "https://www.instagram.com/"), True),
        (_page("https://shop.example/p/1?utm_source=ig&utm_medium=social"), True),
        (_page("https://shop.example/p/1?sl_click=0196"), True),
        (_page("https://shop.example/?gclid=abc"), True),
        ({"type": "page", "context": {"campaign": {"source": "newsletter"}}}, True),
        ({"type": "page", "context": {"storeloop": {"click_id": "x"}}}, True),
        ({"type": "identify", "context": {"campaign": {"source": "x"}}}, False),
        # A product view on a landing page carries the landing's campaign: the page view counts.
        (
            {"type": "track", "event": "Product Viewed", "context": {"campaign": {"source": "x"}}},
            False,
        ),
        ({"type": "screen", "context": {"campaign": {"source": "app"}}}, True),
        ({"type": "page", "context": "not an object"}, False),
    ],
)
def test_which_events_are_queued(document: dict[str, object], expected: bool) -> None:
    assert needs_derivation(document) is expected


def _queued(runtime: Runtime, workspace_id: uuid.UUID) -> int:
    with runtime.session_factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(DerivationTask)
                .where(DerivationTask.workspace_id == workspace_id)
            )
            or 0
        )


def test_processor_queues_signal_events_once_and_runner_hands_them_on(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    order = order_completed(order_id="A-1")
    landing = {
        **track(),
        "type": "page",
        "context": {"page": {"url": "https://shop.example/?utm_source=ig", "referrer": ""}},
    }
    batch = [order, landing, track()]
    response = client.post("/v1/batch", json={"batch": batch}, headers=workspace.basic_auth)
    assert response.status_code == 200
    # The same messages again (an SDK retry): no event and no derivation stored twice.
    client.post("/v1/batch", json={"batch": [order, landing]}, headers=workspace.basic_auth)
    runtime.processor.drain()
    assert _queued(runtime, workspace.id) == 2

    seen: list[tuple[uuid.UUID, str]] = []

    def handler(
        session: Session,
        workspace_id: uuid.UUID,
        cipher: WorkspaceCipher,
        events: Sequence[StoredEvent],
    ) -> None:
        seen.extend((workspace_id, event.message_id) for event in events)
        assert all(event.document["messageId"] == event.message_id for event in events)

    runner = DerivationRunner(runtime.session_factory, runtime.keyring, handlers=[handler])
    assert runner.drain() == 2
    assert sorted(seen) == sorted(
        [(workspace.id, order["messageId"]), (workspace.id, landing["messageId"])]
    )
    assert _queued(runtime, workspace.id) == 0
    assert runner.drain() == 0


def test_a_failing_event_is_retried_alone_and_set_aside_after_five_attempts(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    good, bad = order_completed(order_id="G-1"), order_completed(order_id="B-1")
    client.post("/v1/batch", json={"batch": [good, bad]}, headers=workspace.basic_auth)
    runtime.processor.drain()
    derived: list[str] = []

    def handler(
        session: Session,
        workspace_id: uuid.UUID,
        cipher: WorkspaceCipher,
        events: Sequence[StoredEvent],
    ) -> None:
        for event in events:
            if event.message_id == bad["messageId"]:
                raise RuntimeError("cannot derive")
            derived.append(event.message_id)

    runner = DerivationRunner(runtime.session_factory, runtime.keyring, handlers=[handler])
    for _ in range(5):
        runner.process_once()
    # The good event was handed on (first inside the failed batch, then alone, and committed).
    assert set(derived) == {good["messageId"]}
    with runtime.session_factory() as session:
        attempts = session.scalars(
            select(DerivationTask.attempts).where(DerivationTask.workspace_id == workspace.id)
        ).all()
    assert attempts == [5]
    assert runner.process_once() == 0
    # Leave nothing for the runtime fixture's own runner to trip over.
    with runtime.session_factory() as session:
        session.query(DerivationTask).filter(DerivationTask.workspace_id == workspace.id).delete()
        session.commit()
