"""trend_forecast: the numbers' own forecast with honest bands, its backtest, and anomalous days and weeks.

The period's end is the forecast's origin: the history is every complete month (or ISO week, from
its Monday) of data up to `end`, at most MAX_HISTORY periods, from the first complete period with
a completed sale. A month or week that `end` cuts (month to date) is not history: it is the first
period forecast, and its actual so far is shown beside it (`actual_to_date`). The models, the
backtest and the anomaly rule are analytics/forecasting.py's (statsmodels ETS and STL).

- `forecast`: the next `horizon` periods, the median forecast and its 80 % and 95 % bands. Money
  forecasts are exact Decimals rounded to cents (they are estimates; the actuals stay exact).
- `backtest`: the last `horizon` complete periods held out, the model chosen and fitted afresh on
  the rest, against the seasonal-naive forecast (the same period a season before; the last value
  when there is less than a season). MAPE leaves out periods whose actual is 0.
- `reps_forecast` and `reps_forecast_gap_pct`: the reps' latest submissions for the month of the
  first forecast period (reports.forecast's forecast rows), quantity x the product's list price
  (unit_price, before discounts), against the statistical revenue forecast of that month:
  (reps - statistical) / statistical. Monthly revenue only; null otherwise, with a note.
- `anomalies`: the days inside the period that a robust STL decomposition of the daily series (from
  8 weeks before the period) calls out of the ordinary (forecasting.anomalies), and the weeks wholly
  inside it that fall outside the 99 % band of the forecast from the weeks before the period
  (forecasting.outside_band).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pandas as pd

from analytics import columns as col
from analytics import forecasting
from analytics.columns import relabel
from analytics.definition import OptionSpec, Placement, ReportDefinition, SystemTemplate
from analytics.periods import Period, month_end, month_start
from analytics.query import ReportContext, filter_sql, make_report
from analytics.report import ChartSpec, Column, ColumnKind, Kpi, Report, ReportParams, Table
from core.money import MICROS, to_cents
from reports.forecast import forecast_rows_sql
from reports.sales import ALL_FILTERS, fact_source, time_series
from reports.submissions import FORECAST_DIMENSIONS, cycle_params

GRAINS = ("month", "week")
METRICS = ("revenue", "gross_profit", "orders")
HORIZONS = tuple(str(n) for n in range(1, 25))
METRIC_LABELS = {"revenue": "Revenue", "gross_profit": "Gross profit", "orders": "Orders"}
METRIC_WORDS = {"revenue": "revenue", "gross_profit": "gross profit", "orders": "number of orders"}
# The longest history fitted (ten years of months, five of weeks): older data says little about next
# month and would only slow the fit.
MAX_HISTORY = {"month": 120, "week": 260}
# The periods of history the chart shows before the forecast (two years).
TREND_WINDOW = {"month": 24, "week": 104}
# Days before the period the daily anomaly search also reads, so the first days have a baseline.
DAY_CONTEXT = dt.timedelta(weeks=8)


def bucket_start(day: dt.date, grain: str) -> dt.date:
    """The first day of the month or ISO week (Monday) holding `day`."""
    return month_start(day) if grain == "month" else day - dt.timedelta(days=day.weekday())


def bucket_end(start: dt.date, grain: str) -> dt.date:
    return month_end(start) if grain == "month" else start + dt.timedelta(days=6)


def step(start: dt.date, grain: str, count: int = 1) -> dt.date:
    """The bucket `count` buckets after (or before) the one starting at `start`."""
    if grain == "week":
        return start + dt.timedelta(weeks=count)
    index = start.year * 12 + start.month - 1 + count
    return dt.date(index // 12, index % 12 + 1, 1)


def day_text(day: dt.date) -> str:
    """'3 Dec 2026', as the period texts write a day."""
    return f"{day.day} {day:%b %Y}"


def label(start: dt.date, grain: str) -> str | dt.date:
    """A period as the tables hold it: 'YYYY-MM' for a month, the Monday's date for a week."""
    return f"{start:%Y-%m}" if grain == "month" else start


