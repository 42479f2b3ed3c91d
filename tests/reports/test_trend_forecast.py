"""trend_forecast: honest bands and a real edge over seasonal naive on generated series, planted anomalies
found, the demo data's history, backtest and reps' gap recomputed with pandas, and clear notes for
histories too short, all zero, a single period or a period without data."""

from __future__ import annotations

import datetime as dt
import io
import math
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics import forecasting
from core.db import bump_data_version, session_scope
from core.models import Business, Customer, Product
from core.money import to_micros
from core.settings import Settings
from exporters import EXPORTERS
from exporters.json_export import report_document
from ingest.demo import load_demo
from tests.conftest import new_business
from tests.factories import add_one_line_sale, raw_frames
from tests.reports.reporting import run_report

Doc = dict[str, Any]
WEEKDAYS = np.array([0.90, 0.95, 1.00, 1.05, 1.25, 1.30, 0.55])  # Monday first: a shop's week


def seasonal_series(
    rng: np.random.Generator, n: int, season: int, *, noise: float = 0.06, start: int = 0
) -> np.ndarray:
    """n values from `start` on: 15 % growth a year, a +-25 % yearly wave, lognormal noise."""
    t = np.arange(start, start + n)
    growth = 1.15 ** (t / season)
    return 1000 * growth * (1 + 0.25 * np.sin(2 * np.pi * t / season)) * rng.lognormal(0, noise, n)


def daily_series(rng: np.random.Generator, days: int, *, noise: float = 0.05) -> np.ndarray:
    """`days` daily values from a Monday: growth, a yearly wave, a shop's weekday pattern, noise."""
    t = np.arange(days)
    level = 10_000 * 1.15 ** (t / 365) * (1 + 0.2 * np.sin(2 * np.pi * t / 365))
    return np.asarray(level * WEEKDAYS[t % 7] * rng.lognormal(0, noise, days), dtype=float)


def plant(rng: np.random.Generator, values: np.ndarray, first: int, count: int = 10) -> dict[int, float]:
    """Multiply `count` values from index `first` on by 1.4 or 0.6 (half each); {index: factor}."""
    chosen = sorted(int(i) for i in rng.choice(np.arange(first, len(values)), count, replace=False))
    factors = {i: (1.4 if k % 2 else 0.6) for k, i in enumerate(chosen)}
    for i, factor in factors.items():
        values[i] *= factor
    return factors


# --- the models on generated series -----------------------------------------------------------


@pytest.mark.parametrize(
    ("season", "n", "horizon", "count"), [(12, 48, 3, 40), (12, 30, 3, 30), (52, 156, 4, 25)]
)
def test_the_95_band_covers_fresh_values_and_the_model_beats_seasonal_naive(
    season: int, n: int, horizon: int, count: int
) -> None:
    rng = np.random.default_rng(season * 1000 + n)
    inside_95 = inside_80 = total = 0
    model_errors: list[float] = []
    naive_errors: list[float] = []
    for _ in range(count):
        y = seasonal_series(rng, n + horizon, season)
        history, fresh = list(y[:n]), list(y[n:])
        fitted = forecasting.forecast(history, season, horizon, "month")
        assert fitted.spec.seasonal and fitted.spec.log, fitted.reason
        low95, high95 = fitted.interval(0.95)
        low80, high80 = fitted.interval(0.80)
        for i, value in enumerate(fresh):
            assert low95[i] <= low80[i] <= fitted.mean[i] <= high80[i] <= high95[i]
            inside_95 += low95[i] <= value <= high95[i]
            inside_80 += low80[i] <= value <= high80[i]
            total += 1
        # MAPE by hand, against the same period a season before.
        naive = history[-season : -season + horizon] if horizon < season else None
        assert naive is not None
        model_errors += [abs(a - f) / a for a, f in zip(fresh, fitted.mean, strict=True)]
        naive_errors += [abs(a - f) / a for a, f in zip(fresh, naive, strict=True)]
        assert forecasting.seasonal_naive(history, season, horizon)[0] == tuple(naive)
    assert inside_95 / total >= 0.90, f"95 % band covered {inside_95}/{total}"
    assert inside_80 / total >= 0.70, f"80 % band covered {inside_80}/{total}"
    assert sum(model_errors) / len(model_errors) < sum(naive_errors) / len(naive_errors)


