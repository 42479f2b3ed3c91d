"""How numbers look on screen: currency with thousands separators, percentages, counts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from analytics.money import to_cents

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "PHP": "₱"}


def format_value(value: Any, kind: str, currency: str = "EUR") -> str:
    """A KPI or cell as text: '€1,234.56', '27.3 %', '1,234'; '—' for missing values."""
    if value is None:
        return "—"
    if kind == "money":
        symbol = CURRENCY_SYMBOLS.get(currency, currency + " ")
        amount = to_cents(Decimal(value))
        sign = "-" if amount < 0 else ""
        return f"{sign}{symbol}{abs(amount):,.2f}"
    if kind == "pct":
        return f"{float(value) * 100:.1f} %"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "quantity":
        number = float(value)
        return f"{number:,.0f}" if number.is_integer() else f"{number:,.3f}"
    return str(value)
