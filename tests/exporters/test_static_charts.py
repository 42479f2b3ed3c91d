"""The PDF's and email's charts (matplotlib): the app's colours, codes by their labels, months in full,
and buckets the period cuts short drawn dashed or hatched and labelled "to date"."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle, Wedge
from matplotlib.text import Text

from analytics.formatting import CHART_PALETTE, SEMANTIC_COLOURS
from analytics.report import ChartSpec, Column, Table
from exporters.static_charts import chart_figure, chart_png

MONTHS = [f"2025-{m:02d}" for m in range(1, 13)]


def _trend(partial: list[bool] | None, *, as_column: bool = True) -> Table:
    """A 12-month trend; `partial` as a table column, or only in the frame, or not at all."""
    revenue = [Decimal(40_000 + 1_000 * i) for i in range(11)] + [Decimal(6_000)]
    frame: dict[str, Any] = {"month": MONTHS, "revenue": revenue, "gross_profit": [r / 4 for r in revenue]}
    columns = [
        Column("month", "Month", "month"),
        Column("revenue", "Revenue", "money"),
        Column("gross_profit", "Gross profit", "money"),
    ]
    if partial is not None:
        frame["partial"] = partial
        if as_column:
            columns.append(Column("partial", "Partial"))
    return Table("trend", "Trend", columns, pd.DataFrame(frame))


LINE = ChartSpec("trend", "Revenue trend", "line", "trend", "month", ("revenue", "gross_profit"))
BARS = ChartSpec("bars", "Revenue by month", "bar", "trend", "month", ("revenue",))
LAST_PARTIAL = [False] * 11 + [True]


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.findobj(Text) if isinstance(t, Text) and t.get_text()]


def _xs(line: Line2D) -> list[float]:
    return [float(x) for x in cast(Any, line.get_xdata())]


def _dashed(fig: Figure) -> list[Line2D]:
    ax = fig.axes[0]
    return [ln for ln in ax.get_lines() if ln.get_linestyle() not in ("-", "None", "none") and _xs(ln)]


def _hatched(fig: Figure) -> list[Rectangle]:
    return [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and p.get_hatch()]


def test_payment_methods_keep_their_colours_and_read_as_words() -> None:
    methods = ["card", "bank_transfer", "cash", "mobile"]
    table = Table(
        "by_method",
        "By method",
        [Column("method", "Method"), Column("cash_received", "Cash received", "money")],
        pd.DataFrame(
            {"method": methods, "cash_received": [Decimal(300), Decimal(1000), Decimal(200), Decimal(50)]}
        ),
    )
    pie = ChartSpec("pie", "Cash received by method", "pie", "by_method", "method", ("cash_received",))
    fig = chart_figure(pie, table, "EUR")
    wedges = [w for w in fig.axes[0].patches if isinstance(w, Wedge)]
    # largest first: bank transfer, card, cash, mobile
    assert [to_hex(w.get_facecolor()) for w in wedges] == [
        SEMANTIC_COLOURS[m] for m in ("bank_transfer", "card", "cash", "mobile")
    ]
    texts = _texts(fig)
    assert "Bank transfer  €1,000" in texts and not any(
        "bank_transfer" in t or "bank transfer" in t for t in texts
    )
    bars = chart_figure(
        ChartSpec("b", "By method", "bar", "by_method", "method", ("cash_received",)), table, "EUR"
    )
    rects = [p for p in bars.axes[0].patches if isinstance(p, Rectangle)]
    assert [to_hex(r.get_facecolor()) for r in rects] == [SEMANTIC_COLOURS[m] for m in methods]
    assert [t.get_text() for t in bars.axes[0].get_xticklabels()] == [
        "Card",
        "Bank transfer",
        "Cash",
        "Mobile",
    ]


def test_series_take_the_apps_palette_in_order() -> None:
    fig = chart_figure(LINE, _trend(None), "EUR")
    colours = {to_hex(ln.get_color()) for ln in fig.axes[0].get_lines()}
    assert colours == {CHART_PALETTE[0], CHART_PALETTE[1]}


def test_months_are_labelled_in_full() -> None:
    """Every month of a 12-month trend has its label, flat: the month's name, and the year under January."""
    fig = chart_figure(LINE, _trend(None), "EUR", width_px=920, height_px=520, dpi=170)  # the PDF's size
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [
        "Jan\n2025",
        "Feb",
        "Mar",
        "Apr",
        "May",
        "Jun",
        "Jul",
        "Aug",
        "Sep",
        "Oct",
        "Nov",
        "Dec",
    ]
    assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())
    # a new year is named where it starts
    table = Table(
        "trend",
        "Trend",
        [Column("month", "Month", "month"), Column("revenue", "Revenue", "money")],
        pd.DataFrame({"month": ["2024-11", "2024-12", "2025-01", "2025-02"], "revenue": [1, 2, 3, 4]}),
    )
    fig = chart_figure(ChartSpec("t", "T", "line", "trend", "month", ("revenue",)), table, "EUR")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["Nov\n2024", "Dec", "Jan\n2025", "Feb"]


