"""Money parsing (kit.money), net revenue, refund reasons and the URLs kept on orders."""

from __future__ import annotations

from decimal import Decimal

import pytest
from fastapi.testclient import TestClient

from storeloop.kit.money import MAX_MONEY, MONEY_QUANTUM, InvalidMoney, parse_money
from storeloop.orders.schemas import net_revenue, refund_reason
from storeloop.orders.urls import marketing_url
from storeloop.runtime import Runtime
from tests.factories.orders import make_order, order_row
from tests.factories.workspaces import WorkspaceKeys


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("89.99", Decimal("89.9900")),
        (89.99, Decimal("89.9900")),  # a JSON float, read through str(): never 89.98999...
        (12, Decimal("12.0000")),
        (" -4.5 ", Decimal("-4.5000")),
        ("1.23456", Decimal("1.2346")),
        ("0.00005", Decimal("0.0000")),  # half-even
        ("1e3", Decimal("1000.0000")),
        (Decimal("2.5"), Decimal("2.5000")),
        ("99999999999.9999", MAX_MONEY),
        ("-99999999999.9999", -MAX_MONEY),
    ],
)
def test_parse_money_reads_exact_quantized_amounts(raw: object, expected: Decimal) -> None:
    value = parse_money(raw, "price")
    assert value == expected
    assert value.as_tuple().exponent == MONEY_QUANTUM.as_tuple().exponent


@pytest.mark.parametrize(
    "raw",
    [
        None,
        True,
        "",
        "abc",
        "NaN",
        "nan",
        "Infinity",
        float("nan"),
        float("inf"),
        "1_000",
        "0x10",
        "100000000000",  # 12 integer digits
        "99999999999.99995",  # rounds up to 12 digits
        10**11,
        "1e11",
        "1e999999",
        "1" * 80,
        [1],
        {"amount": 1},
    ],
)
def test_parse_money_refuses_non_amounts(raw: object) -> None:
    with pytest.raises(InvalidMoney) as refused:
        parse_money(raw, "properties.total")
    assert refused.value.field == "properties.total"
    assert refused.value.status_code == 422


def test_max_money_is_eleven_integer_digits() -> None:
    assert Decimal("99999999999.9999") == MAX_MONEY


def test_the_largest_amount_round_trips_exactly_through_an_order(
    runtime: Runtime, workspace: WorkspaceKeys, client: TestClient
) -> None:
    # On SQLite the column is a REAL: 15 significant digits are exact, 11 + 4 is the limit.
    make_order(runtime, workspace.id, "MAX-1", total=str(MAX_MONEY))
    order = order_row(runtime, workspace.id, "MAX-1")
    assert (Decimal(order.total), Decimal(order.subtotal)) == (MAX_MONEY, MAX_MONEY)
    detail = client.get(f"/api/v1/orders/{order.id}", headers=workspace.bearer).json()
    assert Decimal(detail["total"]) == MAX_MONEY
    assert Decimal(detail["lines"][0]["unit_price"]) == MAX_MONEY
    make_order(runtime, workspace.id, "MIN-1", total="0.0001")
    assert Decimal(order_row(runtime, workspace.id, "MIN-1").total) == Decimal("0.0001")


def test_net_revenue_of_cancelled_orders_is_zero_and_never_negative() -> None:
    assert net_revenue(Decimal("100"), Decimal("30"), "partially_refunded") == Decimal("70")
    assert net_revenue(Decimal("100"), Decimal("0"), "cancelled") == Decimal("0")
    assert net_revenue(Decimal("100"), Decimal("120"), "refunded") == Decimal("0")


def test_refund_reasons_are_short_codes_never_free_text() -> None:
    assert refund_reason("Damaged") == "damaged"
    assert refund_reason("not received") == "not_received"
    assert refund_reason("Customer Jane Doe, 12 Main St, called to say the scarf...") is None
    assert refund_reason(None) is None
    assert refund_reason(7) is None


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        (
            "https://shop.example/products/scarf?email=jane%40example.com&utm_source=newsletter"
            "&token=abc&sl_click=ck-1&gclid=G1#account",
            "https://shop.example/products/scarf?utm_source=newsletter&sl_click=ck-1&gclid=G1",
        ),
        ("/?email=jane@example.com&fbclid=F1", "/?fbclid=F1"),
        ("https://user:pass@Shop.Example:8443/a?b=c", "https://shop.example:8443/a"),
        ("https://www.google.com/search?q=jane+doe+address", "https://www.google.com/search"),
        ("", None),
        (None, None),
    ],
)
def test_marketing_url_keeps_only_marketing_parameters(url: str | None, kept: str | None) -> None:
    assert marketing_url(url) == kept
