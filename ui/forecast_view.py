"""The statistical forecast in the app: the Forecast page's "Statistical forecast" tab, the forecast and
anomalies drawn onto a revenue trend (Overview), and the plain-words help for forecast metrics.

`add_forecast(fig, forecast)` adds, to any plotly trend whose x values are the forecast report's
periods ("YYYY-MM" months, or dates), the dashed forecast with its 80 % band and a marker on each
period holding an anomaly; `trend_with_forecast` draws a report's trend chart with them and lists the
anomalies under it.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, cast

import plotly.graph_objects as go
import streamlit as st

from analytics.forecasting import SEASONS, preload
from analytics.formatting import currency_symbol, format_cell
from analytics.report import Report, ReportParams
from core.errors import TallyboardError
from reports.registry import definition
from reports.trend_forecast import GRAINS, HORIZONS, METRIC_LABELS, METRICS, day_text
from ui import report_view as view
from ui.charts import figure
from ui.context import PageContext

ACTUAL_COLOR = "#1f6feb"
FORECAST_COLOR = "#5a6473"
BAND_COLORS = {"80": "rgba(90, 100, 115, 0.20)", "95": "rgba(90, 100, 115, 0.09)"}
ANOMALY_COLOR = "#e15759"

# What forecast metrics mean, in one sentence a sales manager reads without a statistics course.
HELP = {
    "mape": "**MAPE** (mean absolute percentage error): on average, how far each forecast was from what "
    "was actually sold, as a share of the actual; 10 % means forecasts were typically a tenth off, "
    "too high or too low.",
    "wape": "**WAPE** (weighted absolute percentage error): all the misses added up, as a share of "
    "everything actually sold, so big customers and products weigh more and a tiny line missed by "
    "300 % cannot dominate.",
    "bias": "**Bias**: whether forecasts lean high or low overall; +8 % means 8 % more was forecast than "
    "sold, -8 % that 8 % less was forecast than sold.",
    "accuracy": "**Accuracy**: 1 - WAPE; 85 % means 15 % of the volume sold was missed one way or the other.",
    "naive_mape": "**Seasonal naive**: the simplest honest forecast, the same month (or week) a year "
    "before; a model worth having makes smaller errors than it.",
    "band": "The forecast is the middle of a range: the actual should land inside the 80 % band 4 times "
    "out of 5, and inside the 95 % band 19 times out of 20, if the coming months behave like the past.",
    "anomalies": "**Anomalies**: days (and weeks) whose figure lies far outside what the usual weekday "
    "pattern and trend lead one to expect.",
    "gap": "The sales reps' forecast (their quantities at list price) against the statistical one: "
    "-20 % means the reps expect a fifth less.",
}


@st.cache_resource(show_spinner=False)
def preload_in_background() -> threading.Thread:
    """Once per server process: import the forecasting libraries in a background thread (see
    analytics.forecasting.preload), so the first page with a forecast does not wait for them."""
    thread = threading.Thread(target=preload, name="forecast-preload", daemon=True)
    thread.start()
    return thread


def metric_help() -> None:
    """The MAPE, WAPE, bias and accuracy sentences, above the figures that use them."""
    with st.expander("What MAPE, WAPE, bias and accuracy mean", icon=":material/help:"):
        for key in ("mape", "wape", "bias", "accuracy"):
            st.markdown(HELP[key])


# --- plotly ------------------------------------------------------------------------------------


def _floats(values: Sequence[Any]) -> list[float]:
    return [math.nan if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in values]


def _x(value: Any) -> Any:
    """A period as plotly gets it: months stay 'YYYY-MM' text, dates stay dates."""
    if isinstance(value, dt.datetime):
        return value.date()
    return value


def _trace_values(fig: go.Figure, name: str) -> dict[Any, float]:
    """x -> y of the traces whose name starts with `name` ("Revenue", "Revenue (to date)"), else of
    the first line of the figure."""
    traces: list[Any] = list(fig.data)
    chosen = [t for t in traces if str(getattr(t, "name", "") or "").startswith(name)]
    if not chosen:
        chosen = [t for t in traces if isinstance(t, go.Scatter)][:1]
    values: dict[Any, float] = {}
    for trace in chosen:
        for x, y in zip(trace.x or (), trace.y or (), strict=False):
            if y is not None and not (isinstance(y, float) and math.isnan(y)):
                values.setdefault(_x(x), float(y))
    return values


def _bucket(day: dt.date, xs: Sequence[Any]) -> Any:
    """The x of the figure holding `day`: its month ('YYYY-MM'), or the last date on or before it."""
    if xs and isinstance(xs[0], str):
        key = f"{day:%Y-%m}"
        return key if key in xs else None
    dates = sorted(x for x in xs if isinstance(x, dt.date) and x <= day)
    return dates[-1] if dates else None


def _hover(kind: str, currency: str) -> str:
    return f"{currency_symbol(currency)}%{{y:,.2f}}" if kind == "money" else "%{y:,.1f}"


def add_forecast(
    fig: go.Figure, forecast: Report, *, trace: str | None = None, band_95: bool = False
) -> go.Figure:
    """Continue `fig`'s trend with `forecast` (a trend_forecast report whose periods are the figure's
    x values): a dashed forecast line from the last complete period, its 80 % band (with `band_95`
    the 95 % one too), and a red ring on each period of the figure holding an anomaly, on the trace
    named `trace` (default: the metric's label, e.g. "Revenue"). Returns `fig`."""
    history = forecast.tables["history"].frame
    rows = forecast.tables["forecast"].frame
    name = trace or METRIC_LABELS.get(forecast.params.option("metric", "revenue"), "Revenue")
    kind = forecast.tables["forecast"].column("forecast").kind
    currency = forecast.currency
    if len(rows):
        xs = [_x(v) for v in rows["period"]]
        joint: list[float] = []
        if len(history):  # the dashed line starts at the last actual, so it continues the trend
            xs = [_x(history["period"].iloc[-1]), *xs]
            joint = [float(history["actual"].iloc[-1])]
        for level in ("95", "80") if band_95 else ("80",):
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=joint + _floats(list(rows[f"upper_{level}"])),
                    mode="lines",
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=f"band{level}",
                )
            )
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=joint + _floats(list(rows[f"lower_{level}"])),
                    mode="lines",
                    line={"width": 0},
                    fill="tonexty",
                    fillcolor=BAND_COLORS[level],
                    name=f"{level} % band",
                    legendgroup=f"band{level}",
                    hoverinfo="skip",
                )
            )
        low = joint + _floats(list(rows["lower_80"]))
        high = joint + _floats(list(rows["upper_80"]))
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=joint + _floats(list(rows["forecast"])),
                mode="lines+markers",
                name=f"{name} forecast",
                line={"color": FORECAST_COLOR, "width": 2.5, "dash": "dash"},
                marker={"size": 6},
                customdata=cast(
                    Any,
                    [
                        [format_cell(lo, kind, currency), format_cell(hi, kind, currency)]
                        for lo, hi in zip(low, high, strict=True)
                    ],
                ),
                hovertemplate=f"%{{x}}<br>Forecast: {_hover(kind, currency)}<br>"
                "80 % band: %{customdata[0]} – %{customdata[1]}<extra></extra>",
            )
        )
    _mark_anomalies(fig, forecast, name)
    fig.update_layout(showlegend=True)
    return fig


