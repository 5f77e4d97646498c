"""The official Segment and RudderStack Python SDKs, unchanged, against a live server.

Every call type and an e-commerce order go through each SDK; the events must arrive exactly once,
also when the SDK retries a batch whose acknowledgement was lost after the server stored it.
"""

from __future__ import annotations

import pytest

from storeloop.app import create_app
from storeloop.runtime import Runtime
from tests.conftest import LiveServer
from tests.factories.queries import inbox_count, quarantine_reasons
from tests.factories.sdk import (
    SDKS,
    LoseFirstAcks,
    SdkErrors,
    ThreadedServer,
    make_client,
    send_storefront_session,
    send_tracks,
    stored_events,
)
from tests.factories.workspaces import WorkspaceKeys


@pytest.mark.parametrize("sdk", SDKS)
def test_sdk_session_in_sync_mode_is_stored_exactly_once(
    sdk: str, live_server: LiveServer, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    client = make_client(sdk, live_server.url, workspace.write_key, sync_mode=True)
    expected = send_storefront_session(client)  # sync mode: one POST per call, raises on error
    assert inbox_count(runtime, workspace.id) == len(expected)

    runtime.processor.drain()
    assert stored_events(runtime, workspace.id) == expected
    assert inbox_count(runtime, workspace.id) == 0
    assert quarantine_reasons(runtime, workspace.id) == []


@pytest.mark.parametrize(
    ("sdk", "gzip"), [("segment", True), ("segment", False), ("rudderstack", True)]
)
def test_sdk_batched_uploads_are_stored_exactly_once(
    sdk: str, gzip: bool, live_server: LiveServer, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    errors = SdkErrors()
    client = make_client(
        sdk, live_server.url, workspace.write_key, gzip=gzip, on_error=errors, upload_interval=0.1
    )
    expected = send_storefront_session(client)
    bulk = send_tracks(client, 230)  # more than the SDK's 100-message batches
    client.flush()
    client.join()
    assert errors.calls == []

    runtime.processor.drain()
    stored = stored_events(runtime, workspace.id)
    assert len(stored) == len(expected) + 230
    assert {key: stored[key] for key in expected} == expected
    assert sorted(set(stored) - set(expected)) == sorted(bulk)
    assert {row.type for key, row in stored.items() if key in bulk} == {"track"}
    assert inbox_count(runtime, workspace.id) == 0


@pytest.mark.parametrize("sdk", SDKS)
def test_sdk_retry_after_a_lost_ack_stores_each_event_once(
    sdk: str, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    proxy = LoseFirstAcks(create_app(runtime=runtime), failures=1)
    with ThreadedServer(proxy) as server:
        errors = SdkErrors()
        # upload_size = the session's 8 calls: they leave as one batch, so the attempts are exact.
        client = make_client(
            sdk,
            server.url,
            workspace.write_key,
            on_error=errors,
            max_retries=3,
            upload_size=8,
            upload_interval=1.0,
        )
        expected = send_storefront_session(client)
        client.flush()
        client.join()
    assert errors.calls == []

    # The first attempt was stored and its ack lost; the SDK sent the same batch again.
    assert [(seen.app_status, seen.sent_status) for seen in proxy.seen] == [(200, 503), (200, 200)]
    assert proxy.seen[0].message_ids == proxy.seen[1].message_ids
    assert sorted(proxy.seen[0].message_ids) == sorted(expected)
    if sdk == "segment":
        assert [seen.retry_header for seen in proxy.seen] == [None, "1"]
    # Two inbox entries holding the same messages...
    assert inbox_count(runtime, workspace.id) == 2
    runtime.processor.drain()
    # ...stored once each.
    assert stored_events(runtime, workspace.id) == expected
    assert inbox_count(runtime, workspace.id) == 0


@pytest.mark.parametrize("sdk", SDKS)
def test_sdk_does_not_retry_client_errors(
    sdk: str, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    """A 4xx is final: an SDK that retried it would quarantine the same bad event again and again.

    The SDKs read ``code`` and ``message`` at the top of an error body to classify it.
    """
    proxy = LoseFirstAcks(create_app(runtime=runtime), failures=0)
    with ThreadedServer(proxy) as server:
        unknown_key = SdkErrors()
        client = make_client(sdk, server.url, "slw_not_a_key", on_error=unknown_key, max_retries=1)
        assert client.track(anonymous_id="a1", event="Product Viewed")[0] is True
        client.flush()
        client.join()

        invalid = SdkErrors()
        client = make_client(sdk, server.url, workspace.write_key, on_error=invalid, max_retries=1)
        queued, message = client.track(
            user_id="u1", event="Order Completed", properties={"total": 10}
        )
        assert queued is True
        client.flush()
        client.join()

    assert [(seen.app_status, seen.sent_status) for seen in proxy.seen] == [(401, 401), (400, 400)]
    assert proxy.seen[1].message_ids == [message["messageId"]]
    assert unknown_key.calls == [(401, 1)]
    assert invalid.calls == [(400, 1)]
    # The body is kept for processing, which quarantines the refused event and stores nothing.
    runtime.processor.drain()
    assert quarantine_reasons(runtime, workspace.id) == [
        ("missing_field", "batch[0].properties.order_id")
    ]
    assert inbox_count(runtime, workspace.id) == 0
    assert stored_events(runtime, workspace.id) == {}
