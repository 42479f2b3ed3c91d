"""Forecast reports: forecast vs actual, forecast accuracy and submission status (SPEC section 2).

Grain: one row per forecast cycle (YYYY-MM) x customer x product that has a forecast. F is the
quantity of the latest submission (max submitted_at) of that key, and its sales_rep is the rep
on that latest row; A is the completed quantity sold to that customer of that product in the
cycle's calendar month, whoever sold it. A period selects every cycle whose month overlaps it,
and those cycles' actuals cover their whole month. Filters apply to the forecast row (latest
first, then filter); completed sales of a key without any forecast count as "unforecast".
Quantities are summed as exact DECIMAL(38, 3) and reported as floats.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd

from analytics import columns as col
from analytics.definition import Placement, ReportDefinition
from analytics.periods import Period, month_end
from analytics.query import ReportContext, filter_sql, make_report
from analytics.report import ChartSpec, Column, Highlight, Kpi, Report, ReportParams, Table
from core.money import from_micros
from reports.submissions import FORECAST_DIMENSIONS, cycle_params, cycles_in, submission_sql

FORECAST_FILTERS = ("region", "category", "customer_type", "sales_rep", "customer", "product")
# |variance %| above this is an exception (exclusive: exactly 20 % is not).
EXCEPTION_PCT = Decimal("0.2")

EXCEPTION_HIGHLIGHT = Highlight("variance_pct", "abs_gt", float(EXCEPTION_PCT), "Variance over 20 %")


# --- shared building blocks (also usable by other report modules) ------------------------------


def forecast_rows_sql(filters: Mapping[str, Sequence[str]]) -> tuple[str, dict[str, Any]]:
    """Per forecast key in the cycles of cycle_params(): F (f_qty) and A (a_qty) as DECIMAL.

    Columns: cycle, sales_rep, customer_code, customer_name, sku, product_name, category,
    f_qty, a_qty, exception (|A - F| > 20 % of |F|, so F = 0 with A <> 0 is an exception).
    Bind with cycle_params(first, last) and the returned parameters.
    """
    fsql, params = filter_sql(filters, "f", dims=FORECAST_DIMENSIONS, prefix="fc")
    sql = f"""
        WITH latest AS (
            SELECT * FROM forecasts
            WHERE cycle BETWEEN strftime($first_cycle_start, '%Y-%m') AND strftime($last_cycle_start, '%Y-%m')
            QUALIFY row_number() OVER (
                PARTITION BY cycle, customer_id, product_id ORDER BY submitted_at DESC, forecast_id DESC
            ) = 1
        ),
        actuals AS (
            SELECT strftime(l.order_date, '%Y-%m') AS cycle, l.customer_id, l.product_id,
                   SUM(CAST(l.quantity AS DECIMAL(18, 3))) AS a_qty
            FROM lines l
            WHERE l.status = 'completed'
              AND l.order_date >= $first_cycle_start AND l.order_date < $last_cycle_start + INTERVAL 1 MONTH
            GROUP BY 1, 2, 3
        )
        SELECT f.cycle, f.sales_rep, f.customer_code, f.customer_name, f.sku, f.product_name, f.category,
               CAST(CAST(f.quantity AS DECIMAL(18, 3)) AS DECIMAL(38, 3)) AS f_qty,
               COALESCE(a.a_qty, CAST(0 AS DECIMAL(38, 3))) AS a_qty,
               ABS(COALESCE(a.a_qty, 0) - CAST(f.quantity AS DECIMAL(18, 3)))
                 > $exception_pct * ABS(CAST(f.quantity AS DECIMAL(18, 3))) AS exception
        FROM latest f
        LEFT JOIN actuals a
          ON a.cycle = f.cycle AND a.customer_id = f.customer_id AND a.product_id = f.product_id
        WHERE TRUE{fsql}
    """
    return sql, {**params, "exception_pct": EXCEPTION_PCT}


# Error metrics over forecast rows (f_qty, a_qty): SPEC section 2. Ratios are NULL when their
# denominator is 0 (no forecast quantity, no actual quantity, or no row with A > 0 for MAPE).
METRICS_SQL = """
    CAST(COALESCE(SUM(f_qty), 0) AS DOUBLE) AS forecast_qty,
    CAST(COALESCE(SUM(a_qty), 0) AS DOUBLE) AS actual_qty,
    CAST(COALESCE(SUM(a_qty) - SUM(f_qty), 0) AS DOUBLE) AS variance_qty,
    (SUM(a_qty) - SUM(f_qty)) / NULLIF(SUM(f_qty), 0) AS variance_pct,
    AVG(CAST(ABS(a_qty - f_qty) AS DOUBLE)) AS mad,
    SQRT(AVG(POWER(CAST(a_qty - f_qty AS DOUBLE), 2))) AS rmse,
    AVG(ABS(a_qty - f_qty) / a_qty) FILTER (WHERE a_qty > 0) AS mape,
    COUNT(*) FILTER (WHERE NOT a_qty > 0) AS mape_excluded_rows,
    SUM(ABS(a_qty - f_qty)) / NULLIF(SUM(a_qty), 0) AS wape,
    CASE WHEN SUM(a_qty) <> 0  -- DuckDB's GREATEST skips NULLs: guard it
         THEN GREATEST(0.0, (SUM(a_qty) - SUM(ABS(a_qty - f_qty))) / SUM(a_qty)) END AS accuracy,
    (SUM(f_qty) - SUM(a_qty)) / NULLIF(SUM(a_qty), 0) AS bias,
    COUNT(*) AS "rows",
    COUNT(*) FILTER (WHERE exception) AS exceptions,
    COUNT(*) FILTER (WHERE f_qty > a_qty) AS over_forecast,
    COUNT(*) FILTER (WHERE f_qty < a_qty) AS under_forecast,
    COUNT(*) FILTER (WHERE f_qty = a_qty) AS exact_forecast
