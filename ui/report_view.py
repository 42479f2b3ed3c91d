"""Report views for pages: a cached loader and the pieces (KPI cards, charts, tables, downloads).

On a report page, a click on a bar or slice of a dimension the report filters by (category, region,
customer type, storefront, sales rep) filters the page to it, and a click on a row of a table of
customers or products opens that customer's or product's detail (ui/detail_view).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence

import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from analytics.formatting import format_value
from analytics.kpis import (
    COMPARED,
    PREVIOUS,
    YEAR_AGO,
    Comparison,
    chosen_baseline,
    comparison,
    headline_kpis,
)
from analytics.kpis import side_by_side as period_vs_period
from analytics.periods import local_today
from analytics.report import ChartSpec, Kpi, ParamError, Report, ReportParams, Scope
from core.clock import utc_now
from core.db import make_sessionmaker
from reports.registry import NotFound, definition, generate
from snapshots.store import Snapshot, SnapshotStore
from ui.charts import figure
from ui.context import PageContext
from ui.downloads import download_buttons
from ui.filters import add_filter, for_report, ignored_filters
from ui.formatting import local_text
from ui.tables import MAX_ROWS, plain_table, show_table

DEFAULT_EMPTY = "Nothing to show for this period — try a longer period or fewer filters."
# A chart's x column -> (the filter a click on its bar or slice sets, the table column with its value).
CLICK_FILTERS = {
    "category": ("category", "category"),
    "region": ("region", "region"),
    "customer_type": ("customer_type", "customer_type"),
    "storefront_name": ("storefront", "storefront_code"),
    "storefront_code": ("storefront", "storefront_code"),
    "sales_rep": ("sales_rep", "sales_rep"),
    "method": ("payment_method", "method"),
}
# The page's own chart of a table the KPI dashboard has without a chart (a slice click filters to the type).
BY_CUSTOMER_TYPE = ChartSpec(
    "by_customer_type", "Revenue by customer type", "pie", "by_customer_type", "customer_type", ("revenue",)
)
DETAIL_REQUEST = "detail_request"  # (kind, code) of the row clicked, for ui/detail_view to open


# cache_resource, not cache_data: the Report is shared read-only (nothing mutates it), so a hit
# costs no unpickling, and tables that stream rows (callables) need no pickling either.
@st.cache_resource(ttl=dt.timedelta(hours=1), max_entries=48, show_spinner="Crunching the numbers…")
def _cached_report(
    _engine: Engine,
    _store: SnapshotStore,
    _snapshot: Snapshot,
    _now: dt.datetime,
    business_id: int,
    data_token: str,
    user: str,
    role: str,
    slug: str,
    params_json: str,
    today: str,
) -> Report:
    # `data_token` and `today` are only cache keys: new data (an import, a restored backup), or a
    # new day for relative periods ("today", "month_to_date"), must give a fresh report. `_now`
    # is not: a hit shows the report as generated at the time of the miss.
    params = ReportParams.from_mapping(json.loads(params_json))
    with make_sessionmaker(_engine)() as session:
        return generate(
            session, _store, Scope(business_id, user, role), slug, params, now=_now, snapshot=_snapshot
        )


def load_report(ctx: PageContext, slug: str, params: ReportParams) -> Report:
    """Report `slug` of the caller's business, cached by data token and parameters.

    While newer data's snapshot is being built elsewhere, the previous snapshot answers and the
    page says it is refreshing (see `refreshing_notice`).
    """
    snapshot = ctx.snapshot
    if snapshot.refreshing:
        st.info(
            "Refreshing data… these figures are from the previous import; reload in a moment "
            "to see the new data.",
            icon=":material/autorenew:",
        )
    now = utc_now()
    if definition(slug).live:  # it reads outside the data version: never from the cache
        with ctx.session() as session:
            return generate(session, ctx.store, ctx.scope, slug, params, now=now, snapshot=snapshot)
    today = local_today(now, ctx.timezone).isoformat()
    key = json.dumps(params.to_dict(), sort_keys=True)
    return _cached_report(
        ctx.engine,
        ctx.store,
        snapshot,
        now,
        ctx.business_id,
        snapshot.token,
        ctx.username,
        ctx.role,
        slug,
        key,
        today,
    )


def report_or_error(ctx: PageContext, slug: str, params: ReportParams) -> Report | None:
    """The report, or None after telling the user what went wrong and what to do."""
    try:
        return load_report(ctx, slug, for_report(params, slug))
    except ParamError as exc:
        st.error(f"{exc} Change the settings above and the report reloads.", icon=":material/error:")
    except NotFound:
        st.error("This business was not found. Log out and in again, or ask an administrator.")
    return None


def is_empty(report: Report, kpi: str | None = None) -> bool:
    """True when the period has no data: the given KPI is 0 or missing, else every table is empty."""
    if kpi is None:
        return report.is_empty
    value = report.kpi(kpi).value
    return value is None or value == 0


def header(report: Report, params: ReportParams) -> None:
    """One caption line: period and generation time; then the report's notes."""
    when = local_text(report.generated_at, params.tz, "%H:%M")  # "08:20 CET"
    ignored = ignored_filters(params, report.slug)
    parts = [report.period_label(), f"{report.title} generated {when}"]
    st.caption(" · ".join(p for p in parts if p))
    for note in report.notes:
        st.caption(note)
    if ignored:
        st.caption(f"{report.title} does not use these filters: {', '.join(ignored)}.")


