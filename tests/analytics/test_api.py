"""The analytics API as a store uses it: an influencer's link clicked by a shopper and a bot, an
order through a Shopify webhook, a leaked code; then the KPIs, the breakdown with two models
side by side, the series, the funnel, the CSV exports, and the errors."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from storeloop.runtime import Runtime
from tests.factories.analytics import message, send, settle
from tests.factories.dashboard import make_store
from tests.factories.workspaces import WorkspaceKeys


@pytest.fixture
def store(client: TestClient, runtime: Runtime, workspace: WorkspaceKeys) -> dict[str, Any]:
    """Maya's campaign (400 EUR), her link clicked by a shopper on a phone and by a crawler,
    the shopper's order (120 EUR), a second order with her leaked code (80 EUR)."""
    made = make_store(client, runtime, workspace)
    return {"maya": {"id": made.maya_id}, "day": made.day}


def _get(client: TestClient, workspace: WorkspaceKeys, path: str, **params: Any) -> Any:
    response = client.get(f"/api/v1/analytics/{path}", params=params, headers=workspace.bearer)
    assert response.status_code == 200, response.text
    return response


def test_overview_breakdown_series_and_funnel(
    client: TestClient, workspace: WorkspaceKeys, store: dict[str, Any]
) -> None:
    day = store["day"]
    kpis = _get(client, workspace, "overview", start=day, end=day).json()
    assert {
        key: kpis[key]
        for key in (
            "unique_visitors",
            "sessions",
            "converted_sessions",
            "orders",
            "gross_revenue",
            "net_revenue",
            "average_order_value",
            "customers",
            "new_customers",
            "returning_customers",
            "currency",
        )
    } == {
        "unique_visitors": 1,
        "sessions": 1,
        "converted_sessions": 1,
        "orders": "2.0000",
        "gross_revenue": "200.0000",
        "net_revenue": "200.0000",
        "average_order_value": "100.0000",
        "customers": 2,
        "new_customers": 2,
        "returning_customers": 0,
        "currency": "EUR",
    }
    assert kpis["conversion_rate"] == 1.0

    # Filtered by the influencer: what last click credits to her, and the visits she brought.
    maya = _get(
        client, workspace, "overview", start=day, end=day, influencer_id=store["maya"]["id"]
    ).json()
    assert (maya["orders"], maya["net_revenue"], maya["sessions"], maya["customers"]) == (
        "2.0000",
        "200.0000",
        1,
        None,
    )
    # A device with no traffic: nothing.
    desktop = _get(client, workspace, "overview", start=day, end=day, device="desktop").json()
    assert (desktop["sessions"], desktop["orders"]) == (0, "0.0000")

    board = _get(
        client,
        workspace,
        "breakdown",
        start=day,
        end=day,
        by="influencer",
        models="last_click,linear",
    ).json()
    assert board["models"] == ["last_click", "linear"]
    row = next(row for row in board["rows"] if row["key"] == store["maya"]["id"])
    assert (row["name"], row["clicks"], row["bot_clicks"], row["bot_share"], row["sessions"]) == (
        "Maya",
        1,
        1,
        0.5,
        1,
    )
    assert row["cost"] == "400.0000"
    assert row["models"]["last_click"] == {
        "orders": "2.0000",
        "revenue": "200.0000",
        "gross_revenue": "200.0000",
        "roi": "-0.5000",
        "roas": "0.5000",
        "cost_per_order": "200.0000",
    }
    assert row["models"]["linear"]["orders"] == "2.0000"

    series = _get(client, workspace, "timeseries", start=day, end=day, granularity="hour").json()
    assert len(series["points"]) == 24
    assert sum(point["sessions"] for point in series["points"]) == 1
    assert [point["orders"] for point in series["points"] if point["orders"] != "0.0000"] in (
        ["2.0000"],
        ["1.0000", "1.0000"],
    )
    funnel = _get(client, workspace, "funnel", start=day, end=day).json()
    assert [(step["step"], step["sessions"]) for step in funnel["steps"]] == [
        ("sessions", 1),
        ("product_viewed", 1),
        ("added_to_cart", 0),
        ("checkout_started", 0),
        ("ordered", 1),
    ]


def test_csv_exports_match_the_json(
    client: TestClient, workspace: WorkspaceKeys, store: dict[str, Any]
) -> None:
    day = store["day"]
    response = _get(
        client, workspace, "breakdown", start=day, end=day, by="influencer", format="csv"
    )
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    maya = next(row for row in rows if row["key"] == store["maya"]["id"])
    assert (maya["name"], maya["clicks"], maya["cost"], maya["last_click_revenue"]) == (
        "Maya",
        "1",
        "400.0000",
        "200.0000",
    )
    overview = _get(client, workspace, "overview", start=day, end=day, format="csv").text
    values = dict(csv.reader(io.StringIO(overview)))
    assert (values["metric"], values["orders"], values["net_revenue"]) == (
        "value",
        "2.0000",
        "200.0000",
    )