def test_the_model_follows_the_history_it_is_given() -> None:
    rng = np.random.default_rng(5)
    short = list(seasonal_series(rng, 8, 12))  # fewer than TREND_PERIODS: a level only
    assert forecasting.forecast(short, 12, 3, "month").spec == forecasting.ModelSpec("none", False, True)
    year = list(seasonal_series(rng, 20, 12))  # one season: trends, no seasonality yet
    fitted = forecasting.forecast(year, 12, 3, "month")
    assert not fitted.spec.seasonal and "two full seasons: 24 months" in fitted.reason
    signed = [v - 1500 for v in seasonal_series(rng, 30, 12)]  # some negative: no logarithm
    assert not forecasting.forecast(signed, 12, 3, "month").spec.log
    flat = forecasting.forecast([5.0] * 7, 12, 2, "month")
    assert flat.mean == (5.0, 5.0) and flat.interval(0.95) == ((5.0, 5.0), (5.0, 5.0))


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ([], "no complete month"),
        ([100.0], "1 month of data"),
        ([3.0, 4.0, 5.0, 6.0, 7.0], "5 months of data"),
        ([0.0] * 12, "Every month up to the end of the period is zero"),
    ],
)
def test_histories_too_short_or_all_zero_are_refused_in_words(values: list[float], words: str) -> None:
    with pytest.raises(forecasting.ForecastError, match=words):
        forecasting.forecast(values, 12, 3, "month")


@pytest.mark.parametrize("seed", range(8))
def test_planted_anomalies_are_found_with_at_most_two_false_alarms_a_year(seed: int) -> None:
    rng = np.random.default_rng(seed)
    context = 56
    values = daily_series(rng, context + 365)
    planted = plant(rng, values, context)
    found = forecasting.anomalies(list(values), 7, first=context)
    flagged = {a.index for a in found}
    assert len(flagged & set(planted)) >= 9, sorted(set(planted) - flagged)
    assert len(flagged - set(planted)) <= 2, sorted(flagged - set(planted))
    for a in found:
        if a.index in planted:
            assert a.direction == ("above" if planted[a.index] > 1 else "below")
            # Expected is the value without its anomaly, give or take the noise.
            assert a.actual / a.expected == pytest.approx(planted[a.index], rel=0.2)


def test_sparse_or_short_daily_series_are_not_searched() -> None:
    with pytest.raises(forecasting.ForecastError, match="too few days"):
        forecasting.anomalies([5.0] * 5, 7)
    with pytest.raises(forecasting.ForecastError, match="most days have no sales"):
        forecasting.anomalies([0.0, 0.0, 0.0, 9.0] * 10, 7)


# --- the report over generated sales -----------------------------------------------------------


def insert_daily(engine: Engine, business_id: int, days: Sequence[tuple[dt.date, Decimal]]) -> None:
    """One completed sale a day of one line: quantity 1 at that day's revenue, costing 60 % of it."""
    with session_scope(engine) as s:
        customer = Customer(
            business_id=business_id,
            customer_code="G1",
            name="Generated",
            customer_type="retail",
            region="North",
        )
        product = Product(
            business_id=business_id,
            sku="GEN",
            name="Generated",
            category="Misc",
            unit_cost_micros=to_micros("6"),
            unit_price_micros=to_micros("10"),
        )
        s.add_all([customer, product])
        s.flush()
        for n, (day, revenue) in enumerate(days):
            add_one_line_sale(
                s,
                business_id,
                order_id=f"G{n}",
                day=day,
                customer_id=customer.id,
                product_id=product.id,
                net=to_micros(revenue),
                cost=to_micros((revenue * Decimal("0.6")).quantize(Decimal("0.01"))),
                sales_rep="gen",
            )
        bump_data_version(s, business_id)


