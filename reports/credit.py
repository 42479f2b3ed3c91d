"""The credit aging report: outstanding balances by customer and age bucket, over-limit customers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analytics import columns as col
from analytics.definition import OptionSpec, Placement, ReportDefinition
from analytics.periods import Period, PeriodError, parse_date
from analytics.query import ReportContext, make_report
from analytics.report import ChartSpec, Column, Highlight, Kpi, ParamError, Report, ReportParams, Table
from core.money import from_micros
from reports.sales import outstanding_sql

CREDIT_FILTERS = ("region", "storefront", "customer_type", "sales_rep", "customer")
# (column key, label, lowest day, highest day or None): days since order_date at the as-of date.
BUCKETS: tuple[tuple[str, str, int, int | None], ...] = (
    ("bucket_0_30", "0-30", 0, 30),
    ("bucket_31_60", "31-60", 31, 60),
    ("bucket_61_90", "61-90", 61, 90),
    ("bucket_90_plus", "90+", 91, None),
)
BUCKET_KEYS = tuple(b[0] for b in BUCKETS)
CHART_TOP = 15
BALANCE_SPLITTING = frozenset({"storefront", "sales_rep"})


def as_of_date(params: ReportParams, period: Period) -> dt.date:
    """The balance date: option `as_of` (YYYY-MM-DD) when given, else the period's last day."""
    raw = params.option("as_of", "")
    if not raw:
        return period.end
    try:
        return parse_date(raw, "as_of date")
    except PeriodError as exc:
        raise ParamError(str(exc)) from exc


def _bucket_case(days: str) -> str:
    """SQL CASE naming the aging bucket of an age in days (fixed constants, no user input)."""
    parts = [f"WHEN {days} <= {hi} THEN '{label}'" for _, label, _, hi in BUCKETS if hi is not None]
    return f"CASE {' '.join(parts)} ELSE '{BUCKETS[-1][1]}' END"


def open_orders_sql(filters: Mapping[str, Sequence[str]]) -> tuple[str, dict[str, Any]]:
    """Completed sales with outstanding > 0 at $asof (outstanding_sql), plus days_old and bucket."""
    sql, params = outstanding_sql(filters)
    return (
        f"""
        SELECT o.*, date_diff('day', o.order_date, CAST($asof AS DATE)) AS days_old,
               {_bucket_case("date_diff('day', o.order_date, CAST($asof AS DATE))")} AS bucket
        FROM ({sql}) o
        WHERE o.outstanding_micros > 0
        """,
        params,
    )


def _bucket_sums(alias: str = "") -> str:
    dot = f"{alias}." if alias else ""
    return ", ".join(
        f"COALESCE(SUM({dot}outstanding_micros) FILTER (WHERE {dot}bucket = '{label}'), 0) AS {key}"
        for key, label, _, _ in BUCKETS
    )


