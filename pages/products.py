"""Products & Inventory: ABC classes, fast and slow movers, stock status and valuation."""

import streamlit as st

from ui import detail_view
from ui import report_view as view
from ui.context import page_context
from ui.filters import report_params

ctx = page_context("products")

st.title("Products & Inventory")
params = report_params(ctx, "products", ["product_analysis", "inventory_valuation"])
sales, stock = st.tabs(["Sales & ABC", "Stock & valuation"], key="products_tab", on_change="rerun")

if sales.open:
    with sales:
        view.show_report(
            ctx,
            "product_analysis",
            params,
            kpis=[
                "revenue",
                "gross_profit",
                "margin_pct",
                "quantity",
                "products_sold",
                "a_products",
                "fast_movers",
                "not_sold",
            ],
            empty_kpi="products_sold",
            empty_message="No products were sold in this period — try a longer period or fewer filters.",
            details=True,
        )
if stock.open:
    with stock:
        view.show_report(
            ctx,
            "inventory_valuation",
            params,
            empty_kpi="items",
            empty_message="No stock counts on or before {end} — pick a period that ends later, or import stock counts.",
            details=True,
        )
detail_view.open_requested(ctx, params)
