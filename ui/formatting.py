"""How numbers look on screen: currency with thousands separators, percentages, counts."""

from __future__ import annotations

from analytics.formatting import CURRENCY_SYMBOLS, currency_symbol, format_value

# format_value and currency_symbol live in analytics.formatting (shared with the emails); kept here
# under their old names for the pages.
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
