"""How values read for people (screen, email): currency with thousands separators, percentages, dates.

Streamlit-free, so the web app (ui/formatting re-exports these), the daemon's emails and the CLI
format a number the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from core.money import to_cents

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "PHP": "₱"}
MISSING = "—"


def currency_symbol(currency: str) -> str:
    """'€' for EUR; the ISO code and a space for currencies without a known symbol."""
    return CURRENCY_SYMBOLS.get(currency, currency + " ")


def format_value(value: Any, kind: str, currency: str = "EUR") -> str:
    """A KPI or cell as text: '€1,234.56', '27.3 %', '1,234'; '—' for missing values."""
    if value is None:
        return MISSING
    if kind == "money":
        symbol = currency_symbol(currency)
        amount = to_cents(Decimal(value))
        sign = "-" if amount < 0 else ""
        return f"{sign}{symbol}{abs(amount):,.2f}"
    if kind == "pct":
        return f"{float(value) * 100:.1f} %"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "number":
        return f"{float(value):,.2f}"
    if kind == "quantity":
        number = float(value)
        return f"{number:,.0f}" if number.is_integer() else f"{number:,.3f}"
    return str(value)


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal):
        return value.is_nan()
    if isinstance(value, str | int | dt.date):
        return type(value).__name__ == "NaTType"
    try:
        return bool(value != value)  # pandas NA refuses bool(); NaT is unequal to itself
    except TypeError:
        return True


def format_cell(value: Any, kind: str, currency: str = "EUR") -> str:
    """A table cell of any column kind as text (dates as YYYY-MM-DD, months as 'Jan 2025');
    '—' for None, NaN, NaT and pandas NA; a value that does not fit its kind is shown as it is."""
    if _missing(value):
        return MISSING
    item = getattr(value, "item", None)  # numpy scalars as plain Python values
    if item is not None and not isinstance(value, str | Decimal | dt.date):
        with contextlib.suppress(TypeError, ValueError):
            value = item()
    try:
        if kind == "date" and isinstance(value, dt.date):
            return value.strftime("%Y-%m-%d")
        if kind == "datetime" and isinstance(value, dt.datetime):
            return value.strftime("%Y-%m-%d %H:%M")
        if kind == "month":
            if isinstance(value, dt.date):
                return value.strftime("%b %Y")
            text = str(value)
            try:
                return dt.datetime.strptime(text[:7], "%Y-%m").strftime("%b %Y")
            except ValueError:
                return text
        if kind in ("money", "pct", "int", "number", "quantity"):
            return format_value(value, kind, currency)
    except (TypeError, ValueError, InvalidOperation, OverflowError):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    return str(value)