def doc(engine: Engine, settings: Settings, business_id: int, *pairs: str) -> Doc:
    report = run_report(engine, settings.snapshot_dir, business_id, "trend_forecast", *pairs)
    for fmt in EXPORTERS:  # every format writes it, whatever the report holds
        EXPORTERS[fmt].write(report, io.BytesIO())
    return report_document(report)


FIRST_DAY = dt.date(2024, 11, 4)  # a Monday; the year searched is 2025


def test_the_report_finds_the_planted_days_of_a_year(engine: Engine, settings: Settings) -> None:
    rng = np.random.default_rng(42)
    context = (dt.date(2025, 1, 1) - FIRST_DAY).days
    values = daily_series(rng, context + 365)
    planted = plant(rng, values, context)
    business = new_business(engine, "Planted Days")
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range(len(values))]
    insert_daily(engine, business.id, [(d, Decimal(f"{v:.2f}")) for d, v in zip(days, values, strict=True)])
    got = doc(engine, settings, business.id, "start=2025-01-01", "end=2025-12-31")
    flagged = {dt.date.fromisoformat(r["date"]): r for r in got["tables"]["anomalies"] if r["grain"] == "day"}
    planted_days = {days[i]: f for i, f in planted.items()}
    assert len(set(flagged) & set(planted_days)) >= 9
    assert len(set(flagged) - set(planted_days)) <= 2
    assert got["kpis"]["anomalies"] == len(got["tables"]["anomalies"])
    for day, row in flagged.items():
        # actual is the day's revenue, exactly; the deviation is actual against expected
        assert Decimal(str(row["actual"])) == Decimal(f"{values[(day - FIRST_DAY).days]:.2f}")
        assert row["deviation_pct"] == pytest.approx(row["actual"] / row["expected"] - 1, abs=1e-4)
        assert row["metric"] == "revenue"
        if day in planted_days:
            assert row["direction"] == ("above" if planted_days[day] > 1 else "below")
    # December 2024 to December 2025 (November 2024 is not whole): trends, no seasonality yet.
    assert got["kpis"]["history_periods"] == 13 and "two full seasons" in got["kpis"]["model"]
    assert got_note(got, "The data begins inside the month of 2024-11")
    for r in got["tables"]["forecast"]:
        assert r["lower_95"] <= r["lower_80"] <= r["forecast"] <= r["upper_80"] <= r["upper_95"]


# --- the demo data: every granularity and metric, recomputed with pandas ------------------------

DEMO_TODAY = dt.date(2026, 11, 21)
DEMO_NOW = "now=2026-11-21T09:00:00+00:00"
DEMO_ROWS = 20_000


@pytest.fixture(scope="module")
def demo(engine: Engine) -> tuple[int, dict[str, pd.DataFrame]]:
    summary = load_demo(engine, f"tf{uuid.uuid4().hex[:8]}", rows=DEMO_ROWS, today=DEMO_TODAY)
    return summary.business_id, raw_frames(engine, summary.business_id)


def oracle(lines: pd.DataFrame, grain: str, metric: str, end: dt.date) -> pd.Series:
    """The metric per complete month or ISO week up to `end`, from the first whole one, by pandas."""
    done = lines[(lines["status"] == "completed") & (lines["order_date"] <= end)].copy()
    days = pd.to_datetime(done["order_date"])
    if grain == "month":
        done["start"] = days.dt.to_period("M").dt.start_time.dt.date
    else:
        done["start"] = (days - pd.to_timedelta(days.dt.day_of_week, unit="D")).dt.date
    grouped = done.groupby("start")
    values = {
        "revenue": grouped["net"].sum(),
        "gross_profit": grouped["net"].sum() - grouped["cost"].sum(),
        "orders": grouped["sale_id"].nunique(),
    }[metric]
    first_day = min(done["order_date"])
    starts = sorted(s for s in values.index if s >= first_day)  # the first, partial bucket goes
    # complete buckets only: a month ends before `end`, or a week's Sunday is on or before it
    if grain == "month":
        complete = [s for s in starts if (pd.Timestamp(s) + pd.offsets.MonthEnd(0)).date() <= end]
    else:
        complete = [s for s in starts if s + dt.timedelta(days=6) <= end]
    return values.reindex(complete, fill_value=0)