@dataclass
class Series:
    """Complete periods of one grain up to the origin, and the period the origin cuts (if any)."""

    grain: str
    starts: list[dt.date]
    values: list[Any]  # Decimal (money) or int (orders), exact
    partial_start: dt.date | None = None
    partial_value: Any = None
    dropped_first: dt.date | None = None  # a leading period the data starts inside

    @property
    def floats(self) -> list[float]:
        return [float(v) for v in self.values]


def first_sale(ctx: ReportContext, end: dt.date, filters: Mapping[str, Sequence[str]]) -> dt.date | None:
    """The day of the first completed sale up to `end` that the filters keep (None: none)."""
    source, _ = fact_source(filters)
    fsql, params = filter_sql(filters, "l")
    row = ctx.one(
        f"SELECT MIN(l.order_date) FROM {source} WHERE l.status = 'completed' AND l.order_date <= $end{fsql}",
        {"end": end, **params},
    )
    value = row[0]
    if value is None:
        return None
    return value.date() if isinstance(value, dt.datetime) else value


def history(
    ctx: ReportContext,
    first: dt.date,
    end: dt.date,
    grain: str,
    metric: str,
    filters: Mapping[str, Sequence[str]],
    *,
    limit: int | None = None,
) -> Series:
    """The metric per complete `grain` bucket from the first one the data fills to `end` (the last
    `limit` of them), plus the bucket `end` cuts. Every bucket is present (zero without sales)."""
    start = bucket_start(first, grain)
    dropped = None
    if first > start:  # the data begins inside this bucket: it is not a whole period
        dropped, start = start, step(start, grain)
    end_bucket = bucket_start(end, grain)
    complete_through = end_bucket if bucket_end(end_bucket, grain) == end else step(end_bucket, grain, -1)
    if limit is not None and complete_through >= start:
        start = max(start, step(complete_through, grain, -(limit - 1)))
    if start > end:
        return Series(grain, [], [], dropped_first=dropped)
    frame = time_series(ctx, Period(start, end), filters, grain)
    starts = [dt.date.fromisoformat(f"{v}-01") if grain == "month" else _as_date(v) for v in frame[grain]]
    values = list(frame[metric])
    series = Series(grain, [], [], dropped_first=dropped)
    for s, v in zip(starts, values, strict=True):
        if s <= complete_through:
            series.starts.append(s)
            series.values.append(int(v) if metric == "orders" else v)
        else:
            series.partial_start, series.partial_value = s, (int(v) if metric == "orders" else v)
    return series


def _as_date(value: Any) -> dt.date:
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.date()
    assert isinstance(value, dt.date)
    return value


def reps_forecast_value(
    ctx: ReportContext, cycle: str, filters: Mapping[str, Sequence[str]]
) -> Decimal | None:
    """The reps' latest forecasts for `cycle` (YYYY-MM) valued at list price (None: no forecast)."""
    sql, params = forecast_rows_sql(filters)
    row = ctx.one(
        f"SELECT COUNT(*), SUM(r.f_qty * p.unit_price_micros) FROM ({sql}) r "
        "JOIN products p ON p.sku = r.sku",
        {**cycle_params(cycle, cycle), **params},
    )
    if not row[0]:
        return None
    return (Decimal(row[1]) / MICROS).quantize(Decimal("0.000001"))


# --- the report ---------------------------------------------------------------------------------


def _amount(value: float, metric: str) -> Decimal | float:
    """A model figure as the tables hold it: money as a Decimal rounded to cents, orders to 0.1."""
    if metric == "orders":
        return round(value, 1)
    return to_cents(Decimal(value))


def _plural(grain: str, count: int = 2) -> str:
    return grain if count == 1 else f"{grain}s"


