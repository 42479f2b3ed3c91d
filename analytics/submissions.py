"""Forecast submission status: which (cycle, rep, customer) forecasts were due, on time, late or missing.

A rep owes a forecast for cycle YYYY-MM for every customer they had a completed sale with in
the three months before the cycle starts. A forecast is on time when its first submission for
that (cycle, rep, customer) is before 00:00 on the cycle's first day, late otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import pandas as pd

from analytics.periods import Period
from analytics.query import ReportContext, filter_sql, sale_filter_sql

LOOKBACK_MONTHS = 3


def cycles_in(period: Period) -> tuple[str, str]:
    """First and last forecast cycle (YYYY-MM) whose month overlaps the period."""
    return f"{period.start:%Y-%m}", f"{period.end:%Y-%m}"


def submission_frame(
    ctx: ReportContext, first_cycle: str, last_cycle: str, filters: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """One row per (cycle, sales_rep, customer) that was due or submitted, with boolean flags
    expected, submitted, on_time, late, missing and the first submission time."""
    sale_sql, sale_params = sale_filter_sql(filters, "s", prefix="e")
    fc_sql, fc_params = filter_sql(filters, "f", prefix="s")
    sql = f"""
        WITH cycles AS (
            SELECT strftime(m, '%Y-%m') AS cycle, CAST(m AS DATE) AS cycle_start
            FROM generate_series(CAST($first AS DATE), CAST($last AS DATE), INTERVAL 1 MONTH) AS t(m)
        ),
        expected AS (
            SELECT DISTINCT c.cycle, s.sales_rep, s.customer_code, s.customer_name
            FROM cycles c
            JOIN sales s
              ON s.status = 'completed'
             AND s.order_date >= c.cycle_start - INTERVAL {LOOKBACK_MONTHS} MONTH
             AND s.order_date < c.cycle_start
            WHERE s.sales_rep <> ''{sale_sql}
        ),
        submitted AS (
            SELECT f.cycle, f.sales_rep, f.customer_code, any_value(f.customer_name) AS customer_name,
                   MIN(f.submitted_at) AS first_submitted_at
            FROM forecasts f JOIN cycles c ON c.cycle = f.cycle
            WHERE TRUE{fc_sql}
            GROUP BY f.cycle, f.sales_rep, f.customer_code
        )
        SELECT COALESCE(e.cycle, s.cycle) AS cycle,
               COALESCE(e.sales_rep, s.sales_rep) AS sales_rep,
               COALESCE(e.customer_code, s.customer_code) AS customer_code,
               COALESCE(e.customer_name, s.customer_name) AS customer_name,
               e.cycle IS NOT NULL AS expected,
               s.cycle IS NOT NULL AS submitted,
               s.first_submitted_at
        FROM expected e
        FULL OUTER JOIN submitted s
          ON s.cycle = e.cycle AND s.sales_rep = e.sales_rep AND s.customer_code = e.customer_code
        ORDER BY 1, 2, 3
    """
    first = dt.date.fromisoformat(first_cycle + "-01")
    last = dt.date.fromisoformat(last_cycle + "-01")
    frame = ctx.frame(sql, {"first": first, "last": last, **sale_params, **fc_params})
    starts = (
        pd.to_datetime(frame["cycle"] + "-01") if not frame.empty else pd.Series([], dtype="datetime64[us]")
    )
    submitted_at = pd.to_datetime(frame["first_submitted_at"])
    frame["on_time"] = frame["submitted"] & (submitted_at < starts)
    frame["late"] = frame["submitted"] & ~frame["on_time"]
    frame["missing"] = frame["expected"] & ~frame["submitted"]
    return frame


def submission_rate(frame: pd.DataFrame) -> float | None:
    """Share of due forecasts that were submitted (on time or late); None when none were due."""
    due = frame[frame["expected"]]
    if due.empty:
        return None
    return float(due["submitted"].sum() / len(due))
