"""The one place a report Table becomes an st.dataframe: formats by column kind, highlighted rows, codes
as their labels, column widths that fit the page, and a one-table CSV download beside it.

Widths: every column gets an explicit width from its header and the values shown (Streamlit stretches
explicit widths to fill a wider box, but never shrinks auto-sized ones), long names are capped (the cell
ends in "…"), and a long header over short numbers gets a short label with the full one as its help.
So the tables fit the page at 1440 px, also two side by side; on a phone they scroll inside their box.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from analytics.formatting import currency_symbol, is_highlighted, is_missing
from analytics.labels import labeller
from analytics.report import Column, Highlight, Table
from exporters.csv_export import write_table
from ui.formatting import column_format

MAX_ROWS = 5_000  # rows sent to the browser; downloads carry every row
MAX_STYLED_ROWS = 2_000  # pandas Styler is slow on big frames: highlight only up to here
HIGHLIGHT = "background-color: #fff4d6"
# Column widths in px for the dataframe's 14 px Source Sans (measured in Chromium): per character
# class, plus the cell's padding; names wider than TEXT_MAX end in "…".
_DIGIT_PX, _LOWER_PX, _UPPER_PX, _SPACE_PX, _OTHER_PX = 7.0, 6.7, 8.0, 2.9, 5.6
CELL_PADDING_PX = 20  # 8 px each side and a little air
HEADER_PADDING_PX = 26  # the header also has room for the sort arrow
MIN_WIDTH_PX, TEXT_MAX_PX = 50, 200
WIDE_TABLE_PX = 900  # wider than the page at 1440 px: it scrolls sideways, so its names are pinned
PINNED_MAX_PX = 360
PAGE_WIDTH_PX = 976  # the main column's width at 1440 px with the sidebar open (978 px)
TEXT_MIN_PX = 90  # a text column shrunk to fit keeps at least this much
# Times as ui/formatting.local_text writes them ('Mon 2026-12-07 08:00 CET'): never shrunk.
_TIME_TEXT = re.compile(r"^(?:\w{3} )?\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2})?(?: \S+)?$|^(?:never|paused|—)?$")
WIDTH_SAMPLE = 200  # rows measured for a column's width
# Long headers over short values read as well shortened; the full label is the column's help.
SHORT_LABELS = {
    "Share of revenue": "Share",
    "Cumulative share": "Cum. share",
    "Average order value": "Avg order",
    "Contribution to gross profit": "Contribution",
    "Average unit price": "Avg price",
    "Quantity per day": "Qty per day",
    "Customer code": "Code",
    "Storefront code": "Code",
    "Quantity": "Qty",
    "Margin %": "Margin",  # the values say "%"
}


def show_table(
    table: Table,
    currency: str,
    *,
    key: str | None = None,
    height: int | None = None,
    on_select: Callable[[], None] | None = None,
    file_name: str | None = None,
) -> None:
    """Show `table` formatted by column kind; large or streamed tables show a preview and say so.
    `on_select`: rows are selectable one at a time, and a click calls it (the selection is under `key`).
    With a `key`, a "CSV" button below downloads the table (`file_name`, default `{table name}.csv`)."""
    if table.row_count == 0:
        st.caption(f"{table.title}: nothing in this period.")
        return
    columns = [c for c in table.columns if c.key in table.frame.columns]
    frame = display_frame(table, MAX_ROWS)
    fits = fit_columns(columns, frame, currency)
    config: dict[str, Any] = {c.key: _column_config(c, currency, frame[c.key], fits[c.key]) for c in columns}
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
        on_select=on_select if on_select is not None else "ignore",
        selection_mode="single-row",
    )
    notes = []
    if highlighted:
        notes.append("Highlighted: " + "; ".join(dict.fromkeys(h.meaning for h in marks)) + ".")
    if table.row_count > len(frame):
        notes.append(
            f"Showing the first {len(frame):,} of {table.row_count:,} rows — the CSV has all of them."
        )
    if key is None:
        if notes:
            st.caption(" ".join(notes))
        return
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key=f"{key}_foot"):
        csv_button(table, key=f"{key}_csv", file_name=file_name)
        if notes:
            st.caption(" ".join(notes))


def csv_button(table: Table, *, key: str, file_name: str | None = None) -> None:
    """A small "CSV" download button for this one table: every row, written by the CSV exporter when
    clicked (the page does not build it on every rerun)."""
    st.download_button(
        "CSV",
        data=lambda: table_csv(table),
        file_name=file_name or f"{table.name}.csv",
        mime="text/csv",
        key=key,
        icon=":material/download:",
        help=f"Download “{table.title}” as a CSV file (every row)",
        on_click="ignore",
        type="tertiary",
    )


def table_csv(table: Table) -> bytes:
    """`table` as the CSV exporter writes one table: UTF-8 with a byte-order mark, every row."""
    buffer = io.BytesIO()
    buffer.write(codecs.BOM_UTF8)
    handle = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
    write_table(handle, table)
    handle.flush()
    handle.detach()
    return buffer.getvalue()


def display_frame(table: Table, limit: int = MAX_ROWS) -> pd.DataFrame:
    """The table's first `limit` rows as display values: floats for money, pct × 100, plain dates."""
    columns = [c for c in table.columns if c.key in table.frame.columns]
    head = table.frame.head(limit)
    return pd.DataFrame({c.key: _values(head[c.key], c.kind, c.key) for c in columns}, index=range(len(head)))