def kpi_cards(report: Report, keys: Sequence[str] | None = None, per_row: int = 4) -> None:
    """KPI cards with deltas against the previous period and a year before where the report has them."""
    shown = [report.kpi(k) for k in keys] if keys is not None else headline_kpis(report)
    # Seven-digit money values do not fit four cards across: fewer, wider cards then.
    longest = max((len(format_value(k.value, k.kind, report.currency)) for k in shown), default=0)
    per_row = min(per_row, 3 if longest <= 14 else 2) if longest > 11 else per_row
    for start in range(0, len(shown), per_row):
        cols = st.columns(per_row)
        for col, kpi in zip(cols, shown[start : start + per_row], strict=False):
            with col:
                _card(report, kpi)


def ytd_line(report: Report, keys: Sequence[str]) -> None:
    """Secondary KPIs on one caption line: 'Revenue, year to date €1,234.00 · ...'."""
    found = [report.kpi(k) for k in keys if any(x.key == k for x in report.kpis)]
    st.caption(" · ".join(f"{k.label}: **{format_value(k.value, k.kind, report.currency)}**" for k in found))


def side_by_side(report: Report) -> None:
    """Period-vs-period under the cards: each KPI in the report's period beside the period the user
    chose to compare with, and the change (the cards show the other comparison too). Open when the
    user chose dates to compare with."""
    found = period_vs_period(report, chosen_only=True)
    if found is None:
        return
    chosen = chosen_baseline(report.params)
    title = f"Side by side: {found.headings[0]} and {found.headings[1]}"
    with st.expander(title, expanded=chosen is COMPARED, icon=":material/compare_arrows:"):
        frame = pd.DataFrame(found.texts(report.currency), columns=found.columns)
        plain_table(
            frame, key=f"side_by_side_{report.slug}", right=found.columns[1:], fixed=found.columns[1:]
        )


def _card(report: Report, kpi: Kpi) -> None:
    previous, year_ago = _deltas(report, kpi)
    flat = previous is not None and previous[2] == "flat"  # rounds to +0.0: no colour, no arrow
    with st.container(border=True, height="stretch"):
        st.metric(
            kpi.label,
            format_value(kpi.value, kpi.kind, report.currency),
            delta=previous[0] if previous else None,
            delta_description=previous[1] if previous else None,
            delta_color="off" if flat else "normal",
            delta_arrow="off" if flat else "auto",
        )
        if year_ago:
            change, against, direction = year_ago
            color = {"down": "red", "up": "green", "flat": "gray"}[direction]
            arrow = {"down": "↓ ", "up": "↑ ", "flat": ""}[direction]
            st.caption(f":{color}[{arrow}{change}] {against}")


