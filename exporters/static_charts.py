"""ChartSpec + Table -> PNG bytes with matplotlib (Agg): the charts of PDFs and HTML emails.

Drawn like the app's plotly charts (ui/charts.py): the same colours (analytics.formatting's
CHART_PALETTE, and SEMANTIC_COLOURS for codes such as payment methods), codes by their labels
(analytics.labels), months as "Jan 2025". A bucket the table marks `partial` (a boolean column: the
month still running at the period's end) is drawn dashed (lines) or hatched (bars) and labelled
"to date"; a table without that column draws every bucket alike.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import matplotlib

matplotlib.use("Agg")  # never a GUI backend: this runs in the web app, the daemon and the CLI

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from analytics.formatting import (
    CHART_OTHER,
    CHART_PALETTE,
    MISSING,
    SEMANTIC_COLOURS,
    cell_formatter,
    currency_symbol,
    is_missing,
)
from analytics.labels import label as code_label
from analytics.report import ChartKind, ChartSpec, ColumnKind, Table

PALETTE = CHART_PALETTE
OTHER_COLOR = CHART_OTHER
PARTIAL = "partial"  # the boolean column marking buckets the period cuts short
TO_DATE = "to date"
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
    with _LOCK, matplotlib.rc_context(_RC):
        fig = _figure(chart, table, currency, width_px, height_px, dpi)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    return buf.getvalue()


def chart_figure(
    chart: ChartSpec,
    table: Table,
    currency: str,
    *,
    width_px: int = 800,
    height_px: int = 450,
    dpi: float = 100,
) -> Figure:
    """The matplotlib Figure `chart_png` renders (for looking into what is drawn: lines, bars, texts)."""
    with _LOCK, matplotlib.rc_context(_RC):
        fig = _figure(chart, table, currency, width_px, height_px, dpi)
        fig.canvas.draw()
        return fig


def _figure(
    chart: ChartSpec, table: Table, currency: str, width_px: int, height_px: int, dpi: float
) -> Figure:
    data = _chart_data(chart, table)
    labels, series = data.labels, data.series
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    fig.suptitle(chart.title, x=0.01, ha="left", fontsize=10, fontweight="bold")
    ax = fig.add_subplot()
    if not labels or all(all(math.isnan(v) for v in values) for values in series.values()):
        _no_data(ax)
        return fig
    if chart.kind == "pie":
        _pie(fig, ax, labels, data.codes, next(iter(series.values())), chart.y_kind, currency)
        return fig
    _style_axes(ax)
    if chart.kind == "line":
        _line(ax, labels, series, data.colours, data.partial)
    elif chart.kind == "stacked_bar":
        _bars(ax, labels, series, data.colours, data.partial, stacked=True)
    elif chart.kind == "pareto":
        _pareto(ax, labels, series, chart, table)
    else:
        bar_colours = data.colours
        if len(series) == 1 and any(code in SEMANTIC_COLOURS for code in data.codes):
            # one series over codes that mean something: each bar in its code's colour
            bar_colours = [[SEMANTIC_COLOURS.get(code, PALETTE[0]) for code in data.codes]]
        _bars(ax, labels, series, bar_colours, data.partial, stacked=False)
    _value_axis(ax, chart.y_kind, currency)
    if chart.kind != "pareto" and any(data.partial):
        _to_date_labels(ax, series, data.partial, kind=chart.kind)
    if len(labels) > MAX_LABELLED and table.column(chart.x).kind not in ("date", "month", "datetime"):
        ax.set_xticks([])
        ax.set_xlabel(f"{table.column(chart.x).label}: {len(labels):,}")
    elif data.months:
        _month_axis(ax, labels, width_px / dpi)
    else:
        _category_axis(ax, labels, width_px / dpi)
    if len(series) > 1 and chart.kind != "pareto":
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=len(series), borderaxespad=0)
    return fig


# --- data --------------------------------------------------------------------------------------


@dataclass
class _Data:
    """What a chart draws: category labels (codes by their labels, months as "Jan 2025"), the raw
    codes (colour keys), one list of floats per y column (label -> values, NaN where missing), each
    series' colour, and per row whether its bucket is partial."""

    labels: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    colours: list[Any] = field(default_factory=list)
    partial: list[bool] = field(default_factory=list)
    months: bool = False


