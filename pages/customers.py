"""Customers: rankings, ABC classes (Pareto), retention and growth."""

import streamlit as st

from ui import detail_view
from ui import report_view as view
from ui.context import page_context
from ui.filters import report_params

ctx = page_context("customers")

st.title("Customers")
params = report_params(ctx, "customers", ["customer_performance"])
view.show_report(
    ctx,
    "customer_performance",
    params,
    kpis=[
        "revenue",
        "customers_active",
        "revenue_per_customer",
        "retention_pct",
        "new_customers",
        "lost",
        "a_customers",
        "forecast_accuracy",
    ],
    empty_kpi="customers_active",
    empty_message="No customer bought anything in this period — try a longer period or fewer filters.",
    details=True,
)
detail_view.open_requested(ctx, params)
