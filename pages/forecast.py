"""Forecast: forecast versus actual, accuracy by rep, customer and product, submission status, and the
statistical forecast."""

import streamlit as st

from ui import forecast_view
from ui import report_view as view
from ui.context import page_context
from ui.filters import report_params

ctx = page_context("forecast")

st.title("Forecast")
# The statistical forecast's own choices (month or week, figure, horizon) are in its tab.
params = report_params(ctx, "forecast", ["forecast_vs_actual", "forecast_accuracy", "submission_status"])
versus, accuracy, submissions, statistical = st.tabs(
    ["Forecast vs actual", "Accuracy", "Submissions", "Statistical forecast"],
    key="forecast_tab",
    on_change="rerun",
)
NO_FORECASTS = (
    "No forecasts for this period — try Last quarter or a custom range that covers a forecast cycle."
)

if versus.open:
    with versus:
        forecast_view.metric_help()
        view.show_report(
            ctx,
            "forecast_vs_actual",
            params,
            kpis=[
                "forecast_qty",
                "actual_qty",
                "variance_pct",
                "accuracy",
                "exceptions",
                "over_forecast",
                "under_forecast",
                "unforecast_revenue",
            ],
            table_names=["exceptions", "variance", "by_month"],
            empty_kpi="rows",
            empty_message=NO_FORECASTS,
        )
if accuracy.open:
    with accuracy:
        forecast_view.metric_help()
        view.show_report(
            ctx,
            "forecast_accuracy",
            params,
            kpis=["accuracy", "wape", "mape", "bias", "mad", "rmse", "rows", "mape_excluded_rows"],
            table_names=["by_rep", "by_customer", "by_product", "by_month"],
            empty_kpi="rows",
            empty_message=NO_FORECASTS,
        )
if submissions.open:
    with submissions:
        view.show_report(
            ctx,
            "submission_status",
            params,
            empty_kpi="expected",
            empty_message="No forecasts were due in this period — try a longer period.",
        )
if statistical.open:
    with statistical:
        forecast_view.statistical_tab(ctx, "trend_forecast", params)
