"""The inbox processor: a retried body queues no derivation twice, and what it refuses is kept.

Within one processor transaction duplicates are merged before the insert; across transactions
only the database knows which events are new (on PostgreSQL the processor asks for its fresh ids
after a plain executemany, on SQLite it reads them from RETURNING).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from storeloop.ingestion.fastpath import SliceChecker
from storeloop.ingestion.processor import MAX_ATTEMPTS, InboxProcessor
from storeloop.ingestion.service import rejection_id
from storeloop.kit.ids import new_id
from storeloop.models import DerivationTask, Event, QuarantinedEvent
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


def _quarantine(runtime: Runtime, workspace_id: uuid.UUID) -> list[QuarantinedEvent]:
    with runtime.session_factory() as session:
        query = (
            select(QuarantinedEvent)
            .where(QuarantinedEvent.workspace_id == workspace_id)
            .order_by(QuarantinedEvent.id)
        )
        return list(session.scalars(query))


def _no_order_id() -> dict[str, Any]:
    message = order_completed()
    del message["properties"]["order_id"]
    return message


def test_a_whole_body_corrected_and_replayed_answers_what_is_still_refused(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A corrected body is checked as a request checks one: the replay answers the messages
    still refused, processing quarantines them without a warning, and a correction in which
    every message is refused is itself refused (the item stays open)."""
    batch = [track(), track()]
    assert client.post("/v1/batch", json={"batch": batch}, headers=workspace.basic_auth).is_success
    with monkeypatch.context() as patch:
        patch.setattr(InboxProcessor, "_store", lambda *_a, **_k: 1 / 0)
        for _ in range(MAX_ATTEMPTS):
            runtime.processor.drain()
    [body] = _quarantine(runtime, workspace.id)
    replay = f"/api/v1/quarantine/{body.id}/replay"

    all_bad = client.post(
        replay, json={"payload": {"batch": [_no_order_id()]}}, headers=workspace.bearer
    )
    assert all_bad.status_code == 422
    error = all_bad.json()["error"]
    assert (error["code"], error["reason"]) == ("replay_invalid", "missing_field")
    assert error["field"] == "batch[0].properties.order_id"
    assert [item["index"] for item in error["rejected"]] == [0]
    assert {item.id: item.status for item in _quarantine(runtime, workspace.id)} == {
        body.id: "open"
    }

    corrected = {"batch": [track(), _no_order_id(), track()]}
    response = client.post(replay, json={"payload": corrected}, headers=workspace.bearer)
    assert response.status_code == 200
    result = response.json()
    assert [(item["index"], item["code"]) for item in result["rejected"]] == [(1, "missing_field")]
    assert result["rejected"][0]["field"] == "batch[1].properties.order_id"
    with caplog.at_level(logging.WARNING, logger="storeloop.ingestion.processor"):
        runtime.processor.drain()
    assert "refused at processing" not in caplog.text
    assert _count(runtime, Event, workspace.id) == 2
    inbox_id = uuid.UUID(result["inbox_id"])
    statuses = {item.id: item.status for item in _quarantine(runtime, workspace.id)}
    assert statuses == {body.id: "replayed", rejection_id(inbox_id, 1): "open"}


