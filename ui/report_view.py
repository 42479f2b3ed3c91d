"""Report views for pages: a cached loader and the pieces (KPI cards, charts, tables, downloads)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import streamlit as st
from sqlalchemy import Engine

from analytics.formatting import format_value
from analytics.kpis import comparisons, headline_kpis
from analytics.periods import local_today, zone
from analytics.report import Kpi, ParamError, Report, ReportParams, Scope
from core.clock import utc_now
from core.db import make_sessionmaker
from reports.registry import NotFound, definition, generate
from snapshots.store import Snapshot, SnapshotStore
from ui.charts import figure
from ui.context import PageContext
from ui.downloads import download_buttons
from ui.filters import for_report, ignored_filters
from ui.tables import show_table

DEFAULT_EMPTY = "Nothing to show for this period — try a longer period or fewer filters."


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
    when = report.generated_at.astimezone(zone(params.tz)).strftime("%H:%M")
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


def _card(report: Report, kpi: Kpi) -> None:
    previous, year_ago = _deltas(report, kpi)
    with st.container(border=True, height="stretch"):
        st.metric(
            kpi.label,
            format_value(kpi.value, kpi.kind, report.currency),
            delta=previous,
            delta_description="vs previous period" if previous else None,
        )
        if year_ago:
            color = "red" if year_ago.startswith("-") else "green"
            arrow = "↓" if year_ago.startswith("-") else "↑"
            st.caption(f":{color}[{arrow} {year_ago}] vs a year before")


def _deltas(report: Report, kpi: Kpi) -> tuple[str | None, str | None]:
    """The card's changes vs the previous period and a year before ('+12.3 %', rates in '+1.2 pp')."""
    previous, year_ago = comparisons(report, kpi)
    return (previous.text if previous else None), (year_ago.text if year_ago else None)


def chart(report: Report, key: str) -> None:
    """Draw the report's chart `key`, or say there is nothing to draw."""
    spec = next((c for c in report.charts if c.key == key), None)
    if spec is None:
        return
    table = report.tables[spec.table]
    if table.row_count == 0:
        st.caption(f"{spec.title}: nothing to draw for this period.")
        return
    st.plotly_chart(
        figure(spec, table, report.currency),
        width="stretch",
        key=f"chart_{report.slug}_{key}",
        config={"displaylogo": False},
    )


def charts(report: Report, keys: Sequence[str] | None = None, per_row: int = 2) -> None:
    """Charts in a grid: line charts full width, the others `per_row` to a row."""
    specs = [c for c in report.charts if keys is None or c.key in keys]
    if keys is not None:
        specs.sort(key=lambda c: list(keys).index(c.key))
    row: list[str] = []
    for spec in specs:
        if spec.kind == "line" and per_row > 1:
            _grid(report, row, per_row)
            row = []
            chart(report, spec.key)
        else:
            row.append(spec.key)
    _grid(report, row, per_row)


def _grid(report: Report, keys: list[str], per_row: int) -> None:
    for start in range(0, len(keys), per_row):
        cols = st.columns(per_row)
        for col, key in zip(cols, keys[start : start + per_row], strict=False):
            with col:
                chart(report, key)


def table(report: Report, name: str, *, title: bool = True, columns: Sequence[str] | None = None) -> None:
    """Show one of the report's tables under its title (only `columns`, when given: downloads keep all)."""
    t = report.tables[name]
    if columns is not None:
        t = t.select([c for c in columns if any(col.key == c for col in t.columns)])
    if title:
        st.markdown(f"**{t.title}**")
    show_table(t, report.currency, key=f"table_{report.slug}_{name}")


def tables(report: Report, names: Sequence[str] | None = None) -> None:
    """Several tables: one tab each when there are more than two."""
    chosen = list(names) if names is not None else list(report.tables)
    if len(chosen) <= 2:
        for name in chosen:
            table(report, name)
        return
    for tab, name in zip(st.tabs([report.tables[n].title for n in chosen]), chosen, strict=True):
        with tab:
            table(report, name, title=False)


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
) -> Report | None:
    """The standard report view: header, KPI cards, charts, tables and download buttons.

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
    charts(report, chart_keys)
    tables(report, table_names)
    downloads(report)
    return report