"""


def forecast_rows_table(ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]]) -> str:
    """Name of a temp table holding forecast_rows_sql() for the period's cycles and the filters.

    Built once per report connection and (cycles, filters), so a report's many aggregates scan the
    sales lines once; the name is a digest of its inputs, never user text.
    """
    first, last = cycles_in(period)
    key = repr((first, last, sorted((k, tuple(v)) for k, v in filters.items())))
    name = "forecast_rows_" + hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:16]
    sql, params = forecast_rows_sql(filters)
    ctx.db.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {name} AS {sql}", {**cycle_params(first, last), **params}
    )
    return name


def forecast_totals(
    ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The METRICS_SQL figures over every forecast row of the period's cycles (None = undefined)."""
    cur = ctx.db.execute(f"SELECT {METRICS_SQL} FROM {forecast_rows_table(ctx, period, filters)}")
    names = [d[0] for d in cur.description or []]
    row = cur.fetchone()
    assert row is not None, "aggregate query returned no row"
    return dict(zip(names, row, strict=True))


def forecast_metrics(
    ctx: ReportContext,
    period: Period,
    filters: Mapping[str, Sequence[str]],
    keys: Sequence[str],
    *,
    order: str = "",
) -> pd.DataFrame:
    """The METRICS_SQL figures per group of `keys` (forecast row columns), ordered by `order`, keys."""
    group = ", ".join(keys)
    table = forecast_rows_table(ctx, period, filters)
    return ctx.frame(f"SELECT {group}, {METRICS_SQL} FROM {table} GROUP BY {group} ORDER BY {order}{group}")


def variance_rows(
    ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]], *, exceptions_only: bool = False
) -> pd.DataFrame:
    """One row per forecast key with variance, variance % (None when F = 0), direction, exception.

    All rows sort by cycle, rep, customer, SKU; exceptions sort by |variance %| descending with
    F = 0 rows (unbounded variance) first, ties by |variance|, cycle, customer, SKU.
    """
    table = forecast_rows_table(ctx, period, filters)
    if exceptions_only:
        where = "WHERE exception"
        order = "variance_pct IS NOT NULL, ABS(variance_pct) DESC, ABS(variance_qty) DESC, cycle, "
        order += "customer_code, sku"
    else:
        where = ""
        order = "cycle, sales_rep, customer_code, sku"
    return ctx.frame(
        f"""
        SELECT cycle, sales_rep, customer_code, customer_name, sku, product_name, category,
               CAST(f_qty AS DOUBLE) AS forecast_qty, CAST(a_qty AS DOUBLE) AS actual_qty,
               CAST(a_qty - f_qty AS DOUBLE) AS variance_qty,
               CASE WHEN f_qty <> 0 THEN (a_qty - f_qty) / f_qty END AS variance_pct,
               CASE WHEN f_qty > a_qty THEN 'over' WHEN f_qty < a_qty THEN 'under' ELSE 'exact' END
                 AS direction,
               exception
        FROM {table} {where}
        ORDER BY {order}
        """
    )


