"""The statistical forecast in the app: add_forecast continues Overview's real revenue trend with the
forecast, its band and the anomalies; the Forecast page's tab explains its numbers in sentences and
help texts; MAPE, WAPE and bias are explained where they appear."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from analytics.report import Report
from core.models import Business
from core.settings import Settings
from tests.conftest import new_business
from tests.reports.reporting import run_report
from tests.reports.test_trend_forecast import daily_series, insert_daily
from tests.ui.test_report_pages import make_user, page, reset_resources, texts
from ui.charts import figure
from ui.forecast_view import HELP, add_forecast

FIRST_DAY = dt.date(2023, 1, 2)  # a Monday; sales up to the end of 2024: two whole years
LAST_DAY = dt.date(2024, 12, 31)
UNUSUAL_DAY = dt.date(2024, 12, 10)
PERIOD = ("start=2024-12-01", "end=2024-12-31", "now=2025-01-06T09:00:00+00:00")


@pytest.fixture(autouse=True)
def fresh_caches(cli_env: Settings) -> Iterator[None]:
    reset_resources()
    yield
    reset_resources()


@pytest.fixture(scope="module")
def shop(engine: Engine) -> Business:
    business = new_business(engine, "Two Year Shop")
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]
    values = daily_series(np.random.default_rng(3), len(days))
    values[days.index(UNUSUAL_DAY)] *= 1.6
    insert_daily(engine, business.id, [(d, Decimal(f"{v:.2f}")) for d, v in zip(days, values, strict=True)])
    return business


@pytest.fixture(scope="module")
def manager(engine: Engine, shop: Business) -> str:
    return make_user(engine, shop)


def reports(engine: Engine, settings: Settings, shop: Business) -> tuple[Report, Report]:
    overview = run_report(engine, settings.snapshot_dir, shop.id, "kpi_dashboard", *PERIOD)
    forecast = run_report(engine, settings.snapshot_dir, shop.id, "trend_forecast", *PERIOD)
    return overview, forecast


def test_add_forecast_continues_overviews_trend(engine: Engine, settings: Settings, shop: Business) -> None:
    overview, forecast = reports(engine, settings, shop)
    spec = next(c for c in overview.charts if c.key == "trend")
    fig = figure(spec, overview.tables["trend"], overview.currency)
    before = len(fig.data)
    add_forecast(fig, forecast)
    traces: list[Any] = list(fig.data[before:])
    added = {t.name: t for t in traces if t.name}
    rows = forecast.tables["forecast"].frame
    line = added["Revenue forecast"]
    # From December's actual (the trend's last month) into the next three months, dashed.
    assert list(line.x) == ["2024-12", "2025-01", "2025-02", "2025-03"] == ["2024-12", *rows["period"]]
    trend = overview.tables["trend"].frame
    december = float(trend.loc[trend["month"] == "2024-12", "revenue"].iloc[0])
    assert line.y[0] == pytest.approx(december)
    assert list(line.y[1:]) == pytest.approx([float(v) for v in rows["forecast"]])
    assert line.line.dash == "dash"
    band = added["80 % band"]
    assert band.fill == "tonexty" and list(band.y[1:]) == pytest.approx([float(v) for v in rows["lower_80"]])
    # The unusual day is marked on December's point of the revenue line.
    anomalies = forecast.tables["anomalies"].frame
    assert UNUSUAL_DAY in {
        d for d, g in zip(anomalies["date"], anomalies["grain"], strict=True) if g == "day"
    }
    marker = added["Anomaly"]
    assert list(marker.x) == ["2024-12"] and marker.y[0] == pytest.approx(december)
    assert "10 Dec 2024" in marker.customdata[0]


def test_add_forecast_without_a_forecast_marks_nothing_new(
    engine: Engine, settings: Settings, shop: Business
) -> None:
    overview, _ = reports(engine, settings, shop)
    short = run_report(
        engine, settings.snapshot_dir, shop.id, "trend_forecast", "start=2023-03-01", "end=2023-03-31"
    )
    assert not len(short.tables["forecast"].frame)  # two whole months: too little history
    spec = next(c for c in overview.charts if c.key == "trend")
    fig = figure(spec, overview.tables["trend"], overview.currency)
    before = len(fig.data)
    add_forecast(fig, short)
    traces: list[Any] = list(fig.data[before:])
    assert [t.name for t in traces] in ([], ["Anomaly"])


def test_the_statistical_tab_explains_its_numbers(manager: str) -> None:
    at = page(
        "forecast",
        manager,
        custom=(dt.date(2024, 12, 1), dt.date(2024, 12, 31)),
        tab="Statistical forecast",
    )
    assert not at.exception, at.exception
    shown = texts(at)
    assert "**Backtest.**" in shown and "**Forecast.** Jan 2025:" in shown and "**Model.**" in shown
    helps = {m.label: m.help for m in at.metric}
    assert helps["Backtest MAPE (model)"] == HELP["mape"]
    assert helps["Anomalies found"] == HELP["anomalies"]
    assert at.dataframe


@pytest.mark.parametrize("tab", ["Forecast vs actual", "Accuracy"])
def test_mape_wape_and_bias_are_explained_where_they_appear(manager: str, tab: str) -> None:
    at = page("forecast", manager, tab=tab)
    assert not at.exception, at.exception
    shown = texts(at)
    for key in ("mape", "wape", "bias"):
        assert HELP[key] in shown


def _overview_trend(url: str, snapshot_dir: str, business_id: int, pairs: tuple[str, ...]) -> None:
    # Run by AppTest.from_function as a script of its own: what Overview draws with the forecast.
    from pathlib import Path

    from core.db import make_engine
    from tests.reports.reporting import run_report
    from ui.forecast_view import preload_in_background, trend_with_forecast

    preload_in_background().join(timeout=60)  # what the app may start with: the imports, once
    engine = make_engine(url)
    try:
        overview = run_report(engine, Path(snapshot_dir), business_id, "kpi_dashboard", *pairs)
        forecast = run_report(engine, Path(snapshot_dir), business_id, "trend_forecast", *pairs)
    finally:
        engine.dispose()  # an engine left to the garbage collector warns about its open connections
    trend_with_forecast(overview, forecast)


def test_trend_with_forecast_draws_the_chart_and_lists_the_anomalies(
    engine: Engine, settings: Settings, shop: Business
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    at = AppTest.from_function(
        _overview_trend, args=(url, str(settings.snapshot_dir), shop.id, PERIOD), default_timeout=60
    ).run()
    assert not at.exception, at.exception
    listed = at.dataframe[0].value
    assert "2024-12-10" in {str(d) for d in listed["date"]}


def _overview_with_context(url: str, data_dir: str, business_id: int, code: str) -> None:
    # Run by AppTest.from_function: Overview's call, with the period, a filter and a comparison.
    import datetime as dt
    from pathlib import Path

    import streamlit as st

    from analytics.report import ReportParams
    from core.db import make_engine
    from core.settings import Settings
    from snapshots.store import SnapshotStore
    from tests.reports.reporting import run_report
    from ui.context import PageContext
    from ui.forecast_view import overview_forecast, trend_with_forecast

    settings = Settings(database_url=url, data_dir=Path(data_dir))
    engine = make_engine(url)
    try:
        store = SnapshotStore(engine, settings.snapshot_dir)
        ctx = PageContext(
            settings, engine, store, 0, "m", "M", "manager", business_id, code, "Shop", "EUR", "UTC"
        )
        params = ReportParams.from_pairs(
            ["start=2024-12-01", "end=2024-12-31", "region=North", "compare=last_year"],
            now=dt.datetime(2025, 1, 6, 9, tzinfo=dt.UTC),
        )
        overview = run_report(
            engine, settings.snapshot_dir, business_id, "kpi_dashboard", "start=2024-12-01", "end=2024-12-31"
        )
        forecast = overview_forecast(ctx, params)
    finally:
        engine.dispose()  # an engine left to the garbage collector warns about its open connections
    assert forecast is not None and forecast.params.filters == {"region": ("North",)}
    st.caption(f"forecast rows: {len(forecast.tables['forecast'].frame)}")
    trend_with_forecast(overview, forecast)


def test_overview_forecast_takes_the_period_and_filters_but_not_the_comparison(
    engine: Engine, settings: Settings, shop: Business
) -> None:
    url = engine.url.render_as_string(hide_password=False)
    at = AppTest.from_function(
        _overview_with_context, args=(url, str(settings.data_dir), shop.id, shop.code), default_timeout=60
    ).run()
    assert not at.exception, at.exception
    assert "forecast rows: 3" in [c.value for c in at.caption]
