"""The one place a report's ChartSpec becomes a plotly figure."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import plotly.graph_objects as go

from analytics.formatting import currency_symbol
from analytics.report import ChartSpec, Table

PALETTE = ("#1f6feb", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
MAX_BARS = 30  # categories on a bar chart; more are cut (the table keeps them all)
MAX_PARETO = 60
MAX_SLICES = 8  # pie slices; the rest are summed into "Other"
HEIGHT = 360
# Colours that mean something keep it on every chart (a method is the same colour in pie and bars).
SEMANTIC = {
    "cash": "#59a14f",
    "card": "#f28e2b",
    "bank_transfer": "#1f6feb",
    "mobile": "#b07aa1",
    "credit_note": "#9c755f",
    "in_stock": "#59a14f",
    "low_stock": "#edc948",
    "out_of_stock": "#e15759",
    "on_time": "#59a14f",
    "late": "#edc948",
    "missing": "#e15759",
    "bucket_0_30": "#59a14f",
    "bucket_31_60": "#edc948",
    "bucket_61_90": "#f28e2b",
    "bucket_90_plus": "#e15759",
    "0-30": "#59a14f",
    "31-60": "#edc948",
    "61-90": "#f28e2b",
    "90+": "#e15759",
    "forecast_qty": "#8a94a6",
    "actual_qty": "#1f6feb",
}
# Category columns holding snake_case words that read better as "Bank transfer" than "bank_transfer".
WORD_COLUMNS = frozenset({"method", "segment", "status", "bucket", "direction", "movement", "customer_type"})


def figure(chart: ChartSpec, table: Table, currency: str) -> go.Figure:
    """Draw `chart` from `table` (line, bar, stacked_bar, pie or pareto) with formatted axes."""
    frame = table.frame
    labels = {c.key: c.label for c in table.columns}
    kinds = {c.key: c.kind for c in table.columns}
    x_kind = kinds.get(chart.x, "text")
    raw = list(frame[chart.x]) if chart.x in frame else []
    xs = [_x_value(v, chart.x in WORD_COLUMNS) for v in raw]
    ys = {y: [_number(v) for v in frame[y]] for y in chart.y if y in frame}
    title = chart.title
    categorical = x_kind not in ("date", "datetime")
    limit = MAX_PARETO if chart.kind == "pareto" else MAX_BARS
    if chart.kind in ("bar", "stacked_bar", "pareto") and categorical and len(xs) > limit:
        title = f"{chart.title} (first {limit} of {len(xs):,})"
        xs, raw = xs[:limit], raw[:limit]
        ys = {k: v[:limit] for k, v in ys.items()}
    kind = chart.kind
    if kind == "line" and len(xs) < 3:
        kind = "bar"  # a line through one or two points says nothing; bars compare them

    fig = go.Figure()
    if kind == "pie":
        _pie(fig, chart, xs, raw, ys, currency)
    elif kind == "pareto":
        _pareto(fig, chart, xs, ys, labels, currency)
    else:
        for i, (key, values) in enumerate(ys.items()):
            color = SEMANTIC.get(key, PALETTE[i % len(PALETTE)])
            hover = f"%{{x}}<br>{labels.get(key, key)}: {_hover(chart.y_kind, currency)}<extra></extra>"
            if kind == "line":
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=values,
                        name=labels.get(key, key),
                        mode="lines+markers" if len(xs) <= 60 else "lines",
                        line={"color": color, "width": 2.5},
                        hovertemplate=hover,
                    )
                )
            else:
                fig.add_trace(
                    go.Bar(x=xs, y=values, name=labels.get(key, key), marker_color=color, hovertemplate=hover)
                )
        if len(ys) == 1 and any(str(v) in SEMANTIC for v in raw):
            fig.update_traces(marker_color=[SEMANTIC.get(str(v), PALETTE[0]) for v in raw])
        fig.update_layout(
            barmode="stack" if kind == "stacked_bar" else "group",
            bargap=0.6 if len(xs) <= 2 else 0.2,  # one or two fat bars look like a wall
        )
        _value_axis(fig, chart.y_kind, currency)
    fig.update_layout(
        title={"text": title, "font": {"size": 16}},
        template="plotly_white",
        height=HEIGHT,
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend=(
            {"orientation": "v", "yanchor": "middle", "y": 0.5, "xanchor": "left", "x": 1.02}
            if kind == "pie"
            else {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1.0}
        ),
        showlegend=kind == "pie" or len(ys) > 1,
        separators=".,",
    )
    if kind != "pie":
        fig.update_xaxes(type="category" if categorical else "date", automargin=True)
        fig.update_yaxes(rangemode="tozero")
    return fig


def _pie(
    fig: go.Figure, chart: ChartSpec, xs: list[Any], raw: list[Any], ys: dict[str, list[float]], currency: str
) -> None:
    values = ys.get(chart.y[0], [])
    slices = [
        (str(x), str(r), v) for x, r, v in zip(xs, raw, values, strict=True) if not math.isnan(v) and v > 0
    ]
    slices.sort(key=lambda p: -p[2])
    if len(slices) > MAX_SLICES:
        rest = sum(v for _, _, v in slices[MAX_SLICES - 1 :])
        slices = [*slices[: MAX_SLICES - 1], ("Other", "", rest)]
    fig.add_trace(
        go.Pie(
            labels=[p[0] for p in slices],
            values=[p[2] for p in slices],
            hole=0.45,
            sort=False,
            marker={"colors": [SEMANTIC.get(p[1], PALETTE[i % len(PALETTE)]) for i, p in enumerate(slices)]},
            texttemplate="%{label}<br>%{percent:.1%}",
            hovertemplate=f"%{{label}}: {_hover(chart.y_kind, currency, 'value')}<br>%{{percent:.1%}}<extra></extra>",
        )
    )


def _pareto(
    fig: go.Figure,
    chart: ChartSpec,
    xs: list[Any],
    ys: dict[str, list[float]],
    labels: dict[str, str],
    currency: str,
) -> None:
    bars_key, line_key = chart.y[0], chart.y[-1]
    fig.add_trace(
        go.Bar(
            x=xs,
            y=ys.get(bars_key, []),
            name=labels.get(bars_key, bars_key),
            marker_color=PALETTE[0],
            hovertemplate=f"%{{x}}<br>{_hover(chart.y_kind, currency)}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys.get(line_key, []),
            name=labels.get(line_key, line_key),
            yaxis="y2",
            mode="lines+markers" if len(xs) <= 40 else "lines",
            line={"color": PALETTE[1], "width": 2.5},
            hovertemplate="%{x}<br>cumulative %{y:.1%}<extra></extra>",
        )
    )
    _value_axis(fig, chart.y_kind, currency)
    fig.update_layout(
        yaxis2={
            "overlaying": "y",
            "side": "right",
            "range": [0, 1.05],
            "tickvals": [0, 0.2, 0.4, 0.6, 0.8, 1.0],
            "tickformat": ".0%",
            "showgrid": False,
            "title": {"text": labels.get(line_key, line_key)},
        }
    )
    for share, label in ((0.8, "A | 80 %"), (0.95, "B | 95 %")):
        fig.add_hline(
            y=share, yref="y2", line={"dash": "dot", "color": "#8a94a6", "width": 1}, annotation_text=label
        )


def _value_axis(fig: go.Figure, kind: str, currency: str) -> None:
    if kind == "money":
        fig.update_yaxes(tickprefix=currency_symbol(currency), tickformat=",.0f", separatethousands=True)
    elif kind == "pct":
        fig.update_yaxes(tickformat=".0%")
    else:
        fig.update_yaxes(tickformat=",~r" if kind == "number" else ",.0f", separatethousands=True)


def _hover(kind: str, currency: str, field: str = "y") -> str:
    if kind == "money":
        return f"{currency_symbol(currency)}%{{{field}:,.2f}}"
    if kind == "pct":
        return f"%{{{field}:.1%}}"
    if kind == "int":
        return f"%{{{field}:,.0f}}"
    return f"%{{{field}:,.2f}}"


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, Decimal):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _x_value(value: Any, words: bool) -> Any:
    if value is None:
        return "(none)"
    if words and isinstance(value, str):
        return value.replace("_", " ").capitalize()
    return value