def _values(series: pd.Series, kind: str, key: str = "") -> pd.Series:
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
    named = labeller(key)  # a code column: "bank_transfer" reads "Bank transfer" (analytics/labels)
    if named is not None:
        return pd.Series(["" if is_missing(v) else str(named(v)) for v in values], dtype="string")
    return pd.Series(["" if is_missing(v) else str(v) for v in values], dtype="string")


def _column_config(col: Column, currency: str, values: pd.Series, fit: Fit | None = None) -> Any:
    """The column's st.column_config; with `fit`, its header, help, width and pinning."""
    cc = st.column_config
    label = fit.label if fit else col.label
    common: dict[str, Any] = (
        {"help": fit.help, "width": fit.width, "pinned": fit.pinned or None} if fit is not None else {}
    )
    if col.kind in ("money", "pct", "int", "number"):
        return cc.NumberColumn(label, format=column_format(col.kind, currency), **common)
    if col.kind == "quantity":
        return cc.NumberColumn(label, format="%,.0f" if _whole(values) else "%,.3f", **common)
    if col.kind == "date":
        return cc.DateColumn(label, format="YYYY-MM-DD", **common)
    if col.kind == "month":
        return cc.DateColumn(label, format="MMM YYYY", **common)
    if col.kind == "datetime":
        return cc.DatetimeColumn(label, format="YYYY-MM-DD HH:mm", **common)
    if values.dtype == bool:
        return cc.CheckboxColumn(label, **common)
    return cc.TextColumn(label, **common)


def _whole(values: pd.Series) -> bool:
    return all(math.isnan(v) or float(v).is_integer() for v in values)


# --- widths -------------------------------------------------------------------------------------------


def text_px(text: str) -> float:
    """About how wide `text` is in the dataframe's font, in px."""
    total = 0.0
    for ch in text:
        if ch.isdigit():
            total += _DIGIT_PX
        elif ch == " ":
            total += _SPACE_PX
        elif ch.isupper():
            total += _UPPER_PX
        elif ch.isalpha():
            total += _LOWER_PX
        else:
            total += _OTHER_PX
    return total


def shown_texts(kind: str, currency: str, values: Iterable[Any]) -> list[str]:
    """The texts a column of `kind` shows for display `values` (as formatted by its column_config)."""
    symbol = currency_symbol(currency)
    out: list[str] = []
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            continue
        if kind == "money":
            out.append(f"{symbol}{float(value):,.2f}")
        elif kind == "pct":
            out.append(f"{float(value):.1f} %")
        elif kind in ("int", "quantity"):
            out.append(f"{float(value):,.0f}" if float(value).is_integer() else f"{float(value):,.3f}")
        elif kind == "number":
            out.append(f"{float(value):,.2f}")
        elif kind == "date":
            out.append("2025-01-01")
        elif kind == "month":
            out.append("Jan 2025")
        elif kind == "datetime":
            out.append("2025-01-01 00:00")
        else:
            out.append(str(value))
    return out


@dataclass(frozen=True)
class Fit:
    """How a column is shown so the table fits: header label, help (the full label when shortened),
    width in px, and whether it stays on the left while the table scrolls sideways."""

    label: str
    help: str | None
    width: int
    pinned: bool = False


def fit_columns(columns: Sequence[Column], frame: pd.DataFrame, currency: str = "EUR") -> dict[str, Fit]:
    """Each column's Fit for display `frame`: explicit widths from header and values; long headers
    shortened where SHORT_LABELS has a label not already in the table; on a table too wide for the page,
    the leading columns up to the first name pinned (so a sideways scroll keeps the row's name)."""
    fits = {c.key: _fit(c, currency, frame[c.key]) for c in columns}
    taken = [f.label for f in fits.values()]
    for key, fit in list(fits.items()):
        if fit.help is not None and taken.count(fit.label) > 1:  # two "Code"s: keep both long
            col = next(c for c in columns if c.key == key)
            fits[key] = _fit(col, currency, frame[key], shorten=False)
    total = sum(f.width for f in fits.values())
    if total > WIDE_TABLE_PX:
        lead = _leading_name(columns)
        if lead and sum(fits[c.key].width for c in lead) <= PINNED_MAX_PX:
            for c in lead:
                fits[c.key] = replace(fits[c.key], pinned=True)
    return fits


