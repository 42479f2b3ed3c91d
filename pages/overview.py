"""Overview: headline KPIs with comparisons, the revenue trend with its forecast, breakdowns and the top 10s."""

import streamlit as st

from reports.sales import HEADLINE_CARDS, YTD_LINE
from ui import detail_view, forecast_view
from ui import report_view as view
from ui.context import page_context
from ui.filters import report_params

ctx = page_context("overview")

st.title("Overview")
params = report_params(ctx, "overview", ["kpi_dashboard"], compare=True)
report = view.report_or_error(ctx, "kpi_dashboard", params)
if report is None:
    st.stop()

view.header(report, params)
view.kpi_cards(report, HEADLINE_CARDS)
view.ytd_line(report, YTD_LINE)
if view.is_empty(report, "orders"):
    view.empty_state("No sales in this period — try a longer period, such as Last month or Year to date.")
    st.stop()
view.side_by_side(report)

# The revenue trend continues as the statistical forecast (dashed, 80 % band); anomalies marked and listed.
forecast_view.trend_with_forecast(report, forecast_view.overview_forecast(ctx, params))
left, right = st.columns(2)
with left:
    view.chart(report, "by_category", page=ctx.page)
    view.chart(report, "by_payment_method", page=ctx.page)
with right:
    view.chart(report, "by_region", page=ctx.page)
    view.chart(report, "by_customer_type", page=ctx.page, spec=view.BY_CUSTOMER_TYPE)
left, right = st.columns(2)
with left:
    view.table(
        report,
        "top_customers",
        columns=["customer_name", "revenue", "share_pct", "orders", "margin_pct"],
        details=True,
    )
with right:
    view.table(
        report,
        "top_products",
        columns=["product_name", "quantity", "revenue", "share_pct", "margin_pct"],
        details=True,
    )
view.downloads(report)
detail_view.open_requested(ctx, params)
