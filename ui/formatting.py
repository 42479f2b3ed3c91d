"""How numbers look in Streamlit's tables: st.column_config formats per column kind.

Everything else (values, currency symbols, changes) comes from analytics.formatting, the one
formatting module every surface shares.
"""

from __future__ import annotations

from analytics.formatting import currency_symbol


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