def _leading_name(columns: Sequence[Column]) -> list[Column]:
    """The columns up to and including the first name column (customer, product, ...), if any."""
    for i, col in enumerate(columns):
        if col.kind == "text" and (col.key.endswith("name") or col.key in ("name", "customer", "product")):
            return list(columns[: i + 1])
    return []


def _fit(col: Column, currency: str, values: pd.Series, *, shorten: bool = True) -> Fit:
    if values.dtype == bool:
        return Fit(col.label, None, max(MIN_WIDTH_PX, round(text_px(col.label) + HEADER_PADDING_PX)))
    texts = shown_texts(col.kind, currency, values.head(WIDTH_SAMPLE))
    content = max((text_px(t) for t in texts), default=0.0) + CELL_PADDING_PX
    capped = content if col.kind != "text" else min(content, TEXT_MAX_PX)
    label, help_text = col.label, None
    short = SHORT_LABELS.get(col.label)
    if shorten and short and text_px(col.label) + HEADER_PADDING_PX > capped + 24:
        label, help_text = short, col.label
    width = max(capped, text_px(label) + HEADER_PADDING_PX)  # the header is never cut
    return Fit(label, help_text, max(MIN_WIDTH_PX, math.ceil(width)))


def plain_table(
    frame: pd.DataFrame,
    *,
    key: str | None = None,
    cap: int = TEXT_MAX_PX,
    caps: Mapping[str, int] | None = None,
    helps: Mapping[str, str] | None = None,
    fixed: Iterable[str] = (),
    right: Iterable[str] = (),
) -> None:
    """A table of plain display values (texts, numbers) whose columns fit the page: widths from
    `plain_widths`, whole numbers with thousands separators, `helps` as column help; the text
    columns in `right` (figures already formatted) align right."""
    widths = plain_widths(frame, cap=cap, caps=caps, fixed=fixed)
    config: dict[str, Any] = {}
    for name in frame.columns:
        series, key_name = frame[name], str(name)
        extra: dict[str, Any] = {"width": widths[key_name], "help": (helps or {}).get(key_name)}
        if pd.api.types.is_bool_dtype(series):
            config[key_name] = st.column_config.CheckboxColumn(**extra)
        elif pd.api.types.is_integer_dtype(series):
            config[key_name] = st.column_config.NumberColumn(format="%,d", **extra)
        elif pd.api.types.is_numeric_dtype(series):
            config[key_name] = st.column_config.NumberColumn(**extra)
        else:
            if key_name in set(right):
                extra["alignment"] = "right"
            config[key_name] = st.column_config.TextColumn(**extra)
    st.dataframe(frame, hide_index=True, width="stretch", key=key, column_config=config)


def plain_widths(
    frame: pd.DataFrame,
    *,
    cap: int = TEXT_MAX_PX,
    caps: Mapping[str, int] | None = None,
    budget: int = PAGE_WIDTH_PX,
    fixed: Iterable[str] = (),
) -> dict[str, int]:
    """Widths in px for a table of plain display values (texts, numbers): each column as wide as its
    header and longest value, text up to `cap` (or its own in `caps`); when they add up to more than
    `budget` (the page's width at 1440 px), the text columns not `fixed` (times, say, that must show
    whole) give up width down to TEXT_MIN_PX."""
    out: dict[str, int] = {}
    keep = set(fixed)
    floors: dict[str, int] = {}  # text columns that may give up width: the least they keep
    cut: set[str] = set()  # text columns already ending in "…" at their cap: they give first
    for name in frame.columns:
        key = str(name)
        series = frame[name]
        texts = [str(v) for v in series.head(WIDTH_SAMPLE) if not is_missing(v)]
        content = max((text_px(t) for t in texts), default=0.0) + CELL_PADDING_PX
        header = text_px(key) + HEADER_PADDING_PX
        limit = (caps or {}).get(key, cap)
        out[key] = max(MIN_WIDTH_PX, math.ceil(max(min(content, limit), header)))
        text = not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if text and key not in keep and not all(_TIME_TEXT.match(t) for t in texts):
            floors[key] = max(TEXT_MIN_PX, math.ceil(header))
            if content > limit + 40:
                cut.add(key)
    for group in (cut, set(floors)):
        excess = sum(out.values()) - budget
        room = {k: out[k] - floors[k] for k in group if out[k] > floors[k]}
        if excess <= 0 or not room:
            continue
        share = min(1.0, excess / sum(room.values()))
        for key, spare in room.items():
            out[key] -= math.ceil(spare * share)
    return out


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