@pytest.mark.parametrize("grain", ["month", "week"])
@pytest.mark.parametrize("metric", ["revenue", "gross_profit", "orders"])
def test_demo_data_history_and_backtest_recomputed(
    engine: Engine, settings: Settings, demo: tuple[int, dict[str, pd.DataFrame]], grain: str, metric: str
) -> None:
    business_id, frames = demo
    got = doc(
        engine,
        settings,
        business_id,
        "period=last_month",
        DEMO_NOW,
        f"granularity={grain}",
        f"metric={metric}",
    )
    end = dt.date(2026, 10, 31)
    expected = oracle(frames["lines"], grain, metric, end)
    label = (lambda s: f"{s:%Y-%m}") if grain == "month" else (lambda s: s.isoformat())
    history = got["tables"]["history"]
    assert [r["period"] for r in history] == [label(s) for s in expected.index]
    exact = [Decimal(str(v)).quantize(Decimal("0.01")) if metric != "orders" else int(v) for v in expected]
    assert [Decimal(str(r["actual"])) if metric != "orders" else r["actual"] for r in history] == exact
    assert got["kpis"]["history_periods"] == len(expected)

    # The backtest: the last 3 periods held out; naive = the same period a season before.
    season, horizon = forecasting.SEASONS[grain], 3
    values = [float(v) for v in expected]
    held, train = values[-horizon:], values[:-horizon]
    rows = got["tables"]["backtest"]
    assert [r["period"] for r in rows] == [label(s) for s in expected.index[-horizon:]]
    assert [float(r["actual"]) for r in rows] == pytest.approx(held)
    naive = [train[len(train) - season + i] for i in range(horizon)]
    assert [r["naive_forecast"] for r in rows] == pytest.approx(naive, abs=0.051)
    # The model refitted on the rest: the same forecast from pandas' history.
    refit = forecasting.forecast(train, season, horizon, grain).mean
    assert [r["forecast"] for r in rows] == pytest.approx(refit, abs=0.051)
    mape = sum(abs(a - f) / a for a, f in zip(held, refit, strict=True)) / horizon
    naive_mape = sum(abs(a - f) / a for a, f in zip(held, naive, strict=True)) / horizon
    assert got["kpis"]["backtest_mape"] == pytest.approx(mape, rel=1e-9)
    assert got["kpis"]["naive_mape"] == pytest.approx(naive_mape, rel=1e-9)

    # The forecast: the next 3 periods after the last complete one, from the whole history.
    fitted = forecasting.forecast(values, season, horizon, grain)
    forecast = got["tables"]["forecast"]
    assert [r["forecast"] for r in forecast] == pytest.approx(fitted.mean, abs=0.051)
    assert got["kpis"]["next_period_forecast"] == forecast[0]["forecast"]
    assert got["kpis"]["model"] == fitted.reason
    first = expected.index[-1]
    step = (
        (lambda s, k: (pd.Timestamp(s) + pd.DateOffset(months=k)).date())
        if grain == "month"
        else (lambda s, k: s + dt.timedelta(weeks=k))
    )
    assert [r["period"] for r in forecast] == [label(step(first, k)) for k in (1, 2, 3)]
    for r in forecast:
        assert r["lower_95"] <= r["lower_80"] <= r["forecast"] <= r["upper_80"] <= r["upper_95"]
    if grain == "week":  # 31 Oct 2026 is a Saturday: that week is forecast, beside its days so far
        partial = oracle_partial(frames["lines"], dt.date(2026, 10, 26), end, metric)
        assert forecast[0]["actual_to_date"] == pytest.approx(partial, abs=0.005)  # cents in JSON
        assert all(r["actual_to_date"] is None for r in forecast[1:])


