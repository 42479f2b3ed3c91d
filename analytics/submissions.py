"""Forecast submission status: which (cycle, rep, customer) forecasts were due, on time, late or missing.

A rep owes a forecast for cycle YYYY-MM for every customer they had a completed sale with in
the three months before the cycle starts. A forecast is on time when its first submission for
that (cycle, rep, customer) is before 00:00 on the cycle's first day, late otherwise; days late
count calendar days after the due date (the day before the cycle), so 00:00:00 on day 1 is 1 day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analytics.periods import Period
from analytics.query import FILTER_COLUMNS, ReportContext, filter_sql, sale_filter_sql

LOOKBACK_MONTHS = 3

# Forecast rows have customer and product attributes and a rep, but no storefront.
FORECAST_DIMENSIONS = frozenset(FILTER_COLUMNS) - {"storefront"}


def cycles_in(period: Period) -> tuple[str, str]:
    """First and last forecast cycle (YYYY-MM) whose month overlaps the period."""
    return f"{period.start:%Y-%m}", f"{period.end:%Y-%m}"


def cycle_params(first_cycle: str, last_cycle: str) -> dict[str, Any]:
    """Bound parameters for a cycle range: the first days of its first and last month (DATE)."""
    return {
        "first_cycle_start": dt.date.fromisoformat(first_cycle + "-01"),
        "last_cycle_start": dt.date.fromisoformat(last_cycle + "-01"),
    }


def submission_sql(filters: Mapping[str, Sequence[str]]) -> tuple[str, dict[str, Any]]:
    """One row per (cycle, sales_rep, customer) due or submitted in the cycles from $first_cycle_start
    to $last_cycle_start.

    Columns: cycle, sales_rep, customer_code, customer_name, expected, submitted,
    first_submitted_at, on_time, late, missing, days_late (NULL unless late). The flags on_time
    and late describe any submission, due or not; `expected` says whether it was due.
    Storefront filters narrow the sales that make a forecast due (forecasts have no storefront).
    """
    sale_sql, sale_params = sale_filter_sql(filters, "s", prefix="e")
    fc_sql, fc_params = filter_sql(filters, "f", dims=FORECAST_DIMENSIONS, prefix="s")
    sql = f"""
        WITH cycles AS (
            SELECT strftime(m, '%Y-%m') AS cycle, CAST(m AS DATE) AS cycle_start
            FROM generate_series(CAST($first_cycle_start AS DATE), CAST($last_cycle_start AS DATE),
                                 INTERVAL 1 MONTH) AS t(m)
        ),
        expected AS (
            SELECT DISTINCT c.cycle, c.cycle_start, s.sales_rep, s.customer_code, s.customer_name
            FROM cycles c
            JOIN sales s
              ON s.status = 'completed'
             AND s.order_date >= c.cycle_start - INTERVAL {LOOKBACK_MONTHS} MONTH
             AND s.order_date < c.cycle_start
            WHERE s.sales_rep <> ''{sale_sql}
        ),
        submitted AS (
            SELECT f.cycle, any_value(c.cycle_start) AS cycle_start, f.sales_rep, f.customer_code,
                   any_value(f.customer_name) AS customer_name,
                   MIN(f.submitted_at) AS first_submitted_at
            FROM forecasts f JOIN cycles c ON c.cycle = f.cycle
            WHERE TRUE{fc_sql}
            GROUP BY f.cycle, f.sales_rep, f.customer_code
        ),
        joined AS (
            SELECT COALESCE(e.cycle, s.cycle) AS cycle,
                   COALESCE(e.cycle_start, s.cycle_start) AS cycle_start,
                   COALESCE(e.sales_rep, s.sales_rep) AS sales_rep,
                   COALESCE(e.customer_code, s.customer_code) AS customer_code,
                   COALESCE(e.customer_name, s.customer_name) AS customer_name,
                   e.cycle IS NOT NULL AS expected,
                   s.cycle IS NOT NULL AS submitted,
                   s.first_submitted_at
            FROM expected e
            FULL OUTER JOIN submitted s
              ON s.cycle = e.cycle AND s.sales_rep = e.sales_rep AND s.customer_code = e.customer_code
        )
        SELECT cycle, sales_rep, customer_code, customer_name, expected, submitted, first_submitted_at,
               COALESCE(first_submitted_at < CAST(cycle_start AS TIMESTAMP), FALSE) AS on_time,
               COALESCE(first_submitted_at >= CAST(cycle_start AS TIMESTAMP), FALSE) AS late,
               expected AND NOT submitted AS missing,
               CASE WHEN first_submitted_at >= CAST(cycle_start AS TIMESTAMP)
                    THEN date_diff('day', cycle_start, CAST(first_submitted_at AS DATE)) + 1
               END AS days_late
        FROM joined
    """
    return sql, {**sale_params, **fc_params}


def submission_frame(
    ctx: ReportContext, first_cycle: str, last_cycle: str, filters: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """One row per (cycle, sales_rep, customer) that was due or submitted, with boolean flags
    expected, submitted, on_time, late, missing, the first submission time and days late."""
    sql, params = submission_sql(filters)
    return ctx.frame(
        f"SELECT * FROM ({sql}) ORDER BY cycle, sales_rep, customer_code",
        {**cycle_params(first_cycle, last_cycle), **params},
    )


def submission_rate(frame: pd.DataFrame) -> float | None:
    """Share of due forecasts that were submitted (on time or late); None when none were due."""
    due = frame[frame["expected"]]
    if due.empty:
        return None
    return float(due["submitted"].sum() / len(due))
