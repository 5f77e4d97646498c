"""CSV import of orders: the UCI Online Retail preset, a custom mapping, row errors, re-import."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from storeloop.models import Order, Refund
from storeloop.orders.schemas import net_revenue
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
    """Net revenue as attribution counts it: per order, floored at 0, 0 when cancelled."""
    with runtime.session_factory() as session:
        orders = session.scalars(select(Order).where(Order.workspace_id == workspace.id)).all()
        return sum(
            (net_revenue(Decimal(o.total), Decimal(o.refunded_total), o.status) for o in orders),
            Decimal(0),
        ).quantize(Decimal("0.01"))


def _refunds(runtime: Runtime, workspace: WorkspaceKeys) -> list[tuple[str, str, Decimal, str]]:
    with runtime.session_factory() as session:
        rows = session.execute(
            select(Order.external_id, Refund.external_id, Refund.amount, Refund.reason)
            .join(Order, Order.id == Refund.order_id)
            .where(Refund.workspace_id == workspace.id)
            .order_by(Order.external_id, Refund.external_id)
        ).all()
    return [(row[0], row[1], Decimal(row[2]), row[3]) for row in rows]


UNCOVERED = [
    {
        "line": 143,
        "column": "InvoiceNo",
        "reason": "cancellation C536379 of 27.5000 exceeds customer 14527's imported sales "
        "by 27.5000",
    },
    {
        "line": 237,
        "column": "InvoiceNo",
        "reason": "cancellation C536391 of 141.4800 exceeds customer 17548's imported sales "
        "by 141.4800",
    },
]


def test_uci_preset_imports_invoices_and_reimport_changes_nothing(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    body = UCI_EXCERPT.read_bytes()
    first = _import(client, workspace, body, preset="uci-online-retail")
    # 31 invoices; of the 3 cancellations (C invoices, 9 rows) one is charged against the
    # customer's invoice, two cancel sales from before the excerpt and are reported.
    assert first == {
        "imported": 31,
        "updated": 0,
        "unchanged": 0,
        "cancellations": 1,
        "rows": 300,
        "errors": UNCOVERED,
    }
    assert counts(runtime, workspace.id)["orders"] == 31
    assert counts(runtime, workspace.id)["lines"] == 291
    invoice = order_row(runtime, workspace.id, "536365")
    assert (invoice.currency, invoice.status, invoice.total) == ("GBP", "paid", Decimal("139.12"))
    assert invoice.customer_external_id == "17850"
    # C536383 (customer 15311, one set of ducks, 4.65) is a refund of 536381, same customer.
    charged = order_row(runtime, workspace.id, "536381")
    assert (charged.total, charged.refunded_total, charged.status) == (
        Decimal("449.98"),
        Decimal("4.65"),
        "partially_refunded",
    )
    assert _refunds(runtime, workspace) == [("536381", "C536383", Decimal("4.65"), "cancellation")]
    # Positive invoices (13534.51) minus the imported cancellation, computed from the rows.
    assert _net_revenue(runtime, workspace) == Decimal("13529.86")

    second = _import(client, workspace, body, preset="uci-online-retail")
    assert second == {
        "imported": 0,
        "updated": 0,
        "unchanged": 31,
        "cancellations": 1,
        "rows": 300,
        "errors": UNCOVERED,
    }
    assert counts(runtime, workspace.id)["orders"] == 31
    assert counts(runtime, workspace.id)["lines"] == 291
    assert counts(runtime, workspace.id)["refunds"] == 1
    assert _net_revenue(runtime, workspace) == Decimal("13529.86")
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
        {"line": 6, "column": "date", "reason": "'not a date' is not a date (ISO 8601 expected)"},
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
        assert (
            "31 orders imported, 0 updated, 0 unchanged, 1 cancellations, 2 rows with errors"
            in result.output
        )
        again = runner.invoke(app, args)
        assert "0 orders imported, 0 updated, 31 unchanged, 1 cancellations" in again.output
        day_first = tmp_path / "day_first.csv"
        day_first.write_text("order,date,qty,price\nD-1,05/06/2011 10:00,1,2.00\n")
        result = runner.invoke(
            app,
            [
                "orders",
                "import",
                str(day_first),
                "--workspace",
                workspace.slug,
                "--currency",
                "EUR",
                "--map",
                "order=order_id",
                "--map",
                "date=placed_at",
                "--map",
                "qty=quantity",
                "--map",
                "price=unit_price",
                "--date-format",
                "dmy",
            ],
        )
        assert result.exit_code == 0, result.output
    finally:
        get_settings.cache_clear()
    assert counts(runtime, workspace.id)["orders"] == 32
    assert order_row(runtime, workspace.id, "D-1").placed_at.date().isoformat() == "2011-06-05"


def test_line_separators_inside_quoted_cells_do_not_split_rows(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    body = (
        "order,sku,name,qty,price,date\n"
        'L-1,S1,"Scarf\u2028red\x85wool\u2029knit",2,5.00,2026-01-05 10:00:00\n'
        "L-1,S2,Hat,1,3.00,2026-01-05 10:00:00\n"
    )
    result = _import(
        client,
        workspace,
        body.encode(),
        map=[
            "order=order_id",
            "sku=sku",
            "name=name",
            "qty=quantity",
            "price=unit_price",
            "date=placed_at",
        ],
        currency="EUR",
    )
    assert (result["rows"], result["imported"], result["errors"]) == (2, 1, [])
    order = order_row(runtime, workspace.id, "L-1")
    assert order.total == Decimal("13.00")
    detail = client.get(f"/api/v1/orders/{order.id}", headers=workspace.bearer).json()
    assert [line["name"] for line in detail["lines"]] == ["Scarf\u2028red\x85wool\u2029knit", "Hat"]


DATED = """order,date,qty,price
D-1,05/06/2011 10:00,1,2.00
D-2,25/12/2010,1,3.00
"""
DATE_MAP = ["order=order_id", "date=placed_at", "qty=quantity", "price=unit_price"]


def _placed(runtime: Runtime, workspace: WorkspaceKeys, external_id: str) -> str:
    return order_row(runtime, workspace.id, external_id).placed_at.strftime("%Y-%m-%d %H:%M")


def test_slash_dates_need_an_explicit_format(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    hint = "; give the date format (date_format dmy, mdy or a pattern)"
    refused = _import(client, workspace, DATED.encode(), map=DATE_MAP, currency="EUR")
    assert refused["errors"] == [
        {
            "line": 2,
            "column": "date",
            "reason": f"'05/06/2011 10:00' is not a date (ISO 8601 expected){hint}",
        },
        {
            "line": 3,
            "column": "date",
            "reason": f"'25/12/2010' is not a date (ISO 8601 expected){hint}",
        },
    ]
    assert counts(runtime, workspace.id)["orders"] == 0

    day_first = _import(
        client, workspace, DATED.encode(), map=DATE_MAP, currency="EUR", date_format="dmy"
    )
    assert (day_first["imported"], day_first["errors"]) == (2, [])
    assert _placed(runtime, workspace, "D-1") == "2011-06-05 10:00"
    assert _placed(runtime, workspace, "D-2") == "2010-12-25 00:00"

    month_first = _import(
        client, workspace, DATED.encode(), map=DATE_MAP, currency="EUR", date_format="mdy"
    )
    assert month_first["errors"] == [
        {
            "line": 3,
            "column": "date",
            "reason": "'25/12/2010' is not a date (month/day/year expected)",
        }
    ]
    # The csv source keeps the time an order was first placed at (see the merge rules).
    assert _placed(runtime, workspace, "D-1") == "2011-06-05 10:00"

    pattern = _import(
        client,
        workspace,
        b"order,date,qty,price\nD-3,2011.06.05 10h00,1,2.00\n",
        map=DATE_MAP,
        currency="EUR",
        date_format="%Y.%m.%d %Hh%M",
    )
    assert pattern["errors"] == []
    assert _placed(runtime, workspace, "D-3") == "2011-06-05 10:00"


def test_unknown_date_format_is_422(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    response = client.post(
        "/api/v1/orders/import",
        content=DATED.encode(),
        params={"map": DATE_MAP, "currency": "EUR", "date_format": "european"},
        headers={**workspace.bearer, "Content-Type": "text/csv"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "date_format"
    assert counts(runtime, workspace.id)["orders"] == 0


UCI_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"


def test_a_cancellation_is_charged_across_the_customers_invoices(
    client: TestClient, runtime: Runtime, workspace: WorkspaceKeys
) -> None:
    rows = (
        "500001,A,Mug,2,2011-01-01 10:00:00,5.00,100.0,UK\n"  # 10.00
        "500002,B,Tray,1,2011-01-02 10:00:00,8.00,100.0,UK\n"  # 8.00
        "C500003,A,Mug,-2,2011-01-03 10:00:00,5.00,100.0,UK\n"  # cancels 10.00
        "C500003,B,Tray,-1,2011-01-03 10:00:00,3.00,100.0,UK\n"  # and 3.00
        "500004,A,Mug,1,2011-01-04 10:00:00,5.00,100.0,UK\n"  # after it: never charged
        "C500005,A,Mug,-1,2011-01-04 11:00:00,5.00,,UK\n"  # a guest: nothing to charge
        "C500006,A,Mug,-10,2011-01-05 10:00:00,5.00,200.0,UK\n"  # customer 200: sales after it only
        "500007,A,Mug,20,2011-01-06 10:00:00,5.00,200.0,UK\n"
    )
    body = (UCI_HEADER + rows).encode()
    first = _import(client, workspace, body, preset="uci-online-retail")
    guest_error = {
        "line": 7,
        "column": "InvoiceNo",
        "reason": "cancellation C500005 has no customer: no sale to charge it against",
    }
    uncovered_error = {
        "line": 8,
        "column": "InvoiceNo",
        "reason": "cancellation C500006 of 50.0000 exceeds customer 200's imported sales by "
        "50.0000",
    }
    assert first == {
        "imported": 4,
        "updated": 0,
        "unchanged": 0,
        "cancellations": 1,
        "rows": 8,
        "errors": [guest_error, uncovered_error],
    }
    # 13.00: the latest invoice placed before it first (8.00), then the one before (5.00 of 10).
    assert _refunds(runtime, workspace) == [
        ("500001", "C500003", Decimal("5.00"), "cancellation"),
        ("500002", "C500003", Decimal("8.00"), "cancellation"),
    ]
    assert [
        (o.status, o.refunded_total)
        for o in (order_row(runtime, workspace.id, i) for i in ("500001", "500002", "500004"))
    ] == [
        ("partially_refunded", Decimal("5.00")),
        ("refunded", Decimal("8.00")),
        ("paid", Decimal("0.00")),
    ]
    # Sales 10 + 8 + 5 + 100 = 123, minus the imported cancellation 13.
    assert order_row(runtime, workspace.id, "500007").refunded_total == Decimal("0.00")
    assert _net_revenue(runtime, workspace) == Decimal("110.00")

    again = _import(client, workspace, body, preset="uci-online-retail")
    assert (again["unchanged"], again["cancellations"], again["errors"]) == (
        4,
        1,
        [guest_error, uncovered_error],
    )
    assert counts(runtime, workspace.id)["refunds"] == 2
    assert _net_revenue(runtime, workspace) == Decimal("110.00")

    # A corrected file (the tray cancelled at 4.00, 14.00 in all) charges it again.
    corrected = body.replace(b"-1,2011-01-03 10:00:00,3.00", b"-1,2011-01-03 10:00:00,4.00")
    _import(client, workspace, corrected, preset="uci-online-retail")
    assert _refunds(runtime, workspace) == [
        ("500001", "C500003", Decimal("6.00"), "cancellation"),
        ("500002", "C500003", Decimal("8.00"), "cancellation"),
    ]
    assert _net_revenue(runtime, workspace) == Decimal("109.00")