def _chart_data(chart: ChartSpec, table: Table) -> _Data:
    keys = [c.key for c in table.columns]
    if chart.x not in keys or any(y not in keys for y in chart.y):
        return _Data()
    ix = keys.index(chart.x)
    iy = [keys.index(y) for y in chart.y]
    ip = keys.index(PARTIAL) if PARTIAL in keys else None
    x_kind = table.column(chart.x).kind
    month_text = cell_formatter("month")
    data = _Data(months=x_kind == "month")
    values: list[list[float]] = [[] for _ in iy]
    for batch in table.batches(size=MAX_POINTS):
        for row in batch:
            raw = row[ix]
            data.codes.append("" if is_missing(raw) else str(raw))
            data.labels.append(month_text(raw) if data.months else _label(code_label(chart.x, raw)))
            for out, i in zip(values, iy, strict=True):
                out.append(_number(row[i]))
            if ip is not None:
                data.partial.append(_flag(row[ip]))
            if len(data.labels) >= MAX_POINTS:
                break
        if len(data.labels) >= MAX_POINTS:
            break
    if ip is None:
        # the flag may live in the frame only (not a column people read)
        frame = table.frame
        if table.stream is None and PARTIAL in frame.columns and len(frame) >= len(data.labels):
            data.partial = [_flag(v) for v in frame[PARTIAL].iloc[: len(data.labels)]]
        else:
            data.partial = [False] * len(data.labels)
    names = [table.column(y).label for y in chart.y]
    data.series = dict(zip(names, values, strict=True))
    data.colours = [SEMANTIC_COLOURS.get(y, PALETTE[i % len(PALETTE)]) for i, y in enumerate(chart.y)]
    return data


def _flag(value: Any) -> bool:
    return not is_missing(value) and bool(value)


def _label(value: Any) -> str:
    if is_missing(value):
        return MISSING
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M") if (value.hour or value.minute) else value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


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


def _line(
    ax: Axes, labels: list[str], series: dict[str, list[float]], colours: list[Any], partial: list[bool]
) -> None:
    """Solid lines between finished buckets; a segment reaching a partial bucket is dashed and its
    point drawn open."""
    count = len(labels)
    xs = list(range(count))
    marker = count <= 40
    for (name, values), colour in zip(series.items(), colours, strict=True):
        for start, stop, dashed in _segments(partial):
            ax.plot(
                xs[start : stop + 1],
                values[start : stop + 1],
                label=name if start == 0 else None,
                color=colour,
                linewidth=1.8,
                linestyle=(0, (4, 2.5)) if dashed else "-",
            )
        done = [i for i in xs if not partial[i]]
        running = [i for i in xs if partial[i]]
        if marker or count == 1:
            ax.plot(
                done,
                [values[i] for i in done],
                linestyle="none",
                marker="o",
                markersize=3.5,
                color=colour,
                label=name if count == 1 else None,
            )
        if running:
            ax.plot(
                running,
                [values[i] for i in running],
                linestyle="none",
                marker="o",
                markersize=4.5,
                markerfacecolor="white",
                markeredgewidth=1.4,
                color=colour,
            )
    ax.set_xlim(-0.5, count - 0.5)
    _zero_line(ax, series)


def _segments(partial: list[bool]) -> list[tuple[int, int, bool]]:
    """Runs of consecutive points (first, last index) joined alike: dashed when a segment touches a
    partial bucket."""
    runs: list[tuple[int, int, bool]] = []
    for i in range(len(partial) - 1):
        dashed = partial[i] or partial[i + 1]
        if runs and runs[-1][2] == dashed:
            runs[-1] = (runs[-1][0], i + 1, dashed)
        else:
            runs.append((i, i + 1, dashed))
    return runs


def _bar_look(colour: Any, partial: bool) -> dict[str, Any]:
    """A finished bucket's bar is solid; a partial one is pale and hatched in the same colour."""
    if not partial:
        return {"color": colour, "linewidth": 0}
    return {
        "color": to_rgba(colour, 0.3),
        "edgecolor": colour,
        "hatch": "////",
        "linewidth": 0.8,
    }


def _bars(
    ax: Axes,
    labels: list[str],
    series: dict[str, list[float]],
    colours: list[Any],
    partial: list[bool],
    *,
    stacked: bool,
) -> None:
    xs = list(range(len(labels)))
    count = len(series)

    def draw(
        positions: list[float],
        heights: list[float],
        width: float,
        colour: Any,
        name: str,
        bottoms: list[float] | None = None,
    ) -> None:
        """One series' bars: finished and partial buckets each in their look (colour: one or per bar)."""
        named = False
        for running in (False, True):
            picked = [i for i in range(len(positions)) if partial[i] == running]
            if not picked:
                continue
            looks = [_bar_look(colour[i] if isinstance(colour, list) else colour, running) for i in picked]
            ax.bar(
                [positions[i] for i in picked],
                [heights[i] for i in picked],
                width,
                bottom=[bottoms[i] for i in picked] if bottoms is not None else None,
                color=[look["color"] for look in looks],
                edgecolor=[look.get("edgecolor", "none") for look in looks],
                hatch=looks[0].get("hatch"),
                linewidth=looks[0]["linewidth"],
                label=None if named else name,
            )
            named = True

    if stacked:
        up = [0.0] * len(xs)
        down = [0.0] * len(xs)
        for (name, values), colour in zip(series.items(), colours, strict=True):
            clean = [0.0 if math.isnan(v) else v for v in values]
            bottoms = [d if v < 0 else u for v, u, d in zip(clean, up, down, strict=True)]
            draw([float(x) for x in xs], clean, 0.75, colour, name, bottoms)
            up = [u + max(v, 0) for u, v in zip(up, clean, strict=True)]
            down = [d + min(v, 0) for d, v in zip(down, clean, strict=True)]
        # Zero-height segments would pin the axis to the tallest stack: set the limits here.
        ax.set_ylim(min(min(down), 0) * 1.05, max(max(up), 0) * 1.05 or 1)
    elif len(xs) > MAX_LABELLED:
        _columns_as_area(ax, xs, series, colours)
    else:
        width = 0.8 / count
        for i, ((name, values), colour) in enumerate(zip(series.items(), colours, strict=True)):
            offset = (i - (count - 1) / 2) * width
            draw([x + offset for x in xs], values, width * 0.95, colour, name)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    _zero_line(ax, series)


