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