def test_a_refusal_made_by_the_request_is_quarantined_by_processing_without_a_warning(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The request answers the refusal and keeps the body whole, writing nothing to the
    quarantine itself (ADR 0014); processing quarantines the refused message from the stored
    body under its derived id, and logs no warning: the sender was told."""
    refused = _no_order_id()
    batch = [track(), refused, track()]
    response = client.post("/v1/batch", json={"batch": batch}, headers=workspace.basic_auth)
    assert response.status_code == 200
    [rejection] = response.json()["rejected"]
    assert (rejection["index"], rejection["code"]) == (1, "missing_field")
    assert _quarantine(runtime, workspace.id) == []
    with caplog.at_level(logging.WARNING, logger="storeloop.ingestion.processor"):
        assert runtime.processor.drain() == 1
    assert "refused at processing" not in caplog.text
    [item] = _quarantine(runtime, workspace.id)
    assert (item.batch_index, item.reason, item.field, item.message_id) == (
        1,
        "missing_field",
        "batch[1].properties.order_id",
        refused["messageId"],
    )
    assert _count(runtime, Event, workspace.id) == 2
    listed = client.get("/api/v1/quarantine", headers=workspace.bearer).json()["items"]
    assert [entry["payload"] for entry in listed] == [refused]


def test_a_message_the_request_accepted_and_the_worker_refuses_is_quarantined(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The request and the worker disagree (here the request's checks are made to pass
    everything, as a rule tightened while a body waits in the inbox would): the acknowledged
    message the worker refuses is quarantined with the validator's reason, not dropped, and the
    valid messages around it are stored."""
    monkeypatch.setattr(SliceChecker, "verdicts", lambda _self, slices: [True] * len(slices))
    monkeypatch.setattr(SliceChecker, "parsed", lambda _self, _raw: True)
    email = f"canary-{uuid.uuid4().hex[:8]}@example.org"
    refused = _no_order_id()
    refused["context"] = {"traits": {"email": email}}
    batch = [track(), refused, track()]
    response = client.post("/v1/batch", json={"batch": batch}, headers=workspace.basic_auth)
    assert response.status_code == 200
    assert response.json().get("rejected", []) == []
    assert _quarantine(runtime, workspace.id) == []
    monkeypatch.undo()

    with caplog.at_level(logging.WARNING, logger="storeloop.ingestion.processor"):
        assert runtime.processor.drain() == 1
    assert _count(runtime, Event, workspace.id) == 2
    [item] = _quarantine(runtime, workspace.id)
    assert (item.batch_index, item.reason, item.field, item.message_id) == (
        1,
        "missing_field",
        "batch[1].properties.order_id",
        refused["messageId"],
    )
    assert "1 accepted messages refused at processing" in caplog.text
    assert email not in caplog.text
    listed = client.get("/api/v1/quarantine", headers=workspace.bearer).json()["items"]
    assert [entry["payload"] for entry in listed] == [refused]


def test_rejection_ids_are_time_ordered_distinct_and_in_batch_order() -> None:
    inbox_id = new_id()
    ids = [rejection_id(inbox_id, index) for index in (0, 1, 2, 499, 70_000, (1 << 20) + 5)]
    assert len(set(ids)) == len(ids)
    assert inbox_id not in ids
    assert all(item.version == 7 and item.variant == uuid.RFC_4122 for item in ids)
    assert all(item.int >> 64 == inbox_id.int >> 64 for item in ids)
    assert ids[:5] == sorted(ids[:5])
    assert rejection_id(inbox_id, 3) == rejection_id(inbox_id, 3)
    assert rejection_id(new_id(), 3) != rejection_id(inbox_id, 3)


def test_a_whole_body_replayed_keeps_its_refusals_and_reopens_if_it_fails_again(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A body set aside whole after failed attempts is replayed under its inbox id and with the
    request's refusals: the message the request refused is quarantined under its id without a
    warning, the valid ones are stored, and a replay that fails again reopens the body's item
    rather than losing it."""
    batch = [track(), _no_order_id(), track()]
    response = client.post("/v1/batch", json={"batch": batch}, headers=workspace.basic_auth)
    assert response.status_code == 200

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the store is down")

    def fail_until_set_aside() -> None:
        with monkeypatch.context() as patch:
            patch.setattr(InboxProcessor, "_store", broken)
            for _ in range(MAX_ATTEMPTS):
                runtime.processor.drain()

    fail_until_set_aside()
    # Set aside whole, with the request's refusal (its item comes with a successful processing).
    [body] = _quarantine(runtime, workspace.id)
    assert (body.reason, body.batch_index, body.refused) == ("processing_failed", None, [1])
    assert _count(runtime, Event, workspace.id) == 0

    # Replayed, and it fails again: the body's item is open once more, not lost.
    replay = f"/api/v1/quarantine/{body.id}/replay"
    assert client.post(replay, headers=workspace.bearer).status_code == 200
    fail_until_set_aside()
    statuses = {item.id: item.status for item in _quarantine(runtime, workspace.id)}
    assert statuses == {body.id: "open"}
    assert _count(runtime, Event, workspace.id) == 0

    # Replayed once more, now it passes: the refused message gets its item, without a warning.
    assert client.post(replay, headers=workspace.bearer).status_code == 200
    with caplog.at_level(logging.WARNING, logger="storeloop.ingestion.processor"):
        runtime.processor.drain()
    assert "refused at processing" not in caplog.text
    assert _count(runtime, Event, workspace.id) == 2
    refused = rejection_id(body.id, 1)
    statuses = {item.id: item.status for item in _quarantine(runtime, workspace.id)}
    assert statuses == {refused: "open", body.id: "replayed"}
