"""Gross profit: revenue, cost, gross profit, margin and contribution by customer, product, category and month.

Contribution % of an item = its gross profit / the total gross profit of the period (None when
the total is 0), so the rows of each table add up to the KPI totals exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

from analytics import columns as col
from analytics.definition import Placement, ReportDefinition
from analytics.kpis import compared_periods, comparison_kpis
from analytics.periods import Period
from analytics.query import ReportContext, make_report, ratio
from analytics.report import ChartSpec, Column, Highlight, Kpi, Report, ReportParams, Table
from reports.sales import (
    ALL_FILTERS,
    BUCKET_COLUMNS,
    PARTIAL,
    breakdown,
    revenue_totals,
    time_series,
    trend_grain,
)

NEGATIVE_MARGIN = Highlight("margin_pct", "lt", 0, "Negative margin")
PROFIT_COLUMNS = (
    col.REVENUE,
    col.COST,
    col.GROSS_PROFIT,
    col.MARGIN_PCT,
    Column("contribution_pct", "Contribution to gross profit", "pct"),
)


def profit_breakdown(
    ctx: ReportContext,
    period: Period,
    filters: Mapping[str, Sequence[str]],
    keys: Sequence[str],
    total_profit: Decimal,
) -> pd.DataFrame:
    """Revenue, cost, gross profit (Decimals), margin and contribution per `keys`, by gross
    profit DESC then keys; contribution is the share of `total_profit`."""
    frame = breakdown(ctx, period, filters, keys, order="gross_profit DESC")
    return _with_cost(frame, total_profit)


def _with_cost(frame: pd.DataFrame, total_profit: Decimal) -> pd.DataFrame:
    frame["cost"] = [r - g for r, g in zip(frame["revenue"], frame["gross_profit"], strict=True)]
    frame["contribution_pct"] = [ratio(g, total_profit) for g in frame["gross_profit"]]
    return frame


def build_gross_profit(ctx: ReportContext, params: ReportParams) -> Report:
    """Gross profit and margin for the period by customer, product, category and month (by day
    over a month or less: `trend_grain`)."""
    period = ctx.period
    filters = params.filters
    compared = compared_periods(period, params)
    totals = revenue_totals(ctx, {"cur": period, **compared}, filters)
    cur = totals["cur"]
    profit: Decimal = cur["gross_profit"]
    margin = cur["margin_pct"]
    grain = trend_grain(period)
    by_customer = profit_breakdown(
        ctx, period, filters, ["customer_code", "customer_name", "customer_type", "region"], profit
    )
    by_product = profit_breakdown(ctx, period, filters, ["sku", "product_name", "category"], profit)
    by_category = profit_breakdown(ctx, period, filters, ["category"], profit)
    trend = _with_cost(time_series(ctx, period, filters, grain), profit)
    if not cur["orders"]:
        trend = trend.iloc[0:0]  # an empty period has no rows, not a row of zeros per month
    # contribution_pct is left out of the trend table: months are not items of the mix.
    negative = negative_margin_frame(by_customer, by_product)
    changes: list[Kpi] = []
    for key, compared_period in compared.items():  # per compared period: gross profit, its change, margin
        one = {key: compared_period}
        changes += comparison_kpis(
            "gross_profit", "Gross profit", "money", profit, _of(totals, "gross_profit"), one
        )
        changes += comparison_kpis(
            "margin_pct", "Margin", "pct", margin, _of(totals, "margin_pct"), one, with_change=False
        )
    losses = sum(negative.loc[negative["item_type"] == "product", "gross_profit"], Decimal(0))
    kpis = [
        Kpi("revenue", "Revenue", cur["revenue"], "money"),
        Kpi("cost", "Cost", cur["cost"], "money"),
        Kpi("gross_profit", "Gross profit", profit, "money"),
        Kpi("margin_pct", "Margin", cur["margin_pct"], "pct"),
        *changes,
        Kpi(
            "top_customer_contribution_pct",
            "Top customer's contribution",
            _first(by_customer["contribution_pct"]),
            "pct",
        ),
        Kpi(
            "top_product_contribution_pct",
            "Top product's contribution",
            _first(by_product["contribution_pct"]),
            "pct",
        ),
        Kpi(
            "top_category_contribution_pct",
            "Top category's contribution",
            _first(by_category["contribution_pct"]),
            "pct",
        ),
        Kpi(
            "negative_margin_customers",
            "Customers with negative gross profit",
            int((negative["item_type"] == "customer").sum()),
            "int",
        ),
        Kpi(
            "negative_margin_products",
            "Products with negative gross profit",
            int((negative["item_type"] == "product").sum()),
            "int",
        ),
        Kpi("negative_gross_profit", "Gross profit lost on loss-making products", losses, "money"),
    ]
    tables = [
        Table(
            "by_customer",
            "Gross profit by customer",
            [*col.CUSTOMER_DETAILS, *PROFIT_COLUMNS],
            by_customer,
            [NEGATIVE_MARGIN],
        ),
        Table(
            "by_product",
            "Gross profit by product",
            [*col.PRODUCT, col.QUANTITY, *PROFIT_COLUMNS],
            by_product,
            [NEGATIVE_MARGIN],
        ),
        Table(
            "by_category",
            "Gross profit by category",
            [col.CATEGORY, *PROFIT_COLUMNS],
            by_category,
            [NEGATIVE_MARGIN],
        ),
        Table(
            "trend",
            f"Gross profit by {grain}",
            [BUCKET_COLUMNS[grain], *PROFIT_COLUMNS[:4], PARTIAL],
            trend,
            [NEGATIVE_MARGIN],
        ),
        Table(
            "negative_margin",
            "Customers and products with negative gross profit",
            [
                Column("item_type", "Item type"),
                Column("code", "Code"),
                Column("name", "Name"),
                *PROFIT_COLUMNS[:4],
            ],
            negative,
            [NEGATIVE_MARGIN],
        ),
    ]
    charts = [
        ChartSpec(
            "trend", f"Gross profit by {grain}", "line", "trend", grain, ("revenue", "cost", "gross_profit")
        ),
        ChartSpec("trend_margin", f"Margin by {grain}", "line", "trend", grain, ("margin_pct",), "pct"),
        ChartSpec(
            "by_category", "Gross profit by category", "bar", "by_category", "category", ("gross_profit",)
        ),
        ChartSpec(
            "by_customer",
            "Gross profit by customer",
            "bar",
            "by_customer",
            "customer_code",
            ("gross_profit",),
        ),
        ChartSpec(
            "contribution",
            "Contribution by category",
            "pie",
            "by_category",
            "category",
            ("gross_profit",),
        ),
    ]
    return make_report(
        ctx, "gross_profit", "Gross profit", params, period, kpis, tables, charts, None, compared
    )


def _of(totals: Mapping[str, Mapping[str, Any]], figure: str) -> dict[str, Any]:
    """One figure of revenue_totals() per period key."""
    return {key: values[figure] for key, values in totals.items()}


NEGATIVE_COLUMNS = ["item_type", "code", "name", "revenue", "cost", "gross_profit", "margin_pct"]


def negative_margin_frame(by_customer: pd.DataFrame, by_product: pd.DataFrame) -> pd.DataFrame:
    """Customers and products with gross profit < 0: item_type, code, name and money columns,
    biggest loss first (ties by item type, then code)."""
    rows: list[dict[str, Any]] = []
    for item_type, frame, code, name in (
        ("customer", by_customer, "customer_code", "customer_name"),
        ("product", by_product, "sku", "product_name"),
    ):
        for record in frame.to_dict("records"):
            if record["gross_profit"] < 0:
                rows.append(
                    {
                        "item_type": item_type,
                        "code": record[code],
                        "name": record[name],
                        **{k: record[k] for k in ("revenue", "cost", "gross_profit", "margin_pct")},
                    }
                )
    rows.sort(key=lambda r: (r["gross_profit"], r["item_type"], r["code"]))
    return pd.DataFrame(rows, columns=NEGATIVE_COLUMNS)


def _first(values: pd.Series) -> float | None:
    return None if values.empty else values.iloc[0]


GROSS_PROFIT = ReportDefinition(
    slug="gross_profit",
    title="Gross profit",
    description="Revenue, cost, gross profit, margin and contribution by customer, product and "
    "category, the monthly trend and the customers and products sold at a loss.",
    build=build_gross_profit,
    filters=ALL_FILTERS,
    compares=True,
    page=Placement("profit", "Profit", ":material/savings:"),
)
