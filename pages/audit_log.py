"""Audit log: who did what and when, filtered by event type and user."""

from dataclasses import replace
from functools import partial

import streamlit as st

from analytics.report import ParamError, Report, ReportParams
from core.clock import utc_now
from reports.registry import generate
from ui import report_view as view
from ui.context import page_context
from ui.filters import for_report, report_params
from ui.formatting import code_label

ctx = page_context("audit_log")


def audit_report(params: ReportParams) -> Report:
    # Not through the page cache: audit events arrive without a data version change, and a log
    # that hides the last minutes of logins would mislead. The query is small and indexed.
    try:
        with ctx.session() as session:
            return generate(
                session, ctx.store, ctx.scope, "audit_log", for_report(params, "audit_log"), now=utc_now()
            )
    except ParamError as exc:
        st.error(f"{exc} Change the settings above and the log reloads.")
        st.stop()


st.title("Audit log")
params = report_params(ctx, "audit_log", ["audit_log"])

# The filter choices are the event types and users present in the period.
overall = audit_report(params)
choices = {
    "event_type": [str(v) for v in overall.tables["by_event_type"].frame["event_type"]],
    "user": [str(v) for v in overall.tables["by_user"].frame["user"]],
}


def shown_value(column: str, value: str) -> str:
    return str(code_label(column, value)) if value else "(none)"


picked = {}
for column, (option, label) in zip(
    st.columns(2), (("event_type", "Event types"), ("user", "Users")), strict=True
):
    key = f"audit_log_{option}"
    values = sorted(set(choices[option]) | set(st.session_state.get(key, [])))
    picked[option] = ",".join(
        column.multiselect(
            label,
            values,
            # event types read as words ("login_failed" -> "Login failed"); the filter keeps the codes
            format_func=partial(shown_value, option),
            placeholder="All",
            key=key,
        )
    )

report = (
    audit_report(replace(params, options={**params.options, **{k: v for k, v in picked.items() if v}}))
    if any(picked.values())
    else overall
)
view.header(report, params)
view.kpi_cards(report)
if view.is_empty(report, "events"):
    view.empty_state("No audit events in this period — try a longer period or fewer filters.")
    st.stop()
view.charts(report)
view.tables(report)
view.downloads(report)
