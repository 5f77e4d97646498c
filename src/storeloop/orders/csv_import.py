"""Orders imported from a CSV of order lines, with a column mapping or a preset.

Each row is one order line; rows sharing an order id make one order. Rows of one order need not
be adjacent but must lie within ``ORDER_WINDOW_ROWS`` rows of each other (the importer holds that
many rows' orders in memory, so files of any size stream). A row that cannot be read is reported
(line, column, reason) and skipped; the other rows are imported. Re-importing the same file
changes nothing: orders are upserted on their id and an identical order counts as unchanged.

UCI Online Retail preset: an invoice is an order, paid, in GBP (the store's currency); an
invoice whose number starts with ``C`` is a cancellation of (part of) an earlier sale. It does
not say which invoice it cancels, so its amount is recorded as a refund (external id: the ``C``
invoice number, reason ``cancellation``) charged against the same customer's invoices
(``OrderWriter.charge_cancellation``). Net revenue, SUM(max(total - refunded_total, 0)) over the
orders as attribution counts it, is then the positive invoices minus the cancellations. A
cancellation the customer's imported invoices cannot cover (a guest, or a sale before the file
starts) is reported as a row error and not imported: a negative order would be clamped to 0 by
every revenue report, silently.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO

from sqlalchemy.orm import Session, sessionmaker

from storeloop.db import session_scope
from storeloop.kit.crypto import WorkspaceCipher
from storeloop.kit.errors import ValidationFailed
from storeloop.kit.money import MONEY_QUANTUM, InvalidMoney, parse_money
from storeloop.orders.schemas import (
    ORDER_STATUSES,
    CustomerInput,
    ImportResult,
    ImportRowError,
    OrderInput,
    OrderLineInput,
    RefundInput,
)
from storeloop.orders.service import OrderWriter

SOURCE = "csv"
ORDER_WINDOW_ROWS = 10_000
BATCH_ORDERS = 500
MAX_REPORTED_ERRORS = 1_000
# Fields a column can map to; order_id, placed_at, quantity and unit_price are required.
FIELDS = (
    "order_id",
    "placed_at",
    "quantity",
    "unit_price",
    "sku",
    "product_id",
    "name",
    "customer_id",
    "email",
    "country",
    "currency",
    "status",
    "discount_code",
)
REQUIRED_FIELDS = ("order_id", "placed_at", "quantity", "unit_price")
PRESETS: dict[str, dict[str, str]] = {
    "uci-online-retail": {
        "order_id": "InvoiceNo",
        "sku": "StockCode",
        "name": "Description",
        "quantity": "Quantity",
        "placed_at": "InvoiceDate",
        "unit_price": "UnitPrice",
        "customer_id": "CustomerID",
        "country": "Country",
    }
}
PRESET_CURRENCY = {"uci-online-retail": "GBP"}
# The UCI file in ../shared/data/datasets is written with ISO dates; the original Excel export
# has month-first dates (12/1/2010 8:26): import that one with date_format=mdy.
PRESET_DATE_FORMAT = {"uci-online-retail": "iso"}
# Named date formats: ISO 8601 (the default); day-first and month-first numeric dates
# (D/M/YYYY or M/D/YYYY, separators / . or -, an optional H:MM[:SS]). Anything else is read as a
# strptime pattern. 05/06/2011 means two different days in two countries: without a format it is
# a row error, never a guess.
DATE_FORMATS = ("iso", "dmy", "mdy")
_NUMERIC_DATE = re.compile(
    r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$"
)
_DATE_FORMAT_NAMES = {"iso": "ISO 8601", "dmy": "day/month/year", "mdy": "month/day/year"}
_FLOAT_ID = re.compile(r"^(\d+)\.0*$")
CANCELLATION_REASON = "cancellation"


@dataclass(frozen=True, slots=True)
class ImportSettings:
    """Which column holds each field (``{field: column}``), and the currency when none is given."""

    columns: Mapping[str, str]
    currency: str
    cancellation_prefix: str | None = None
    date_format: str = "iso"


def import_settings(
    preset: str | None,
    mapping: Iterable[str],
    currency: str | None,
    date_format: str | None = None,
) -> ImportSettings:
    """From a preset name and/or ``column=field`` pairs (pairs override the preset), and the
    date format (one of ``DATE_FORMATS`` or a strptime pattern; default: the preset's, else
    ISO 8601)."""
    if preset is not None and preset not in PRESETS:
        raise ValidationFailed(
            f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}", field="preset"
        )
    columns = dict(PRESETS[preset]) if preset else {}
    for pair in mapping:
        column, separator, target = pair.partition("=")
        column, target = column.strip(), target.strip()
        if not separator or not column or target not in FIELDS:
            raise ValidationFailed(
                f"mapping {pair!r} must be column=field with field one of {', '.join(FIELDS)}",
                field="map",
            )
        columns[target] = column
    missing = [name for name in REQUIRED_FIELDS if name not in columns]
    if missing:
        raise ValidationFailed(
            f"no column mapped to {', '.join(missing)} (use a preset or column=field)",
            field="map",
        )
    chosen = currency or (PRESET_CURRENCY.get(preset) if preset else None)
    if chosen is None or len(chosen) != 3 or not chosen.isalpha():
        raise ValidationFailed("give the orders' 3-letter currency", field="currency")
    chosen_format = (date_format or "").strip() or (
        PRESET_DATE_FORMAT.get(preset, "iso") if preset else "iso"
    )
    if chosen_format not in DATE_FORMATS and "%" not in chosen_format:
        raise ValidationFailed(
            f"date_format must be one of {', '.join(DATE_FORMATS)} or a strptime pattern "
            "such as %d.%m.%Y %H:%M",
            field="date_format",
        )
    return ImportSettings(
        columns=columns,
        currency=chosen.upper(),
        cancellation_prefix="C" if preset == "uci-online-retail" else None,
        date_format=chosen_format,
    )


class _RowError(Exception):
    def __init__(self, column: str, reason: str) -> None:
        super().__init__(reason)
        self.column = column
        self.reason = reason


@dataclass(slots=True)
class _PendingOrder:
    external_id: str
    placed_at: datetime
    last_row: int
    currency: str
    status: str
    first_row: int = 0
    is_cancellation: bool = False
    customer_id: str | None = None
    email: str | None = None
    country: str | None = None
    codes: list[str] = field(default_factory=list)
    lines: list[OrderLineInput] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Cancellation:
    """A cancellation invoice (UCI ``C``): money returned on the customer's earlier sales."""

    external_id: str
    customer_id: str | None
    amount: Decimal
    at: datetime
    line: int
    column: str


