"""Product analysis: volumes, profitability, ABC classes, fast and slow movers and the trend (by month,
by day over a month or less).

Grain: one row per catalogue product (category and product filters narrow the catalogue; the
other filters narrow the completed sale lines counted). Movement, among products sold (quantity
> 0) ranked by quantity DESC then SKU: `fast` = the top ceil(20 %) of them, `slow` = the bottom
ceil(20 %) (never also fast), `normal` = the rest; products not sold in the period are `none`
(the slow_movers KPI counts `slow`, not_sold counts `none`). The slow_movers table is the bottom
10 of the whole catalogue by quantity (unsold first, ties by SKU) with stock on hand. When nothing
at all was sold in the period every table is empty; not_sold then counts the whole catalogue.
Velocity = quantity / days in the period. ABC classes cover products with revenue > 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import pandas as pd

from analytics import columns as col
from analytics.definition import Placement, ReportDefinition
from analytics.periods import Period
from analytics.query import (
    PRODUCT_DIMENSIONS,
    ReportContext,
    filter_sql,
    make_report,
    ratio,
)
from analytics.report import ChartSpec, Column, Highlight, Kpi, Report, ReportParams, Table
from reports.ranking import CLASSES, abc_sql, abc_summary
from reports.sales import (
    ALL_FILTERS,
    BUCKET_COLUMNS,
    PARTIAL,
    REVENUE_COLUMNS,
    breakdown,
    revenue_totals,
    time_series,
    trend_grain,
)

TOP_N = 10
MOVER_SHARE_PCT = 20
NEGATIVE_MARGIN = Highlight("margin_pct", "lt", 0, "Negative margin")
MOVEMENTS = ("fast", "normal", "slow", "none")


def product_frame(ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """One row per catalogue product (filtered by category/product) with its completed quantity,
    revenue, gross_profit (Decimals), orders, stock_quantity (latest inventory per storefront as of
    the period's end, storefront-filtered; None without inventory rows), rank, cumulative_share_pct,
    abc_class, quantity_rank among sold products and movement; ordered by rank."""
    line_sql, line_params = filter_sql(filters, "l", prefix="l")
    cat_sql, cat_params = filter_sql(filters, "p", dims=PRODUCT_DIMENSIONS, prefix="p")
    inv_sql, inv_params = filter_sql(filters, "i", dims=frozenset({"storefront"}), prefix="i")
    sql = f"""
        WITH sold AS (
            SELECT l.sku, SUM(CAST(l.quantity AS DECIMAL(18, 3))) AS quantity, SUM(l.net_micros) AS revenue,
                   SUM(l.cost_micros) AS cost, COUNT(DISTINCT l.sale_id) AS orders
            FROM lines l
            WHERE l.status = 'completed' AND l.order_date BETWEEN $start AND $end{line_sql}
            GROUP BY l.sku
        ), stock AS (
            SELECT latest.sku, SUM(latest.quantity) AS stock_quantity
            FROM (
                SELECT i.sku, i.quantity FROM inventory i
                WHERE i.as_of <= $end{inv_sql}
                QUALIFY ROW_NUMBER() OVER (PARTITION BY i.storefront_id, i.product_id ORDER BY i.as_of DESC) = 1
            ) AS latest
            GROUP BY latest.sku
        ), item AS (
            SELECT p.sku, p.product_name, p.category,
                   COALESCE(s.quantity, 0) AS quantity,
                   COALESCE(s.revenue, 0) AS revenue,
                   COALESCE(s.revenue, 0) - COALESCE(s.cost, 0) AS gross_profit,
                   COALESCE(s.orders, 0) AS orders
            FROM products p LEFT JOIN sold s USING (sku)
            WHERE TRUE{cat_sql}
        ), movers AS (
            SELECT sku,
                   ROW_NUMBER() OVER (ORDER BY quantity DESC, sku) AS quantity_rank,
                   COUNT(*) OVER () AS sold_count,
                   -- ceil(sold_count * share / 100) in integers
                   (COUNT(*) OVER () * {MOVER_SHARE_PCT} + 99) // 100 AS band
            FROM item WHERE quantity > 0
        )
        SELECT a.*, st.stock_quantity, m.quantity_rank,
               CASE
                   WHEN m.quantity_rank IS NULL THEN 'none'
                   WHEN m.quantity_rank <= m.band THEN 'fast'
                   WHEN m.quantity_rank > m.sold_count - m.band THEN 'slow'
                   ELSE 'normal'
               END AS movement
        FROM ({abc_sql("item", "sku")}) AS a
        LEFT JOIN movers m USING (sku)
        LEFT JOIN stock st USING (sku)
        ORDER BY a.rank
    """
    frame = ctx.frame(
        sql,
        {"start": period.start, "end": period.end, **line_params, **cat_params, **inv_params},
        money=("revenue", "gross_profit"),
    )
    # Quantities are summed exactly as DECIMAL (NUMERIC(18, 3) in the database), shown as floats.
    exact_quantity = [Decimal(q) for q in frame["quantity"]]
    frame["quantity_exact"] = pd.Series(exact_quantity, index=frame.index, dtype=object)
    frame["quantity"] = [float(q) for q in exact_quantity]
    frame["rank"] = frame["rank"].astype("int64")
    frame["quantity_rank"] = frame["quantity_rank"].astype("Int64")
    frame["margin_pct"] = [ratio(g, r) for g, r in zip(frame["gross_profit"], frame["revenue"], strict=True)]
    total = sum(frame["revenue"], Decimal(0))
    frame["share_pct"] = [ratio(r, total) for r in frame["revenue"]]
    frame["avg_unit_price"] = [
        (r / q) if q else None for r, q in zip(frame["revenue"], exact_quantity, strict=True)
    ]
    frame["velocity_per_day"] = [float(q / period.days) for q in exact_quantity]
    return frame


def build_product_analysis(ctx: ReportContext, params: ReportParams) -> Report:
    """Catalogue products with volume, profitability, ABC class and movement for the period."""
    period = ctx.period
    filters = params.filters
    totals = revenue_totals(ctx, {"cur": period}, filters)["cur"]
    catalogue = product_frame(ctx, period, filters)
    # Nothing sold at all: every table is empty (so "skip when empty" works); not_sold still
    # counts the catalogue.
    items = catalogue if totals["orders"] else catalogue.iloc[0:0]
    sold = items[items["quantity"] > 0]
    counts = {cls: int((items["abc_class"] == cls).sum()) for cls in CLASSES}
    movement = {m: int((items["movement"] == m).sum()) for m in MOVEMENTS}
    kpis = [
        Kpi("products_sold", "Products sold", len(sold), "int"),
        Kpi("quantity", "Quantity sold", float(sum(items["quantity_exact"], Decimal(0))), "quantity"),
        Kpi("revenue", "Revenue", totals["revenue"], "money"),
        Kpi("gross_profit", "Gross profit", totals["gross_profit"], "money"),
        Kpi("margin_pct", "Margin", totals["margin_pct"], "pct"),
        Kpi("a_products", "A products", counts["A"], "int"),
        Kpi("b_products", "B products", counts["B"], "int"),
        Kpi("c_products", "C products", counts["C"], "int"),
        Kpi("fast_movers", "Fast movers", movement["fast"], "int"),
        Kpi("slow_movers", "Slow movers", movement["slow"], "int"),
        Kpi("not_sold", "Products not sold", int((catalogue["movement"] == "none").sum()), "int"),
        Kpi(
            "negative_margin_products",
            "Products sold at a loss",
            sum(1 for g in items["gross_profit"] if g < 0),
            "int",
        ),
    ]
    product_columns = [
        col.RANK,
        *col.PRODUCT,
        col.QUANTITY,
        col.REVENUE,
        col.GROSS_PROFIT,
        col.MARGIN_PCT,
        col.ORDERS,
        Column("avg_unit_price", "Average unit price", "money"),
        col.SHARE_OF_REVENUE,
        col.CUMULATIVE_SHARE,
        col.ABC_CLASS,
        col.QUANTITY_PER_DAY,
        col.MOVEMENT,
    ]
    mover_columns = [
        *col.PRODUCT,
        col.QUANTITY,
        col.REVENUE,
        col.QUANTITY_PER_DAY,
        Column("stock_quantity", "Stock on hand", "quantity"),
        col.MOVEMENT,
    ]
    fast = sold.sort_values("quantity_rank").head(TOP_N).reset_index(drop=True)
    slow = items.sort_values(["quantity", "sku"], kind="stable").head(TOP_N).reset_index(drop=True)
    grain = trend_grain(period)
    trend = quantity_trend(ctx, period, filters, grain)
    by_category = breakdown(
        ctx, period, filters, ["category"], extra=", COUNT(DISTINCT sku) AS products_sold"
    )
    tables = [
        Table("products", "Products by revenue", product_columns, items, [NEGATIVE_MARGIN]),
        Table(
            "by_category",
            "Products by category",
            [col.CATEGORY, Column("products_sold", "Products sold", "int"), col.QUANTITY, *REVENUE_COLUMNS],
            by_category,
            [NEGATIVE_MARGIN],
        ),
        Table(
            "abc_summary",
            "ABC classes",
            [col.ABC_CLASS, Column("products", "Products", "int"), col.REVENUE, col.SHARE_OF_REVENUE],
            abc_summary(items, "products"),
        ),
        Table("fast_movers", f"Top {TOP_N} products by quantity", mover_columns, fast),
        Table(
            "slow_movers",
            f"Bottom {TOP_N} catalogue products by quantity",
            mover_columns,
            slow,
            [Highlight("movement", "eq", "none", "Not sold in the period")],
        ),
        Table(
            "trend",
            f"Volume and revenue by {grain}",
            [BUCKET_COLUMNS[grain], col.QUANTITY, col.REVENUE, col.GROSS_PROFIT, col.MARGIN_PCT, PARTIAL],
            trend if totals["orders"] else trend.iloc[0:0],
            [NEGATIVE_MARGIN],
        ),
    ]
    charts = [
        ChartSpec(
            "pareto",
            "Product revenue Pareto",
            "pareto",
            "products",
            "sku",
            ("revenue", "cumulative_share_pct"),
        ),
        ChartSpec("by_category", "Revenue by category", "bar", "by_category", "category", ("revenue",)),
        ChartSpec("fast_movers", "Fast movers", "bar", "fast_movers", "sku", ("quantity",), "quantity"),
        ChartSpec(
            "trend_revenue", f"Revenue by {grain}", "line", "trend", grain, ("revenue", "gross_profit")
        ),
        ChartSpec(
            "trend_quantity", f"Quantity by {grain}", "line", "trend", grain, ("quantity",), "quantity"
        ),
    ]
    return make_report(ctx, "product_analysis", "Product analysis", params, period, kpis, tables, charts)


def quantity_trend(
    ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]], grain: str
) -> pd.DataFrame:
    """Per `grain` bucket of the period (every bucket present): quantity, revenue, gross_profit,
    margin_pct and partial, as time_series()."""
    series = time_series(ctx, period, filters, grain)
    fsql, params = filter_sql(filters, "l")
    rows = ctx.rows(
        f"""
        SELECT CAST(date_trunc('{grain}', l.order_date) AS DATE) AS bucket,
               SUM(CAST(l.quantity AS DECIMAL(18, 3))) AS quantity
        FROM lines l
        WHERE l.status = 'completed' AND l.order_date BETWEEN $start AND $end{fsql}
        GROUP BY 1
        """,
        {"start": period.start, "end": period.end, **params},
    )
    quantity = {(f"{bucket:%Y-%m}" if grain == "month" else bucket): float(q) for bucket, q in rows}
    series["quantity"] = [quantity.get(b, 0.0) for b in series[grain]]
    return series


PRODUCT_ANALYSIS = ReportDefinition(
    slug="product_analysis",
    title="Product analysis",
    description="Products by volume and revenue with profitability, ABC classes, fast and slow "
    "movers (including products not sold), categories and the monthly trend.",
    build=build_product_analysis,
    filters=ALL_FILTERS,
    page=Placement("products", "Products & Inventory", ":material/inventory_2:"),
)
