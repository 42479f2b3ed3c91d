"""ChartSpec + Table -> PNG bytes with matplotlib (Agg): the charts of PDFs and HTML emails."""

from __future__ import annotations

import datetime as dt
import io
import math
import threading
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import matplotlib

matplotlib.use("Agg")  # never a GUI backend: this runs in the web app, the daemon and the CLI

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from analytics.formatting import MISSING, currency_symbol, is_missing
from analytics.report import ChartSpec, ColumnKind, Table

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#84cc16", "#ec4899")
OTHER_COLOR = "#94a3b8"
MAX_POINTS = 5_000  # a chart reads at most this many rows of its table
MAX_PIE_SLICES = 8  # the rest are summed into "Other"
LABEL_CHARS = 18  # category labels longer than this are cut with an ellipsis
MAX_LABELLED = 60  # a chart of more categories names none of them on its axis

TICK_PT = 8.0
# matplotlib is not thread-safe and rc_context is global: the web app serves requests on threads.
_LOCK = threading.Lock()

# DejaVu ships with matplotlib, so €, ₱ and accents draw the same on every machine.
_RC: dict[Any, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 8.5,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.edgecolor": "#94a3b8",
    "axes.labelcolor": "#334155",
    "xtick.color": "#334155",
    "xtick.labelsize": TICK_PT,
    "ytick.labelsize": TICK_PT,
    "ytick.color": "#334155",
    "legend.fontsize": 8,
    "legend.frameon": False,
}


def axis_formatter(kind: ColumnKind, currency: str, *, decimals: int = 0) -> Callable[[float, Any], str]:
    """Tick label text for a value axis: '€1,234,567', '27 %', '12,345' (thousands separators)."""
    symbol = currency_symbol(currency)

    def money(value: float, _pos: Any = None) -> str:
        sign = "-" if value < 0 and round(value, decimals) != 0 else ""
        return f"{sign}{symbol}{abs(value):,.{decimals}f}"

    def pct(value: float, _pos: Any = None) -> str:
        return f"{value * 100:,.{decimals}f} %"

    def number(value: float, _pos: Any = None) -> str:
        return f"{value:,.{decimals}f}"

    if kind == "money":
        return money
    if kind == "pct":
        return pct
    return number


def chart_png(
    chart: ChartSpec,
    table: Table,
    currency: str,
    *,
    width_px: int,
    height_px: int,
    dpi: float = 100,
) -> bytes:
    """Draw `chart` from the rows of `table` as a width_px x height_px PNG.

    `dpi` sets how large text is relative to the image (printed size = pixels / dpi inches).
    A table without rows (or without plottable values) gives a chart that says "No data".
    """
    labels, series = _chart_data(chart, table)
    with _LOCK, matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
        FigureCanvasAgg(fig)
        fig.suptitle(chart.title, x=0.01, ha="left", fontsize=10, fontweight="bold")
        ax = fig.add_subplot()
        if not labels or all(all(math.isnan(v) for v in values) for values in series.values()):
            _no_data(ax)
        elif chart.kind == "pie":
            _pie(fig, ax, labels, next(iter(series.values())), chart.y_kind, currency)
        else:
            _style_axes(ax)
            if chart.kind == "line":
                _line(ax, labels, series)
            elif chart.kind == "stacked_bar":
                _bars(ax, labels, series, stacked=True)
            elif chart.kind == "pareto":
                _pareto(ax, labels, series, chart, table)
            else:
                _bars(ax, labels, series, stacked=False)
            _value_axis(ax, chart.y_kind, currency)
            if len(labels) > MAX_LABELLED and table.column(chart.x).kind not in ("date", "month", "datetime"):
                ax.set_xticks([])
                ax.set_xlabel(f"{table.column(chart.x).label}: {len(labels):,}")
            else:
                _category_axis(ax, labels, width_px / dpi)
            if len(series) > 1 and chart.kind != "pareto":
                ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=len(series), borderaxespad=0)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


# --- data --------------------------------------------------------------------------------------