def aging_by_customer(
    ctx: ReportContext, asof: dt.date, filters: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """Outstanding per customer and bucket at `asof`, with credit limit and over-limit flags.

    One row per customer with outstanding > 0, largest total first (ties by code). Over limit when
    the credit limit is > 0 and the total exceeds it; over_limit_amount = total - limit, else 0.
    """
    sql, params = open_orders_sql(filters)
    frame = ctx.frame(
        f"""
        WITH o AS ({sql}), agg AS (
            SELECT o.customer_id, any_value(o.customer_code) AS customer_code,
                   any_value(o.customer_name) AS customer_name, {_bucket_sums("o")},
                   SUM(o.outstanding_micros) AS total, COUNT(*) AS open_orders,
                   MAX(o.days_old) AS oldest_days
            FROM o GROUP BY o.customer_id
        )
        SELECT a.*, COALESCE(c.credit_limit_micros, 0) AS credit_limit,
               COALESCE(c.credit_limit_micros, 0) > 0 AND a.total > c.credit_limit_micros AS over_limit,
               CASE WHEN COALESCE(c.credit_limit_micros, 0) > 0 AND a.total > c.credit_limit_micros
                    THEN a.total - c.credit_limit_micros ELSE 0 END AS over_limit_amount
        FROM agg a LEFT JOIN customers c ON c.customer_id = a.customer_id
        ORDER BY a.total DESC, a.customer_code
        """,
        {"asof": asof, **params},
        money=(*BUCKET_KEYS, "total", "credit_limit", "over_limit_amount"),
    )
    frame["over_limit"] = frame["over_limit"].astype(bool)
    return frame.drop(columns=["customer_id"])


def aging_by_bucket(ctx: ReportContext, asof: dt.date, filters: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Outstanding, orders and customers per bucket; all four buckets, or no rows when nothing is owed."""
    sql, params = open_orders_sql(filters)
    buckets = ", ".join(f"({i}, '{label}')" for i, (_, label, _, _) in enumerate(BUCKETS))
    frame = ctx.frame(
        f"""
        WITH o AS ({sql}), b(pos, bucket) AS (VALUES {buckets})
        SELECT b.bucket, COUNT(o.sale_id) AS orders, COUNT(DISTINCT o.customer_id) AS customers,
               COALESCE(SUM(o.outstanding_micros), 0) AS outstanding,
               COALESCE(SUM(o.outstanding_micros), 0) / NULLIF(SUM(SUM(o.outstanding_micros)) OVER (), 0)
                   AS share_pct
        FROM b LEFT JOIN o ON o.bucket = b.bucket
        GROUP BY b.pos, b.bucket
        HAVING EXISTS (SELECT 1 FROM o)
        ORDER BY b.pos
        """,
        {"asof": asof, **params},
        money=("outstanding",),
    )
    frame["share_pct"] = frame["share_pct"].astype(float)
    return frame


def open_orders(ctx: ReportContext, asof: dt.date, filters: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Each completed sale with outstanding > 0 at `asof`, oldest first (ties by order id)."""
    sql, params = open_orders_sql(filters)
    return ctx.frame(
        f"""
        SELECT order_id, order_date, customer_code, customer_name, storefront_code, sales_rep, days_old,
               bucket, net_micros AS net_total, paid_micros AS paid, outstanding_micros AS outstanding
        FROM ({sql})
        ORDER BY days_old DESC, order_id
        """,
        {"asof": asof, **params},
        money=("net_total", "paid", "outstanding"),
    )


def aging_totals(ctx: ReportContext, asof: dt.date, filters: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """Total outstanding, per-bucket totals (exact Decimals), open orders, customers owing, and the
    outstanding-weighted average age in days (None when nothing is owed)."""
    sql, params = open_orders_sql(filters)
    row = ctx.one(
        f"""
        SELECT COALESCE(SUM(outstanding_micros), 0), {_bucket_sums()}, COUNT(*),
               COUNT(DISTINCT customer_id),
               SUM(CAST(days_old AS HUGEINT) * outstanding_micros) / NULLIF(SUM(outstanding_micros), 0)
        FROM ({sql})
        """,
        {"asof": asof, **params},
    )
    out: dict[str, Any] = {"outstanding_total": from_micros(row[0])}
    for i, key in enumerate(BUCKET_KEYS):
        out[key] = from_micros(row[1 + i])
    n = len(BUCKET_KEYS)
    out["open_orders"] = int(row[1 + n])
    out["customers"] = int(row[2 + n])
    out["avg_days_outstanding"] = None if row[3 + n] is None else float(row[3 + n])
    return out


BUCKET_COLUMNS = [Column(key, f"{label} days", "money") for key, label, _, _ in BUCKETS]
OVER_LIMIT = Highlight("over_limit", "eq", True, "Outstanding above the customer's credit limit")


def build_credit_aging(ctx: ReportContext, params: ReportParams) -> Report:
    """Outstanding balances of completed sales at the as-of date (SPEC §2), aged by days since the
    order date into 0-30, 31-60, 61-90 and 90+ (91 and more) days; over-limit customers flagged."""
    period = ctx.period
    asof = as_of_date(params, period)
    filters = params.filters
    totals = aging_totals(ctx, asof, filters)
    customers = aging_by_customer(ctx, asof, filters)
    over = customers[customers["over_limit"]].sort_values(
        ["over_limit_amount", "customer_code"], ascending=[False, True], kind="stable"
    )
    over_amount = sum(over["over_limit_amount"], from_micros(0))
    kpis = [
        Kpi("outstanding_total", "Outstanding", totals["outstanding_total"], "money"),
        *(Kpi(key, f"{label} days", totals[key], "money") for key, label, _, _ in BUCKETS),
        Kpi("over_limit_customers", "Customers over credit limit", len(over), "int"),
        Kpi("over_limit_amount", "Amount over credit limits", over_amount, "money"),
        Kpi("avg_days_outstanding", "Average days outstanding (weighted)", totals["avg_days_outstanding"]),
        Kpi("open_orders", "Open orders", totals["open_orders"], "int"),
        Kpi("customers_owing", "Customers owing", totals["customers"], "int"),
    ]
    tables = [
        Table(
            "by_customer",
            "Outstanding by customer and age",
            [
                *col.CUSTOMER,
                *BUCKET_COLUMNS,
                col.TOTAL_OUTSTANDING,
                col.CREDIT_LIMIT,
                Column("over_limit", "Over limit"),
                col.OVER_LIMIT_BY,
                Column("open_orders", "Open orders", "int"),
                Column("oldest_days", "Oldest (days)", "int"),
            ],
            customers,
            [OVER_LIMIT],
        ),
        Table(
            "by_bucket",
            "Outstanding by age",
            [Column("bucket", "Days since order"), col.ORDERS, col.CUSTOMERS, col.OUTSTANDING, col.SHARE],
            aging_by_bucket(ctx, asof, filters),
        ),
        Table(
            "over_limit",
            "Customers over their credit limit",
            [*col.CUSTOMER, col.CREDIT_LIMIT, col.TOTAL_OUTSTANDING, col.OVER_LIMIT_BY, BUCKET_COLUMNS[-1]],
            over.reset_index(drop=True),
        ),
        Table(
            "open_orders",
            "Open orders",
            [
                col.ORDER_ID,
                col.ORDER_DATE,
                *col.CUSTOMER,
                col.relabel(col.STOREFRONT_CODE, "Storefront"),
                col.SALES_REP,
                Column("days_old", "Days old", "int"),
                Column("bucket", "Age bucket"),
                Column("net_total", "Order total", "money"),
                Column("paid", "Paid", "money"),
                col.OUTSTANDING,
            ],
            open_orders(ctx, asof, filters),
        ),
        Table(
            "top_customers",
            f"Top {CHART_TOP} customers by outstanding",
            [*col.CUSTOMER, *BUCKET_COLUMNS, col.TOTAL_OUTSTANDING],
            customers.head(CHART_TOP)[["customer_code", "customer_name", *BUCKET_KEYS, "total"]].copy(),
        ),
    ]
    charts = [
        ChartSpec(
            "by_customer",
            f"Outstanding by customer and age (top {CHART_TOP})",
            "stacked_bar",
            "top_customers",
            "customer_name",
            BUCKET_KEYS,
        ),
        ChartSpec("by_bucket", "Outstanding by age", "bar", "by_bucket", "bucket", ("outstanding",)),
    ]
    notes = [
        f"Balances as of {asof.isoformat()}: order total minus every payment (credit notes included) "
        "dated up to that day, never below 0; completed orders only."
    ]
    if BALANCE_SPLITTING & set(filters):
        notes.append(
            "With a storefront or sales rep filter, balances and credit-limit checks cover only the "
            "selected orders of each customer."
        )
    return make_report(ctx, "credit_aging", "Credit aging", params, period, kpis, tables, charts, notes)


CREDIT_AGING = ReportDefinition(
    slug="credit_aging",
    title="Credit aging",
    description="Outstanding balances by customer and age (0-30, 31-60, 61-90, 90+ days), open orders "
    "and customers over their credit limit, as of the period's last day.",
    build=build_credit_aging,
    filters=CREDIT_FILTERS,
    options=(OptionSpec("as_of", "Balance date YYYY-MM-DD (default: the period's last day)", ""),),
    default_period="month_to_date",
    page=Placement("payments"),
)
