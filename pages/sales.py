"""Sales: revenue by day, week or month and by every dimension, with all filters."""

import streamlit as st

from ui import detail_view
from ui import report_view as view
from ui.context import page_context
from ui.filters import report_params

ctx = page_context("sales")

st.title("Sales")
params = report_params(ctx, "sales", ["sales_summary"], option_defaults={"granularity": "day"})
view.show_report(
    ctx,
    "sales_summary",
    params,
    empty_kpi="orders",
    empty_message="No sales in this period — try a longer period or fewer filters.",
    details=True,
)
detail_view.open_requested(ctx, params)
