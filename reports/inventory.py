"""The inventory valuation report: stock by storefront and product at a date, its value and status."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analytics import columns as col
from analytics.definition import Placement, ReportDefinition
from analytics.query import ReportContext, filter_sql, make_report
from analytics.report import ChartSpec, Column, Highlight, Kpi, Report, ReportParams, Table
from core.money import from_micros

# `region` here is the storefront's region (stock belongs to a storefront, not to a customer).
INVENTORY_FILTERS = ("region", "storefront", "category", "product")
STATUSES = ("out_of_stock", "low_stock", "in_stock")
STATUS_LABELS = {"out_of_stock": "Out of stock", "low_stock": "Low stock", "in_stock": "In stock"}


def _half_even_thousandths(expr: str) -> str:
    """SQL rounding the integer `expr` / 1000 half-even to an integer (exact HUGEINT arithmetic)."""
    a = f"abs({expr})"
    return (
        f"(sign({expr}) * ({a} // 1000 + CASE WHEN {a} % 1000 > 500 "
        f"OR ({a} % 1000 = 500 AND ({a} // 1000) % 2 = 1) THEN 1 ELSE 0 END))"
    )


def stock_sql(filters: Mapping[str, Sequence[str]]) -> tuple[str, dict[str, Any]]:
    """One row per (storefront, product): its latest inventory row with as_of <= $asof, valued.

    Quantities have at most 3 decimals, so value = quantity_milli x unit micros / 1000 is computed
    exactly and rounded half-even to micros once per row; every total is a sum of those rows.
    Status: out_of_stock when quantity <= 0, low_stock when quantity <= reorder_level, else in_stock.
    """
    fsql, params = filter_sql(filters, "i", dims=frozenset(INVENTORY_FILTERS))
    sql = f"""
        SELECT i.*,
               {_half_even_thousandths("i.qty_milli * i.unit_cost_micros")} AS inventory_value,
               {_half_even_thousandths("i.qty_milli * i.unit_price_micros")} AS retail_value,
               CASE WHEN i.qty_milli <= 0 THEN 'out_of_stock'
                    WHEN i.qty_milli <= i.reorder_milli THEN 'low_stock'
                    ELSE 'in_stock' END AS status
        FROM (
            SELECT storefront_id, storefront_code, storefront_name, storefront_region AS region,
                   product_id, sku, product_name, category, quantity, reorder_level, as_of,
                   unit_cost_micros, unit_price_micros,
                   CAST(round(quantity * 1000) AS HUGEINT) AS qty_milli,
                   CAST(round(reorder_level * 1000) AS HUGEINT) AS reorder_milli
            FROM inventory
            WHERE as_of <= $asof
            QUALIFY row_number() OVER (PARTITION BY storefront_id, product_id ORDER BY as_of DESC) = 1
        ) i
        WHERE TRUE{fsql}
    """
    return sql, params


def stock_by_item(ctx: ReportContext, asof: dt.date, filters: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Every stocked (storefront, product) at `asof`, by storefront code then SKU."""
    sql, params = stock_sql(filters)
    return ctx.frame(
        f"""
        SELECT storefront_code, storefront_name, region, sku, product_name, category, quantity,
               reorder_level, status, unit_cost_micros AS unit_cost, unit_price_micros AS unit_price,
               inventory_value, retail_value, as_of
        FROM ({sql})
        ORDER BY storefront_code, sku
        """,
        {"asof": asof, **params},
        money=("unit_cost", "unit_price", "inventory_value", "retail_value"),
    )


def stock_breakdown(
    ctx: ReportContext, asof: dt.date, filters: Mapping[str, Sequence[str]], keys: Sequence[str]
) -> pd.DataFrame:
    """Items, quantity, values, status counts and share of inventory value grouped by `keys`
    (fixed column names), largest inventory value first, ties by the keys."""
    sql, params = stock_sql(filters)
    group = ", ".join(keys)
    frame = ctx.frame(
        f"""
        SELECT {group}, COUNT(*) AS items, CAST(SUM(qty_milli) AS DOUBLE) / 1000 AS quantity,
               SUM(inventory_value) AS inventory_value, SUM(retail_value) AS retail_value,
               COUNT(*) FILTER (WHERE status = 'out_of_stock') AS out_of_stock,
               COUNT(*) FILTER (WHERE status = 'low_stock') AS low_stock,
               SUM(inventory_value) / NULLIF(SUM(SUM(inventory_value)) OVER (), 0) AS share_pct
        FROM ({sql})
        GROUP BY {group}
        ORDER BY inventory_value DESC, {group}
        """,
        {"asof": asof, **params},
        money=("inventory_value", "retail_value"),
    )
    frame["share_pct"] = frame["share_pct"].astype(float)
    return frame


