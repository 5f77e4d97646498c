"""Analytics against an independent computation on real data (issue 4): an excerpt of the UCI
Online Retail dataset is imported through the CLI (`storeloop orders import --preset
uci-online-retail`), the rollups are built (`settle`), and orders, gross and net revenue,
refunds, AOV, new and returning customers, the returning-customer rate, the daily series and the
monthly cohorts (service, JSON API, CSV export) are compared, exactly, with the same figures
computed here with pandas from the excerpt's rows.

The excerpt (tests/fixtures/csv/uci_online_retail_excerpt.csv.gz, cut from the shared copy of
the dataset) holds every line of the customers whose id is a multiple of 25 (their whole
history, cancellation invoices included, December 2010 to December 2011), and the guest
invoices (no CustomerID) whose number is a multiple of 50 and that have at most 20 lines; rows
unchanged. That is
14,742 lines: 777 invoices (58 of guests) of 176 customers, 157 cancellation invoices (147
recorded, 10 refused), 13 monthly cohorts. It is imported in two parts (see ``SPLIT``) so that
later cancellations refund invoices of days already rolled up.

The pandas side follows the documented rules (docs/orders.md, the UCI preset; the analytics
schemas), not storeloop's code:

* an invoice is an order (GBP, paid), placed at its earliest line's time, UTC; its total is
  the sum of quantity x unit price over its lines;
* a ``C`` invoice is not an order: its amount (the negated sum of its negative lines) is a
  refund charged against the same customer's invoices placed at or before it, the latest
  first, each up to what it has not had refunded yet; one without a customer, or larger than
  what those invoices have left, is a row error and not imported;
* net revenue is ``total - refunded`` per order (no order is cancelled here), AOV is gross
  revenue / orders;
* a customer is the CustomerID; a guest order (no CustomerID, no email) is a customer of its
  own; new customers are those whose first order ever falls in the range, returning ones had
  ordered before the range start;
* cohorts: customers by the month of their first order, then per month since: distinct
  customers, orders and net revenue; a range selects the cohorts whose month lies in it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from storeloop.analytics import service
from storeloop.analytics.schemas import KpiQuery
from storeloop.runtime import Runtime
from tests.factories.analytics import settle
from tests.factories.workspaces import WorkspaceKeys

# Every line of the customers whose CustomerID is a multiple of 25 (their whole history,
# cancellations included) and the guest invoices whose number is a multiple of 50 with at most
# 20 lines: 14,742 rows of the shared UCI file, unchanged (see tests/fixtures/README.md).
UCI_EXCERPT = Path(__file__).resolve().parents[1] / "fixtures/csv/uci_online_retail_excerpt.csv.gz"
MONEY = Decimal("0.0001")
FIRST_DAY, LAST_DAY = date(2010, 12, 1), date(2011, 12, 9)
# The excerpt is imported in two parts, rolled up after each: the invoices placed before SPLIT,
# then the whole file (the first part again, unchanged, and the rest: new sales of known
# customers, and cancellations refunding invoices of days already rolled up).
SPLIT = date(2011, 6, 1)
# The whole excerpt, its last full month, a quarter, the last (partial) month, a half year.
RANGES = [
    (FIRST_DAY, LAST_DAY),
    (date(2011, 11, 1), date(2011, 11, 30)),
    (date(2011, 9, 1), date(2011, 11, 30)),
    (date(2011, 12, 1), LAST_DAY),
    (date(2011, 1, 1), date(2011, 6, 30)),
]
COHORT_RANGES = [(FIRST_DAY, LAST_DAY), (date(2011, 3, 1), date(2011, 8, 31))]
API_RANGE = (date(2011, 11, 1), date(2011, 11, 30))


# -- the excerpt ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Excerpt:
    whole: Path
    first_part: Path  # the invoices placed before SPLIT


@pytest.fixture(scope="module")
def excerpt(tmp_path_factory: pytest.TempPathFactory) -> Excerpt:
    chosen = pd.read_csv(UCI_EXCERPT, dtype=str, keep_default_na=False)
    placed = chosen.groupby("InvoiceNo")["InvoiceDate"].transform("min")
    directory = tmp_path_factory.mktemp("uci")
    result = Excerpt(directory / "uci_excerpt.csv", directory / "uci_excerpt_first_part.csv")
    chosen.to_csv(result.whole, index=False)
    chosen[placed < SPLIT.isoformat()].to_csv(result.first_part, index=False)
    return result


# -- the independent computation (documented rules, see the module docstring) -----------------


@dataclass
class Expected:
    orders: pd.DataFrame  # one row per order: key, customer_id, at, day, month, total, refunded
    cancellations: int  # recorded
    rejected: int  # reported as row errors


def _month_number(month: str) -> int:
    year, number = month.split("-")
    return int(year) * 12 + int(number)


def _expected(path: Path) -> Expected:
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows["customer_id"] = rows["CustomerID"].str.replace(r"\.0*$", "", regex=True)
    rows["amount"] = [
        Decimal(quantity) * Decimal(price)
        for quantity, price in zip(rows["Quantity"], rows["UnitPrice"], strict=True)
    ]
    rows["negative"] = rows["amount"].map(lambda amount: min(amount, Decimal(0)))
    rows["at"] = pd.to_datetime(rows["InvoiceDate"], utc=True)
    invoices = rows.groupby("InvoiceNo", sort=False).agg(
        at=("at", "min"),
        customer_id=("customer_id", "first"),
        total=("amount", lambda amounts: sum(amounts, Decimal(0))),
        returned=("negative", lambda amounts: -sum(amounts, Decimal(0))),
    )
    is_cancellation = invoices.index.str.startswith("C")
    orders = invoices[~is_cancellation].copy()
    orders["refunded"] = [Decimal(0)] * len(orders)
    recorded = rejected = 0
    cancellations = invoices[is_cancellation].sort_values("at", kind="stable")
    for at, customer_id, amount in zip(
        cancellations["at"], cancellations["customer_id"], cancellations["returned"], strict=True
    ):
        earlier = orders[(orders["customer_id"] == customer_id) & (orders["at"] <= at)]
        room = earlier["total"] - earlier["refunded"]
        if not customer_id or amount <= 0 or sum(room, Decimal(0)) < amount:
            rejected += 1
            continue
        recorded += 1
        # Latest first. Two invoices of one minute: the later line of the file first (one
        # cancellation of 12.75 meets such a pair; the figures compared do not depend on which).
        left = amount
        for invoice in reversed(earlier.sort_values("at", kind="stable").index):
            share = min(room[invoice], left)
            orders.loc[invoice, "refunded"] += share
            left -= share
        assert left == 0
    orders["key"] = [
        f"customer:{customer_id}" if customer_id else f"guest:{invoice}"
        for invoice, customer_id in zip(orders.index, orders["customer_id"], strict=True)
    ]
    orders["day"] = orders["at"].dt.date
    orders["month"] = orders["at"].dt.strftime("%Y-%m")
    orders["net"] = orders["total"] - orders["refunded"]
    orders["first_day"] = orders.groupby("key")["day"].transform("min")
    orders["cohort"] = orders.groupby("key")["month"].transform("min")
    return Expected(orders=orders, cancellations=recorded, rejected=rejected)


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 6) if denominator else None


def _expected_overview(expected: Expected, start: date, end: date) -> dict[str, Any]:
    orders = expected.orders
    chosen = orders[(orders["day"] >= start) & (orders["day"] <= end)]
    count = len(chosen)
    gross = sum(chosen["total"], Decimal(0))
    refunded = chosen[chosen["refunded"] > 0]
    customers = set(chosen["key"])
    new = set(chosen[chosen["first_day"] >= start]["key"])
    returning = set(chosen[chosen["first_day"] < start]["key"])
    assert customers == new | returning
    assert not new & returning
    return {
        "currency": "GBP",
        "currencies": ["GBP"],
        "orders": Decimal(count),
        "gross_revenue": gross.quantize(MONEY),
        "net_revenue": sum(chosen["net"], Decimal(0)).quantize(MONEY),
        "refunded_amount": sum(chosen["refunded"], Decimal(0)).quantize(MONEY),
        "refunded_orders": Decimal(len(refunded)),
        "refund_rate": _rate(len(refunded), count),
        "average_order_value": (gross / count).quantize(MONEY) if count else None,
        # Each new customer's first order is in the range, and only theirs.
        "first_orders": Decimal(len(new)),
        "repeat_orders": Decimal(count - len(new)),
        "customers": len(customers),
        "new_customers": len(new),
        "returning_customers": len(returning),
        "returning_customer_rate": _rate(len(returning), len(customers)),
    }


def _expected_cohorts(expected: Expected, start: date, end: date) -> dict[str, Any]:
    orders = expected.orders.copy()
    orders["offset"] = orders["month"].map(_month_number) - orders["cohort"].map(_month_number)
    first, last = start.strftime("%Y-%m"), end.strftime("%Y-%m")
    orders = orders[(orders["cohort"] >= first) & (orders["cohort"] <= last)]
    cohorts = []
    for cohort, members in orders.groupby("cohort"):
        base = members[members["offset"] == 0]["key"].nunique()
        months = []
        for offset, cell in members.groupby("offset"):
            customers = cell["key"].nunique()
            months.append(
                {
                    "months_since_first": int(offset),
                    "customers": customers,
                    "orders": len(cell),
                    "revenue": sum(cell["net"], Decimal(0)).quantize(MONEY),
                    "retention": round(customers / base, 6),
                }
            )
        cohorts.append({"cohort": cohort, "customers": base, "months": months})
    return {"currency": "GBP", "cohorts": cohorts}


# -- storeloop's answers ----------------------------------------------------------------------


def _import_with_cli(
    runtime: Runtime,
    workspace: WorkspaceKeys,
    path: Path,
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
) -> str:
    from storeloop.cli import app
    from storeloop.config import get_settings

    settings = runtime.settings
    assert settings.master_key is not None
    assert settings.secret_key is not None
    monkeypatch.setenv("STORELOOP_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("STORELOOP_MASTER_KEY", settings.master_key.get_secret_value())
    monkeypatch.setenv("STORELOOP_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("STORELOOP_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app,
            [
                "orders",
                "import",
                str(path),
                "--preset",
                "uci-online-retail",
                "--workspace",
                workspace.slug,
            ],
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output


OVERVIEW_FIELDS = (
    "currency",
    "currencies",
    "orders",
    "gross_revenue",
    "net_revenue",
    "refunded_amount",
    "refunded_orders",
    "refund_rate",
    "average_order_value",
    "first_orders",
    "repeat_orders",
    "customers",
    "new_customers",
    "returning_customers",
    "returning_customer_rate",
)


def _read(text: str | None, like: Any) -> Any:
    """A JSON or CSV value read back as the type of the expected one. Money and order counts
    are decimal strings, compared as decimals (whatever their trailing zeros)."""
    if like is None:
        assert text in (None, "")
        return None
    assert isinstance(text, str)
    if isinstance(like, Decimal):
        return Decimal(text)
    return type(like)(text)


def _expected_series(expected: Expected, start: date, end: date) -> dict[date, tuple[Any, ...]]:
    orders = expected.orders
    days = pd.date_range(start, end, freq="D").date
    per_day = {day: (Decimal(0), Decimal(0), Decimal(0)) for day in days}
    for day, cell in orders[(orders["day"] >= start) & (orders["day"] <= end)].groupby("day"):
        per_day[day] = (
            Decimal(len(cell)),
            sum(cell["total"], Decimal(0)).quantize(MONEY),
            sum(cell["net"], Decimal(0)).quantize(MONEY),
        )
    return per_day


def _assert_figures(
    runtime: Runtime,
    workspace: WorkspaceKeys,
    expected: Expected,
    ranges: list[tuple[date, date]],
    cohort_ranges: list[tuple[date, date]],
) -> None:
    with runtime.session_factory() as session:
        for start, end in ranges:
            kpis = service.overview(session, workspace.id, KpiQuery(start=start, end=end))
            got = {name: getattr(kpis, name) for name in OVERVIEW_FIELDS}
            assert got == _expected_overview(expected, start, end), (start, end)
            assert kpis.unique_visitors == kpis.sessions == 0
        for start, end in cohort_ranges:
            cohorts = service.cohorts(session, workspace.id, start, end)
            assert cohorts.model_dump() == _expected_cohorts(expected, start, end), (start, end)
        series = service.timeseries(
            session, workspace.id, KpiQuery(start=FIRST_DAY, end=LAST_DAY), "day"
        )
    assert series.currency == "GBP"
    assert {
        point.start.date(): (point.orders, point.gross_revenue, point.net_revenue)
        for point in series.points
    } == _expected_series(expected, FIRST_DAY, LAST_DAY)


def test_uci_excerpt_figures_equal_an_independent_pandas_computation(
    client: TestClient,
    runtime: Runtime,
    workspace: WorkspaceKeys,
    excerpt: Excerpt,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    first = _expected(excerpt.first_part)
    expected = _expected(excerpt.whole)
    orders = expected.orders
    # The excerpt has what the test needs: repeat buyers over many months, cancellations
    # recorded (some over several invoices) and refused, guests, zero-value invoices, and few
    # enough customers for exact distinct counts (HyperLogLog sketches are exact below ~380).
    known = orders[orders["customer_id"] != ""]
    assert (len(orders), known["customer_id"].nunique(), len(orders) - len(known)) == (777, 176, 58)
    assert (expected.cancellations, expected.rejected) == (147, 10)
    assert orders["key"].nunique() < 300
    assert orders["cohort"].nunique() == 13
    assert (known.groupby("customer_id")["month"].nunique() > 1).sum() >= 50
    assert (orders["refunded"] == orders["total"]).sum() >= 10
    assert ((orders["refunded"] > 0) & (orders["refunded"] < orders["total"])).sum() >= 10
    assert (orders["total"] == 0).any()

    output = _import_with_cli(runtime, workspace, excerpt.first_part, monkeypatch, tmp_path)
    rows = len(pd.read_csv(excerpt.first_part, dtype=str))
    assert (
        f"rows {rows}: {len(first.orders)} orders imported, 0 updated, 0 unchanged, "
        f"{first.cancellations} cancellations, {first.rejected} rows with errors"
    ) in " ".join(output.split())
    settle(runtime)
    _assert_figures(
        runtime, workspace, first, [(FIRST_DAY, LAST_DAY), (date(2011, 3, 1), SPLIT)], []
    )

    output = _import_with_cli(runtime, workspace, excerpt.whole, monkeypatch, tmp_path)
    rows = len(pd.read_csv(excerpt.whole, dtype=str))
    assert (
        f"rows {rows}: {len(orders) - len(first.orders)} orders imported, 0 updated, "
        f"{len(first.orders)} unchanged, {expected.cancellations} cancellations, "
        f"{expected.rejected} rows with errors"
    ) in " ".join(output.split())
    settle(runtime)
    _assert_figures(runtime, workspace, expected, RANGES, COHORT_RANGES)

    # The same figures through the API, as JSON and as CSV.
    start, end = API_RANGE
    want = _expected_overview(expected, start, end)
    params = {"start": start.isoformat(), "end": end.isoformat()}
    response = client.get("/api/v1/analytics/overview", params=params, headers=workspace.bearer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {
        name: _read(body[name], value) if isinstance(value, Decimal) else body[name]
        for name, value in want.items()
    } == want
    exported = client.get(
        "/api/v1/analytics/overview", params={**params, "format": "csv"}, headers=workspace.bearer
    )
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    table = dict(csv.reader(io.StringIO(exported.text)))
    assert table.pop("metric") == "value"
    del want["currencies"]  # not exported
    assert {name: _read(table[name], value) for name, value in want.items()} == want

    response = client.get(
        "/api/v1/analytics/cohorts",
        params={"start": FIRST_DAY.isoformat(), "end": LAST_DAY.isoformat()},
        headers=workspace.bearer,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    for cohort in body["cohorts"]:
        for month in cohort["months"]:
            month["revenue"] = _read(month["revenue"], Decimal(0))
    assert body == _expected_cohorts(expected, FIRST_DAY, LAST_DAY)