def _mark_anomalies(fig: go.Figure, forecast: Report, name: str) -> None:
    anomalies = forecast.tables["anomalies"].frame
    if not len(anomalies):
        return
    values = _trace_values(fig, name)
    xs = list(values)
    kind = forecast.tables["anomalies"].column("actual").kind
    found: dict[Any, list[str]] = {}
    for row in anomalies.itertuples(index=False):
        day = _x(row.date)
        at = _bucket(day, xs)
        if at is None:
            continue
        what = "week of " if row.grain == "week" else ""
        found.setdefault(at, []).append(
            f"{what}{day_text(day)}: {format_cell(row.actual, kind, forecast.currency)} "
            f"({format_cell(row.deviation_pct, 'pct')} vs expected)"
        )
    if not found:
        return
    fig.add_trace(
        go.Scatter(
            x=list(found),
            y=[values[x] for x in found],
            mode="markers",
            name="Anomaly",
            marker={"color": ANOMALY_COLOR, "size": 15, "symbol": "circle-open", "line": {"width": 3}},
            customdata=cast(Any, ["<br>".join(lines) for lines in found.values()]),
            hovertemplate="Out of the ordinary:<br>%{customdata}<extra></extra>",
        )
    )


def overview_forecast(ctx: PageContext, params: ReportParams, slug: str = "trend_forecast") -> Report | None:
    """The monthly revenue forecast (and the period's anomalies) for Overview's trend: `params`'s
    period and filters, none of its comparison or options. None when it cannot be made (the page
    then shows its trend alone; the forecast is an extra)."""
    takes = set(definition(slug).filters)
    narrowed = ReportParams(
        period=params.period,
        start=params.start,
        end=params.end,
        tz=params.tz,
        now=params.now,
        filters={k: v for k, v in params.filters.items() if k in takes},
    )
    try:
        return view.load_report(ctx, slug, narrowed)
    except TallyboardError:
        return None