def unforecast_totals(
    ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]]
) -> tuple[float, Decimal]:
    """Quantity and revenue of completed lines in the period's cycles whose (cycle, customer,
    product) has no forecast at all; filters apply to the line (its sale's rep for sales_rep)."""
    fsql, params = filter_sql(filters, "l", dims=FORECAST_DIMENSIONS, prefix="fc")
    row = ctx.one(
        f"""
        SELECT CAST(COALESCE(SUM(CAST(l.quantity AS DECIMAL(18, 3))), 0) AS DOUBLE),
               COALESCE(SUM(l.net_micros), 0)
        FROM lines l
        WHERE l.status = 'completed'
          AND l.order_date >= $first_cycle_start AND l.order_date < $last_cycle_start + INTERVAL 1 MONTH{fsql}
          AND NOT EXISTS (
              SELECT 1 FROM forecasts f
              WHERE f.cycle = strftime(l.order_date, '%Y-%m')
                AND f.customer_id = l.customer_id AND f.product_id = l.product_id
          )
        """,
        {**cycle_params(*cycles_in(period)), **params},
    )
    return float(row[0]), from_micros(row[1])


def cycle_notes(period: Period) -> list[str]:
    """A note when the period cuts a month: forecast cycles always cover whole months."""
    first, last = cycles_in(period)
    if period.start.day == 1 and period.end == month_end(period.end):
        return []
    span = first if first == last else f"{first} to {last}"
    return [
        f"Forecasts are monthly: the period covers cycle(s) {span}, and their actuals are whole "
        "calendar months."
    ]


VARIANCE_COLUMNS = [
    col.CYCLE,
    col.SALES_REP,
    *col.CUSTOMER,
    *col.PRODUCT,
    col.FORECAST_QTY,
    col.ACTUAL_QTY,
    col.VARIANCE_QTY,
    col.VARIANCE_PCT,
    Column("direction", "Direction"),
    Column("exception", "Exception"),
]
ROLLUP_KEYS: list[tuple[str, str, Sequence[Column], str]] = [
    ("by_rep", "by sales rep", [col.SALES_REP], ""),
    ("by_customer", "by customer", col.CUSTOMER, "actual_qty DESC, "),
    ("by_product", "by product", col.PRODUCT, "actual_qty DESC, "),
    ("by_month", "by month", [col.MONTH], ""),
]
# The METRICS_SQL figures as table columns, by key.
COLUMN_SPECS = {
    c.key: c
    for c in (
        col.FORECAST_QTY,
        col.ACTUAL_QTY,
        col.VARIANCE_QTY,
        col.VARIANCE_PCT,
        Column("mad", "MAD", "number"),
        Column("rmse", "RMSE", "number"),
        Column("mape", "MAPE", "pct"),
        Column("mape_excluded_rows", "Rows left out of MAPE (A = 0)", "int"),
        Column("wape", "WAPE", "pct"),
        Column("accuracy", "Accuracy", "pct"),
        Column("bias", "Bias", "pct"),
        Column("rows", "Rows", "int"),
        Column("exceptions", "Exceptions", "int"),
    )
}


def _rollups(
    ctx: ReportContext,
    period: Period,
    filters: Mapping[str, Sequence[str]],
    what: str,
    metrics: Sequence[str],
) -> list[Table]:
    """The by_rep, by_customer, by_product and by_month tables with the `metrics` columns."""
    tables = []
    for name, title, keys, order in ROLLUP_KEYS:
        group = ["cycle"] if name == "by_month" else [c.key for c in keys]
        frame = forecast_metrics(ctx, period, filters, group, order=order)
        if name == "by_month":
            frame = frame.rename(columns={"cycle": "month"})
        columns = [*keys, *(COLUMN_SPECS[m] for m in metrics)]
        highlights = [EXCEPTION_HIGHLIGHT] if "variance_pct" in metrics else []
        tables.append(Table(name, f"{what} {title}", columns, frame, highlights))
    return tables


