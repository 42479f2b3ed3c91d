"""Revenue reports: the KPI dashboard and the sales summary (SPEC section 2 definitions)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

from analytics import columns as col
from analytics.definition import OptionSpec, Placement, ReportDefinition, SystemTemplate
from analytics.kpis import compared_periods, comparison_kpis
from analytics.periods import Period, month_end, month_start
from analytics.query import (
    PAYMENT_TABLE_DIMENSIONS,
    PRODUCT_DIMENSIONS,
    SALE_DIMENSIONS,
    ReportContext,
    filter_sql,
    make_report,
    ratio,
)
from analytics.report import ChartSpec, Column, ColumnKind, Kpi, ParamError, Report, ReportParams, Table
from core.money import from_micros
from reports.submissions import cycles_in, submission_frame, submission_rate

ALL_FILTERS = ("region", "category", "storefront", "customer_type", "sales_rep", "customer", "product")
TOP_N = 10


# --- shared building blocks (also used by other report modules) -------------------------------


SALE_KEYS = frozenset(
    {
        "customer_id",
        "customer_code",
        "customer_name",
        "customer_type",
        "region",
        "storefront_code",
        "storefront_name",
        "sales_rep",
    }
)


def fact_source(filters: Mapping[str, Sequence[str]], keys: Sequence[str] = ()) -> tuple[str, str]:
    """The cheapest exact source for revenue grouped by `keys`: (FROM clause, orders expression).

    Without product filters, sale-level groupings read the per-sale `sales` view (a quarter of
    the rows, and an order is simply a row). Anything else needs COUNT(DISTINCT sale_id) over
    lines: an order may list a product, and so a category, on several lines (a till scanning an
    item twice).
    """
    if not PRODUCT_DIMENSIONS & set(filters) and set(keys) <= SALE_KEYS:
        return "sales l", "COUNT(*)"
    return "lines l", "COUNT(DISTINCT l.sale_id)"


def revenue_totals(
    ctx: ReportContext, periods: Mapping[str, Period], filters: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, Any]]:
    """Revenue, cost, gross profit (exact Decimals) and orders for several periods in one scan."""
    source, _ = fact_source(filters)
    fsql, params = filter_sql(filters, "l")
    count = "COUNT(*)" if source.startswith("sales") else "COUNT(DISTINCT l.sale_id)"
    aggs = []
    for key, period in periods.items():
        cond = f"l.order_date BETWEEN ${key}_start AND ${key}_end"
        aggs.append(
            f"COALESCE(SUM(l.net_micros) FILTER (WHERE {cond}), 0), "
            f"COALESCE(SUM(l.cost_micros) FILTER (WHERE {cond}), 0), "
            f"{count} FILTER (WHERE {cond})"
        )
        params[f"{key}_start"] = period.start
        params[f"{key}_end"] = period.end
    params["lo"] = min(p.start for p in periods.values())
    params["hi"] = max(p.end for p in periods.values())
    row = ctx.one(
        f"SELECT {', '.join(aggs)} FROM {source} "
        f"WHERE l.status = 'completed' AND l.order_date BETWEEN $lo AND $hi{fsql}",
        params,
    )
    out: dict[str, dict[str, Any]] = {}
    for i, key in enumerate(periods):
        revenue, cost, orders = from_micros(row[3 * i]), from_micros(row[3 * i + 1]), int(row[3 * i + 2])
        out[key] = {
            "revenue": revenue,
            "cost": cost,
            "gross_profit": revenue - cost,
            "orders": orders,
            "margin_pct": ratio(revenue - cost, revenue),
            "avg_order_value": (revenue / orders) if orders else None,
        }
    return out


def cash_received(ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]]) -> Decimal:
    """Payments dated in the period, excluding credit notes and payments on void or draft sales."""
    fsql, params = filter_sql(filters, "p", dims=PAYMENT_TABLE_DIMENSIONS)
    row = ctx.one(
        "SELECT COALESCE(SUM(p.amount_micros), 0) FROM payments p "
        "WHERE CAST(p.paid_at AS DATE) BETWEEN $start AND $end "
        "AND p.sale_status NOT IN ('void', 'draft') AND p.method <> 'credit_note'" + fsql,
        {"start": period.start, "end": period.end, **params},
    )
    return from_micros(row[0])


def outstanding_sql(filters: Mapping[str, Sequence[str]]) -> tuple[str, dict[str, Any]]:
    """Per completed sale ordered by $asof: its balance (net - payments to $asof, never below 0).

    Columns: sale_id, order_id, order_date, customer_id, customer_code, customer_name, region,
    customer_type, storefront_code, sales_rep, net_micros, paid_micros, outstanding_micros.
    """
    fsql, params = filter_sql(filters, "s", dims=SALE_DIMENSIONS)
    sql = f"""
        SELECT s.sale_id, s.order_id, s.order_date, s.customer_id, s.customer_code, s.customer_name,
               s.region, s.customer_type, s.storefront_code, s.sales_rep, s.net_micros,
               s.paid_micros - COALESCE(p.paid_after, 0) AS paid_micros,
               GREATEST(s.net_micros - (s.paid_micros - COALESCE(p.paid_after, 0)), 0) AS outstanding_micros
        FROM sales s
        LEFT JOIN (
            -- paid by $asof = every payment of the sale (kept on the sale) minus those made later:
            -- only payments after $asof for orders up to $asof are read (few: orders get paid)
            SELECT sale_id, SUM(amount_micros) AS paid_after FROM payments
            WHERE paid_at >= CAST($asof AS DATE) + INTERVAL 1 DAY AND order_date <= $asof
            GROUP BY sale_id
        ) p ON p.sale_id = s.sale_id
        WHERE s.status = 'completed' AND s.order_date <= $asof{fsql}
    """
    return sql, params


def total_outstanding(ctx: ReportContext, asof: dt.date, filters: Mapping[str, Sequence[str]]) -> Decimal:
    """Total outstanding balance of all completed sales as of `asof` (a balance, not a flow)."""
    sql, params = outstanding_sql(filters)
    row = ctx.one(f"SELECT COALESCE(SUM(outstanding_micros), 0) FROM ({sql})", {"asof": asof, **params})
    return from_micros(row[0])


def breakdown(
    ctx: ReportContext,
    period: Period,
    filters: Mapping[str, Sequence[str]],
    keys: Sequence[str],
    *,
    order: str = "revenue DESC",
    limit: int | None = None,
    extra: str = "",
) -> pd.DataFrame:
    """Revenue, gross profit, margin, orders, quantity and share of revenue grouped by `keys`."""
    source, orders = fact_source(filters, keys)
    if extra and source.startswith("sales"):  # extra columns may need line-level fields
        source, orders = "lines l", "COUNT(DISTINCT l.sale_id)"
    fsql, params = filter_sql(filters, "l")
    group = ", ".join(keys)
    where = f"WHERE l.status = 'completed' AND l.order_date BETWEEN $start AND $end{fsql}"
    # Orders come from the aggregate itself, or, per product or category, from the snapshot's pair
    # tables (a COUNT(*) there instead of a COUNT(DISTINCT sale_id) over the lines).
    pairs = None if extra else order_pairs(filters, keys)
    own_orders, with_ord, join_ord, orders_col = f", {orders} AS orders", "", "", "rev.orders"
    if pairs is not None:
        table, key = pairs
        own_orders, orders_col = "", "COALESCE(ord.orders, 0)"
        with_ord = f", ord AS (SELECT {key}, COUNT(*) AS orders FROM {table} l {where} GROUP BY {key})"
        join_ord = f"LEFT JOIN ord ON ord.{key} = rev.{key}"
    sql = f"""
        WITH rev AS (
            SELECT {group}{extra}, SUM(net_micros) AS revenue,
                   SUM(net_micros) - SUM(cost_micros) AS gross_profit, SUM(quantity) AS quantity{own_orders}
            FROM {source} {where}
            GROUP BY {group}
        ){with_ord}
        SELECT rev.* EXCLUDE (revenue, gross_profit, quantity{", orders" if own_orders else ""}),
               revenue, gross_profit, {orders_col} AS orders, quantity,
               revenue / NULLIF(SUM(revenue) OVER (), 0) AS share_pct
        FROM rev {join_ord}
        ORDER BY {order}, {group}
        {f"LIMIT {int(limit)}" if limit else ""}
    """
    frame = ctx.frame(
        sql, {"start": period.start, "end": period.end, **params}, money=("revenue", "gross_profit")
    )
    frame["margin_pct"] = [ratio(g, r) for g, r in zip(frame["gross_profit"], frame["revenue"], strict=True)]
    frame["share_pct"] = frame["share_pct"].astype(float)
    return frame


def order_pairs(filters: Mapping[str, Sequence[str]], keys: Sequence[str]) -> tuple[str, str] | None:
    """(table, key) counting orders per product or per category as rows of the snapshot's
    (sale, product) or (sale, category) pairs, or None when the COUNT(DISTINCT) path is needed.

    Grouping by product (sku, with its name and category) counts `sale_products` rows; grouping by
    category alone counts `sale_categories` rows, unless a product filter picks lines within a
    category (the pairs do not know which products made them).
    """
    if "sku" in keys and set(keys) <= {"sku", "product_name", "category"}:
        return "sale_products", "sku"
    if list(keys) == ["category"] and "product" not in filters:
        return "sale_categories", "category"
    return None


# A trend over a period this long or shorter is by day: a month of days, not one point per month.
DAILY_MAX_DAYS = 31


def trend_grain(period: Period) -> str:
    """The buckets of a trend over `period`: "day" up to DAILY_MAX_DAYS days, else "month"."""
    return "day" if period.days <= DAILY_MAX_DAYS else "month"


def is_partial(bucket: dt.date, grain: str, period: Period) -> bool:
    """True when the `grain` bucket starting on `bucket` is cut short by the period's start or end
    (the month still running on the 4th, a week the period starts inside); a day never is."""
    if grain == "day":
        return False
    last = month_end(bucket) if grain == "month" else bucket + dt.timedelta(days=6)
    return bucket < period.start or last > period.end


def time_series(
    ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]], grain: str
) -> pd.DataFrame:
    """Revenue, gross profit and orders per day, week (Monday) or month; every bucket present, and
    `partial`: whether the period cuts the bucket short (see `is_partial`)."""
    if grain not in ("day", "week", "month"):
        raise ParamError(f"granularity must be day, week or month, not {grain!r}.")
    source, orders = fact_source(filters)
    fsql, params = filter_sql(filters, "l")
    sql = f"""
        WITH buckets AS (
            SELECT CAST(b AS DATE) AS bucket
            FROM generate_series(CAST(date_trunc('{grain}', $start) AS DATE), CAST($end AS DATE),
                                 INTERVAL 1 {grain}) AS t(b)
        ), agg AS (
            SELECT CAST(date_trunc('{grain}', l.order_date) AS DATE) AS bucket,
                   SUM(net_micros) AS revenue,
                   SUM(net_micros) - SUM(cost_micros) AS gross_profit,
                   {orders} AS orders
            FROM {source}
            WHERE l.status = 'completed' AND l.order_date BETWEEN $start AND $end{fsql}
            GROUP BY 1
        )
        SELECT b.bucket, COALESCE(a.revenue, 0) AS revenue, COALESCE(a.gross_profit, 0) AS gross_profit,
               COALESCE(a.orders, 0) AS orders
        FROM buckets b LEFT JOIN agg a USING (bucket)
        ORDER BY b.bucket
    """
    frame = ctx.frame(
        sql, {"start": period.start, "end": period.end, **params}, money=("revenue", "gross_profit")
    )
    frame["margin_pct"] = [ratio(g, r) for g, r in zip(frame["gross_profit"], frame["revenue"], strict=True)]
    frame["partial"] = pd.Series([is_partial(b, grain, period) for b in frame["bucket"]], dtype=bool)
    if grain == "month":
        frame.insert(0, "month", [f"{d:%Y-%m}" for d in frame["bucket"]])
    else:
        frame.insert(0, grain, frame["bucket"])
    return frame.drop(columns=["bucket"])


def product_filter_note(filters: Mapping[str, Sequence[str]]) -> list[str]:
    if PRODUCT_DIMENSIONS & set(filters):
        return [
            "Cash received and outstanding are per order, so category and product filters do not "
            "apply to them."
        ]
    return []


# Whether a time bucket is cut short by the period (time_series' `partial`): pages, PDF and email
# draw such a bucket dashed and labelled "to date".
PARTIAL = Column("partial", "Partial", "text")
# The bucket column of a time_series() table by its grain.
BUCKET_COLUMNS = {"day": col.DAY, "week": col.WEEK, "month": col.MONTH}
# The figures of a breakdown() row, after its key columns.
REVENUE_COLUMNS = (col.REVENUE, col.GROSS_PROFIT, col.MARGIN_PCT, col.ORDERS, col.SHARE_OF_REVENUE)
# The columns of a cash_by_method() table.
CASH_BY_METHOD_COLUMNS = (col.METHOD, col.CASH_RECEIVED, col.PAYMENTS, col.SHARE)


def series_columns(bucket: Column) -> list[Column]:
    """Columns of a time_series() table whose first column is `bucket` (day, week or month)."""
    return [bucket, col.REVENUE, col.GROSS_PROFIT, col.MARGIN_PCT, col.ORDERS, PARTIAL]


def revenue_table(name: str, title: str, keys: Sequence[Column], frame: pd.DataFrame) -> Table:
    """A breakdown() table: its key columns, then REVENUE_COLUMNS."""
    return Table(name, title, [*keys, *REVENUE_COLUMNS], frame)


def cash_by_method_table(
    name: str, ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]]
) -> Table:
    """The "Cash received by payment method" table of cash_by_method()."""
    frame = cash_by_method(ctx, period, filters)
    return Table(name, "Cash received by payment method", list(CASH_BY_METHOD_COLUMNS), frame)


# --- kpi_dashboard -----------------------------------------------------------------------------

# The revenue_totals() figures the dashboard compares with the previous period and a year before.
COMPARED_FIGURES: tuple[tuple[str, str, ColumnKind], ...] = (
    ("revenue", "Revenue", "money"),
    ("gross_profit", "Gross profit", "money"),
    ("orders", "Orders", "int"),
    ("avg_order_value", "Average order value", "money"),
)


def build_kpi_dashboard(ctx: ReportContext, params: ReportParams) -> Report:
    """Headline KPIs for the period with comparisons (previous period, a year before, the custom
    dates of compare=custom; YTD)."""
    period = ctx.period
    filters = params.filters
    compared = compared_periods(period, params)
    totals = revenue_totals(ctx, {"cur": period, **compared, "ytd": period.year_to_date()}, filters)
    cash = {key: cash_received(ctx, p, filters) for key, p in {"cur": period, **compared}.items()}
    cur = totals["cur"]
    subs = submission_frame(ctx, *cycles_in(period), filters)
    kpis = [
        Kpi("revenue", "Revenue", cur["revenue"], "money"),
        Kpi("gross_profit", "Gross profit", cur["gross_profit"], "money"),
        Kpi("margin_pct", "Margin", cur["margin_pct"], "pct"),
        Kpi("orders", "Orders", cur["orders"], "int"),
        Kpi("avg_order_value", "Average order value", cur["avg_order_value"], "money"),
        Kpi("cash_received", "Cash received", cash["cur"], "money"),
        Kpi("outstanding", "Outstanding", total_outstanding(ctx, period.end, filters), "money"),
        Kpi("forecast_submission_rate", "Forecast submission rate", submission_rate(subs), "pct"),
    ]
    for key, label, kind in COMPARED_FIGURES:
        kpis += comparison_kpis(key, label, kind, cur[key], {k: totals[k][key] for k in compared}, compared)
    kpis += comparison_kpis("cash_received", "Cash received", "money", cash["cur"], cash, compared)
    margins = {k: totals[k]["margin_pct"] for k in compared}
    kpis += comparison_kpis(
        "margin_pct", "Margin", "pct", cur["margin_pct"], margins, compared, with_change=False
    )
    ytd = totals["ytd"]
    kpis.append(Kpi("revenue_ytd", "Revenue, year to date", ytd["revenue"], "money"))
    kpis.append(Kpi("gross_profit_ytd", "Gross profit, year to date", ytd["gross_profit"], "money"))
    kpis.append(Kpi("orders_ytd", "Orders, year to date", ytd["orders"], "int"))

    trend_period = Period(month_start(_months_back(period.end, 11)), period.end)
    trend = time_series(ctx, trend_period, filters, "month")
    top_customers = breakdown(ctx, period, filters, ["customer_code", "customer_name"], limit=TOP_N)
    top_products = breakdown(ctx, period, filters, ["sku", "product_name", "category"], limit=TOP_N)
    by_category = breakdown(ctx, period, filters, ["category"])
    by_region = breakdown(ctx, period, filters, ["region"])
    by_type = breakdown(ctx, period, filters, ["customer_type"])
    tables = [
        Table("trend", "Revenue trend, last 12 months", series_columns(col.MONTH), trend),
        revenue_table("top_customers", "Top 10 customers", col.CUSTOMER, top_customers),
        revenue_table("top_products", "Top 10 products", [*col.PRODUCT, col.QUANTITY], top_products),
        revenue_table("by_category", "Revenue by category", [col.CATEGORY], by_category),
        revenue_table("by_region", "Revenue by region", [col.REGION], by_region),
        revenue_table("by_customer_type", "Revenue by customer type", [col.CUSTOMER_TYPE], by_type),
        cash_by_method_table("by_payment_method", ctx, period, filters),
    ]
    charts = [
        ChartSpec("trend", "Revenue trend", "line", "trend", "month", ("revenue", "gross_profit")),
        ChartSpec("by_category", "Revenue by category", "bar", "by_category", "category", ("revenue",)),
        ChartSpec("by_region", "Revenue by region", "bar", "by_region", "region", ("revenue",)),
        ChartSpec(
            "by_payment_method",
            "Cash received by method",
            "pie",
            "by_payment_method",
            "method",
            ("cash_received",),
        ),
    ]
    return make_report(
        ctx,
        "kpi_dashboard",
        "KPI dashboard",
        params,
        period,
        kpis,
        tables,
        charts,
        product_filter_note(filters),
        compared,
    )


def cash_by_method(ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Cash received per payment method in the period (credit notes and void/draft sales excluded)."""
    fsql, params = filter_sql(filters, "p", dims=PAYMENT_TABLE_DIMENSIONS)
    frame = ctx.frame(
        f"""
        SELECT p.method, SUM(p.amount_micros) AS cash_received, COUNT(*) AS payments,
               SUM(p.amount_micros) / NULLIF(SUM(SUM(p.amount_micros)) OVER (), 0) AS share_pct
        FROM payments p
        WHERE CAST(p.paid_at AS DATE) BETWEEN $start AND $end
          AND p.sale_status NOT IN ('void', 'draft') AND p.method <> 'credit_note'{fsql}
        GROUP BY p.method ORDER BY cash_received DESC, p.method
        """,
        {"start": period.start, "end": period.end, **params},
        money=("cash_received",),
    )
    frame["share_pct"] = frame["share_pct"].astype(float)
    return frame