@dataclass
class _Parts:
    """What the builder computed, before it becomes KPIs and tables."""

    forecast: forecasting.Forecast | None = None
    forecast_starts: list[dt.date] = field(default_factory=list)
    backtest: forecasting.Backtest | None = None
    reps_value: Decimal | None = None
    gap: float | None = None
    anomalies: list[dict[str, Any]] = field(default_factory=list)


def build_trend_forecast(ctx: ReportContext, params: ReportParams) -> Report:
    """History, forecast with bands, backtest against seasonal naive, reps' gap and anomalies."""
    period = ctx.period
    filters = params.filters
    grain = params.option("granularity", "month")
    horizon = int(params.option("horizon", "3"))
    metric = params.option("metric", "revenue")
    season = forecasting.SEASONS[grain]
    notes: list[str] = []
    parts = _Parts()

    first = first_sale(ctx, period.end, filters)
    if first is None:
        series = Series(grain, [], [])
        notes.append(
            f"No completed sales up to {day_text(period.end)}{' with these filters' if filters else ''}: "
            "there is no history to forecast from."
        )
    else:
        series = history(ctx, first, period.end, grain, metric, filters, limit=MAX_HISTORY[grain])
        if first > period.start:
            notes.append(f"The data begins on {day_text(first)}, inside the period.")
        if (
            series.dropped_first is not None
            and series.starts
            and series.starts[0] == step(series.dropped_first, grain)
        ):
            notes.append(
                f"The data begins inside the {grain} of {label(series.dropped_first, grain)}: that "
                f"{grain} is not whole, so the history starts with the next."
            )
        days = time_series(ctx, Period(max(first, period.start - DAY_CONTEXT), period.end), filters, "day")
        in_period = [d >= period.start for d in map(_as_date, days["day"])]
        sold = sum(int(o) for o, inside in zip(days["orders"], in_period, strict=True) if inside)
        if not sold and series.values and not series.values[-1]:
            # The data stops before the period: its zeros are missing data, not sales of nothing.
            notes.append(
                f"No completed sales in the period, nor in the last complete {grain} before its end: "
                "the data seems to stop earlier, so nothing is forecast. Choose a period with sales."
            )
        else:
            _forecast(parts, ctx, series, season, horizon, metric, filters, period, notes)
            if sold:
                parts.anomalies = _anomalies(ctx, first, period, filters, metric, days, series, notes)
            else:
                notes.append("No completed sales in the period: no day or week to call unusual.")
    return make_report(
        ctx,
        "trend_forecast",
        "Statistical forecast",
        params,
        period,
        _kpis(parts, series, metric, grain),
        _tables(parts, series, metric, grain, horizon),
        _charts(metric),
        notes,
    )


def _forecast(
    parts: _Parts,
    ctx: ReportContext,
    series: Series,
    season: int,
    horizon: int,
    metric: str,
    filters: Mapping[str, Sequence[str]],
    period: Period,
    notes: list[str],
) -> None:
    """The forecast from the last complete period on, its backtest and the reps' gap, into `parts`."""
    grain = series.grain
    try:
        parts.forecast = forecasting.forecast(series.floats, season, horizon, grain)
    except forecasting.ForecastError as exc:
        notes.append(str(exc))
        return
    notes.append(f"Model: {parts.forecast.reason}")
    origin = step(series.starts[-1], grain)
    parts.forecast_starts = [step(origin, grain, i) for i in range(horizon)]
    if series.partial_start is not None:
        notes.append(
            f"The {grain} of {label(series.partial_start, grain)} is not over on {day_text(period.end)}: "
            f"it is forecast as a whole {grain}, beside its actual so far, and not used in the fit."
        )
    try:
        parts.backtest = forecasting.backtest(series.floats, season, horizon, grain)
    except forecasting.ForecastError as exc:
        notes.append(f"No backtest: {exc}")
    if parts.backtest is not None:
        notes.append(
            f"Backtest: the last {horizon} complete {_plural(grain, horizon)} were held out and forecast "
            f"from the {_plural(grain)} before them ({parts.backtest.spec.code}), against the "
            f"{parts.backtest.naive_kind}. MAPE is the mean of |actual - forecast| / actual"
            + (
                "; the held-out actuals are all 0, so it is undefined."
                if parts.backtest.mape is None
                else " over the held-out periods whose actual is not 0."
            )
        )
    if metric != "revenue" or grain != "month":
        notes.append(
            "The sales reps forecast monthly quantities: their forecast is compared with the "
            "statistical one for monthly revenue only."
        )
    elif "storefront" in filters:
        notes.append(
            "Sales rep forecasts have no storefront: they are not compared under a storefront filter."
        )
    else:
        _reps_gap(parts, ctx, filters, notes)