def oracle_partial(lines: pd.DataFrame, start: dt.date, end: dt.date, metric: str) -> float:
    done = lines[
        (lines["status"] == "completed") & (lines["order_date"] >= start) & (lines["order_date"] <= end)
    ]
    if metric == "orders":
        return float(done["sale_id"].nunique())
    revenue = sum(done["net"], Decimal(0))
    return float(revenue if metric == "revenue" else revenue - sum(done["cost"], Decimal(0)))


def test_demo_reps_forecast_at_list_price_and_its_gap(
    engine: Engine, settings: Settings, demo: tuple[int, dict[str, pd.DataFrame]]
) -> None:
    business_id, frames = demo
    got = doc(engine, settings, business_id, "period=last_month", DEMO_NOW)
    forecasts = frames["forecasts"]
    cycle = forecasts[forecasts["cycle"] == "2026-11"].sort_values(["submitted_at", "id"])
    latest = cycle.groupby(["customer_id", "product_id"]).tail(1)
    prices = frames["products"].set_index("id")["unit_price_micros"]
    value = sum(
        (
            Decimal(str(q)) * Decimal(int(prices[p]))
            for q, p in zip(latest["quantity"], latest["product_id"], strict=True)
        ),
        Decimal(0),
    )
    reps = (value / 1_000_000).quantize(Decimal("0.01"))
    assert Decimal(str(got["kpis"]["reps_forecast"])) == reps
    ours = Decimal(str(got["kpis"]["next_period_forecast"]))
    assert got["kpis"]["reps_forecast_gap_pct"] == pytest.approx(
        float((value / 1_000_000 - ours) / ours), rel=1e-6
    )
    # Only monthly revenue is compared; a storefront filter (forecasts have none) leaves it out too.
    for pairs in (("granularity=week",), ("metric=orders",), ("storefront=NTH",)):
        other = doc(engine, settings, business_id, "period=last_month", DEMO_NOW, *pairs)
        assert other["kpis"]["reps_forecast"] is None and other["kpis"]["reps_forecast_gap_pct"] is None
        assert any("rep" in n for n in other["notes"])


def test_month_to_date_forecasts_the_running_month_beside_its_days_so_far(
    engine: Engine, settings: Settings, demo: tuple[int, dict[str, pd.DataFrame]]
) -> None:
    business_id, frames = demo
    got = doc(engine, settings, business_id, "period=month_to_date", DEMO_NOW)
    assert got["tables"]["history"][-1]["period"] == "2026-10"
    first = got["tables"]["forecast"][0]
    assert first["period"] == "2026-11"
    assert first["actual_to_date"] == pytest.approx(
        oracle_partial(frames["lines"], dt.date(2026, 11, 1), DEMO_TODAY, "revenue"), abs=0.005
    )
    assert any("2026-11 is not over" in n for n in got["notes"])


# --- clear notes instead of a forecast ----------------------------------------------------------


def _empty(got: Doc) -> None:
    assert got["tables"]["forecast"] == [] and got["tables"]["backtest"] == []
    for key in ("model", "backtest_mape", "naive_mape", "next_period_forecast", "reps_forecast_gap_pct"):
        assert got["kpis"][key] is None


def test_no_data_at_all(engine: Engine, settings: Settings) -> None:
    business = new_business(engine, "Nothing Sold")
    got = doc(engine, settings, business.id, "start=2025-01-01", "end=2025-01-31")
    _empty(got)
    assert got["tables"]["history"] == [] and got["kpis"]["anomalies"] == 0
    assert any("No completed sales up to 31 Jan 2025" in n for n in got["notes"])


