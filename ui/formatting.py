"""How numbers look on screen: st.column_config formats and signed changes.

Values, currency symbols and the missing-value test come from analytics.formatting, the one
formatting module every surface shares; they are re-exported here for the pages.
"""

from __future__ import annotations

from analytics.formatting import CURRENCY_SYMBOLS, currency_symbol, format_value

__all__ = ["CURRENCY_SYMBOLS", "column_format", "currency_symbol", "format_change", "format_value"]


def column_format(kind: str, currency: str = "EUR") -> str | None:
    """The st.column_config printf format for a column kind (pct values are shown ×100)."""
    if kind == "money":
        return f"{currency_symbol(currency)}%,.2f"
    if kind == "pct":
        return "%.1f %%"
    if kind == "int":
        return "%,d"
    if kind == "quantity":
        return "%,.0f"
    if kind == "number":
        return "%,.2f"
    return None


def format_change(value: float | None, unit: str = "%") -> str | None:
    """A signed change: '+12.3 %' for relative changes, '+1.2 pp' for percentage points; None if unknown."""
    if value is None:
        return None
    return f"{value * 100:+.1f} {unit}"