# --- forecast_vs_actual ------------------------------------------------------------------------


def build_forecast_vs_actual(ctx: ReportContext, params: ReportParams) -> Report:
    """Forecast vs actual per cycle x customer x product, exceptions, rollups and the monthly trend."""
    period = ctx.period
    filters = params.filters
    totals = forecast_totals(ctx, period, filters)
    unforecast_qty, unforecast_revenue = unforecast_totals(ctx, period, filters)
    kpis = [
        Kpi("forecast_qty", "Forecast quantity", totals["forecast_qty"], "quantity"),
        Kpi("actual_qty", "Actual quantity", totals["actual_qty"], "quantity"),
        Kpi("variance_qty", "Variance (actual - forecast)", totals["variance_qty"], "quantity"),
        Kpi("variance_pct", "Variance %", totals["variance_pct"], "pct"),
        Kpi("exceptions", "Exceptions (|variance| > 20 %)", totals["exceptions"], "int"),
        Kpi("over_forecast", "Over-forecast rows", totals["over_forecast"], "int"),
        Kpi("under_forecast", "Under-forecast rows", totals["under_forecast"], "int"),
        Kpi("exact_forecast", "Exact rows", totals["exact_forecast"], "int"),
        Kpi("rows", "Forecast rows", totals["rows"], "int"),
        Kpi("accuracy", "Accuracy (1 - WAPE)", totals["accuracy"], "pct"),
        Kpi("unforecast_qty", "Unforecast quantity sold", unforecast_qty, "quantity"),
        Kpi("unforecast_revenue", "Unforecast revenue", unforecast_revenue, "money"),
    ]
    metrics = [
        "forecast_qty",
        "actual_qty",
        "variance_qty",
        "variance_pct",
        "mad",
        "wape",
        "accuracy",
        "bias",
        "rows",
        "exceptions",
    ]
    tables = [
        Table(
            "variance",
            "Forecast vs actual per cycle, customer and product",
            VARIANCE_COLUMNS,
            variance_rows(ctx, period, filters),
            [EXCEPTION_HIGHLIGHT],
        ),
        Table(
            "exceptions",
            "Exceptions: |variance| over 20 %",
            VARIANCE_COLUMNS,
            variance_rows(ctx, period, filters, exceptions_only=True),
            [EXCEPTION_HIGHLIGHT],
        ),
        *_rollups(ctx, period, filters, "Forecast vs actual", metrics),
    ]
    charts = [
        ChartSpec(
            "variance_trend",
            "Forecast vs actual by month",
            "bar",
            "by_month",
            "month",
            ("forecast_qty", "actual_qty"),
            "quantity",
        ),
        ChartSpec(
            "accuracy_by_rep", "Accuracy by sales rep", "bar", "by_rep", "sales_rep", ("accuracy",), "pct"
        ),
    ]
    return make_report(
        ctx,
        "forecast_vs_actual",
        "Forecast vs actual",
        params,
        period,
        kpis,
        tables,
        charts,
        cycle_notes(period),
    )


FORECAST_VS_ACTUAL = ReportDefinition(
    slug="forecast_vs_actual",
    title="Forecast vs actual",
    description="Forecast and actual quantity per cycle, customer and product: variance, exceptions "
    "over 20 %, over/under-forecast counts, accuracy by rep, customer, product and month, and "
    "sales nobody forecast.",
    build=build_forecast_vs_actual,
    filters=FORECAST_FILTERS,
    page=Placement("forecast", "Forecast", ":material/query_stats:"),
)


# --- forecast_accuracy -------------------------------------------------------------------------