def _chart_data(chart: ChartSpec, table: Table) -> tuple[list[str], dict[str, list[float]]]:
    """Category labels and one list of floats per y column (label -> values); NaN where missing."""
    keys = [c.key for c in table.columns]
    if chart.x not in keys or any(y not in keys for y in chart.y):
        return [], {}
    ix = keys.index(chart.x)
    iy = [keys.index(y) for y in chart.y]
    labels: list[str] = []
    values: list[list[float]] = [[] for _ in iy]
    for batch in table.batches(size=MAX_POINTS):
        for row in batch:
            labels.append(_label(row[ix]))
            for out, i in zip(values, iy, strict=True):
                out.append(_number(row[i]))
            if len(labels) >= MAX_POINTS:
                break
        if len(labels) >= MAX_POINTS:
            break
    names = [table.column(y).label for y in chart.y]
    return labels, dict(zip(names, values, strict=True))


def _label(value: Any) -> str:
    if is_missing(value):
        return MISSING
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M") if (value.hour or value.minute) else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).replace("_", " ") if str(value).islower() else str(value)


def _number(value: Any) -> float:
    if value is None or isinstance(value, str):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"


# --- drawing -----------------------------------------------------------------------------------


def _no_data(ax: Axes) -> None:
    ax.set_axis_off()
    ax.text(
        0.5, 0.5, "No data", ha="center", va="center", fontsize=11, color="#64748b", transform=ax.transAxes
    )


