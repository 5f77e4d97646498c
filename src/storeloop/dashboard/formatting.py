"""How numbers, money, rates and times read on a page (Jinja filters).

Pages show rounded, grouped figures; the exact value goes in a ``data-value`` attribute and in
the CSV exports, so nothing a user or a test compares is lost to rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from storeloop.kit.timeutil import as_utc

DASH = "\u2013"  # an en dash: no value
_CENTS = Decimal("0.01")


def integer(value: int | Decimal | None) -> str:
    if value is None:
        return DASH
    return f"{int(value):,}"


def count(value: Decimal | int | None) -> str:
    """Orders are whole numbers except under a marketing filter (a share of each order)."""
    if value is None:
        return DASH
    number = Decimal(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number.quantize(_CENTS, rounding=ROUND_HALF_EVEN):,}"


def money(value: Decimal | int | float | None, currency: str | None = None) -> str:
    if value is None:
        return DASH
    amount = Decimal(str(value)).quantize(_CENTS, rounding=ROUND_HALF_EVEN)
    text = f"{amount:,}"
    return f"{text} {currency}" if currency else text


def rate(value: float | Decimal | None, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage."""
    if value is None:
        return DASH
    return f"{float(value) * 100:.{digits}f}%"


def roi(value: Decimal | float | None) -> str:
    """(revenue - cost) / cost as a signed percentage: +150% means 2.5 times the cost back."""
    if value is None:
        return DASH
    return f"{float(value) * 100:+.0f}%"


def roas(value: Decimal | float | None) -> str:
    if value is None:
        return DASH
    return f"{float(value):.2f}\u00d7"  # 2.50x, with a multiplication sign


def share(value: Decimal | float | None) -> str:
    """An attribution credit (0 to 1) as a percentage with one decimal."""
    if value is None:
        return DASH
    return f"{float(value) * 100:.1f}%"


def when(value: datetime | None) -> str:
    if value is None:
        return DASH
    return as_utc(value).strftime("%Y-%m-%d %H:%M")


def day(value: date | datetime | None) -> str:
    if value is None:
        return DASH
    return value.strftime("%Y-%m-%d")


def label(value: str | None) -> str:
    """A snake_case code as words: position_based -> Position based."""
    if not value:
        return DASH
    return value.replace("_", " ").capitalize()


def web_url(value: str | None) -> str:
    """The URL if it is http(s), else nothing: stored URLs become links only when safe."""
    if value and value.lower().startswith(("https://", "http://")):
        return value
    return ""


FILTERS: dict[str, Callable[..., Any]] = {
    "integer": integer,
    "count": count,
    "money": money,
    "rate": rate,
    "roi": roi,
    "roas": roas,
    "share": share,
    "when": when,
    "day": day,
    "label": label,
    "web_url": web_url,
}