@pytest.mark.parametrize("as_column", [True, False])
def test_a_partial_month_is_dashed_and_labelled_to_date(as_column: bool) -> None:
    fig = chart_figure(LINE, _trend(LAST_PARTIAL, as_column=as_column), "EUR")
    dashed = _dashed(fig)
    assert len(dashed) == 2  # one per series: from November into December
    assert all(_xs(ln) == [10, 11] for ln in dashed)
    solid = [ln for ln in fig.axes[0].get_lines() if ln.get_linestyle() == "-"]
    assert {max(_xs(ln)) for ln in solid} == {10}  # the finished months stay solid
    assert _texts(fig).count("to date") == 1


def test_partial_bars_are_hatched_and_labelled_to_date() -> None:
    fig = chart_figure(BARS, _trend(LAST_PARTIAL), "EUR")
    hatched = _hatched(fig)
    assert len(hatched) == 1 and hatched[0].get_x() + hatched[0].get_width() / 2 == pytest.approx(11)
    assert _texts(fig).count("to date") == 1


def test_a_partial_first_month_too() -> None:
    """A period starting mid-month cuts its first bucket short: that end is dashed instead."""
    fig = chart_figure(LINE, _trend([True] + [False] * 11), "EUR")
    assert [_xs(ln) for ln in _dashed(fig)] == [[0, 1], [0, 1]]


@pytest.mark.parametrize("partial", [None, [False] * 12])
def test_without_partial_buckets_nothing_is_dashed(partial: list[bool] | None) -> None:
    for spec in (LINE, BARS):
        fig = chart_figure(spec, _trend(partial), "EUR")
        assert not _dashed(fig) and not _hatched(fig) and "to date" not in _texts(fig)


def test_stacked_days_with_a_partial_day_render() -> None:
    days = [dt.date(2025, 1, d) for d in range(1, 8)]
    table = Table(
        "by_day",
        "By day",
        [
            Column("day", "Day", "date"),
            Column("cash", "Cash", "money"),
            Column("card", "Card", "money"),
            Column("partial", "Partial"),
        ],
        pd.DataFrame({"day": days, "cash": [1.0] * 7, "card": [2.0] * 7, "partial": [False] * 6 + [True]}),
    )
    spec = ChartSpec("s", "By day and method", "stacked_bar", "by_day", "day", ("cash", "card"))
    fig = chart_figure(spec, table, "EUR")
    assert len(_hatched(fig)) == 2 and _texts(fig).count("to date") == 1
    rects = [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]
    assert {to_hex(r.get_edgecolor()) for r in _hatched(fig)} == {
        SEMANTIC_COLOURS["cash"],
        SEMANTIC_COLOURS["card"],
    }
    assert len(rects) == 14
    assert chart_png(spec, table, "EUR", width_px=400, height_px=250).startswith(b"\x89PNG")