@dataclass(slots=True)
class ImportBatch:
    orders: list[OrderInput] = field(default_factory=list)
    cancellations: list[Cancellation] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.orders) + len(self.cancellations)


@dataclass(slots=True)
class ImportProgress:
    rows: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    cancellations: int = 0
    errors: list[ImportRowError] = field(default_factory=list)
    error_count: int = 0

    def error(self, line: int, column: str | None, reason: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(ImportRowError(line=line, column=column, reason=reason))

    def result(self) -> ImportResult:
        return ImportResult(
            imported=self.imported,
            updated=self.updated,
            unchanged=self.unchanged,
            cancellations=self.cancellations,
            rows=self.rows,
            errors=self.errors,
        )


def _customer_id(raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    # Spreadsheets and pandas write integer ids as floats: 17850.0 is customer 17850.
    match = _FLOAT_ID.match(value)
    return match.group(1) if match else value[:255]


def _date(raw: str, column: str, date_format: str = "iso") -> datetime:
    value = raw.strip()
    try:
        if date_format == "iso":
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif date_format in ("dmy", "mdy"):
            match = _NUMERIC_DATE.match(value)
            if match is None:
                raise ValueError(value)
            first, second, year, hour, minute, second_of_minute = match.groups()
            day, month = (first, second) if date_format == "dmy" else (second, first)
            moment = datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second_of_minute or 0),
                tzinfo=UTC,
            )
        else:
            moment = datetime.strptime(value, date_format)  # noqa: DTZ007 - UTC below
    except ValueError:
        hint = (
            "; give the date format (date_format dmy, mdy or a pattern)"
            if date_format == "iso" and _NUMERIC_DATE.match(value)
            else ""
        )
        expected = _DATE_FORMAT_NAMES.get(date_format, date_format)
        raise _RowError(
            column, f"{value[:40]!r} is not a date ({expected} expected){hint}"
        ) from None
    # Times without an offset are read as UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _decimal(raw: str, column: str) -> Decimal:
    text = raw.strip()
    try:
        return parse_money(text, column)
    except InvalidMoney:
        try:
            Decimal(text)
        except InvalidOperation:
            raise _RowError(column, f"{text[:40]!r} is not a number") from None
        raise _RowError(column, f"{text[:40]!r} is not a usable amount") from None