def test_other_workspaces_see_nothing(
    client: TestClient,
    workspace: WorkspaceKeys,
    other_workspace: WorkspaceKeys,
    store: dict[str, Any],
) -> None:
    day = store["day"]
    kpis = _get(client, other_workspace, "overview", start=day, end=day).json()
    assert (kpis["sessions"], kpis["orders"], kpis["currency"]) == (0, "0.0000", None)
    board = _get(client, other_workspace, "breakdown", start=day, end=day, by="influencer").json()
    assert board["rows"] == []
    # Filtering on another store's influencer finds nothing either.
    filtered = _get(
        client, other_workspace, "overview", start=day, end=day, influencer_id=store["maya"]["id"]
    ).json()
    assert (filtered["sessions"], filtered["orders"]) == (0, "0.0000")
    # The write key is for ingestion only.
    denied = client.get(
        "/api/v1/analytics/overview",
        params={"start": day, "end": day},
        headers={"Authorization": f"Bearer {workspace.write_key}"},
    )
    assert denied.status_code == 403


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2026-05-02", "end": "2026-05-01"}, "end"),
        ({"start": "2026-05-01", "end": "2026-05-02", "model": "guess"}, "model"),
        ({"start": "2026-05-01", "end": "2026-05-02", "device": "fridge"}, "device"),
        ({"start": "2020-01-01", "end": "2026-05-02"}, "start"),
        ({"start": "9999-12-30", "end": "9999-12-31"}, "start"),
    ],
)
def test_bad_questions_name_the_field(
    client: TestClient, workspace: WorkspaceKeys, params: dict[str, str], field: str
) -> None:
    response = client.get("/api/v1/analytics/overview", params=params, headers=workspace.bearer)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_bad_series_and_breakdowns(client: TestClient, workspace: WorkspaceKeys) -> None:
    api = workspace.bearer
    too_long = client.get(
        "/api/v1/analytics/timeseries",
        params={"start": "2026-01-01", "end": "2026-03-01", "granularity": "hour"},
        headers=api,
    )
    assert (too_long.status_code, too_long.json()["error"]["field"]) == (422, "granularity")
    filtered = client.get(
        "/api/v1/analytics/timeseries",
        params={
            "start": "2026-01-01",
            "end": "2026-01-02",
            "granularity": "hour",
            "channel": "Email",
        },
        headers=api,
    )
    assert (filtered.status_code, filtered.json()["error"]["field"]) == (422, "granularity")
    many = client.get(
        "/api/v1/analytics/breakdown",
        params={
            "start": "2026-01-01",
            "end": "2026-01-02",
            "models": "last_click,linear,first_click,markov,shapley",
        },
        headers=api,
    )
    assert (many.status_code, many.json()["error"]["field"]) == (422, "models")
    missing = client.get("/api/v1/analytics/overview", params={"start": "2026-01-01"}, headers=api)
    assert missing.status_code == 422
    assert "end" in missing.text


def test_the_abandonment_window_is_the_stores(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    """A checkout two hours old without an order is abandoned under the default hour; under a
    three-hour window it is still pending, and left out of the rate."""
    started = datetime.now(UTC) - timedelta(hours=2)
    if started.date() != datetime.now(UTC).date():
        started = datetime.now(UTC).replace(hour=0, minute=1)
    send(
        client,
        workspace,
        [
            message("page", "anon-cart", started - timedelta(minutes=1), "desktop", name="Cart"),
            message("track", "anon-cart", started, "desktop", event="Checkout Started"),
        ],
    )
    settle(runtime)
    day = started.date().isoformat()
    kpis = _get(client, workspace, "overview", start=day, end=day).json()
    expected_abandoned = 1 if datetime.now(UTC) - started > timedelta(hours=1) else 0
    assert (kpis["checkouts_started"], kpis["abandoned_checkouts"]) == (1, expected_abandoned)

    response = client.patch(
        "/api/v1/settings", json={"abandonment_minutes": 180}, headers=workspace.bearer
    )
    assert (response.status_code, response.json()["abandonment_minutes"]) == (200, 180)
    settle(runtime)
    kpis = _get(client, workspace, "overview", start=day, end=day).json()
    assert (kpis["checkouts_started"], kpis["abandoned_checkouts"]) == (1, 0)
    assert kpis["cart_abandonment_rate"] is None

    bad = client.patch(
        "/api/v1/settings", json={"abandonment_minutes": 1}, headers=workspace.bearer
    )
    assert bad.status_code == 422