Delta = tuple[str, str, str]  # '+12.3 %', 'vs 1–30 Sep 2026', its direction (up, down, flat)


def _deltas(report: Report, kpi: Kpi) -> tuple[Delta | None, Delta | None]:
    """The card's two changes ('+12.3 %', rates in '+1.2 pp'), each with the dates it compares with
    ('vs 1–30 Sep 2026'): first against what the user chose to compare with (`compare=`), then against
    a year before (or, when that was the choice, the previous period)."""
    chosen = chosen_baseline(report.params)
    other = PREVIOUS if chosen is YEAR_AGO else YEAR_AGO
    return _delta(comparison(report, kpi, chosen)), _delta(comparison(report, kpi, other))


def _delta(found: Comparison | None) -> Delta | None:
    if found is None:
        return None
    against = f"vs {found.period.describe()}" if found.period is not None else found.label
    return found.text, against, found.direction


def chart(
    report: Report, key: str, *, page: str = "", prefix: str = "", spec: ChartSpec | None = None
) -> None:
    """Draw the report's chart `key` (or `spec`, a chart of one of its tables), or say there is nothing
    to draw. On page `page`, a click on a bar or slice of a dimension the report filters by filters the
    page to it."""
    spec = spec or next((c for c in report.charts if c.key == key), None)
    if spec is None or spec.table not in report.tables:
        return
    table = report.tables[spec.table]
    if table.row_count == 0:
        st.caption(f"{spec.title}: nothing to draw for this period.")
        return
    click = CLICK_FILTERS.get(spec.x)
    clickable = (
        bool(page)
        and click is not None
        and spec.kind in ("bar", "pie")
        and click[0] in definition(report.slug).filters
        and click[1] in table.frame.columns
    )
    if not clickable or click is None:
        st.plotly_chart(
            figure(spec, table, report.currency),
            width="stretch",
            key=f"{prefix}chart_{report.slug}_{key}",
            config={"displaylogo": False},
        )
        return
    dim, column = click
    values = ["" if v is None else str(v) for v in table.frame[column]]
    # A new key whenever the filters change: the chart drawn for them starts with nothing selected.
    filters = json.dumps({k: list(v) for k, v in sorted(report.params.filters.items())})
    chart_key = f"{prefix}chart_{report.slug}_{key}_{hashlib.sha1(filters.encode()).hexdigest()[:10]}"
    st.plotly_chart(
        figure(spec, table, report.currency, keys=values),
        width="stretch",
        key=chart_key,
        config={"displaylogo": False},
        on_select=_clicked(page, chart_key, dim),
        selection_mode="points",
    )


def _clicked(page: str, chart_key: str, dim: str) -> Callable[[], None]:
    """The callback of a clickable chart: the clicked bar's or slice's value becomes a filter."""

    def clicked() -> None:
        event = st.session_state.get(chart_key)
        points = event["selection"]["points"] if event else []
        for point in points:
            # Bars carry their value as customdata; a sunburst's sectors as their id.
            value = point.get("customdata", point.get("id"))
            if isinstance(value, list):
                value = value[0] if value else None
            if value and not str(value).startswith("__"):
                add_filter(page, dim, str(value))

    return clicked


def charts(report: Report, keys: Sequence[str] | None = None, per_row: int = 2, *, page: str = "") -> None:
    """Charts in a grid: line charts full width, the others `per_row` to a row."""
    specs = [c for c in report.charts if keys is None or c.key in keys]
    if keys is not None:
        specs.sort(key=lambda c: list(keys).index(c.key))
    row: list[str] = []
    for spec in specs:
        if spec.kind == "line" and per_row > 1:
            _grid(report, row, per_row, page)
            row = []
            chart(report, spec.key, page=page)
        else:
            row.append(spec.key)
    _grid(report, row, per_row, page)


def _grid(report: Report, keys: list[str], per_row: int, page: str = "") -> None:
    for start in range(0, len(keys), per_row):
        cols = st.columns(per_row)
        for col, key in zip(cols, keys[start : start + per_row], strict=False):
            with col:
                chart(report, key, page=page)