class CsvOrderReader:
    """Turns CSV rows into batches of ``OrderInput``, collecting row errors as it goes."""

    def __init__(self, settings: ImportSettings, progress: ImportProgress) -> None:
        self.settings = settings
        self.progress = progress
        self._pending: dict[str, _PendingOrder] = {}
        self._finished: set[str] = set()

    def batches(self, lines: Iterable[str]) -> Iterator[ImportBatch]:
        reader = csv.DictReader(lines)
        header = reader.fieldnames or []
        absent = [column for name, column in self.settings.columns.items() if column not in header]
        if absent:
            raise ValidationFailed(
                f"the CSV has no column {', '.join(repr(c) for c in absent)}", field="map"
            )
        ready = ImportBatch()
        for row in reader:
            self.progress.rows += 1
            line = reader.line_num
            try:
                self._add(row, line)
            except _RowError as error:
                self.progress.error(line, error.column, error.reason)
            if self.progress.rows % 1_000 == 0:
                self._flush_older_than(line - ORDER_WINDOW_ROWS, ready)
            if len(ready) >= BATCH_ORDERS:
                yield ready
                ready = ImportBatch()
        self._flush_older_than(None, ready)
        if len(ready):
            yield ready

    def _cell(self, row: Mapping[str, str | None], name: str) -> str:
        column = self.settings.columns.get(name)
        if column is None:
            return ""
        return (row.get(column) or "").strip()

    def _add(self, row: Mapping[str, str | None], line: int) -> None:
        columns = self.settings.columns
        order_id = self._cell(row, "order_id")
        if not order_id or len(order_id) > 255:
            raise _RowError(columns["order_id"], "the order id is empty or too long")
        if order_id in self._finished:
            raise _RowError(
                columns["order_id"],
                f"order {order_id[:40]} was already imported from rows more than "
                f"{ORDER_WINDOW_ROWS} lines earlier; keep an order's rows together",
            )
        placed_at = _date(
            self._cell(row, "placed_at"), columns["placed_at"], self.settings.date_format
        )
        quantity_text = self._cell(row, "quantity")
        try:
            quantity = int(quantity_text)
        except ValueError:
            raise _RowError(
                columns["quantity"], f"{quantity_text[:40]!r} is not a whole number"
            ) from None
        unit_price = _decimal(self._cell(row, "unit_price"), columns["unit_price"])
        if unit_price < 0:
            raise _RowError(columns["unit_price"], "a unit price cannot be negative")
        currency = self._cell(row, "currency").upper() or self.settings.currency
        if len(currency) != 3 or not currency.isalpha():
            raise _RowError(columns.get("currency", "currency"), "not a 3-letter currency")
        status = self._cell(row, "status").lower() or "paid"
        prefix = self.settings.cancellation_prefix
        is_cancellation = bool(prefix and order_id.startswith(prefix))
        if status not in ORDER_STATUSES:
            raise _RowError(
                columns.get("status", "status"),
                f"status must be one of {', '.join(ORDER_STATUSES)}",
            )
        pending = self._pending.get(order_id)
        if pending is None:
            pending = _PendingOrder(
                order_id, placed_at, line, currency, status, line, is_cancellation
            )
            self._pending[order_id] = pending
        pending.placed_at = min(pending.placed_at, placed_at)
        pending.last_row = line
        pending.customer_id = pending.customer_id or _customer_id(self._cell(row, "customer_id"))
        pending.email = pending.email or self._cell(row, "email") or None
        pending.country = pending.country or self._cell(row, "country")[:64] or None
        code = self._cell(row, "discount_code")
        if code and code not in pending.codes:
            pending.codes.append(code[:255])
        pending.lines.append(
            OrderLineInput(
                sku=self._cell(row, "sku") or None,
                product_id=self._cell(row, "product_id") or None,
                name=self._cell(row, "name") or None,
                quantity=quantity,
                unit_price=unit_price.quantize(MONEY_QUANTUM),
            )
        )

    def _flush_older_than(self, line: int | None, batch: ImportBatch) -> None:
        done = [order for order in self._pending.values() if line is None or order.last_row < line]
        for order in done:
            del self._pending[order.external_id]
            self._finished.add(order.external_id)
            if order.is_cancellation:
                cancellation = self._cancellation(order)
                if cancellation is not None:
                    batch.cancellations.append(cancellation)
            else:
                batch.orders.append(self._order_input(order))

    def _cancellation(self, order: _PendingOrder) -> Cancellation | None:
        # Cancellation lines carry negative quantities: the amount returned is their negation.
        amount = -sum((line.unit_price * line.quantity for line in order.lines), Decimal(0))
        column = self.settings.columns["order_id"]
        if amount <= 0:
            self.progress.error(
                order.first_row, column, f"cancellation {order.external_id[:40]} returns no money"
            )
            return None
        return Cancellation(
            external_id=order.external_id,
            customer_id=order.customer_id,
            amount=amount.quantize(MONEY_QUANTUM),
            at=order.placed_at,
            line=order.first_row,
            column=column,
        )

    def _order_input(self, order: _PendingOrder) -> OrderInput:
        subtotal = sum((line.unit_price * line.quantity for line in order.lines), Decimal(0))
        subtotal = subtotal.quantize(MONEY_QUANTUM)
        customer = CustomerInput(
            external_id=order.customer_id, email=order.email, country=order.country
        )
        return OrderInput(
            external_id=order.external_id,
            source=SOURCE,
            source_updated_at=order.placed_at,
            placed_at=order.placed_at,
            currency=order.currency,
            subtotal=subtotal,
            discount_total=Decimal(0),
            shipping=Decimal(0),
            tax=Decimal(0),
            total=subtotal,
            status=order.status,
            lines=tuple(order.lines),
            discount_codes=tuple(order.codes),
            customer=customer if customer != CustomerInput() else None,
        )


