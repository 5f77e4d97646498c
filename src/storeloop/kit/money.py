"""Money amounts read one way everywhere: exact decimals with 4 places, bounded so that every
stored amount round-trips exactly on both databases.

SQLite keeps ``Numeric`` columns as REAL (a binary double, 15 significant decimal digits exact):
with 4 decimal places that leaves 11 integer digits, hence ``MAX_MONEY``.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from storeloop.kit.errors import ValidationFailed

MONEY_QUANTUM = Decimal("0.0001")
# Integer digits an amount may have (see the module docstring).
MAX_MONEY_DIGITS = 11
MAX_MONEY = Decimal(10**MAX_MONEY_DIGITS) - MONEY_QUANTUM  # 99,999,999,999.9999
# Plain decimal notation with an optional exponent; no underscores, no "NaN"/"Infinity".
_AMOUNT_TEXT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,4})?$")
_MAX_TEXT_LENGTH = 64


class InvalidMoney(ValidationFailed):
    code = "invalid_amount"


def parse_money(value: object, field: str) -> Decimal:
    """``value`` (a decimal string, an int, a float from JSON or a Decimal) as an amount with 4
    decimal places (half-even rounding beyond them); raises ``InvalidMoney`` naming ``field``
    for anything else: None, booleans, NaN, infinities, text that is not a number, and amounts
    beyond +/- ``MAX_MONEY``. Negative amounts are returned: callers decide whether they allow
    them. A float goes through ``str()``, its shortest round-trip form (89.99 stays 89.99)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise InvalidMoney(f"{field} must be an amount", field=field)
    if isinstance(value, Decimal):
        amount = value
    else:
        text = str(value).strip()
        if len(text) > _MAX_TEXT_LENGTH or not _AMOUNT_TEXT.match(text):
            raise InvalidMoney(f"{field} must be an amount", field=field)
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise InvalidMoney(f"{field} must be an amount", field=field) from None
    if not amount.is_finite() or amount.adjusted() >= MAX_MONEY_DIGITS:
        raise InvalidMoney(
            f"{field} must be an amount between -{MAX_MONEY} and {MAX_MONEY}", field=field
        )
    quantized = amount.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)
    if abs(quantized) > MAX_MONEY:
        # 99999999999.99995 rounds up to 12 digits.
        raise InvalidMoney(
            f"{field} must be an amount between -{MAX_MONEY} and {MAX_MONEY}", field=field
        )
    return quantized
