"""Profit: gross profit and margin by customer, product and category, contribution and trend."""

import streamlit as st

from ui import detail_view
from ui import report_view as view
from ui.context import page_context
from ui.filters import report_params

ctx = page_context("profit")

st.title("Profit")
params = report_params(ctx, "profit", ["gross_profit"])
view.show_report(
    ctx,
    "gross_profit",
    params,
    kpis=[
        "revenue",
        "cost",
        "gross_profit",
        "margin_pct",
        "top_customer_contribution_pct",
        "top_product_contribution_pct",
        "negative_margin_products",
        "negative_gross_profit",
    ],
    empty_kpi="revenue",
    empty_message="No sales in this period, so no profit to show — try a longer period or fewer filters.",
    details=True,
)
detail_view.open_requested(ctx, params)
