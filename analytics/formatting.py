"""How values read for people, on every surface: the currency symbols, what counts as missing, the
text of a money, percent, number, date or month value, and the highlight rule.

The one formatting module: the pages (ui/), the emails (mail/), the PDF and the Excel and CSV
exporters all read it, so a value reads the same wherever it is shown. Streamlit-free.

Currency policy, everywhere (screen, email, PDF, charts, Excel number formats): the symbol of
CURRENCY_SYMBOLS before the amount with no space ("€1,234.56", "-¥5.00"); any other currency
its ISO code and a space before the amount ("CHF 1,234.56").
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from analytics.report import Highlight
from core.money import to_cents

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "PHP": "₱", "JPY": "¥", "INR": "₹", "KRW": "₩"}
MISSING = "—"

# Chart colours, the same on the pages (plotly), in the PDF and in the email (matplotlib): series in
# this order, and colours that mean something keyed by the code or column they stand for (a payment
# method is the same colour in a pie and in bars, on every surface).
CHART_PALETTE = ("#1f6feb", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
CHART_OTHER = "#94a3b8"  # the "Other" slice
SEMANTIC_COLOURS = {
    "cash": "#59a14f",
    "card": "#f28e2b",
    "bank_transfer": "#1f6feb",
    "mobile": "#b07aa1",
    "credit_note": "#9c755f",
    "in_stock": "#59a14f",
    "low_stock": "#edc948",
    "out_of_stock": "#e15759",
    "on_time": "#59a14f",
    "late": "#edc948",
    "missing": "#e15759",
    "bucket_0_30": "#59a14f",
    "bucket_31_60": "#edc948",
    "bucket_61_90": "#f28e2b",
    "bucket_90_plus": "#e15759",
    "0-30": "#59a14f",
    "31-60": "#edc948",
    "61-90": "#f28e2b",
    "90+": "#e15759",
    "forecast_qty": "#8a94a6",
    "actual_qty": "#1f6feb",
}

CellFormatter = Callable[[Any], str]

# Values of these classes are used as they are; anything else (numpy, pandas scalars) is unwrapped.
_PLAIN_CLASSES = frozenset({str, int, float, bool, Decimal, dt.date, dt.datetime})
# Values of these classes are never missing: a table's common cells skip the test.
_PRESENT_CLASSES = frozenset({str, int, bool, dt.date, dt.datetime})
_FAILED = (TypeError, ValueError, InvalidOperation, OverflowError)


def currency_symbol(currency: str) -> str:
    """'€' for EUR (see CURRENCY_SYMBOLS); the ISO code and a space for any other currency."""
    code = currency.upper()
    return CURRENCY_SYMBOLS.get(code, f"{code} " if code else "")


def is_missing(value: Any) -> bool:
    """None, float or Decimal NaN, pandas NA and NaT: a value that is not there."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal):
        return value.is_nan()
    if isinstance(value, (str, int, dt.date)) and type(value).__name__ != "NaTType":
        return False
    try:
        return bool(value != value)  # NaN-like: pandas NA refuses bool(), NaT is unequal to itself
    except TypeError:
        return True


def plain(value: Any) -> Any:
    """numpy and pandas scalars as plain Python values; anything else as it is."""
    if value.__class__ in _PLAIN_CLASSES:
        return value
    item = getattr(value, "item", None)
    if item is not None and not isinstance(value, (str, Decimal, dt.date)):
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def is_highlighted(value: Any, highlight: Highlight) -> bool:
    """Whether a cell meets a highlight's condition; a missing value never does."""
    if is_missing(value):
        return False
    try:
        if highlight.op == "eq":
            return bool(value == highlight.value)
        number, limit = float(value), float(highlight.value)
    except (TypeError, ValueError):
        return False
    if highlight.op == "abs_gt":
        return abs(number) > limit
    if highlight.op == "gt":
        return number > limit
    return number < limit


# --- text by kind -------------------------------------------------------------------------------


def format_cell(value: Any, kind: str, currency: str = "EUR") -> str:
    """A KPI or table cell as people read it: '€1,234.56', '-€5.00', '27.3 %', '1,234', '2.500',
    dates 'YYYY-MM-DD', date-times 'YYYY-MM-DD HH:MM', months 'Jan 2025', booleans Yes/No, text on
    one line; '—' when missing. A value that does not fit its kind is shown as it is."""
    return cell_formatter(kind, currency)(value)


# The KPI cards' name for the same thing.
format_value = format_cell


@functools.lru_cache(maxsize=256)
def cell_formatter(kind: str, currency: str = "EUR") -> CellFormatter:
    """The function format_cell uses for `kind` and `currency`: made once, so a table (the PDF's
    thousands of rows) formats a column without deciding its kind again for every cell."""
    convert = _CONVERTERS.get(kind, _text)
    if kind == "money":
        symbol = currency_symbol(currency)

        def money(value: Any) -> str:
            amount = to_cents(value if value.__class__ is Decimal else Decimal(value))
            # abs(): an amount that rounds to -0.00 reads "€0.00", not "€-0.00"
            return f"-{symbol}{-amount:,.2f}" if amount < 0 else f"{symbol}{abs(amount):,.2f}"

        convert = money

    def formatted(value: Any) -> str:
        cls = value.__class__
        if cls not in _PRESENT_CLASSES:
            if is_missing(value):
                return MISSING
            if cls not in _PLAIN_CLASSES:
                value = plain(value)
        try:
            return convert(value)
        except _FAILED:
            return str(value)

    return formatted


def _pct(value: Any) -> str:
    return f"{float(value) * 100:.1f} %"


def _int(value: Any) -> str:
    return f"{int(value):,}"


def _number(value: Any) -> str:
    return f"{float(value):,.2f}"


def _quantity(value: Any) -> str:
    number = float(value)
    return f"{number:,.0f}" if number.is_integer() else f"{number:,.3f}"


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    return value.isoformat() if isinstance(value, dt.date) else _text(value)


def _datetime(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return _date(value)


def _month(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.strftime("%b %Y")
    return _month_text(str(value))


@functools.lru_cache(maxsize=1024)
def _month_text(text: str) -> str:
    """'2025-01' (or a longer ISO date) as 'Jan 2025'; other text as it is."""
    try:
        return dt.datetime.strptime(text[:7], "%Y-%m").strftime("%b %Y")
    except ValueError:
        return _text(text)


def _text(value: Any) -> str:
    if value.__class__ is str:
        return " ".join(value.split())  # one line: no tabs or line breaks
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return " ".join(str(value).split())


_CONVERTERS: dict[str, Callable[[Any], str]] = {
    "pct": _pct,
    "int": _int,
    "number": _number,
    "quantity": _quantity,
    "date": _date,
    "datetime": _datetime,
    "month": _month,
    "text": _text,
}


def format_change(value: float | None, unit: str = "%") -> str | None:
    """A signed change: '+12.3 %' for relative changes, '+1.2 pp' for percentage points; None if unknown."""
    if value is None:
        return None
    shown = round(value * 100, 1) + 0.0  # + 0.0: a change that rounds to nothing reads "+0.0", never "-0.0"
    return f"{shown:+.1f} {unit}"
