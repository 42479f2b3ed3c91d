"""Cell values shared by the exporters: formula-injection neutralising (OWASP) and each kind's CSV text.

CSV cells, by column kind: money as plain numbers with two decimals ("1234.50", rounded half-even
to cents, no thousands separator, "." decimal point); pct as fractions like JSON (0.125 = 12.5 %);
int and quantity as whole numbers where they are whole; date as YYYY-MM-DD; datetime as
"YYYY-MM-DD HH:MM:SS" (ISO 8601 with a space, which Excel reads as a date-time); text neutralised.
A missing value (analytics.formatting.is_missing: None, NaN, NaT, pandas NA) is an empty cell.
A column of codes is written as their labels (analytics.labels: "Bank transfer", not bank_transfer).

Rows arrive in batches, so each column of a batch is converted at once (`csv_column`): the common
case (every value of the expected Python type) runs at C speed through comprehensions, joins and
set operations, and anything unusual falls back to the careful per-cell function (`csv_cell`).
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import re
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from analytics.formatting import is_missing
from analytics.formatting import plain as _plain
from analytics.labels import labeller
from analytics.report import ColumnKind
from core.clock import named_time
from core.money import to_cents

# A spreadsheet runs a text cell starting with one of these as a formula (OWASP "CSV Injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The same test over a column's values joined with "\n", at C speed (a value containing "\n=" only
# costs the slow path).
_FORMULA_AFTER_NEWLINE = re.compile("\n[-=+@\t\r]")

# What every format says when the report's tables are all empty.
NO_DATA = "No data for this period"

CellText = str | int | float
ColumnText = Callable[[Sequence[Any]], Sequence[Any]]


def time_text(when: dt.datetime, tz: str) -> str:
    """An instant as people read it in the business's time zone, the zone named: '2026-11-21 08:20 CET'."""
    return named_time(when, tz)


def neutralise(text: str) -> str:
    """Text a spreadsheet will not run as a formula: prefix "'" when it starts like one."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def money_text(value: Any) -> str:
    """An amount as "1234.50": rounded half-even to cents; "" when missing or not finite."""
    if is_missing(value):
        return ""
    value = _plain(value)
    if isinstance(value, float):
        text = f"{value:.2f}" if math.isfinite(value) else ""  # rounds the float's exact value half-even
    elif isinstance(value, (int, Decimal, str)):
        try:
            amount = Decimal(value)
        except InvalidOperation:
            return ""
        text = str(to_cents(amount)) if amount.is_finite() else ""
    else:
        return ""
    return "0.00" if text == "-0.00" else text


def _number_text(value: Any, *, whole: bool) -> CellText:
    if is_missing(value):
        return ""
    value = _plain(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            return ""
        if whole and value == value.to_integral_value():
            return int(value)
        return format(value, "f")
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(number):
        return ""
    return int(number) if whole and number.is_integer() else number


def _date_text(value: Any, kind: ColumnKind) -> CellText:
    if is_missing(value):
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if kind == "date" else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return text_cell(value)


def text_cell(value: Any) -> CellText:
    """A text cell: neutralised; a number in a text column stays a number; a boolean is true/false."""
    if is_missing(value):
        return ""
    if isinstance(value, str):
        return neutralise(value)
    value = _plain(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return _number_text(value, whole=False)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return neutralise(str(value))


def csv_cell(value: Any, kind: ColumnKind) -> CellText:
    """One value of a column of `kind` as written to CSV (see the module docstring)."""
    if kind == "money":
        return money_text(value)
    if kind in ("int", "quantity"):
        return _number_text(value, whole=True)
    if kind in ("pct", "number"):
        return _number_text(value, whole=False)
    if kind in ("date", "datetime"):
        return _date_text(value, kind)
    return text_cell(value)


# --- whole columns of a batch ----------------------------------------------------------------------


def columns_of(batch: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """A batch of rows as its columns.

    The transposition allocates an iterator per row and frees them all before it returns. Left on,
    the garbage collector would run a few times inside it and each time scan the batch's freshly
    fetched rows: a tenth of a CSV export's time. So it is paused for this one C call (no other
    thread runs meanwhile: the call holds the GIL) and restored as it was.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        return list(zip(*batch, strict=True))
    finally:
        if enabled:
            gc.enable()


def _text_column(values: Sequence[Any]) -> Sequence[Any]:
    try:
        joined = "\n".join(values)
    except TypeError:  # None (written as an empty cell as it is), or not only text
        try:
            joined = "\n".join(v for v in values if v is not None)
        except TypeError:  # NaN, numbers, booleans
            return [text_cell(v) for v in values]
    if joined.startswith(_FORMULA_STARTS) or _FORMULA_AFTER_NEWLINE.search(joined):
        return [text_cell(v) for v in values]
    return values


class Remembered(dict[Any, Any]):
    """value -> convert(value), computed once per distinct value: amounts, quantities, discounts and
    dates repeat a lot, and a dictionary look-up is several times cheaper than formatting or rounding
    a float or a date. Bounded, so a column of all-different values stays small. Equal values share
    one result, which is right for every kind (equal values have equal cells).
    `column(values)` converts a column of a batch at C speed."""

    LIMIT = 10_000

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, value: Any) -> Any:
        if len(self) >= self.LIMIT:
            self.clear()
        result = self[value] = self.convert(value)
        return result

    def column(self, values: Sequence[Any]) -> list[Any]:
        try:
            return list(map(self.__getitem__, values))
        except TypeError:  # an unhashable value
            return [self.convert(v) for v in values]


def csv_column(kind: ColumnKind, key: str = "") -> ColumnText:
    """The converter of one column of a batch (a sequence of values) to its CSV cells; make one per
    column and export (it remembers the texts of the values it has seen). A column of codes
    (analytics.labels: `method`, `customer_type`, ...) is written as their labels."""
    named = labeller(key)
    if named is not None:
        return Remembered(lambda value: str(text_cell(named(value)))).column
    if kind in ("text", "month"):
        return _text_column
    return Remembered(lambda value: str(csv_cell(value, kind))).column
