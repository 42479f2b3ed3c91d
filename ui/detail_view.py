"""A customer's or a product's detail, opened by a click on its row: its figures and monthly trend over the
page's period (the KPI dashboard filtered to it) and its sales lines (the sales lines report)."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from analytics.report import Report, ReportParams
from ui import report_view as view
from ui.context import PageContext
from ui.tables import show_table

PREFIX = "detail_"  # element keys inside the dialog (the page may show the same report's charts)
TITLES = {"customer": "Customer", "product": "Product"}


def open_requested(ctx: PageContext, params: ReportParams) -> None:
    """Open the detail a click on a row asked for (ui/report_view.DETAIL_REQUEST), if any."""
    found = st.session_state.pop(view.DETAIL_REQUEST, None)
    if not found:
        return
    kind, code = found
    _dialog(ctx, str(kind), str(code), params)


@st.dialog("Detail", width="large")
def _dialog(ctx: PageContext, kind: str, code: str, params: ReportParams) -> None:
    show(ctx, kind, code, params)


def show(ctx: PageContext, kind: str, code: str, params: ReportParams) -> None:
    """The detail of customer (`kind` "customer", `code` its code) or product (a SKU) over the period
    of `params`; the page's other filters do not apply."""
    dim = "customer" if kind == "customer" else "product"
    own = replace(
        params,
        filters={dim: (code,)},
        options={},
        columns={},
        compare="previous",
        compare_start=None,
        compare_end=None,
    )
    dashboard = view.report_or_error(ctx, "kpi_dashboard", own)
    if dashboard is None:
        return
    st.subheader(f"{TITLES.get(kind, kind)}: {_name(dashboard, kind, code)}")
    st.caption(f"{code} · {dashboard.period_label()}")
    if view.is_empty(dashboard, "orders"):
        view.empty_state(f"No sales of this {kind} in this period — try a longer period.")
    else:
        last = "outstanding" if kind == "customer" else "margin_pct"  # a balance is per customer
        view.kpi_cards(dashboard, ["revenue", "gross_profit", "orders", last])
    view.chart(dashboard, "trend", prefix=PREFIX)
    other = "top_products" if kind == "customer" else "top_customers"
    view.table(dashboard, other, prefix=PREFIX)
    lines = view.report_or_error(ctx, "sales_lines", own)
    if lines is not None:
        st.markdown("**Sales lines**")
        show_table(lines.tables["lines"], lines.currency, key=f"{PREFIX}lines_{kind}_{code}")


def _name(report: Report, kind: str, code: str) -> str:
    """The customer's or product's name as the report's tables give it (else the code)."""
    table, code_col, name_col = (
        ("top_customers", "customer_code", "customer_name")
        if kind == "customer"
        else ("top_products", "sku", "product_name")
    )
    frame = report.tables[table].frame
    if code_col in frame.columns and name_col in frame.columns:
        for found, name in zip(frame[code_col], frame[name_col], strict=True):
            if str(found) == code:
                return str(name)
    return code
