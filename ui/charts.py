"""The one place a report's ChartSpec becomes a plotly figure.

A bucket the table marks `partial` (a month still running) is drawn dashed (lines) or faded (bars) and
labelled "to date", so four days of December do not read as a crash. Clickable charts carry the value
each bar or slice stands for as its `customdata` (see ui/report_view: a click filters the page).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, cast

import plotly.graph_objects as go

from analytics.formatting import CHART_PALETTE, SEMANTIC_COLOURS, currency_symbol
from analytics.labels import label as code_label
from analytics.report import ChartSpec, Table

MAX_BARS = 30  # categories on a bar chart; more are cut (the table keeps them all)
MAX_PARETO = 60
MAX_SLICES = 8  # pie slices; the rest are summed into "Other"
HEIGHT = 360
PARTIAL = "partial"  # the boolean column marking buckets that are not over yet
TO_DATE = "to date"
TOTAL_ID, OTHER_ID = "__total__", "__other__"  # sunburst ids that are no value of the data
# Colours: CHART_PALETTE, and SEMANTIC_COLOURS for values that mean something (a method is the same
# colour in pie and bars) — one table for the app, the PDF and the email (analytics/formatting.py).
# Category columns holding snake_case words that read better as "Bank transfer" than "bank_transfer".


def figure(chart: ChartSpec, table: Table, currency: str, *, keys: Sequence[Any] | None = None) -> go.Figure:
    """Draw `chart` from `table` (line, bar, stacked_bar, pie or pareto) with formatted axes.

    `keys`, one per table row, become the bars' and slices' `customdata` (what a click selects).
    """
    frame = table.frame
    labels = {c.key: c.label for c in table.columns}
    kinds = {c.key: c.kind for c in table.columns}
    x_kind = kinds.get(chart.x, "text")
    raw = list(frame[chart.x]) if chart.x in frame else []
    xs = [_x_value(chart.x, v) for v in raw]
    ys = {y: [_number(v) for v in frame[y]] for y in chart.y if y in frame}
    marks = partial_flags(table)
    data = list(keys) if keys is not None else [None] * len(raw)
    title = chart.title
    categorical = x_kind not in ("date", "datetime")
    limit = MAX_PARETO if chart.kind == "pareto" else MAX_BARS
    if chart.kind in ("bar", "stacked_bar", "pareto") and categorical and len(xs) > limit:
        title = f"{chart.title} (first {limit} of {len(xs):,})"
        xs, raw, marks, data = xs[:limit], raw[:limit], marks[:limit], data[:limit]
        ys = {k: v[:limit] for k, v in ys.items()}
    kind = chart.kind
    if kind == "line" and len(xs) < 3:
        kind = "bar"  # a line through one or two points says nothing; bars compare them

    fig = go.Figure()
    if kind == "pie":
        _pie(fig, chart, xs, raw, ys, currency, data)
    elif kind == "pareto":
        _pareto(fig, chart, xs, ys, labels, currency)
    else:
        custom = data if keys is not None else None
        for i, (key, values) in enumerate(ys.items()):
            color = SEMANTIC_COLOURS.get(key, CHART_PALETTE[i % len(CHART_PALETTE)])
            hover = f"%{{x}}<br>{labels.get(key, key)}: {_hover(chart.y_kind, currency)}<extra></extra>"
            if kind == "line":
                _line(fig, xs, values, marks, labels.get(key, key), color, hover)
            else:
                fig.add_trace(
                    go.Bar(
                        x=xs,
                        y=values,
                        name=labels.get(key, key),
                        marker_color=color,
                        marker_opacity=[0.45 if m else 1.0 for m in marks] if any(marks) else None,
                        customdata=cast(Any, custom),  # the stubs say floats; any values work
                        hovertemplate=hover,
                    )
                )
        if len(ys) == 1 and any(str(v) in SEMANTIC_COLOURS for v in raw):
            fig.update_traces(marker_color=[SEMANTIC_COLOURS.get(str(v), CHART_PALETTE[0]) for v in raw])
        _to_date_labels(fig, xs, ys, marks, stacked=kind == "stacked_bar")
        fig.update_layout(
            barmode="stack" if kind == "stacked_bar" else "group",
            bargap=0.6 if len(xs) <= 2 else 0.2,  # one or two fat bars look like a wall
        )
        _value_axis(fig, chart.y_kind, currency, _highest(ys, stacked=kind == "stacked_bar"))
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


def partial_flags(table: Table) -> list[bool]:
    """Per row: is the bucket still running (the table's `partial` column; all False without one)."""
    frame = table.frame
    if PARTIAL not in frame.columns:
        return [False] * len(frame)
    return [bool(v) and not (isinstance(v, float) and math.isnan(v)) for v in frame[PARTIAL]]


def _line(
    fig: go.Figure, xs: list[Any], values: list[float], marks: list[bool], name: str, color: str, hover: str
) -> None:
    """A solid line over the finished buckets and a dashed one into the running ones."""
    first = next((i for i, m in enumerate(marks) if m), len(xs))
    mode = "lines+markers" if len(xs) <= 60 else "lines"
    fig.add_trace(
        go.Scatter(
            x=xs[:first],
            y=values[:first],
            name=name,
            legendgroup=name,
            mode=mode,
            line={"color": color, "width": 2.5},
            hovertemplate=hover,
        )
    )
    if first < len(xs):
        joint = max(first - 1, 0)  # the dashed part starts at the last finished point
        fig.add_trace(
            go.Scatter(
                x=xs[joint:],
                y=values[joint:],
                name=f"{name} ({TO_DATE})",
                legendgroup=name,
                showlegend=False,
                mode=mode,
                line={"color": color, "width": 2.5, "dash": "dash"},
                marker={"symbol": "circle-open", "size": 8},
                hovertemplate=hover.replace("<extra></extra>", f"<extra>{TO_DATE}</extra>"),
            )
        )


def _to_date_labels(
    fig: go.Figure, xs: list[Any], ys: dict[str, list[float]], marks: list[bool], *, stacked: bool
) -> None:
    """'to date' above each running bucket."""
    for i, mark in enumerate(marks):
        if not mark or i >= len(xs):
            continue
        heights = [v[i] for v in ys.values() if i < len(v) and not math.isnan(v[i])]
        if not heights:
            continue
        top = sum(heights) if stacked else max(heights)
        fig.add_annotation(
            x=xs[i], y=top, text=TO_DATE, showarrow=False, yshift=12, font={"size": 12, "color": "#5a6473"}
        )


def _pie(
    fig: go.Figure,
    chart: ChartSpec,
    xs: list[Any],
    raw: list[Any],
    ys: dict[str, list[float]],
    currency: str,
    data: list[Any],
) -> None:
    values = ys.get(chart.y[0], [])
    slices = [
        (str(x), str(r), v, d)
        for x, r, v, d in zip(xs, raw, values, data, strict=True)
        if not math.isnan(v) and v > 0
    ]
    slices.sort(key=lambda p: -p[2])
    if len(slices) > MAX_SLICES:
        rest = sum(p[2] for p in slices[MAX_SLICES - 1 :])
        slices = [*slices[: MAX_SLICES - 1], ("Other", "", rest, None)]
    colors = [SEMANTIC_COLOURS.get(p[1], CHART_PALETTE[i % len(CHART_PALETTE)]) for i, p in enumerate(slices)]
    if any(p[3] is not None for p in slices):
        # Streamlit reports clicks on sunburst sectors (not on pie slices): a one-ring sunburst around
        # its total looks like the donut and says which slice was clicked (its id).
        total = sum(p[2] for p in slices)
        fig.add_trace(
            go.Sunburst(
                ids=[TOTAL_ID, *(OTHER_ID if p[3] is None else str(p[3]) for p in slices)],
                labels=["Total", *(p[0] for p in slices)],
                parents=["", *([TOTAL_ID] * len(slices))],
                values=[total, *(p[2] for p in slices)],
                branchvalues="total",
                sort=False,
                marker={"colors": ["#ffffff", *colors]},
                texttemplate=["%{label}", *(["%{label}<br>%{percentRoot:.1%}"] * len(slices))],
                leaf={"opacity": 1.0},
                hovertemplate=f"%{{label}}: {_hover(chart.y_kind, currency, 'value')}<br>"
                "%{percentRoot:.1%}<extra></extra>",
                insidetextorientation="horizontal",
            )
        )
        return
    fig.add_trace(
        go.Pie(
            labels=[p[0] for p in slices],
            values=[p[2] for p in slices],
            hole=0.45,
            sort=False,
            marker={"colors": colors},
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
            marker_color=CHART_PALETTE[0],
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
            line={"color": CHART_PALETTE[1], "width": 2.5},
            hovertemplate="%{x}<br>cumulative %{y:.1%}<extra></extra>",
        )
    )
    _value_axis(fig, chart.y_kind, currency, _highest({bars_key: ys.get(bars_key, [])}))
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


# Counts up to this high get a tick on every whole number: left alone, plotly ticks 0.5 steps, which
# ",.0f" labels "0 1 1 2 2 3 3" (the Audit log's events by day).
WHOLE_TICKS_UP_TO = 8


def _highest(ys: dict[str, list[float]], *, stacked: bool = False) -> float:
    """The highest bar (stacked: the highest stack); 0 without numbers."""
    columns = [[v for v in values if not math.isnan(v)] for values in ys.values()]
    if stacked:
        tops = [sum(max(v, 0) for v in row if not math.isnan(v)) for row in zip(*ys.values(), strict=False)]
        return max(tops, default=0.0)
    return max((v for values in columns for v in values), default=0.0)


def _value_axis(fig: go.Figure, kind: str, currency: str, top: float = 0.0) -> None:
    if kind in ("int", "quantity") and 0 < top <= WHOLE_TICKS_UP_TO:
        fig.update_yaxes(tick0=0, dtick=1)
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


def _x_value(column: str, value: Any) -> Any:
    """A category as people read it: a code's label (analytics/labels, as in the tables), '(none)' for none."""
    if value is None:
        return "(none)"
    return code_label(column, value)