def detail_kind(frame_columns: Sequence[str]) -> str | None:
    """What a click on a row of a table with these columns opens: "customer", "product" or nothing."""
    if "customer_code" in frame_columns and "sku" not in frame_columns:
        return "customer"
    if "sku" in frame_columns and "customer_code" not in frame_columns:
        return "product"
    return None


def table(
    report: Report,
    name: str,
    *,
    title: bool = True,
    columns: Sequence[str] | None = None,
    details: bool = False,
    prefix: str = "",
) -> None:
    """Show one of the report's tables under its title (only `columns`, when given: downloads keep all).
    With `details`, a click on a customer's or product's row opens its detail."""
    whole = report.tables[name]
    t = whole
    if columns is not None:
        t = t.select([c for c in columns if any(col.key == c for col in t.columns)])
    if title:
        st.markdown(f"**{t.title}**")
    key = f"{prefix}table_{report.slug}_{name}"
    kind = detail_kind(list(whole.frame.columns)) if details else None
    if kind is None:
        show_table(t, report.currency, key=key)
        return
    code_column = "customer_code" if kind == "customer" else "sku"
    codes = [str(v) for v in whole.frame[code_column].head(MAX_ROWS)]
    # A new key after each click: the table comes back without a selection, so the same row opens again.
    turn = int(st.session_state.get(f"{key}_turn", 0))
    show_table(
        t, report.currency, key=f"{key}_{turn}", on_select=_row_clicked(f"{key}_{turn}", key, kind, codes)
    )
    st.caption(f"Click a row to open the {kind}'s detail.")


def _row_clicked(widget: str, key: str, kind: str, codes: list[str]) -> Callable[[], None]:
    def clicked() -> None:
        event = st.session_state.get(widget)
        rows = event["selection"]["rows"] if event else []
        if rows and 0 <= rows[0] < len(codes):
            st.session_state[DETAIL_REQUEST] = (kind, codes[rows[0]])
            st.session_state[f"{key}_turn"] = int(st.session_state.get(f"{key}_turn", 0)) + 1

    return clicked


def tables(report: Report, names: Sequence[str] | None = None, *, details: bool = False) -> None:
    """Several tables: one tab each when there are more than two."""
    chosen = list(names) if names is not None else list(report.tables)
    if len(chosen) <= 2:
        for name in chosen:
            table(report, name, details=details)
        return
    for tab, name in zip(st.tabs([report.tables[n].title for n in chosen]), chosen, strict=True):
        with tab:
            table(report, name, title=False, details=details)


def empty_state(message: str = DEFAULT_EMPTY) -> None:
    st.info(message, icon=":material/inbox:")


def downloads(report: Report) -> None:
    st.markdown("**Download this report**")
    download_buttons(report, key=f"{report.slug}")


def show_report(
    ctx: PageContext,
    slug: str,
    params: ReportParams,
    *,
    kpis: Sequence[str] | None = None,
    chart_keys: Sequence[str] | None = None,
    table_names: Sequence[str] | None = None,
    empty_kpi: str | None = None,
    empty_message: str = DEFAULT_EMPTY,
    details: bool = False,
) -> Report | None:
    """The standard report view: header, KPI cards, charts, tables and download buttons.

    A click on a bar or slice filters the page; with `details`, a click on a customer's or product's row
    asks for its detail (the page then calls ui/detail_view.open_requested).

    When the period has no data (see `is_empty`), `empty_message` ("{end}" becomes the period's
    last day) stands in for everything else. Returns the report (None after an error).
    """
    report = report_or_error(ctx, slug, params)
    if report is None:
        return None
    header(report, params)
    if is_empty(report, empty_kpi):
        end = f"{report.period.end:%d %b %Y}" if report.period else "the end of the period"
        empty_state(empty_message.replace("{end}", end))
        return report
    kpi_cards(report, kpis)
    charts(report, chart_keys, page=ctx.page)
    tables(report, table_names, details=details)
    downloads(report)
    return report