def _reps_gap(
    parts: _Parts, ctx: ReportContext, filters: Mapping[str, Sequence[str]], notes: list[str]
) -> None:
    """The reps' forecast of the first forecast month at list price, and its gap to ours."""
    assert parts.forecast is not None
    cycle = f"{parts.forecast_starts[0]:%Y-%m}"
    value = reps_forecast_value(ctx, cycle, {k: v for k, v in filters.items() if k in FORECAST_DIMENSIONS})
    if value is None:
        notes.append(f"No sales rep forecast for {cycle} to compare with.")
        return
    ours = _amount(parts.forecast.mean[0], "revenue")
    assert isinstance(ours, Decimal)
    parts.reps_value = value
    parts.gap = float((value - ours) / ours) if ours else None
    notes.append(
        f"Sales reps' forecast for {cycle}: their latest submissions, quantity x list price (before "
        "discounts). Reps forecast their key accounts' main products only, so their total covers "
        "part of the revenue the statistical forecast covers."
    )


def _kpis(parts: _Parts, series: Series, metric: str, grain: str) -> list[Kpi]:
    fc, bt = parts.forecast, parts.backtest
    next_label = _next_label(parts.forecast_starts, grain)
    return [
        Kpi("model", "Model", fc.reason if fc is not None else None, "text"),
        Kpi("backtest_mape", "Backtest MAPE (model)", bt.mape if bt else None, "pct"),
        Kpi("naive_mape", "Backtest MAPE (seasonal naive)", bt.naive_mape if bt else None, "pct"),
        Kpi(
            "next_period_forecast",
            f"{METRIC_LABELS[metric]} forecast, {next_label}",
            _amount(fc.mean[0], metric) if fc is not None else None,
            "money" if metric != "orders" else "number",
        ),
        Kpi("reps_forecast", "Sales reps' forecast at list price", parts.reps_value, "money"),
        Kpi("reps_forecast_gap_pct", "Reps' forecast vs statistical", parts.gap, "pct"),
        Kpi("anomalies", "Anomalies found", len(parts.anomalies), "int"),
        Kpi("history_periods", f"Complete {grain}s of history", len(series.starts), "int"),
    ]


BANDS = {
    "lower_80": "Low (80 %)",
    "upper_80": "High (80 %)",
    "lower_95": "Low (95 %)",
    "upper_95": "High (95 %)",
}


