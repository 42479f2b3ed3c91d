"""Payments & Credit: cash received by method and day, credit aging and customers over their limit."""

import streamlit as st

from ui import detail_view
from ui import report_view as view
from ui.context import page_context
from ui.filters import report_params

ctx = page_context("payments")

st.title("Payments & Credit")
params = report_params(ctx, "payments", ["payments", "credit_aging"])
cash, credit = st.tabs(["Cash received", "Credit & aging"], key="payments_tab", on_change="rerun")

if cash.open:
    with cash:
        view.show_report(
            ctx,
            "payments",
            params,
            empty_kpi="payments",
            empty_message="No payments in this period — try a longer period or fewer filters.",
            details=True,
        )
if credit.open:
    with credit:
        view.show_report(
            ctx,
            "credit_aging",
            params,
            table_names=["over_limit", "by_customer", "by_bucket", "open_orders"],
            empty_kpi="open_orders",
            empty_message="Nothing is outstanding at the end of this period — every completed order is paid.",
            details=True,
        )
detail_view.open_requested(ctx, params)