def apply_batch(
    session: Session,
    cipher: WorkspaceCipher,
    workspace_id: uuid.UUID,
    batch: ImportBatch,
    progress: ImportProgress,
) -> None:
    writer = OrderWriter(session, cipher, workspace_id)
    for result in writer.apply(batch.orders) if batch.orders else []:
        if result.outcome == "created":
            progress.imported += 1
        elif result.outcome == "updated":
            progress.updated += 1
        else:
            progress.unchanged += 1
    # After the batch's sales: a cancellation comes after the sale it cancels.
    for cancellation in batch.cancellations:
        if cancellation.customer_id is None:
            progress.error(
                cancellation.line,
                cancellation.column,
                f"cancellation {cancellation.external_id[:40]} has no customer: no sale to "
                "charge it against",
            )
            continue
        uncovered = writer.charge_cancellation(
            cancellation.customer_id,
            SOURCE,
            RefundInput(
                external_id=cancellation.external_id,
                amount=cancellation.amount,
                refunded_at=cancellation.at,
                reason=CANCELLATION_REASON,
            ),
        )
        if uncovered:
            progress.error(
                cancellation.line,
                cancellation.column,
                f"cancellation {cancellation.external_id[:40]} of {cancellation.amount} exceeds "
                f"customer {cancellation.customer_id[:40]}'s imported sales by {uncovered}",
            )
        else:
            progress.cancellations += 1


def import_lines(
    session: Session,
    cipher: WorkspaceCipher,
    workspace_id: uuid.UUID,
    lines: Iterable[str],
    settings: ImportSettings,
) -> ImportResult:
    """Import in the caller's transaction (the API's request); the CLI commits per batch."""
    progress = ImportProgress()
    for batch in CsvOrderReader(settings, progress).batches(lines):
        apply_batch(session, cipher, workspace_id, batch, progress)
    return progress.result()


def import_file(
    session_factory: sessionmaker[Session],
    cipher: WorkspaceCipher,
    workspace_id: uuid.UUID,
    path: Path,
    settings: ImportSettings,
    on_progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import a CSV file (``.gz`` too), one transaction per batch of orders, so a large file
    neither holds one huge transaction nor loses finished batches when stopped; re-running
    after a stop finishes the job (the import is idempotent). ``on_progress(done, total)``
    reports bytes of the file read."""
    progress = ImportProgress()
    total = path.stat().st_size
    with path.open("rb") as raw:
        stream: IO[bytes] = (
            gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw  # type: ignore[assignment]
        )
        with io.TextIOWrapper(stream, encoding="utf-8-sig", newline="") as lines:
            for batch in CsvOrderReader(settings, progress).batches(lines):
                with session_scope(session_factory) as session:
                    apply_batch(session, cipher, workspace_id, batch, progress)
                if on_progress is not None:
                    on_progress(raw.tell(), total)
    if on_progress is not None:
        on_progress(total, total)
    return progress.result()