def _tables(parts: _Parts, series: Series, metric: str, grain: str, horizon: int) -> list[Table]:
    name = METRIC_LABELS[metric]
    value_kind: ColumnKind = "money" if metric != "orders" else "int"
    model_kind: ColumnKind = "money" if metric != "orders" else "number"
    bucket = col.MONTH if grain == "month" else col.WEEK
    period_col = Column("period", bucket.label, bucket.kind)
    fc, bt = parts.forecast, parts.backtest

    forecast_rows: list[dict[str, Any]] = []
    if fc is not None:
        bands = {k: fc.interval(0.8 if k.endswith("80") else 0.95)[k.startswith("upper")] for k in BANDS}
        for i, start in enumerate(parts.forecast_starts):
            forecast_rows.append(
                {
                    "period": label(start, grain),
                    "forecast": _amount(fc.mean[i], metric),
                    **{k: _amount(v[i], metric) for k, v in bands.items()},
                    "actual_to_date": series.partial_value if start == series.partial_start else None,
                }
            )
    backtest_rows: list[dict[str, Any]] = []
    if bt is not None:
        first_held = len(series.starts) - horizon
        for i in range(horizon):
            backtest_rows.append(
                {
                    "period": label(series.starts[first_held + i], grain),
                    "actual": series.values[first_held + i],
                    "forecast": _amount(bt.forecast[i], metric),
                    "naive_forecast": _amount(bt.naive[i], metric),
                }
            )
    history_rows = [
        {"period": label(s, grain), "actual": v} for s, v in zip(series.starts, series.values, strict=True)
    ]
    # The chart's data: the recent history, then the forecast; the last actual is repeated in the
    # forecast columns so that every renderer joins the forecast lines to the history line.
    recent = [
        {**r, "forecast": None, "lower_80": None, "upper_80": None}
        for r in history_rows[-TREND_WINDOW[grain] :]
    ]
    if recent and forecast_rows:
        recent[-1] |= {k: recent[-1]["actual"] for k in ("forecast", "lower_80", "upper_80")}
    trend_rows = [
        *recent,
        *(
            {k: r[k] for k in ("period", "forecast", "lower_80", "upper_80")} | {"actual": None}
            for r in forecast_rows
        ),
    ]

    def frame(rows: list[dict[str, Any]], columns: Sequence[Column]) -> pd.DataFrame:
        return pd.DataFrame(rows, columns=[c.key for c in columns])

    model_col = Column("forecast", "Forecast", model_kind)
    actual_col = Column("actual", "Actual", value_kind)
    specs: list[tuple[str, str, list[Column], list[dict[str, Any]]]] = [
        ("history", f"{name} by {grain}", [period_col, relabel(actual_col, name)], history_rows),
        (
            "forecast",
            f"{name} forecast, next {horizon} {_plural(grain, horizon)}",
            [
                period_col,
                model_col,
                *(Column(k, v, model_kind) for k, v in BANDS.items()),
                Column("actual_to_date", "Actual so far", value_kind),
            ],
            forecast_rows,
        ),
        (
            "backtest",
            "Backtest: the held-out periods",
            [
                period_col,
                actual_col,
                relabel(model_col, "Model forecast"),
                Column("naive_forecast", "Seasonal-naive forecast", model_kind),
            ],
            backtest_rows,
        ),
        (
            "anomalies",
            "Anomalies: days and weeks out of the ordinary",
            [
                Column("date", "Date", "date"),
                Column("grain", "Day or week"),
                Column("metric", "Metric"),
                actual_col,
                Column("expected", "Expected", model_kind),
                Column("deviation_pct", "Deviation", "pct"),
                Column("direction", "Direction"),
            ],
            parts.anomalies,
        ),
        (
            "trend",
            f"{name}: recent history and forecast (the chart's data)",
            [
                period_col,
                actual_col,
                model_col,
                *(Column(k, BANDS[k], model_kind) for k in ("lower_80", "upper_80")),
            ],
            trend_rows,
        ),
    ]
    return [Table(key, title, columns, frame(rows, columns)) for key, title, columns, rows in specs]


def _charts(metric: str) -> list[ChartSpec]:
    name = METRIC_LABELS[metric]
    kind: ColumnKind = "money" if metric != "orders" else "number"
    return [
        ChartSpec(
            "trend",
            f"{name}: history and forecast",
            "line",
            "trend",
            "period",
            ("actual", "forecast", "lower_80", "upper_80"),
            kind,
        ),
        ChartSpec(
            "backtest",
            "Backtest: model vs seasonal naive",
            "bar",
            "backtest",
            "period",
            ("actual", "forecast", "naive_forecast"),
            kind,
        ),
    ]


def _next_label(starts: Sequence[dt.date], grain: str) -> str:
    if not starts:
        return f"next {grain}"
    return f"{starts[0]:%b %Y}" if grain == "month" else f"week of {day_text(starts[0])}"