def trend_with_forecast(report: Report, forecast: Report | None, chart_key: str = "trend") -> None:
    """Draw `report`'s chart `chart_key` continued by `forecast` (see add_forecast), then list the
    forecast's anomalies under it. Without a forecast report, the chart alone."""
    spec = next((c for c in report.charts if c.key == chart_key), None)
    if spec is None or forecast is None:
        view.chart(report, chart_key)
        return
    table = report.tables[spec.table]
    if table.row_count == 0:
        st.caption(f"{spec.title}: nothing to draw for this period.")
        return
    fig = add_forecast(figure(spec, table, report.currency), forecast)
    st.plotly_chart(
        fig, width="stretch", key=f"chart_{report.slug}_{chart_key}_forecast", config={"displaylogo": False}
    )
    if not len(forecast.tables["forecast"].frame):
        # Why there is no forecast: the note that says so (too little history, data that stops).
        reasons = [n for n in forecast.notes if n.startswith(("Too little", "Every", "No completed"))]
        st.caption(reasons[0] if reasons else "No forecast for this trend.")
    anomaly_list(forecast)


def anomaly_list(forecast: Report) -> None:
    """The period's anomalies as a table under their title, or one line saying there were none."""
    if not len(forecast.tables["anomalies"].frame):
        st.caption("No day or week in this period was out of the ordinary.", help=HELP["anomalies"])
        return
    view.table(
        forecast, "anomalies", columns=["date", "grain", "actual", "expected", "deviation_pct", "direction"]
    )


# --- the Forecast page's tab -------------------------------------------------------------------


def _options(page: str) -> dict[str, str]:
    """The tab's own choices (the period and the filters are the page's)."""
    left, middle, right, _ = st.columns([1.2, 1.2, 1, 3])
    grain = left.selectbox(
        "Forecast by",
        GRAINS,
        format_func=lambda g: "Month" if g == "month" else "Week",
        key=f"{page}_stat_grain",
    )
    metric = middle.selectbox(
        "Figure", METRICS, format_func=METRIC_LABELS.__getitem__, key=f"{page}_stat_metric"
    )
    horizon = right.selectbox(
        f"{'Months' if grain == 'month' else 'Weeks'} ahead",
        HORIZONS,
        index=HORIZONS.index("3"),
        key=f"{page}_stat_horizon",
    )
    return {"granularity": grain, "metric": metric, "horizon": horizon}


def _pct(value: Any) -> str:
    return format_cell(value, "pct")


def _first_month(report: Report) -> str:
    rows = report.tables["forecast"].frame
    return format_cell(rows["period"].iloc[0], "month") if len(rows) else "next month"