def months_of_sales(engine: Engine, name: str, first: dt.date, last: dt.date, amount: str) -> Business:
    business = new_business(engine, name)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    insert_daily(engine, business.id, [(d, Decimal(amount)) for d in days])
    return business


def test_a_single_month(engine: Engine, settings: Settings) -> None:
    business = months_of_sales(engine, "One Month", dt.date(2025, 1, 1), dt.date(2025, 1, 31), "100")
    got = doc(engine, settings, business.id, "start=2025-01-01", "end=2025-01-31")
    _empty(got)
    assert [r["period"] for r in got["tables"]["history"]] == ["2025-01"]
    assert any("1 month of data up to the end of the period" in n for n in got["notes"])


def test_a_short_history(engine: Engine, settings: Settings) -> None:
    business = months_of_sales(engine, "Four Months", dt.date(2025, 1, 1), dt.date(2025, 4, 30), "100")
    got = doc(engine, settings, business.id, "start=2025-04-01", "end=2025-04-30")
    _empty(got)
    assert len(got["tables"]["history"]) == 4
    assert any("4 months of data" in n and "at least 6" in n for n in got["notes"])


def test_an_all_zero_history(engine: Engine, settings: Settings) -> None:
    business = months_of_sales(engine, "Free Samples", dt.date(2024, 1, 1), dt.date(2024, 12, 31), "0")
    got = doc(engine, settings, business.id, "start=2024-12-01", "end=2024-12-31")
    _empty(got)
    assert [r["actual"] for r in got["tables"]["history"]] == [0.0] * 12
    assert any("Every month up to the end of the period is zero" in n for n in got["notes"])
    assert any("most days have no sales" in n for n in got["notes"])  # no anomaly from zeros either
    # Orders are not zero: they are forecast.
    orders = doc(engine, settings, business.id, "start=2024-12-01", "end=2024-12-31", "metric=orders")
    assert 28 <= orders["kpis"]["next_period_forecast"] <= 31  # one order a day, months of 28 to 31 days


def test_a_period_without_data(engine: Engine, settings: Settings) -> None:
    business = months_of_sales(engine, "Stopped", dt.date(2024, 1, 1), dt.date(2024, 12, 31), "100")
    later = doc(engine, settings, business.id, "start=2026-03-01", "end=2026-03-31")
    _empty(later)
    assert got_note(later, "No completed sales in the period, nor in the last complete month")
    assert later["tables"]["anomalies"] == []
    before = doc(engine, settings, business.id, "start=2023-03-01", "end=2023-03-31")
    _empty(before)
    assert got_note(before, "No completed sales up to 31 Mar 2023")


def got_note(got: Doc, text: str) -> bool:
    return any(text in n for n in got["notes"])


def test_nan_free_json(engine: Engine, settings: Settings) -> None:
    business = months_of_sales(engine, "Steady", dt.date(2024, 1, 1), dt.date(2024, 12, 31), "100")
    got = doc(engine, settings, business.id, "start=2024-12-01", "end=2024-12-31", "granularity=week")
    for rows in got["tables"].values():
        for row in rows:
            assert not any(isinstance(v, float) and math.isnan(v) for v in row.values())


def test_a_horizon_longer_than_the_backtest_can_hold_out(engine: Engine, settings: Settings) -> None:
    business = months_of_sales(engine, "Ten Months", dt.date(2024, 3, 1), dt.date(2024, 12, 31), "100")
    got = doc(engine, settings, business.id, "start=2024-12-01", "end=2024-12-31", "horizon=6")
    assert len(got["tables"]["forecast"]) == 6 and got["tables"]["backtest"] == []
    assert got["kpis"]["backtest_mape"] is None and got["kpis"]["naive_mape"] is None
    assert got_note(got, "No backtest: holding out the last 6 months leaves 4 to forecast them from")