def status_counts(ctx: ReportContext, asof: dt.date, filters: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Items and inventory value per stock status: all three statuses, or no rows when nothing is stocked."""
    sql, params = stock_sql(filters)
    values = ", ".join(f"({i}, '{s}')" for i, s in enumerate(STATUSES))
    return ctx.frame(
        f"""
        WITH s AS ({sql}), st(pos, status) AS (VALUES {values})
        SELECT st.status, COUNT(s.sku) AS items, COALESCE(SUM(s.inventory_value), 0) AS value,
               COALESCE(SUM(s.retail_value), 0) AS retail_value
        FROM st LEFT JOIN s ON s.status = st.status
        GROUP BY st.pos, st.status
        HAVING EXISTS (SELECT 1 FROM s)
        ORDER BY st.pos
        """,
        {"asof": asof, **params},
        money=("value", "retail_value"),
    )


def stock_totals(ctx: ReportContext, asof: dt.date, filters: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Inventory and retail value (exact Decimals), item count and item count per status."""
    sql, params = stock_sql(filters)
    counts = ", ".join(f"COUNT(*) FILTER (WHERE status = '{s}')" for s in STATUSES)
    row = ctx.one(
        f"SELECT COALESCE(SUM(inventory_value), 0), COALESCE(SUM(retail_value), 0), COUNT(*), {counts} "
        f"FROM ({sql})",
        {"asof": asof, **params},
    )
    out: dict[str, Any] = {
        "inventory_value": from_micros(row[0]),
        "retail_value": from_micros(row[1]),
        "items": int(row[2]),
    }
    for i, status in enumerate(STATUSES):
        out[status] = int(row[3 + i])
    return out


STOCK_COLUMNS = (
    col.ITEMS,
    col.QUANTITY,
    col.INVENTORY_VALUE,
    col.RETAIL_VALUE,
    Column("out_of_stock", "Out of stock", "int"),
    Column("low_stock", "Low stock", "int"),
    col.relabel(col.SHARE, "Share of value"),
)
STATUS_HIGHLIGHTS = [
    Highlight("status", "eq", "out_of_stock", "Out of stock"),
    Highlight("status", "eq", "low_stock", "At or below the reorder level"),
]


def build_inventory_valuation(ctx: ReportContext, params: ReportParams) -> Report:
    """Stock at the period's last day (latest count per storefront and product on or before it),
    valued at the product's unit cost and unit price, with stock status (SPEC §2)."""
    period = ctx.period
    asof = period.end
    filters = params.filters
    totals = stock_totals(ctx, asof, filters)
    kpis = [
        Kpi("inventory_value", "Inventory value (cost)", totals["inventory_value"], "money"),
        Kpi("retail_value", "Retail value", totals["retail_value"], "money"),
        Kpi("items", "Items (storefront x product)", totals["items"], "int"),
        Kpi("out_of_stock", "Out of stock", totals["out_of_stock"], "int"),
        Kpi("low_stock", "Low stock", totals["low_stock"], "int"),
        Kpi("in_stock", "In stock", totals["in_stock"], "int"),
    ]
    tables = [
        Table(
            "by_item",
            "Stock by storefront and product",
            [
                *col.STOREFRONT,
                *col.PRODUCT,
                col.QUANTITY,
                Column("reorder_level", "Reorder level", "quantity"),
                col.STATUS,
                Column("unit_cost", "Unit cost", "money"),
                col.UNIT_PRICE,
                col.INVENTORY_VALUE,
                col.RETAIL_VALUE,
                Column("as_of", "Counted on", "date"),
            ],
            stock_by_item(ctx, asof, filters),
            STATUS_HIGHLIGHTS,
        ),
        Table(
            "by_storefront",
            "Stock by storefront",
            [*col.STOREFRONT, col.REGION, *STOCK_COLUMNS],
            stock_breakdown(ctx, asof, filters, ["storefront_code", "storefront_name", "region"]),
        ),
        Table(
            "by_category",
            "Stock by category",
            [col.CATEGORY, *STOCK_COLUMNS],
            stock_breakdown(ctx, asof, filters, ["category"]),
        ),
        Table(
            "status_counts",
            "Items by stock status",
            [col.STATUS, col.ITEMS, Column("value", "Inventory value", "money"), col.RETAIL_VALUE],
            status_counts(ctx, asof, filters),
            STATUS_HIGHLIGHTS,
        ),
    ]
    charts = [
        ChartSpec(
            "by_storefront",
            "Inventory value by storefront",
            "bar",
            "by_storefront",
            "storefront_name",
            ("inventory_value", "retail_value"),
        ),
        ChartSpec(
            "by_category",
            "Inventory value by category",
            "bar",
            "by_category",
            "category",
            ("inventory_value",),
        ),
        ChartSpec(
            "status_counts", "Items by stock status", "pie", "status_counts", "status", ("items",), "int"
        ),
    ]
    notes = [
        f"Stock as of {asof.isoformat()}: the latest count of each storefront and product on or before "
        "that day; products never counted at a storefront are not listed. Region is the storefront's region."
    ]
    return make_report(
        ctx, "inventory_valuation", "Inventory valuation", params, period, kpis, tables, charts, notes
    )


INVENTORY_VALUATION = ReportDefinition(
    slug="inventory_valuation",
    title="Inventory valuation",
    description="Stock by storefront and product at the period's last day: quantity, value at cost "
    "and at retail price, stock status (out, low, in stock), by storefront and category.",
    build=build_inventory_valuation,
    filters=INVENTORY_FILTERS,
    default_period="month_to_date",
    page=Placement("products"),
)