def _anomalies(
    ctx: ReportContext,
    first: dt.date,
    period: Period,
    filters: Mapping[str, Sequence[str]],
    metric: str,
    days: pd.DataFrame,
    series: Series,
    notes: list[str],
) -> list[dict[str, Any]]:
    """Anomalous days in the period (`days`: the daily series from DAY_CONTEXT before it) and weeks
    wholly inside it, by date (a day before its week); a note on how, or on why not."""
    rows: list[dict[str, Any]] = []
    how: list[str] = []
    what = METRIC_WORDS[metric]
    day_values = [int(v) if metric == "orders" else v for v in days[metric]]
    day_starts = [_as_date(d) for d in days["day"]]
    inside = next((i for i, d in enumerate(day_starts) if d >= period.start), len(day_starts))
    try:
        found = forecasting.anomalies(
            [float(v) for v in day_values], forecasting.SEASONS["day"], first=inside
        )
        rows += [_anomaly_row(a, day_starts[a.index], "day", metric, day_values[a.index]) for a in found]
        how.append(
            f"a day is one when its {what} lies more than {forecasting.ANOMALY_Z:g} robust standard "
            "deviations (those of its weekday) from what a robust STL decomposition of the days (weekday "
            "pattern and trend) expects"
        )
    except forecasting.ForecastError as exc:
        notes.append(f"No anomalous days looked for: {exc}")
    # Weeks wholly inside the period, against the band of the model fitted to the weeks before it.
    weekly = series
    if series.grain != "week":
        weekly = history(ctx, first, period.end, "week", metric, filters, limit=MAX_HISTORY["week"])
    before = next((i for i, s in enumerate(weekly.starts) if s >= period.start), len(weekly.starts))
    if before < len(weekly.starts):
        try:
            if before < forecasting.MIN_PERIODS:
                raise forecasting.ForecastError(
                    f"{before} complete week{'' if before == 1 else 's'} of data before the period, and "
                    f"it takes {forecasting.MIN_PERIODS}."
                )
            found = forecasting.outside_band(
                weekly.floats[:before], forecasting.SEASONS["week"], weekly.floats[before:], unit="week"
            )
            rows += [
                _anomaly_row(
                    a, weekly.starts[before + a.index], "week", metric, weekly.values[before + a.index]
                )
                for a in found
            ]
            how.append(
                f"a week wholly inside the period is one when it falls outside the "
                f"{forecasting.WEEK_BAND:.0%} band of the forecast from the weeks before the period"
            )
        except forecasting.ForecastError as exc:
            notes.append(f"No anomalous weeks looked for: {exc}")
    rows.sort(key=lambda r: (r["date"], r["grain"] != "day"))
    if how:
        notes.append(f"Anomalies: {'; '.join(how)}.")
    return rows


def _anomaly_row(
    found: forecasting.Anomaly, day: dt.date, grain: str, metric: str, actual: Any
) -> dict[str, Any]:
    return {
        "date": day,
        "grain": grain,
        "metric": metric,
        "actual": actual,
        "expected": _amount(found.expected, metric),
        "deviation_pct": found.deviation_pct,
        "direction": found.direction,
    }


TREND_FORECAST = ReportDefinition(
    slug="trend_forecast",
    title="Statistical forecast",
    description="The next months' (or weeks') revenue, gross profit or orders forecast from their own "
    "history (exponential smoothing, statsmodels) with 80 % and 95 % bands, a backtest against a "
    "seasonal-naive forecast, the gap to the sales reps' forecast, and the days and weeks of the "
    "period that were out of the ordinary.",
    build=build_trend_forecast,
    filters=ALL_FILTERS,
    options=(
        OptionSpec("granularity", "Forecast months or ISO weeks", "month", GRAINS),
        OptionSpec("horizon", "How many months or weeks to forecast", "3", HORIZONS),
        OptionSpec("metric", "What to forecast", "revenue", METRICS),
    ),
    template=SystemTemplate(formats=("pdf", "xlsx")),
    page=Placement("forecast"),
)