def build_forecast_accuracy(ctx: ReportContext, params: ReportParams) -> Report:
    """MAD, RMSE, MAPE, WAPE, accuracy and bias overall and by rep, customer, product and month."""
    period = ctx.period
    filters = params.filters
    totals = forecast_totals(ctx, period, filters)
    unforecast_qty, unforecast_revenue = unforecast_totals(ctx, period, filters)
    kpis = [
        Kpi("mad", "MAD (mean absolute deviation)", totals["mad"], "number"),
        Kpi("rmse", "RMSE", totals["rmse"], "number"),
        Kpi("mape", "MAPE (rows with actual > 0)", totals["mape"], "pct"),
        Kpi("mape_excluded_rows", "Rows left out of MAPE (actual = 0)", totals["mape_excluded_rows"], "int"),
        Kpi("wape", "WAPE", totals["wape"], "pct"),
        Kpi("accuracy", "Accuracy (1 - WAPE)", totals["accuracy"], "pct"),
        Kpi("bias", "Bias ((F - A) / A)", totals["bias"], "pct"),
        Kpi("rows", "Forecast rows", totals["rows"], "int"),
        Kpi("forecast_qty", "Forecast quantity", totals["forecast_qty"], "quantity"),
        Kpi("actual_qty", "Actual quantity", totals["actual_qty"], "quantity"),
        Kpi("unforecast_qty", "Unforecast quantity sold", unforecast_qty, "quantity"),
        Kpi("unforecast_revenue", "Unforecast revenue", unforecast_revenue, "money"),
    ]
    metrics = [
        "mad",
        "rmse",
        "mape",
        "mape_excluded_rows",
        "wape",
        "accuracy",
        "bias",
        "rows",
        "forecast_qty",
        "actual_qty",
    ]
    tables = _rollups(ctx, period, filters, "Forecast accuracy", metrics)
    charts = [
        ChartSpec(
            "accuracy_trend",
            "Accuracy and WAPE by month",
            "line",
            "by_month",
            "month",
            ("accuracy", "wape"),
            "pct",
        ),
        ChartSpec(
            "error_by_rep",
            "MAPE and WAPE by sales rep",
            "bar",
            "by_rep",
            "sales_rep",
            ("mape", "wape"),
            "pct",
        ),
        ChartSpec("bias_by_month", "Bias by month", "bar", "by_month", "month", ("bias",), "pct"),
    ]
    return make_report(
        ctx,
        "forecast_accuracy",
        "Forecast accuracy",
        params,
        period,
        kpis,
        tables,
        charts,
        cycle_notes(period),
    )


FORECAST_ACCURACY = ReportDefinition(
    slug="forecast_accuracy",
    title="Forecast accuracy",
    description="MAD, RMSE, MAPE (rows with actual > 0), WAPE, accuracy and bias of the latest "
    "forecasts, overall and by sales rep, customer, product and month.",
    build=build_forecast_accuracy,
    filters=FORECAST_FILTERS,
    page=Placement("forecast"),
)


# --- submission_status -------------------------------------------------------------------------

# Counts are over due forecasts (expected = on_time + late + missing); submissions nobody owed
# (the rep forecast no product for that customer in the three cycles before) count as not_due.
SUBMISSION_COUNTS_SQL = """
    COUNT(*) FILTER (WHERE expected) AS expected,
    COUNT(*) FILTER (WHERE expected AND submitted) AS submitted,
    COUNT(*) FILTER (WHERE expected AND on_time) AS on_time,
    COUNT(*) FILTER (WHERE expected AND late) AS late,
    COUNT(*) FILTER (WHERE missing) AS missing,
    COUNT(*) FILTER (WHERE NOT expected) AS not_due,
    COUNT(*) FILTER (WHERE expected AND submitted) / NULLIF(COUNT(*) FILTER (WHERE expected), 0)
      AS submission_rate,
    COUNT(*) FILTER (WHERE expected AND on_time) / NULLIF(COUNT(*) FILTER (WHERE expected), 0)
      AS on_time_rate
"""
MISSING_HIGHLIGHT = Highlight("missing", "gt", 0, "Forecasts still missing")
SUBMISSION_COLUMNS = [
    Column("expected", "Due", "int"),
    Column("submitted", "Submitted", "int"),
    Column("on_time", "On time", "int"),
    Column("late", "Late", "int"),
    Column("missing", "Missing", "int"),
    Column("not_due", "Submitted, not due", "int"),
    Column("submission_rate", "Submission rate", "pct"),
    Column("on_time_rate", "On-time rate", "pct"),
]