def _to_date_labels(
    ax: Axes, series: dict[str, list[float]], partial: list[bool], *, kind: ChartKind
) -> None:
    """'to date' over each partial bucket: above its bar (or stack); on a line chart, whose dashed
    line may run anywhere, at the top of a pale band behind the bucket."""
    bottom, top = ax.get_ylim()
    room = (top - bottom) * 0.1
    highest = top
    for i, running in enumerate(partial):
        if not running:
            continue
        points = [v[i] for v in series.values() if i < len(v) and not math.isnan(v[i])]
        if kind == "line":
            ax.axvspan(i - 0.5, i + 0.5, color="#f1f5f9", zorder=0, linewidth=0)
            ax.annotate(
                TO_DATE,
                (i, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, -3),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=7,
                color="#475569",
                fontstyle="italic",
            )
            if points and max(points) > top - room:  # keep the band's label clear of the line
                highest = max(highest, max(points) + room)
            continue
        if not points:
            continue
        y = sum(max(p, 0) for p in points) if kind == "stacked_bar" else max(points)
        ax.annotate(
            TO_DATE,
            (i, y),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=7,
            color="#475569",
            fontstyle="italic",
        )
        highest = max(highest, y + room)
    if highest > top:
        ax.set_ylim(bottom, highest)


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
        _columns_as_area(ax, xs, {names[0]: bars}, [PALETTE[0]])
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


def _columns_as_area(
    ax: Axes, xs: list[int], series: dict[str, list[float]], colours: Sequence[Any] = ()
) -> None:
    """Hundreds of bars drawn as one stepped area: thin bars would come out with white seams."""
    for i, (name, values) in enumerate(series.items()):
        clean = [0.0 if math.isnan(v) else v for v in values]
        color = colours[i] if i < len(colours) and isinstance(colours[i], str) else PALETTE[i % len(PALETTE)]
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
    fig: Figure,
    ax: Axes,
    labels: list[str],
    codes: list[str],
    values: list[float],
    kind: ColumnKind,
    currency: str,
) -> None:
    """A donut, largest slice first; a code keeps its colour (as on the page), the rest in palette order."""
    slices = sorted(
        (
            (v, label, code)
            for v, label, code in zip(values, labels, codes, strict=True)
            if not math.isnan(v) and v > 0
        ),
        key=lambda s: -s[0],
    )
    if not slices:
        _no_data(ax)
        return
    if len(slices) > MAX_PIE_SLICES:
        rest = sum(v for v, _, _ in slices[MAX_PIE_SLICES - 1 :])
        slices = [*slices[: MAX_PIE_SLICES - 1], (rest, "Other", "")]
    amounts = [v for v, _, _ in slices]
    colors = [
        OTHER_COLOR
        if not code and label == "Other"
        else SEMANTIC_COLOURS.get(code, PALETTE[i % len(PALETTE)])
        for i, (_, label, code) in enumerate(slices)
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
        [f"{_short(label)}  {fmt(v, None)}" for v, label, _ in slices],
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


def _month_axis(ax: Axes, labels: Sequence[str], width_in: float) -> None:
    """Months ("Jan 2025") labelled in full and flat: the month's name on every tick, the year
    under the first and under each January (every n-th month only when even that is crowded)."""
    count = len(labels)
    font_in = TICK_PT / 72
    axes_in = width_in * 0.82
    step = 1
    while count / step * (3 * 0.62 * font_in + 0.1) > axes_in:
        step += 1
    ticks = list(range(0, count, step))
    texts: list[str] = []
    year = ""
    for i in ticks:
        name, _, this_year = labels[i].partition(" ")
        texts.append(f"{name}\n{this_year}" if this_year and this_year != year else name)
        year = this_year or year
    ax.set_xticks(ticks, texts)
