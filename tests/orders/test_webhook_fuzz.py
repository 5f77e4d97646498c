"""Signed but arbitrary webhook bodies never get a 5xx: the answer is 200 or a 422 with a field.

Hypothesis replaces one field of the real example payloads (top level, or inside the first line
item) with arbitrary JSON, signs the result with the store's secret and posts it.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storeloop.runtime import Runtime
from tests.factories.orders import (
    php_json,
    set_webhook_secret,
    shopify_headers,
    shopify_payload,
    woocommerce_headers,
    woocommerce_payload,
)
from tests.factories.workspaces import WorkspaceKeys

SECRET = "fuzz-secret"
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _mutate(payload: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    lines = payload.get("line_items")
    if isinstance(lines, list) and lines and data.draw(st.booleans()):
        line = dict(lines[0])
        line[data.draw(st.sampled_from(sorted(line)))] = data.draw(JSON)
        return {**payload, "line_items": [line, *lines[1:]]}
    return {**payload, data.draw(st.sampled_from(sorted(payload))): data.draw(JSON)}


@pytest.mark.parametrize("provider", ["shopify", "woocommerce"])
def test_signed_arbitrary_bodies_never_5xx(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys, provider: str
) -> None:
    set_webhook_secret(runtime, workspace.id, provider, SECRET)
    base = shopify_payload("orders_updated") if provider == "shopify" else woocommerce_payload()
    url = f"/webhooks/{provider}/{workspace.id}"

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        payload = _mutate(base, data)
        if provider == "shopify":
            body = orjson.dumps(payload)
            headers = shopify_headers(SECRET, body, "orders/updated")
        else:
            body = php_json(payload)
            headers = woocommerce_headers(SECRET, body, "order.updated")
        response = client.post(url, content=body, headers=headers)
        assert response.status_code in (200, 422), response.text
        if response.status_code == 422:
            assert response.json()["error"]["code"] == "invalid_order_payload"

    run()
