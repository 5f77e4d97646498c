"""Schemathesis over the app's own OpenAPI document: no generated request may get a 5xx.

The tracking routes (/v1/*) are called with the workspace's write key and the management routes
(/api/v1/*) with its secret key, so generated bodies and parameters reach the code behind
authentication instead of stopping at a 401. Every operation gets its own bounded run of
schema-conforming (positive) and schema-violating (negative) cases.

The strategies come from ``as_strategy`` inside ordinary tests rather than from
``schemathesis.pytest.from_fixture``: the latter needs pytest internals (``Item._nodeid``) that
pytest 9 no longer has, and the app must be built per test from the backend's runtime anyway.
"""

from __future__ import annotations

from collections.abc import Callable

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from storeloop.app import create_app
from storeloop.runtime import Runtime
from tests.factories.queries import inbox_count
from tests.factories.workspaces import WorkspaceKeys

AREAS = {
    "tracking": r"^/v1/",
    "management": r"^/api/v1/",
    "webhooks": r"^/webhooks/",
}
EXPECTED_OPERATIONS = {
    "tracking": [
        "POST /v1/alias",
        "POST /v1/batch",
        "POST /v1/group",
        "POST /v1/identify",
        "POST /v1/page",
        "POST /v1/screen",
        "POST /v1/track",
    ],
}


def _operations(runtime: Runtime, area: str) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime=runtime))
    subset = schema.include(path_regex=AREAS[area])
    return [result.ok() for result in subset.get_all_operations()]


def _plausible(case: schemathesis.Case) -> schemathesis.Case:
    """Give each message an identity and the receive time, which the schema cannot demand."""
    body = case.body
    messages = body.get("batch") if isinstance(body, dict) and "batch" in body else [body]
    if isinstance(body, dict):
        body.pop("sentAt", None)
    for message in messages if isinstance(messages, list) else []:
        if isinstance(message, dict):
            if not message.get("userId") and not message.get("anonymousId"):
                message["anonymousId"] = "schemathesis-anon"
            message.pop("timestamp", None)
            message.pop("sentAt", None)
    return case


def _fuzz(
    operation: schemathesis.APIOperation,
    headers: dict[str, str],
    after_each: Callable[[], None],
) -> None:
    positive = operation.as_strategy(GenerationMode.POSITIVE, headers=headers)
    strategy = st.one_of(
        positive,
        positive.map(_plausible),
        operation.as_strategy(GenerationMode.NEGATIVE, headers=headers),
    )

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error])
        after_each()

    run()


def test_tracking_api_never_answers_5xx(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    operations = _operations(runtime, "tracking")
    assert sorted(operation.label for operation in operations) == EXPECTED_OPERATIONS["tracking"]

    def inbox_drains() -> None:
        # Whatever was acknowledged must also be processable: the inbox always drains.
        runtime.processor.drain()
        assert inbox_count(runtime, workspace.id) == 0

    for operation in operations:
        _fuzz(operation, workspace.basic_auth, inbox_drains)


def test_management_api_never_answers_5xx(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    operations = _operations(runtime, "management")
    labels = sorted(operation.label for operation in operations)
    assert "POST /api/v1/quarantine/{item_id}/replay" in labels
    assert "GET /api/v1/keys" in labels
    for operation in operations:
        _fuzz(operation, workspace.bearer, lambda: None)


def test_shop_webhooks_never_answer_5xx(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    # Unsigned requests: they stop at the signature check, which must never fail with a 5xx.
    # Signed bodies with fuzzed fields are covered in tests/orders/test_webhook_fuzz.py.
    operations = _operations(runtime, "webhooks")
    assert sorted(operation.label for operation in operations) == [
        "POST /webhooks/shopify/{workspace_id}",
        "POST /webhooks/woocommerce/{workspace_id}",
    ]
    for operation in operations:
        _fuzz(operation, {}, lambda: None)


def test_every_route_with_input_is_fuzzed(runtime: Runtime) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime=runtime))
    every = {result.ok().label for result in schema.get_all_operations()}
    covered = {op.label for name in AREAS for op in _operations(runtime, name)}
    # Only the operational probes are left out: they take no input.
    assert sorted(every - covered) == ["GET /healthz", "GET /readyz"]
