"""Inbox bodies are kept zstd-compressed before sealing (ADR 0012), and entries written before,
as plain JSON, are still processed."""

from __future__ import annotations

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from storeloop.ingestion.body import InvalidBody, pack_body, unpack_body
from storeloop.kit.crypto import row_aad
from storeloop.kit.ids import new_id
from storeloop.kit.timeutil import utcnow
from storeloop.models import InboxEntry
from storeloop.runtime import Runtime
from tests.factories.events import track
from tests.factories.queries import inbox_count, message_ids
from tests.factories.workspaces import WorkspaceKeys

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def test_pack_and_unpack() -> None:
    body = orjson.dumps({"batch": [track() for _ in range(50)]})
    packed = pack_body(body)
    assert packed.startswith(ZSTD_MAGIC)
    assert len(packed) < len(body) / 4
    assert unpack_body(packed) == body
    # A body stored before compression (or written by a quarantine replay) is plain JSON.
    assert unpack_body(body) == body
    with pytest.raises(InvalidBody):
        unpack_body(ZSTD_MAGIC + b"not a frame")


def test_the_inbox_keeps_the_body_compressed(
    runtime: Runtime, client: TestClient, workspace: WorkspaceKeys
) -> None:
    batch = [track() for _ in range(40)]
    body = orjson.dumps({"batch": batch})
    response = client.post("/v1/batch", content=body, headers=workspace.basic_auth)
    assert response.status_code == 200, response.text
    with (runtime.spool or runtime.engine).connect() as connection:
        entry = connection.execute(
            select(InboxEntry.id, InboxEntry.body_sealed).where(
                InboxEntry.workspace_id == workspace.id
            )
        ).one()
    opened = runtime.keyring.cipher(workspace.id).open(
        entry.body_sealed, row_aad("inbox", entry.id, "body")
    )
    assert opened.startswith(ZSTD_MAGIC)
    assert len(opened) < len(body) / 4
    assert unpack_body(opened) == body
    runtime.processor.drain()
    assert message_ids(runtime, workspace.id) == sorted(m["messageId"] for m in batch)


def test_an_entry_stored_as_plain_json_is_processed(
    runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    batch = [track() for _ in range(3)]
    entry_id = new_id()
    sealed = runtime.keyring.cipher(workspace.id).seal(
        orjson.dumps({"batch": batch}), row_aad("inbox", entry_id, "body")
    )
    with (runtime.spool or runtime.engine).begin() as connection:
        connection.execute(
            insert(InboxEntry),
            [
                {
                    "id": entry_id,
                    "workspace_id": workspace.id,
                    "source": "batch",
                    "received_at": utcnow(),
                    "body_sealed": sealed,
                    "attempts": 0,
                }
            ],
        )
    runtime.processor.drain()
    assert message_ids(runtime, workspace.id) == sorted(m["messageId"] for m in batch)
    assert inbox_count(runtime, workspace.id) == 0
