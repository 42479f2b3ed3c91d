"""Statistics: saved reports, schedules, runs and their outcomes, storage used, runs by report type."""

import streamlit as st

from runs.stats import statistics
from scheduling.summary import count_active_schedules
from ui import run_views as runs
from ui import stats_view as view
from ui.context import page_context

ctx = page_context("statistics")

st.title("Statistics")
with ctx.session() as session:
    stats = statistics(session, ctx.scope, count_schedules=count_active_schedules, recent=10)

view.metric_cards(stats)
if stats.runs == 0:
    st.info("No reports generated yet — the Report builder's runs will show up here.")
    st.stop()
view.runs_by_report_chart(stats, ctx.currency)
st.subheader("Recent runs")
runs.runs_table(ctx, stats.recent, key="statistics_recent")
