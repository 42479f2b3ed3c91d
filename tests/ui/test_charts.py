"""figure(): every chart of every report draws, with the axes formatted by kind."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

import pandas as pd
import plotly.graph_objects as go
import pytest
from sqlalchemy import Engine

from analytics.report import ChartSpec, Column, Report, ReportParams, Scope, Table
from core.clock import utc_now
from core.db import make_sessionmaker
from core.settings import Settings
from reports.registry import REPORTS, generate
from snapshots.store import SnapshotStore
from tests.conftest import new_business
from tests.factories import insert_tiny
from ui.charts import MAX_BARS, MAX_SLICES, figure

TINY = ReportParams(start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 31))


@pytest.fixture(scope="module")
def tiny_reports(engine: Engine, settings: Settings) -> dict[str, Report]:
    business = new_business(engine, "Chart Traders")
    insert_tiny(engine, business.id)
    store = SnapshotStore(engine, settings.snapshot_dir)
    with make_sessionmaker(engine)() as session:
        return {
            r.slug: generate(session, store, Scope(business.id), r.slug, TINY, now=utc_now()) for r in REPORTS
        }


@pytest.mark.parametrize("slug", [r.slug for r in REPORTS])
def test_every_chart_of_every_report_draws(tiny_reports: dict[str, Report], slug: str) -> None:
    report = tiny_reports[slug]
    for spec in report.charts:
        table = report.tables[spec.table]
        fig = figure(spec, table, report.currency)
        assert isinstance(fig, go.Figure), spec.key
        if table.row_count:
            assert fig.data, f"{slug}.{spec.key} has no traces"
            assert any(len(getattr(t, "x", None) or getattr(t, "labels", None) or ()) for t in fig.data)
        assert (fig.layout.title.text or "").startswith(spec.title)


def money_table(n: int) -> Table:
    frame = pd.DataFrame(
        {
            "name": [f"item_{i:03d}" for i in range(n)],
            "revenue": [Decimal(1000 * (n - i)) for i in range(n)],
            "cumulative_share_pct": [(i + 1) / n for i in range(n)],
        }
    )
    cols = [
        Column("name", "Name"),
        Column("revenue", "Revenue", "money"),
        Column("cumulative_share_pct", "Cum.", "pct"),
    ]
    return Table("t", "T", cols, frame)


def test_money_axis_has_currency_and_thousands() -> None:
    fig = figure(ChartSpec("k", "Revenue", "bar", "t", "name", ("revenue",)), money_table(3), "EUR")
    assert fig.layout.yaxis.tickprefix == "€"
    assert fig.layout.yaxis.tickformat == ",.0f"
    bar = fig.data[0]
    assert isinstance(bar, go.Bar)
    assert list(bar.y) == [3000.0, 2000.0, 1000.0]
    assert "€%{y:,.2f}" in str(bar.hovertemplate)


def test_pct_axis_is_percent() -> None:
    fig = figure(
        ChartSpec("k", "Share", "line", "t", "name", ("cumulative_share_pct",), "pct"), money_table(3), "EUR"
    )
    assert fig.layout.yaxis.tickformat == ".0%"


def test_pareto_draws_bars_and_cumulative_line_on_second_axis() -> None:
    spec = ChartSpec("p", "Pareto", "pareto", "t", "name", ("revenue", "cumulative_share_pct"))
    fig = figure(spec, money_table(5), "USD")
    bar, line = fig.data
    assert isinstance(bar, go.Bar) and isinstance(line, go.Scatter)
    assert line.yaxis == "y2"
    assert fig.layout.yaxis2.tickformat == ".0%"
    assert fig.layout.yaxis.tickprefix == "$"


def test_stacked_bar_stacks() -> None:
    spec = ChartSpec("s", "Stacked", "stacked_bar", "t", "name", ("revenue", "cumulative_share_pct"))
    assert figure(spec, money_table(4), "EUR").layout.barmode == "stack"


def test_long_bar_charts_are_cut_and_say_so() -> None:
    fig = figure(ChartSpec("k", "Revenue", "bar", "t", "name", ("revenue",)), money_table(50), "EUR")
    bar = fig.data[0]
    assert isinstance(bar, go.Bar)
    assert len(bar.x) == MAX_BARS
    assert "first 30 of 50" in (fig.layout.title.text or "")


def test_pie_keeps_the_largest_slices_and_sums_the_rest() -> None:
    fig = figure(ChartSpec("k", "Mix", "pie", "t", "name", ("revenue",)), money_table(12), "EUR")
    pie = fig.data[0]
    assert isinstance(pie, go.Pie)
    assert len(pie.labels) == MAX_SLICES
    assert pie.labels[-1] == "Other"
    assert sum(pie.values) == sum(1000 * (12 - i) for i in range(12))


def test_unknown_currency_uses_its_code() -> None:
    fig = figure(ChartSpec("k", "Revenue", "bar", "t", "name", ("revenue",)), money_table(2), "CHF")
    assert fig.layout.yaxis.tickprefix == "CHF "


def test_empty_table_gives_an_empty_figure() -> None:
    fig = figure(ChartSpec("k", "Revenue", "bar", "t", "name", ("revenue",)), money_table(0), "EUR")
    assert isinstance(fig, go.Figure)
    assert all(len(cast(Any, t).x) == 0 for t in fig.data)


# --- partial buckets and clickable charts ----------------------------------------------------------------


def trend_table(partial: list[bool] | None) -> Table:
    months = ["2026-09", "2026-10", "2026-11", "2026-12"]
    data: dict[str, Any] = {"month": months, "revenue": [Decimal(v) for v in (900, 1000, 1100, 150)]}
    if partial is not None:
        data["partial"] = partial
    cols = [Column("month", "Month", "month"), Column("revenue", "Revenue", "money")]
    return Table("trend", "Trend", cols, pd.DataFrame(data))


TREND = ChartSpec("trend", "Revenue trend", "line", "trend", "month", ("revenue",))


def test_a_running_month_is_drawn_dashed_and_labelled_to_date() -> None:
    fig = figure(TREND, trend_table([False, False, False, True]), "EUR")
    solid, dashed = fig.data
    assert isinstance(solid, go.Scatter) and isinstance(dashed, go.Scatter)
    assert list(solid.x) == ["2026-09", "2026-10", "2026-11"] and solid.line.dash is None
    # The dashed part runs from the last finished month into the running one.
    assert list(dashed.x) == ["2026-11", "2026-12"] and list(dashed.y) == [1100.0, 150.0]
    assert dashed.line.dash == "dash" and dashed.showlegend is False
    [note] = fig.layout.annotations
    assert (note.text, note.x, note.y) == ("to date", "2026-12", 150.0)


@pytest.mark.parametrize("partial", [None, [False, False, False, False]])
def test_without_a_running_bucket_the_line_is_one_solid_trace(partial: list[bool] | None) -> None:
    fig = figure(TREND, trend_table(partial), "EUR")
    [line] = fig.data
    assert isinstance(line, go.Scatter) and len(line.x) == 4 and line.line.dash is None
    assert not fig.layout.annotations


def test_a_running_bar_is_faded_and_labelled_to_date() -> None:
    spec = ChartSpec("trend", "Revenue by month", "bar", "trend", "month", ("revenue",))
    fig = figure(spec, trend_table([False, False, False, True]), "EUR")
    [bar] = fig.data
    assert isinstance(bar, go.Bar)
    assert list(bar.marker.opacity) == [1.0, 1.0, 1.0, 0.45]
    assert [a.text for a in fig.layout.annotations] == ["to date"]


def test_clickable_bars_carry_their_values() -> None:
    spec = ChartSpec("k", "Revenue", "bar", "t", "name", ("revenue",))
    [bar] = figure(spec, money_table(3), "EUR", keys=["a", "b", "c"]).data
    [plain] = figure(spec, money_table(3), "EUR").data
    assert isinstance(bar, go.Bar) and isinstance(plain, go.Bar)
    assert list(bar.customdata) == ["a", "b", "c"]
    assert plain.customdata is None


def test_a_clickable_pie_is_a_ring_whose_sectors_are_its_values() -> None:
    spec = ChartSpec("k", "Mix", "pie", "t", "name", ("revenue",))
    fig = figure(spec, money_table(12), "EUR", keys=[f"code_{i}" for i in range(12)])
    [ring] = fig.data
    assert isinstance(ring, go.Sunburst)
    # The total in the middle, the largest slices around it, the rest summed into "Other".
    assert ring.ids[0] == "__total__" and set(ring.parents[1:]) == {"__total__"}
    assert list(ring.ids[1:MAX_SLICES]) == [f"code_{i}" for i in range(MAX_SLICES - 1)]
    assert ring.labels[-1] == "Other" and ring.ids[-1] == "__other__"
    total = sum(1000 * (12 - i) for i in range(12))
    assert ring.values[0] == total and sum(ring.values[1:]) == total


def test_chart_categories_read_as_the_tables_labels() -> None:
    """A chart's categories are the same words as its table's cells (analytics/labels): a product never
    sold reads "Not sold", an audit event type reads as words, a name stays as it is."""
    frame = pd.DataFrame(
        {"movement": ["fast", "none"], "event_type": ["schedule_created", "login"], "products": [3, 1]}
    )
    cols = [
        Column("movement", "Movement"),
        Column("event_type", "Event"),
        Column("products", "Products", "int"),
    ]
    table = Table("t", "T", cols, frame)
    by_movement = figure(ChartSpec("m", "By movement", "bar", "t", "movement", ("products",)), table, "EUR")
    assert list(cast(Any, by_movement.data[0]).x) == ["Fast", "Not sold"]
    by_event = figure(ChartSpec("e", "By event", "pie", "t", "event_type", ("products",)), table, "EUR")
    assert "Schedule created" in list(cast(Any, by_event.data[0]).labels)


def count_table(values: list[int]) -> Table:
    frame = pd.DataFrame({"day": [f"D{i}" for i in range(len(values))], "events": values})
    return Table("t", "T", [Column("day", "Day"), Column("events", "Events", "int")], frame)


@pytest.mark.parametrize(("values", "dtick"), [([3, 2, 0, 3], 1), ([1], 1), ([40, 12], None), ([0, 0], None)])
def test_small_counts_tick_on_whole_numbers(values: list[int], dtick: int | None) -> None:
    """A count up to 8 ticks 0, 1, 2, 3 — not 0, 0.5, 1, ... labelled "0 1 1 2 2 3 3"."""
    spec = ChartSpec("k", "Events by day", "bar", "t", "day", ("events",), "int")
    axis = figure(spec, count_table(values), "EUR").layout.yaxis
    assert axis.dtick == dtick
    assert axis.tickformat == ",.0f"