def _months_back(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


# The dashboard's headline cards in the order Overview shows them, then its year-to-date line.
HEADLINE_CARDS = (
    "revenue",
    "gross_profit",
    "margin_pct",
    "orders",
    "avg_order_value",
    "cash_received",
    "outstanding",
    "forecast_submission_rate",
)
YTD_LINE = ("revenue_ytd", "gross_profit_ytd", "orders_ytd")

KPI_DASHBOARD = ReportDefinition(
    slug="kpi_dashboard",
    title="KPI dashboard",
    description="Revenue, gross profit, margin, orders, AOV, cash received and outstanding, with "
    "comparisons to the previous period and a year before, YTD, top customers and products.",
    build=build_kpi_dashboard,
    filters=ALL_FILTERS,
    default_period="month_to_date",
    compares=True,
    template=SystemTemplate(period="last_month", formats=("pdf", "xlsx")),
    page=Placement("overview", "Overview", ":material/dashboard:"),
)


# --- sales_summary -----------------------------------------------------------------------------

GRAINS = ("auto", "day", "week", "month")


def build_sales_summary(ctx: ReportContext, params: ReportParams) -> Report:
    """Revenue by period bucket (granularity auto: by day up to DAILY_MAX_DAYS days, else by month)
    and by every dimension, with totals."""
    period = ctx.period
    filters = params.filters
    grain = params.option("granularity", "auto")
    if grain == "auto":
        grain = trend_grain(period)
    totals = revenue_totals(ctx, {"cur": period}, filters)["cur"]
    cash = cash_received(ctx, period, filters)
    series = time_series(ctx, period, filters, grain)
    bucket = BUCKET_COLUMNS[grain]
    kpis = [
        Kpi("revenue", "Revenue", totals["revenue"], "money"),
        Kpi("gross_profit", "Gross profit", totals["gross_profit"], "money"),
        Kpi("margin_pct", "Margin", totals["margin_pct"], "pct"),
        Kpi("orders", "Orders", totals["orders"], "int"),
        Kpi("avg_order_value", "Average order value", totals["avg_order_value"], "money"),
        Kpi("cash_received", "Cash received", cash, "money"),
    ]
    series_table = Table(
        f"by_{grain}",
        f"Revenue by {grain}",
        series_columns(bucket),
        series,
    )
    tables = [series_table]
    if grain != "month":
        month_series = time_series(ctx, period, filters, "month")
        tables.append(Table("by_month", "Revenue by month", series_columns(col.MONTH), month_series))
    dims: list[tuple[str, str, Sequence[Column]]] = [
        ("by_customer", "Revenue by customer", col.CUSTOMER_DETAILS),
        ("by_product", "Revenue by product", col.PRODUCT),
        ("by_category", "Revenue by category", [col.CATEGORY]),
        ("by_region", "Revenue by region", [col.REGION]),
        ("by_storefront", "Revenue by storefront", col.STOREFRONT),
        ("by_customer_type", "Revenue by customer type", [col.CUSTOMER_TYPE]),
        ("by_sales_rep", "Revenue by sales rep", [col.SALES_REP]),
    ]
    for name, title, keys in dims:
        frame = breakdown(ctx, period, filters, [c.key for c in keys])
        shown = [*keys, col.QUANTITY] if name == "by_product" else keys
        tables.append(revenue_table(name, title, shown, frame))
    tables.append(cash_by_method_table("by_payment_method", ctx, period, filters))
    charts = [
        ChartSpec(
            "trend", f"Revenue by {grain}", "line", series_table.name, bucket.key, ("revenue", "gross_profit")
        ),
        ChartSpec("by_category", "Revenue by category", "bar", "by_category", "category", ("revenue",)),
        ChartSpec("by_region", "Revenue by region", "bar", "by_region", "region", ("revenue",)),
        ChartSpec(
            "by_storefront", "Revenue by storefront", "bar", "by_storefront", "storefront_name", ("revenue",)
        ),
    ]
    return make_report(
        ctx,
        "sales_summary",
        "Sales summary",
        params,
        period,
        kpis,
        tables,
        charts,
        product_filter_note(filters),
    )


SALES_SUMMARY = ReportDefinition(
    slug="sales_summary",
    title="Sales summary",
    description="Revenue by day, week or month and by customer, product, category, region, "
    "storefront, payment method, customer type and sales rep.",
    build=build_sales_summary,
    filters=ALL_FILTERS,
    options=(
        OptionSpec(
            "granularity",
            f"Time buckets of the trend table (auto: by day up to {DAILY_MAX_DAYS} days, else by month)",
            "auto",
            GRAINS,
        ),
    ),
    template=SystemTemplate(options={"granularity": "day"}),
    page=Placement("sales", "Sales", ":material/trending_up:"),
)