def sentences(report: Report) -> list[str]:
    """The model, the backtest and the reps' gap, one plain sentence each (those the report has)."""
    k = {kpi.key: kpi for kpi in report.kpis}
    grain = report.params.option("granularity", "month")
    horizon = int(report.params.option("horizon", "3"))
    out = []
    if k["model"].value:
        out.append(f"**Model.** {k['model'].value}")
    rows = report.tables["forecast"].frame
    if len(rows):
        first = rows.iloc[0]
        kind = report.tables["forecast"].column("forecast").kind

        def amount(value: Any) -> str:
            return format_cell(value, kind, report.currency)

        out.append(
            f"**Forecast.** {_first_month(report) if grain == 'month' else 'The week of ' + str(first['period'])}: "
            f"{amount(first['forecast'])}, most likely (4 times out of 5) between {amount(first['lower_80'])} "
            f"and {amount(first['upper_80'])}."
        )
    mape, naive = k["backtest_mape"].value, k["naive_mape"].value
    if isinstance(mape, float) and isinstance(naive, float):
        verdict = "better than" if mape < naive else ("as well as" if mape == naive else "worse than")
        seasonal = int(k["history_periods"].value or 0) - horizon >= SEASONS[grain]
        naive_words = f"the same {grain} a year before" if seasonal else f"the last {grain} again"
        out.append(
            f"**Backtest.** Forecasting the last {horizon} {grain}{'' if horizon == 1 else 's'} from the "
            f"ones before, the model was off by {_pct(mape)} on average; simply taking {naive_words} "
            f"was off by {_pct(naive)}: the model did {verdict} that."
        )
    gap, reps = k["reps_forecast_gap_pct"].value, k["reps_forecast"].value
    if isinstance(gap, float) and reps is not None:
        direction = "above" if gap > 0 else "below"
        out.append(
            f"**Sales reps.** The reps' forecast for {_first_month(report)}, at list price, is "
            f"{format_cell(reps, 'money', report.currency)}: {_pct(abs(gap))} {direction} the statistical "
            "forecast (the reps forecast their key accounts' main products only)."
        )
    return out


def _cards(report: Report, per_row: int = 3) -> None:
    shown = [
        ("next_period_forecast", HELP["band"]),
        ("backtest_mape", HELP["mape"]),
        ("naive_mape", HELP["naive_mape"]),
        ("reps_forecast_gap_pct", HELP["gap"]),
        ("anomalies", HELP["anomalies"]),
    ]
    for start in range(0, len(shown), per_row):
        row = shown[start : start + per_row]
        for col, (key, text) in zip(st.columns(per_row), row, strict=False):
            kpi = report.kpi(key)
            with col, st.container(border=True, height="stretch"):
                st.metric(kpi.label, format_cell(kpi.value, kpi.kind, report.currency), help=text)


def history_figure(report: Report) -> go.Figure:
    """The history of a trend_forecast report as a line, continued by the forecast and both bands."""
    frame = report.tables["history"].frame
    name = METRIC_LABELS[report.params.option("metric", "revenue")]
    fig = go.Figure(
        go.Scatter(
            x=[_x(v) for v in frame["period"]],
            y=_floats(list(frame["actual"])),
            name=name,
            mode="lines+markers" if len(frame) <= 60 else "lines",
            line={"color": ACTUAL_COLOR, "width": 2.5},
        )
    )
    add_forecast(fig, report, band_95=True)
    fig.update_layout(
        template="plotly_white",
        height=380,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        title={"text": f"{name}: history and forecast", "font": {"size": 16}},
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0},
        separators=".,",
    )
    if report.params.option("granularity", "month") == "month":
        fig.update_xaxes(type="category")
    fig.update_yaxes(rangemode="tozero")
    return fig


def statistical_tab(ctx: PageContext, slug: str, params: ReportParams) -> Report | None:
    """The "Statistical forecast" tab of report `slug` (trend_forecast): its options, the cards with
    their help, one sentence each for the model, the forecast, the backtest and the reps' gap, the
    chart, the tables, the downloads, and how the figures were made."""
    options = _options(ctx.page or "forecast")
    report = view.report_or_error(ctx, slug, replace(params, options={**params.options, **options}))
    if report is None:
        return None
    if report.period is not None:
        st.caption(f"{report.period_label()} · forecast from the data up to {day_text(report.period.end)}")
    notes = [n for n in report.notes if not n.startswith("Model: ")]  # the model has its sentence
    if not report.kpi("history_periods").value:
        for note in notes:
            st.caption(note)
        view.empty_state("No sales to forecast from — choose a period that ends after your first sales.")
        return report
    if not len(report.tables["forecast"].frame):  # why there is no forecast comes first
        for note in notes:
            st.caption(note)
        notes = []
    _cards(report)
    for sentence in sentences(report):
        st.markdown(sentence)
    st.plotly_chart(
        history_figure(report), width="stretch", key="chart_trend_forecast", config={"displaylogo": False}
    )
    view.tables(report, ["forecast", "backtest", "anomalies", "history"])
    if notes:
        with st.expander("How these figures were made", icon=":material/info:"):
            for note in notes:
                st.markdown(note)
    view.downloads(report)
    return report
