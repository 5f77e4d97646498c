"""CSV import of orders: the UCI Online Retail preset, a custom mapping, row errors, re-import."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from storeloop.models import Order
from storeloop.runtime import Runtime
from tests.factories.orders import UCI_EXCERPT, counts, order_row
from tests.factories.workspaces import WorkspaceKeys

BAD_ROWS = """order,sku,qty,price,date,customer,email
A-1,S1,2,10.50,2026-01-05 10:00:00,17850.0,Buyer@Example.com
A-1,S2,1,4.25,2026-01-05 10:00:00,17850.0,
A-2,S1,two,10.50,2026-01-06 10:00:00,,
A-2,S3,1,3.00,2026-01-06 10:00:00,,
A-3,S1,1,1.00,not a date,,
A-4,S1,1,-5,2026-01-07 10:00:00,,
A-5,S1,1,abc,2026-01-07 10:00:00,,
"""
MAPPING = [
    "order=order_id",
    "sku=sku",
    "qty=quantity",
    "price=unit_price",
    "date=placed_at",
    "customer=customer_id",
    "email=email",
]


def _import(
    client: TestClient, workspace: WorkspaceKeys, body: bytes, **params: object
) -> dict[str, object]:
    response = client.post(
        "/api/v1/orders/import",
        content=body,
        params=params,
        headers={**workspace.bearer, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    result: dict[str, object] = response.json()
    return result


def _net_revenue(runtime: Runtime, workspace: WorkspaceKeys) -> Decimal:
    with runtime.session_factory() as session:
        total = session.scalar(
            select(func.sum(Order.total - Order.refunded_total)).where(
                Order.workspace_id == workspace.id
            )
        )
    return Decimal(total).quantize(Decimal("0.01"))


def test_uci_preset_imports_invoices_and_reimport_changes_nothing(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    body = UCI_EXCERPT.read_bytes()
    first = _import(client, workspace, body, preset="uci-online-retail")
    assert first == {"imported": 34, "updated": 0, "unchanged": 0, "rows": 300, "errors": []}
    assert counts(runtime, workspace.id)["orders"] == 34
    assert counts(runtime, workspace.id)["lines"] == 300
    invoice = order_row(runtime, workspace.id, "536365")
    assert (invoice.currency, invoice.status, invoice.total) == ("GBP", "paid", Decimal("139.12"))
    assert invoice.customer_external_id == "17850"
    cancellation = order_row(runtime, workspace.id, "C536379")
    assert (cancellation.status, cancellation.total) == ("cancelled", Decimal("-27.50"))
    # Positive invoices minus cancellations, computed independently from the 300 rows.
    assert _net_revenue(runtime, workspace) == Decimal("13360.88")

    second = _import(client, workspace, body, preset="uci-online-retail")
    assert second == {"imported": 0, "updated": 0, "unchanged": 34, "rows": 300, "errors": []}
    assert counts(runtime, workspace.id)["orders"] == 34
    assert counts(runtime, workspace.id)["lines"] == 300
    assert _net_revenue(runtime, workspace) == Decimal("13360.88")
    # The same customer's invoices resolve to one profile, and the API filters on it.
    assert order_row(runtime, workspace.id, "536366").profile_id == invoice.profile_id
    page = client.get(
        "/api/v1/orders",
        params={"profile_id": str(invoice.profile_id), "limit": 50},
        headers=workspace.bearer,
    ).json()
    assert sorted(item["external_id"] for item in page["items"]) == [
        "536365",
        "536366",
        "536372",
        "536373",
        "536375",
        "536377",
        "536396",
    ]
    assert {item["customer_external_id"] for item in page["items"]} == {"17850"}


def test_row_errors_are_reported_and_valid_rows_imported(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    result = _import(client, workspace, BAD_ROWS.encode(), map=MAPPING, currency="eur")
    assert result["errors"] == [
        {"line": 4, "column": "qty", "reason": "'two' is not a whole number"},
        {"line": 6, "column": "date", "reason": "'not a date' is not a date"},
        {"line": 7, "column": "price", "reason": "a unit price cannot be negative"},
        {"line": 8, "column": "price", "reason": "'abc' is not a number"},
    ]
    assert (result["imported"], result["rows"]) == (2, 7)
    order = order_row(runtime, workspace.id, "A-1")
    assert (order.currency, order.total, order.customer_external_id) == (
        "EUR",
        Decimal("25.25"),
        "17850",
    )
    assert order.customer_email_index is not None
    guest = order_row(runtime, workspace.id, "A-2")
    assert (guest.total, guest.customer_external_id, guest.profile_id) == (
        Decimal("3.00"),
        None,
        None,
    )
    # Fixing the file and importing again updates the order the bad row belonged to.
    fixed = BAD_ROWS.replace("A-2,S1,two", "A-2,S1,2").encode()
    again = _import(client, workspace, fixed, map=MAPPING, currency="EUR")
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 1, 1)
    assert order_row(runtime, workspace.id, "A-2").total == Decimal("24.00")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"preset": "nope"}, "preset"),
        ({"map": ["order=order_id"], "currency": "EUR"}, "map"),
        ({"map": ["order=colour"], "currency": "EUR"}, "map"),
        ({"map": MAPPING}, "currency"),
        ({"map": [*MAPPING[:-1], "mail=email"], "currency": "EUR"}, "map"),
    ],
)
def test_bad_mapping_is_422_with_field(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    params: dict[str, object],
    field: str,
) -> None:
    response = client.post(
        "/api/v1/orders/import",
        content=BAD_ROWS.encode(),
        params=params,
        headers={**workspace.bearer, "Content-Type": "text/csv"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert counts(runtime, workspace.id)["orders"] == 0


def test_import_needs_a_secret_key(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    response = client.post(
        "/api/v1/orders/import",
        content=UCI_EXCERPT.read_bytes(),
        params={"preset": "uci-online-retail"},
        headers={**workspace.basic_auth, "Content-Type": "text/csv"},
    )
    assert response.status_code == 401
    assert counts(runtime, workspace.id)["orders"] == 0


def test_cli_import_with_progress(
    runtime: Runtime, workspace: WorkspaceKeys, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from storeloop.cli import app
    from storeloop.config import get_settings

    settings = runtime.settings
    monkeypatch.setenv("STORELOOP_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv(
        "STORELOOP_MASTER_KEY",
        settings.master_key.get_secret_value() if settings.master_key else "",
    )
    monkeypatch.setenv(
        "STORELOOP_SECRET_KEY",
        settings.secret_key.get_secret_value() if settings.secret_key else "",
    )
    monkeypatch.setenv("STORELOOP_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        args = [
            "orders",
            "import",
            str(UCI_EXCERPT),
            "--preset",
            "uci-online-retail",
            "--workspace",
            workspace.slug,
        ]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "34 orders imported, 0 updated, 0 unchanged, 0 rows with errors" in result.output
        again = runner.invoke(app, args)
        assert "0 orders imported, 0 updated, 34 unchanged" in again.output
    finally:
        get_settings.cache_clear()
    assert counts(runtime, workspace.id)["orders"] == 34
