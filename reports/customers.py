"""Customer performance: rankings, ABC classes, retention, growth and forecast accuracy per customer.

Every figure is over the completed sale lines that match the filters, so with a product,
category, storefront or sales rep filter "bought" means "bought such lines". A customer bought
in a period when it has at least one such line with order_date in the period (even at zero
revenue); ABC classes cover only the customers with revenue > 0 (reports.ranking).
Segments: retained (bought in the previous period and in this one), new (first ever purchase
in this period), reactivated (bought in this period, not in the previous one, but before it),
lost (bought in the previous period, not in this one). Retention = retained / customers of the
previous period. Forecast accuracy per customer = max(0, 1 - WAPE) over the forecast cycles
overlapping the period, computed by reports.forecast (latest submission per key, A = the
whole month's completed quantity); None when the customer had no forecast or no actuals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from decimal import Decimal

import pandas as pd

from analytics import columns as col
from analytics.definition import Placement, ReportDefinition
from analytics.kpis import compared_periods, comparison_kpis
from analytics.periods import Period
from analytics.query import ReportContext, change, filter_sql, make_report, ratio
from analytics.report import ChartSpec, Column, Highlight, Kpi, Report, ReportParams, Table
from reports.forecast import forecast_metrics, forecast_totals
from reports.ranking import CLASSES, abc_sql, abc_summary
from reports.sales import ALL_FILTERS, revenue_totals

TOP_N = 10
SEGMENTS = ("retained", "new", "reactivated", "lost")
NEGATIVE_MARGIN = Highlight("margin_pct", "lt", 0, "Negative margin")


def customer_frame(ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """One row per customer with completed lines up to the period's end (filtered), with money as
    Decimals: revenue, gross_profit, orders for the period; revenue_previous (previous period),
    revenue_year_ago; flags bought, bought_previous, new (first ever purchase in the period) and,
    for customers who bought in the period, rank, cumulative_share_pct and abc_class."""
    fsql, params = filter_sql(filters, "l")
    prev, yago = period.previous(), period.year_before()
    cur = "l.order_date BETWEEN $start AND $end"
    before = "l.order_date BETWEEN $prev_start AND $prev_end"
    year_ago = "l.order_date BETWEEN $yago_start AND $yago_end"
    sql = f"""
        WITH cust AS (
            SELECT l.customer_code, l.customer_name, l.customer_type, l.region,
                   COALESCE(SUM(l.net_micros) FILTER (WHERE {cur}), 0) AS revenue,
                   COALESCE(SUM(l.cost_micros) FILTER (WHERE {cur}), 0) AS cost,
                   COUNT(DISTINCT l.sale_id) FILTER (WHERE {cur}) AS orders,
                   COUNT(*) FILTER (WHERE {cur}) > 0 AS bought,
                   COALESCE(SUM(l.net_micros) FILTER (WHERE {before}), 0) AS revenue_previous,
                   COUNT(*) FILTER (WHERE {before}) > 0 AS bought_previous,
                   COALESCE(SUM(l.net_micros) FILTER (WHERE {year_ago}), 0) AS revenue_year_ago,
                   MIN(l.order_date) >= $start AS new
            FROM lines l
            WHERE l.status = 'completed' AND l.order_date <= $end{fsql}
            GROUP BY l.customer_code, l.customer_name, l.customer_type, l.region
        ), abc AS (
            {abc_sql("(SELECT customer_code, revenue FROM cust WHERE bought)", "customer_code")}
        )
        SELECT c.customer_code, c.customer_name, c.customer_type, c.region, c.revenue,
               c.revenue - c.cost AS gross_profit, c.orders, c.bought, c.revenue_previous,
               c.bought_previous, c.revenue_year_ago, c.new,
               a.rank, a.cumulative_share_pct, a.abc_class
        FROM cust c LEFT JOIN abc a USING (customer_code)
        ORDER BY a.rank NULLS LAST, c.customer_code
    """
    frame = ctx.frame(
        sql,
        {
            "start": period.start,
            "end": period.end,
            "prev_start": prev.start,
            "prev_end": prev.end,
            "yago_start": yago.start,
            "yago_end": yago.end,
            **params,
        },
        money=("revenue", "gross_profit", "revenue_previous", "revenue_year_ago"),
    )
    for flag in ("bought", "bought_previous", "new"):
        frame[flag] = frame[flag].astype(bool)
    frame["segment"] = [
        _segment(bool(b), bool(bp), bool(n))
        for b, bp, n in zip(frame["bought"], frame["bought_previous"], frame["new"], strict=True)
    ]
    return frame


def _segment(bought: bool, bought_previous: bool, new: bool) -> str | None:
    if bought and bought_previous:
        return "retained"
    if bought:
        return "new" if new else "reactivated"
    if bought_previous:
        return "lost"
    return None


def build_customer_performance(ctx: ReportContext, params: ReportParams) -> Report:
    """Customers of the period ranked by revenue, with ABC, segments, growth and forecast accuracy."""
    period = ctx.period
    filters = params.filters
    compared = compared_periods(period, params)
    totals = revenue_totals(ctx, {"cur": period, **compared}, filters)
    base = customer_frame(ctx, period, filters)
    # Forecast accuracy comes from the forecast reports' own SQL, so both reports agree.
    accuracy = forecast_metrics(ctx, period, filters, ["customer_code"])
    acc_by_code = {
        code: _float(acc) for code, acc in zip(accuracy["customer_code"], accuracy["accuracy"], strict=True)
    }

    active = base[base["bought"]].reset_index(drop=True)
    revenue: Decimal = totals["cur"]["revenue"]
    active["margin_pct"] = _ratios(active["gross_profit"], active["revenue"])
    active["avg_order_value"] = [
        (r / o) if o else None for r, o in zip(active["revenue"], active["orders"], strict=True)
    ]
    active["share_pct"] = [ratio(r, revenue) for r in active["revenue"]]
    active["growth_pct"] = _changes(active["revenue"], active["revenue_previous"])
    active["yoy_pct"] = _changes(active["revenue"], active["revenue_year_ago"])
    active["forecast_accuracy"] = [acc_by_code.get(code) for code in active["customer_code"]]
    active["rank"] = active["rank"].astype("int64")

    counts = {cls: int((active["abc_class"] == cls).sum()) for cls in CLASSES}
    customers_active = len(active)
    customers_previous = int(base["bought_previous"].sum())
    retained = int((base["segment"] == "retained").sum())
    kpis = [
        Kpi("customers_active", "Active customers", customers_active, "int"),
        Kpi("new_customers", "New customers", int((base["segment"] == "new").sum()), "int"),
        Kpi(
            "reactivated_customers",
            "Reactivated customers",
            int((base["segment"] == "reactivated").sum()),
            "int",
        ),
        Kpi(
            "customers_previous",
            f"Customers, previous period ({compared['previous'].describe()})",
            customers_previous,
            "int",
        ),
        Kpi("retained", "Retained customers", retained, "int"),
        Kpi("lost", "Lost customers", int((base["segment"] == "lost").sum()), "int"),
        Kpi("retention_pct", "Retention", ratio(retained, customers_previous), "pct"),
        Kpi("revenue", "Revenue", revenue, "money"),
        Kpi(
            "revenue_per_customer",
            "Revenue per customer",
            (revenue / customers_active) if customers_active else None,
            "money",
        ),
        *comparison_kpis(
            "revenue", "Revenue", "money", revenue, {k: totals[k]["revenue"] for k in compared}, compared
        ),
        Kpi("a_customers", "A customers", counts["A"], "int"),
        Kpi("b_customers", "B customers", counts["B"], "int"),
        Kpi("c_customers", "C customers", counts["C"], "int"),
        Kpi(
            "forecast_accuracy",
            "Forecast accuracy",
            _float(forecast_totals(ctx, period, filters)["accuracy"]),
            "pct",
        ),
    ]
    customer_columns = [
        col.RANK,
        *col.CUSTOMER_DETAILS,
        col.REVENUE,
        col.GROSS_PROFIT,
        col.MARGIN_PCT,
        col.ORDERS,
        Column("avg_order_value", "Average order value", "money"),
        col.SHARE_OF_REVENUE,
        col.CUMULATIVE_SHARE,
        col.ABC_CLASS,
        col.SEGMENT,
        col.REVENUE_PREVIOUS,
        Column("growth_pct", "Growth vs previous period", "pct"),
        Column("revenue_year_ago", "Revenue, a year before", "money"),
        Column("yoy_pct", "Growth vs a year before", "pct"),
        Column("forecast_accuracy", "Forecast accuracy", "pct"),
    ]
    change_columns = [
        *col.CUSTOMER,
        col.SEGMENT,
        col.REVENUE,
        col.REVENUE_PREVIOUS,
        Column("revenue_change", "Change", "money"),
        Column("growth_pct", "Growth", "pct"),
    ]
    tables = [
        Table("customers", "Customers by revenue", customer_columns, active, [NEGATIVE_MARGIN]),
        Table(
            "abc_summary",
            "ABC classes",
            [col.ABC_CLASS, col.CUSTOMERS, col.REVENUE, col.SHARE_OF_REVENUE],
            abc_summary(active, "customers"),
        ),
        Table(
            "retention",
            "Retention segments",
            [col.SEGMENT, col.CUSTOMERS, col.REVENUE, col.REVENUE_PREVIOUS],
            _retention(base),
        ),
        Table(
            "top_growth",
            f"Top {TOP_N} customers by revenue growth",
            change_columns,
            _change_frame(base, growth=True),
        ),
        Table(
            "top_decline",
            f"Top {TOP_N} customers by revenue decline",
            change_columns,
            _change_frame(base, growth=False),
        ),
    ]
    charts = [
        ChartSpec(
            "pareto",
            "Customer revenue Pareto",
            "pareto",
            "customers",
            "customer_code",
            ("revenue", "cumulative_share_pct"),
        ),
        ChartSpec("abc", "Revenue by ABC class", "bar", "abc_summary", "abc_class", ("revenue",)),
        ChartSpec("retention", "Customers by segment", "bar", "retention", "segment", ("customers",), "int"),
        ChartSpec(
            "top_growth",
            "Revenue growth by customer",
            "bar",
            "top_growth",
            "customer_code",
            ("revenue_change",),
        ),
    ]
    notes = []
    if "storefront" in filters:
        notes.append("Forecasts have no storefront, so forecast accuracy ignores the storefront filter.")
    return make_report(
        ctx,
        "customer_performance",
        "Customer performance",
        params,
        period,
        kpis,
        tables,
        charts,
        notes,
        compared,
    )


def _retention(base: pd.DataFrame) -> pd.DataFrame:
    """Customers and revenue per segment; no rows when nobody bought in either period."""
    if base.empty or not (base["bought"] | base["bought_previous"]).any():
        return pd.DataFrame({"segment": [], "customers": [], "revenue": [], "revenue_previous": []})
    rows = []
    for seg in SEGMENTS:
        part = base[base["segment"] == seg]
        rows.append(
            {
                "segment": seg,
                "customers": len(part),
                "revenue": sum(part["revenue"], Decimal(0)),
                "revenue_previous": sum(part["revenue_previous"], Decimal(0)),
            }
        )
    return pd.DataFrame(rows)


def _change_frame(base: pd.DataFrame, *, growth: bool) -> pd.DataFrame:
    """Customers who bought in this or the previous period whose revenue rose (`growth`) or fell,
    biggest change first, ties by code; at most TOP_N rows."""
    frame = base[base["bought"] | base["bought_previous"]].copy()
    frame["revenue_change"] = [
        r - p for r, p in zip(frame["revenue"], frame["revenue_previous"], strict=True)
    ]
    frame["growth_pct"] = _changes(frame["revenue"], frame["revenue_previous"])
    keep = pd.Series([(d > 0) if growth else (d < 0) for d in frame["revenue_change"]], dtype=bool)
    frame = frame[keep.to_numpy()]
    order = sorted(
        range(len(frame)),
        key=lambda i: (
            -frame["revenue_change"].iloc[i] if growth else frame["revenue_change"].iloc[i],
            frame["customer_code"].iloc[i],
        ),
    )
    return frame.iloc[order[:TOP_N]].reset_index(drop=True)


def _ratios(numerators: pd.Series, denominators: pd.Series) -> list[float | None]:
    return [ratio(n, d) for n, d in zip(numerators, denominators, strict=True)]


def _changes(current: pd.Series, before: pd.Series) -> list[float | None]:
    return [change(c, b) for c, b in zip(current, before, strict=True)]


def _float(value: Decimal | float | None) -> float | None:
    number = None if value is None else float(value)
    return None if number is None or math.isnan(number) else number


CUSTOMER_PERFORMANCE = ReportDefinition(
    slug="customer_performance",
    title="Customer performance",
    description="Customers ranked by revenue with ABC classes, retention (retained, new, "
    "reactivated, lost), growth vs the previous period and a year before, and forecast accuracy.",
    build=build_customer_performance,
    filters=ALL_FILTERS,
    compares=True,
    page=Placement("customers", "Customers", ":material/groups:"),
)