def build_submission_status(ctx: ReportContext, params: ReportParams) -> Report:
    """Per cycle and rep: forecasts due, submitted, on time, late and missing (reports.submissions)."""
    period = ctx.period
    sql, sql_params = submission_sql(params.filters)
    # One evaluation of the submission rule; every table below reads this temp table.
    ctx.db.execute(
        f"CREATE TEMP TABLE submission_rows AS {sql}", {**cycle_params(*cycles_in(period)), **sql_params}
    )
    cur = ctx.db.execute(f"SELECT {SUBMISSION_COUNTS_SQL} FROM submission_rows")
    names = [d[0] for d in cur.description or []]
    row = cur.fetchone()
    assert row is not None, "aggregate query returned no row"
    totals = dict(zip(names, row, strict=True))
    kpis = [
        Kpi("expected", "Forecasts due", totals["expected"], "int"),
        Kpi("submitted", "Submitted", totals["submitted"], "int"),
        Kpi("on_time", "On time", totals["on_time"], "int"),
        Kpi("late", "Late", totals["late"], "int"),
        Kpi("missing", "Missing", totals["missing"], "int"),
        Kpi("not_due", "Submitted, not due", totals["not_due"], "int"),
        Kpi("submission_rate", "Submission rate", totals["submission_rate"], "pct"),
        Kpi("on_time_rate", "On-time rate", totals["on_time_rate"], "pct"),
    ]

    def grouped(keys: str) -> pd.DataFrame:
        return ctx.frame(
            f"SELECT {keys}, {SUBMISSION_COUNTS_SQL} FROM submission_rows GROUP BY {keys} ORDER BY {keys}"
        )

    who = [col.SALES_REP, *col.CUSTOMER]
    tables = [
        Table(
            "by_cycle_rep",
            "Submissions by cycle and sales rep",
            [col.CYCLE, col.SALES_REP, *SUBMISSION_COLUMNS],
            grouped("cycle, sales_rep"),
            [MISSING_HIGHLIGHT],
        ),
        Table(
            "by_cycle",
            "Submissions by cycle",
            [col.CYCLE, *SUBMISSION_COLUMNS],
            grouped("cycle"),
            [MISSING_HIGHLIGHT],
        ),
        Table(
            "by_rep",
            "Submissions by sales rep",
            [col.SALES_REP, *SUBMISSION_COLUMNS],
            grouped("sales_rep"),
            [MISSING_HIGHLIGHT],
        ),
        Table(
            "missing",
            "Missing forecasts",
            [col.CYCLE, *who],
            ctx.frame(
                "SELECT cycle, sales_rep, customer_code, customer_name FROM submission_rows WHERE missing "
                "ORDER BY cycle, sales_rep, customer_code"
            ),
        ),
        Table(
            "late",
            "Late forecasts",
            [
                col.CYCLE,
                *who,
                Column("first_submitted_at", "First submitted", "datetime"),
                Column("days_late", "Days late", "int"),
            ],
            ctx.frame(
                "SELECT cycle, sales_rep, customer_code, customer_name, first_submitted_at, days_late "
                "FROM submission_rows WHERE expected AND late "
                "ORDER BY cycle, days_late DESC, sales_rep, customer_code"
            ),
        ),
    ]
    charts = [
        ChartSpec(
            "status_by_cycle",
            "Forecast submissions by cycle",
            "stacked_bar",
            "by_cycle",
            "cycle",
            ("on_time", "late", "missing"),
            "int",
        ),
        ChartSpec(
            "rates_by_rep",
            "Submission and on-time rate by sales rep",
            "bar",
            "by_rep",
            "sales_rep",
            ("submission_rate", "on_time_rate"),
            "pct",
        ),
    ]
    notes = [
        "A forecast is due for every customer a rep submitted a forecast for in any of the 3 cycles "
        "before; it is on time when first submitted before 00:00 on the cycle's first day."
    ]
    return make_report(
        ctx, "submission_status", "Forecast submission status", params, period, kpis, tables, charts, notes
    )


SUBMISSION_STATUS = ReportDefinition(
    slug="submission_status",
    title="Forecast submission status",
    description="Per cycle and sales rep: forecasts due, submitted, on time, late and missing, with "
    "the missing and late forecasts listed.",
    build=build_submission_status,
    filters=FORECAST_FILTERS,
    default_period="month_to_date",
    page=Placement("forecast"),
)
