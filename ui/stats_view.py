"""The Statistics page's pieces: metric cards and the runs-by-report chart (drawn by ui/charts like every chart)."""

from __future__ import annotations

import streamlit as st

from analytics.report import ChartSpec, Column, Table
from runs.files import format_bytes
from runs.stats import Statistics
from ui.charts import figure

BY_REPORT = ChartSpec(
    "by_report", "Runs by report type", "stacked_bar", "by_report", "report", ("completed", "failed"), "int"
)


def metric_cards(stats: Statistics) -> None:
    first = st.columns(4)
    first[0].metric(
        "Saved reports",
        f"{stats.saved_reports:,}",
        border=True,
        help="Reports and templates saved by users (the built-in templates are not counted).",
    )
    first[1].metric("Active saved reports", f"{stats.active_saved_reports:,}", border=True)
    first[2].metric(
        "Scheduled", f"{stats.scheduled:,}", border=True, help="Active schedules that email reports."
    )
    first[3].metric(
        "Storage used",
        format_bytes(stats.storage_bytes),
        border=True,
        help=f"{stats.stored_files:,} stored files; a file reused by cached runs counts once.",
    )
    second = st.columns(4)
    second[0].metric("Runs", f"{stats.runs:,}", border=True)
    second[1].metric("Successful", f"{stats.successes:,}", border=True)
    second[2].metric("Failed", f"{stats.failures:,}", border=True)
    second[3].metric("Served from cache", f"{stats.cached_runs:,}", border=True)


def runs_by_report_chart(stats: Statistics, currency: str) -> None:
    table = Table(
        "by_report",
        "Runs by report type",
        [
            Column("report", "Report"),
            Column("completed", "Completed", "int"),
            Column("failed", "Failed", "int"),
        ],
        stats.by_report,
    )
    st.plotly_chart(figure(BY_REPORT, table, currency), width="stretch", key="statistics_by_report")