def _style_axes(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="y", color="#e2e8f0", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.tick_params(length=0, pad=3)


def _line(ax: Axes, labels: list[str], series: dict[str, list[float]]) -> None:
    xs = range(len(labels))
    marker = "o" if len(labels) <= 40 else None
    for i, (name, values) in enumerate(series.items()):
        ax.plot(
            xs,
            values,
            label=name,
            color=PALETTE[i % len(PALETTE)],
            linewidth=1.8,
            marker=marker,
            markersize=3.5,
        )
    ax.set_xlim(-0.5, len(labels) - 0.5)
    _zero_line(ax, series)


def _bars(ax: Axes, labels: list[str], series: dict[str, list[float]], *, stacked: bool) -> None:
    xs = list(range(len(labels)))
    count = len(series)
    if stacked:
        up = [0.0] * len(xs)
        down = [0.0] * len(xs)
        for i, (name, values) in enumerate(series.items()):
            clean = [0.0 if math.isnan(v) else v for v in values]
            bottoms = [d if v < 0 else u for v, u, d in zip(clean, up, down, strict=True)]
            ax.bar(xs, clean, 0.75, bottom=bottoms, label=name, color=PALETTE[i % len(PALETTE)], linewidth=0)
            up = [u + max(v, 0) for u, v in zip(up, clean, strict=True)]
            down = [d + min(v, 0) for d, v in zip(down, clean, strict=True)]
        # Zero-height segments would pin the axis to the tallest stack: set the limits here.
        ax.set_ylim(min(min(down), 0) * 1.05, max(max(up), 0) * 1.05 or 1)
    elif len(xs) > MAX_LABELLED:
        _columns_as_area(ax, xs, series)
    else:
        width = 0.8 / count
        for i, (name, values) in enumerate(series.items()):
            offset = (i - (count - 1) / 2) * width
            ax.bar(
                [x + offset for x in xs],
                values,
                width * 0.95,
                label=name,
                color=PALETTE[i % len(PALETTE)],
                linewidth=0,
            )
    ax.set_xlim(-0.6, len(labels) - 0.4)
    _zero_line(ax, series)


def _pareto(
    ax: Axes, labels: list[str], series: dict[str, list[float]], chart: ChartSpec, table: Table
) -> None:
    """Bars of the first y column (largest first), cumulative share on a 0-100 % right axis."""
    names = list(series)
    bars = [0.0 if math.isnan(v) else v for v in series[names[0]]]
    if len(names) > 1 and table.column(chart.y[1]).kind == "pct":
        cumulative = series[names[1]]
    else:
        order = sorted(range(len(bars)), key=lambda i: -bars[i])
        labels[:] = [labels[i] for i in order]
        bars = [bars[i] for i in order]
        total = sum(v for v in bars if v > 0) or 1.0
        running = 0.0
        cumulative = []
        for v in bars:
            running += max(v, 0)
            cumulative.append(running / total)
    xs = list(range(len(labels)))
    if len(xs) > MAX_LABELLED:
        _columns_as_area(ax, xs, {names[0]: bars})
    else:
        ax.bar(xs, bars, 0.8, color=PALETTE[0], label=names[0], linewidth=0)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    share = ax.twinx()
    share.plot(xs, cumulative, color=PALETTE[1], linewidth=1.8, label="Cumulative share")
    share.axhline(0.8, color="#64748b", linewidth=0.8, linestyle="--")
    share.set_ylim(0, 1.05)
    share.yaxis.set_major_formatter(FuncFormatter(axis_formatter("pct", "")))
    share.spines[["top"]].set_visible(False)
    share.tick_params(length=0, pad=3)
    handles = [*ax.get_legend_handles_labels()[0], *share.get_legend_handles_labels()[0]]
    ax.legend(handles=handles, loc="center right", fontsize=7.5)


def _columns_as_area(ax: Axes, xs: list[int], series: dict[str, list[float]]) -> None:
    """Hundreds of bars drawn as one stepped area: thin bars would come out with white seams."""
    for i, (name, values) in enumerate(series.items()):
        clean = [0.0 if math.isnan(v) else v for v in values]
        color = PALETTE[i % len(PALETTE)]
        ax.fill_between(
            xs,
            0,
            clean,
            step="mid",
            color=color,
            alpha=1.0 if len(series) == 1 else 0.6,
            label=name,
            linewidth=0,
        )
    if all(v >= 0 for values in series.values() for v in values if not math.isnan(v)):
        ax.set_ylim(bottom=0)


def _pie(
    fig: Figure, ax: Axes, labels: list[str], values: list[float], kind: ColumnKind, currency: str
) -> None:
    slices = sorted(
        ((v, label) for v, label in zip(values, labels, strict=True) if not math.isnan(v) and v > 0),
        key=lambda s: -s[0],
    )
    if not slices:
        _no_data(ax)
        return
    if len(slices) > MAX_PIE_SLICES:
        rest = sum(v for v, _ in slices[MAX_PIE_SLICES - 1 :])
        slices = [*slices[: MAX_PIE_SLICES - 1], (rest, "Other")]
    amounts = [v for v, _ in slices]
    colors = [
        OTHER_COLOR if label == "Other" else PALETTE[i % len(PALETTE)] for i, (_, label) in enumerate(slices)
    ]
    fmt = axis_formatter(kind, currency, decimals=0)
    wedges, *_ = ax.pie(
        amounts,
        colors=colors,
        startangle=90,
        counterclock=False,
        autopct=lambda p: f"{p:.0f} %" if p >= 4 else "",
        pctdistance=0.75,
        wedgeprops={"linewidth": 1, "edgecolor": "white", "width": 0.5},
        textprops={"fontsize": 7.5, "color": "#0f172a"},
    )
    fig.legend(
        wedges,
        [f"{_short(label)}  {fmt(v, None)}" for v, label in slices],
        loc="outside right center",
        fontsize=7.5,
    )
    ax.set_aspect("equal")


def _zero_line(ax: Axes, series: dict[str, list[float]]) -> None:
    if any(v < 0 for values in series.values() for v in values if not math.isnan(v)):
        ax.axhline(0, color="#475569", linewidth=0.8)


def _value_axis(ax: Axes, kind: ColumnKind, currency: str) -> None:
    """Tick labels with as many decimals as the tick step needs (2.5 is not printed as 2)."""
    if kind == "int":
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ticks = sorted(ax.get_yticks())
    step = min((float(b - a) for a, b in pairwise(ticks)), default=1.0)
    step *= 100 if kind == "pct" else 1
    decimals = next((d for d in range(3) if abs(step * 10**d - round(step * 10**d)) < 1e-6), 3)
    if kind == "money" and decimals == 1:
        decimals = 2  # €2.50, not €2.5
    ax.yaxis.set_major_formatter(FuncFormatter(axis_formatter(kind, currency, decimals=decimals)))


def _category_axis(ax: Axes, labels: Sequence[str], width_in: float) -> None:
    """Every label flat when they fit side by side; else tilted, and only every n-th when crowded."""
    count = len(labels)
    font_in = TICK_PT / 72
    longest = max(len(_short(label)) for label in labels)
    axes_in = width_in * 0.82
    flat = count * (longest * 0.62 * font_in + 0.15) <= axes_in
    step = 1 if flat else max(1, math.ceil(count / (axes_in / (font_in * 2.6))))
    ticks = list(range(0, count, step))
    ax.set_xticks(ticks, [_short(labels[i]) for i in ticks])
    if not flat:
        for text in ax.get_xticklabels():
            text.set_rotation(30)
            text.set_horizontalalignment("right")
            text.set_rotation_mode("anchor")
