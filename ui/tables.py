"""The one place a report Table becomes an st.dataframe: formats by column kind, highlighted rows."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from analytics.formatting import is_highlighted, is_missing
from analytics.report import Column, Highlight, Table
from ui.charts import WORD_COLUMNS
from ui.formatting import column_format

MAX_ROWS = 5_000  # rows sent to the browser; downloads carry every row
MAX_STYLED_ROWS = 2_000  # pandas Styler is slow on big frames: highlight only up to here
HIGHLIGHT = "background-color: #fff4d6"


def show_table(table: Table, currency: str, *, key: str | None = None, height: int | None = None) -> None:
    """Show `table` formatted by column kind; large or streamed tables show a preview and say so."""
    if table.row_count == 0:
        st.caption(f"{table.title}: nothing in this period.")
        return
    columns = [c for c in table.columns if c.key in table.frame.columns]
    frame = display_frame(table, MAX_ROWS)
    config: dict[str, Any] = {c.key: _column_config(c, currency, frame[c.key]) for c in columns}
    data: Any = frame
    marks = [h for h in table.highlights if h.column in table.frame.columns]
    flags = _flags(table.frame.head(len(frame)), marks) if marks and len(frame) <= MAX_STYLED_ROWS else []
    # Colouring every row (an exceptions-only table) marks nothing: highlight only a subset.
    highlighted = any(flags) and not all(flags)
    if highlighted:
        data = frame.style.apply(lambda row: [HIGHLIGHT if flags[row.name] else ""] * len(row), axis=1)
    st.dataframe(
        data,
        column_config=config,
        hide_index=True,
        width="stretch",
        height=height if height is not None else "auto",
        key=key,
    )
    notes = []
    if highlighted:
        notes.append("Highlighted: " + "; ".join(dict.fromkeys(h.meaning for h in marks)) + ".")
    if table.row_count > len(frame):
        notes.append(
            f"Showing the first {len(frame):,} of {table.row_count:,} rows — download the report for all of them."
        )
    if notes:
        st.caption(" ".join(notes))


def display_frame(table: Table, limit: int = MAX_ROWS) -> pd.DataFrame:
    """The table's first `limit` rows as display values: floats for money, pct × 100, plain dates."""
    columns = [c for c in table.columns if c.key in table.frame.columns]
    head = table.frame.head(limit)
    return pd.DataFrame(
        {c.key: _values(head[c.key], c.kind, c.key in WORD_COLUMNS) for c in columns}, index=range(len(head))
    )


def _values(series: pd.Series, kind: str, words: bool = False) -> pd.Series:
    values = list(series)
    if kind in ("money", "number", "quantity"):
        return pd.Series([_float(v) for v in values], dtype="float64")
    if kind == "pct":
        return pd.Series([_float(v) * 100 for v in values], dtype="float64")
    if kind == "int":
        return pd.Series([None if is_missing(v) else int(v) for v in values], dtype="Int64")
    if kind == "date":
        return pd.Series([None if is_missing(v) else _date(v) for v in values], dtype="object")
    if kind == "month":  # a date column shown as 'Jan 2025', so it sorts by time
        return pd.Series([None if is_missing(v) else _month(v) for v in values], dtype="object")
    if kind == "datetime":
        return pd.to_datetime(pd.Series(values), errors="coerce")
    if series.dtype == bool:
        return pd.Series(values, dtype=bool)
    if words:
        return pd.Series(
            ["" if is_missing(v) else str(v).replace("_", " ").capitalize() for v in values], dtype="string"
        )
    return pd.Series(["" if is_missing(v) else str(v) for v in values], dtype="string")


def _column_config(col: Column, currency: str, values: pd.Series) -> Any:
    cc = st.column_config
    if col.kind in ("money", "pct", "int", "number"):
        return cc.NumberColumn(col.label, format=column_format(col.kind, currency))
    if col.kind == "quantity":
        whole = all(math.isnan(v) or float(v).is_integer() for v in values)
        return cc.NumberColumn(col.label, format="%,.0f" if whole else "%,.3f")
    if col.kind == "date":
        return cc.DateColumn(col.label, format="YYYY-MM-DD")
    if col.kind == "month":
        return cc.DateColumn(col.label, format="MMM YYYY")
    if col.kind == "datetime":
        return cc.DatetimeColumn(col.label, format="YYYY-MM-DD HH:mm")
    if values.dtype == bool:
        return cc.CheckboxColumn(col.label)
    return cc.TextColumn(col.label)


def _flags(frame: pd.DataFrame, marks: list[Highlight]) -> list[bool]:
    return [any(is_highlighted(row.get(h.column), h) for h in marks) for row in frame.to_dict("records")]


def _float(value: Any) -> float:
    if is_missing(value):
        return math.nan
    return float(value) if isinstance(value, (Decimal, int, float)) else float(str(value))


def _month(value: Any) -> dt.date | None:
    """A month value ('2025-01', a date) as its first day; None when it is not a month."""
    if isinstance(value, dt.date):
        return dt.date(value.year, value.month, 1)
    try:
        return dt.date(int(str(value)[:4]), int(str(value)[5:7]), 1)
    except ValueError:
        return None


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return pd.Timestamp(value).date()
