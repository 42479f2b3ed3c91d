"""Forecast submission status: which (cycle, rep, customer) forecasts were due, on time, late or missing.

A rep's forecast portfolio is the customers they forecast: a rep owes a forecast for cycle YYYY-MM
for every customer they submitted a forecast for (any product, any submission, superseded or not)
in any of the three cycles before it (M-3, M-2, M-1). Sales play no part: reps forecast their key
accounts, not every customer they sell to. A forecast is on time when its first submission for
that (cycle, rep, customer) is before 00:00 on the cycle's first day, late otherwise; days late
count calendar days after the due date (the day before the cycle), so 00:00:00 on day 1 is 1 day.
Submissions nobody owed (a customer new to the rep's portfolio) are "not due". Filters (customer
and product attributes, rep) apply to the forecast rows on both sides: the lookback forecasts that
make a forecast due and the cycle's submissions. Forecasts have no storefront, so a storefront
filter does not apply.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analytics.periods import Period
from analytics.query import PRODUCT_DIMENSIONS, SALE_DIMENSIONS, ReportContext, filter_sql

LOOKBACK_MONTHS = 3

# Forecast rows have customer and product attributes and a rep, but no storefront.
FORECAST_DIMENSIONS = (SALE_DIMENSIONS | PRODUCT_DIMENSIONS) - {"storefront"}


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
    Storefront filters are ignored (forecasts have no storefront).
    """
    # The same forecast-row filters narrow the lookback forecasts (what is due) and the submissions.
    fc_sql, params = filter_sql(filters, "f", dims=FORECAST_DIMENSIONS, prefix="s")
    # Cycles are YYYY-MM text (validated on import), so string order is month order.
    sql = f"""
        WITH cycles AS (
            SELECT strftime(m, '%Y-%m') AS cycle, CAST(m AS DATE) AS cycle_start,
                   strftime(m - INTERVAL {LOOKBACK_MONTHS} MONTH, '%Y-%m') AS lookback_cycle
            FROM generate_series(CAST($first_cycle_start AS DATE), CAST($last_cycle_start AS DATE),
                                 INTERVAL 1 MONTH) AS t(m)
        ),
        expected AS (
            SELECT c.cycle, any_value(c.cycle_start) AS cycle_start, f.sales_rep, f.customer_code,
                   any_value(f.customer_name) AS customer_name
            FROM cycles c
            JOIN forecasts f ON f.cycle >= c.lookback_cycle AND f.cycle < c.cycle
            WHERE TRUE{fc_sql}
            GROUP BY c.cycle, f.sales_rep, f.customer_code
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
    return sql, params


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
