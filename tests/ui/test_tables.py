"""show_table's display frame: money as numbers, percentages × 100, words readable, highlights."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pandas as pd

from analytics.report import Column, Highlight, Table
from ui.formatting import column_format
from ui.tables import _column_config, _flags, display_frame


def sample() -> Table:
    frame = pd.DataFrame(
        {
            "method": ["bank_transfer", "cash", None],
            "revenue": [Decimal("1234.565"), Decimal("-5"), None],
            "margin_pct": [0.273, -0.1, None],
            "orders": [3, 0, None],
            "day": [dt.date(2025, 1, 2), dt.date(2025, 1, 3), None],
        },
        dtype=object,
    )
    cols = [
        Column("method", "Method"),
        Column("revenue", "Revenue", "money"),
        Column("margin_pct", "Margin %", "pct"),
        Column("orders", "Orders", "int"),
        Column("day", "Day", "date"),
    ]
    return Table("t", "T", cols, frame, [Highlight("margin_pct", "lt", 0, "Negative margin")])


def test_display_values_by_kind() -> None:
    shown = display_frame(sample())
    assert list(shown["method"][:2]) == ["Bank transfer", "Cash"]
    assert shown["revenue"][0] == 1234.565 and math.isnan(shown["revenue"][2])
    assert round(shown["margin_pct"][0], 6) == 27.3
    assert str(shown["orders"].dtype) == "Int64" and shown["orders"][2] is pd.NA
    assert shown["day"][0] == dt.date(2025, 1, 2)


def test_display_frame_is_limited() -> None:
    assert len(display_frame(sample(), limit=2)) == 2


def test_highlights_flag_matching_rows_only() -> None:
    table = sample()
    assert _flags(table.frame, table.highlights) == [False, True, False]


def test_formats_by_kind() -> None:
    assert column_format("money", "EUR") == "€%,.2f"
    assert column_format("money", "CHF") == "CHF %,.2f"
    assert column_format("pct") == "%.1f %%"
    assert column_format("int") == "%,d"
    assert column_format("text") is None


def test_months_are_dates_shown_as_month_and_year() -> None:
    frame = pd.DataFrame({"month": ["2025-01", "2024-12", None]}, dtype=object)
    table = Table("t", "T", [Column("month", "Month", "month")], frame)
    shown = display_frame(table)
    assert list(shown["month"][:2]) == [dt.date(2025, 1, 1), dt.date(2024, 12, 1)]
    assert shown["month"][2] is None
    config = _column_config(table.columns[0], "EUR", shown["month"])
    assert config["type_config"]["format"] == "MMM YYYY"  # 'Jan 2025', as in the email, PDF and Excel
