"""The one formatting module: value texts by kind, the currency policy, missing values, highlights."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics.formatting import (
    currency_symbol,
    format_cell,
    format_change,
    format_value,
    is_highlighted,
    is_missing,
)
from analytics.report import Highlight
from exporters.static_charts import axis_formatter
from exporters.xlsx_export import money_format
from ui.formatting import column_format


@pytest.mark.parametrize(
    ("value", "kind", "currency", "text"),
    [
        (Decimal("1234.565"), "money", "EUR", "€1,234.56"),  # half-even
        (Decimal("1234.575"), "money", "EUR", "€1,234.58"),
        (Decimal("-5"), "money", "USD", "-$5.00"),
        (Decimal("-0.004"), "money", "EUR", "€0.00"),
        (Decimal("0.004"), "money", "GBP", "£0.00"),
        (1_000_000.1, "money", "PHP", "₱1,000,000.10"),
        (Decimal("12"), "money", "CHF", "CHF 12.00"),
        (Decimal("1500"), "money", "JPY", "¥1,500.00"),
        ("12.5", "money", "EUR", "€12.50"),
        (-3, "money", "EUR", "-€3.00"),
        (np.float64(2.5), "money", "EUR", "€2.50"),
        ("abc", "money", "EUR", "abc"),  # not an amount: shown as it is
        (0.273186119873817, "pct", "EUR", "27.3 %"),
        (-0.112, "pct", "EUR", "-11.2 %"),
        (1234567, "int", "EUR", "1,234,567"),
        (np.int64(1234), "int", "EUR", "1,234"),
        (2.5, "quantity", "EUR", "2.500"),
        (1200.0, "quantity", "EUR", "1,200"),
        (114.0579, "number", "EUR", "114.06"),
        (dt.date(2025, 3, 1), "date", "EUR", "2025-03-01"),
        (dt.datetime(2025, 3, 1, 14, 5), "date", "EUR", "2025-03-01"),
        (pd.Timestamp("2025-03-01"), "date", "EUR", "2025-03-01"),
        (dt.date(2025, 1, 1), "month", "EUR", "Jan 2025"),
        ("2025-03", "month", "EUR", "Mar 2025"),
        ("not a month", "month", "EUR", "not a month"),
        (dt.datetime(2025, 3, 1, 14, 5, 9), "datetime", "EUR", "2025-03-01 14:05"),
        (dt.date(2025, 3, 1), "datetime", "EUR", "2025-03-01"),
        (True, "text", "EUR", "Yes"),
        (np.bool_(False), "text", "EUR", "No"),
        ("two\nlines\tand  tabs", "text", "EUR", "two lines and tabs"),
        (None, "money", "EUR", "—"),
        (None, "text", "EUR", "—"),
        (float("nan"), "pct", "EUR", "—"),
        (Decimal("NaN"), "money", "EUR", "—"),
        (pd.NA, "int", "EUR", "—"),
        (pd.NaT, "date", "EUR", "—"),
    ],
)
def test_values_read_the_same_everywhere(value: Any, kind: str, currency: str, text: str) -> None:
    assert format_cell(value, kind, currency) == text
    assert format_value(value, kind, currency) == text


@pytest.mark.parametrize(("currency", "symbol"), [("EUR", "€"), ("JPY", "¥"), ("jpy", "¥"), ("CHF", "CHF ")])
def test_one_currency_symbol_on_every_surface(currency: str, symbol: str) -> None:
    """Screen, email and PDF text, the screen's table format, chart axes and Excel agree."""
    assert currency_symbol(currency) == symbol
    assert format_cell(Decimal("1234.5"), "money", currency) == f"{symbol}1,234.50"
    assert column_format("money", currency) == f"{symbol}%,.2f"
    assert axis_formatter("money", currency)(1234, None) == f"{symbol}1,234"
    assert money_format(currency) == f'"{symbol}"#,##0.00'
    assert money_format(currency, decimals=0) == f'"{symbol}"#,##0'


@pytest.mark.parametrize(
    ("value", "missing"),
    [
        (None, True),
        (float("nan"), True),
        (np.float64("nan"), True),
        (Decimal("NaN"), True),
        (pd.NA, True),
        (pd.NaT, True),
        (0, False),
        ("", False),
        (Decimal("0"), False),
        (dt.date(2025, 1, 1), False),
        (pd.Timestamp("2025-01-01"), False),
        (False, False),
    ],
)
def test_is_missing(value: Any, missing: bool) -> None:
    assert is_missing(value) is missing


@pytest.mark.parametrize(
    ("value", "highlight", "flagged"),
    [
        (-0.1, Highlight("m", "lt", 0, ""), True),
        (0, Highlight("m", "lt", 0, ""), False),
        (Decimal("-1"), Highlight("m", "lt", 0, ""), True),
        (3, Highlight("m", "gt", 0, ""), True),
        (-0.25, Highlight("m", "abs_gt", 0.2, ""), True),
        (0.2, Highlight("m", "abs_gt", 0.2, ""), False),
        (True, Highlight("m", "eq", True, ""), True),
        (np.bool_(True), Highlight("m", "eq", True, ""), True),
        ("none", Highlight("m", "eq", "none", ""), True),
        ("fast", Highlight("m", "eq", "none", ""), False),
        ("text", Highlight("m", "gt", 0, ""), False),  # not a number: never flagged, no error
        (None, Highlight("m", "lt", 0, ""), False),
        (float("nan"), Highlight("m", "abs_gt", 0.2, ""), False),
        (pd.NA, Highlight("m", "eq", True, ""), False),
    ],
)
def test_highlight_rule(value: Any, highlight: Highlight, flagged: bool) -> None:
    assert is_highlighted(value, highlight) is flagged


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.109, "%", "+10.9 %"),
        (-0.0123, "pp", "-1.2 pp"),
        (-0.0004, "pp", "+0.0 pp"),  # a margin 0.04 points lower reads as no change, not "-0.0 pp"
        (-0.00049, "%", "+0.0 %"),
        (-0.0005001, "%", "-0.1 %"),
        (0.0, "%", "+0.0 %"),
        (None, "%", None),
    ],
)
def test_a_change_that_rounds_to_nothing_has_no_minus_sign(
    value: float | None, unit: str, text: str | None
) -> None:
    assert format_change(value, unit) == text
