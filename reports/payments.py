"""The payments report: cash received (payment-based revenue) by method, day and customer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from analytics import columns as col
from analytics.definition import Placement, ReportDefinition
from analytics.periods import Period
from analytics.query import PAYMENT_TABLE_DIMENSIONS, ReportContext, filter_sql, make_report, ratio
from analytics.report import ChartSpec, Column, Kpi, Report, ReportParams, Table
from core.models import PAYMENT_METHODS
from core.money import from_micros
from reports.sales import cash_by_method_table, revenue_totals

PAYMENT_FILTERS = ("region", "storefront", "customer_type", "sales_rep", "customer", "payment_method")
# Methods that are cash received (SPEC §2: credit notes reduce a balance but are not cash).
CASH_METHODS = tuple(m for m in PAYMENT_METHODS if m != "credit_note")
METHOD_LABELS = {"cash": "Cash", "card": "Card", "bank_transfer": "Bank transfer", "mobile": "Mobile"}
_IN_PERIOD = "CAST(p.paid_at AS DATE) BETWEEN $start AND $end"
_COUNTED = "p.sale_status NOT IN ('void', 'draft') AND p.method <> 'credit_note'"


def payment_totals(
    ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """Payments dated in the period split three ways (exact Decimals) plus the count of cash payments.

    cash (+ payments, the count) = what cash received counts; credit_notes = credit-note payments on
    sales that are not void or draft; excluded_void_draft = payments of any method on void or draft
    sales. The three sums add up to every payment dated in the period.
    """
    fsql, params = filter_sql(filters, "p", dims=PAYMENT_TABLE_DIMENSIONS)
    row = ctx.one(
        f"""
        SELECT COALESCE(SUM(p.amount_micros) FILTER (WHERE {_COUNTED}), 0),
               COUNT(*) FILTER (WHERE {_COUNTED}),
               COALESCE(SUM(p.amount_micros) FILTER (
                   WHERE p.sale_status NOT IN ('void', 'draft') AND p.method = 'credit_note'), 0),
               COALESCE(SUM(p.amount_micros) FILTER (WHERE p.sale_status IN ('void', 'draft')), 0)
        FROM payments p
        WHERE {_IN_PERIOD}{fsql}
        """,
        {"start": period.start, "end": period.end, **params},
    )
    return {
        "cash": from_micros(row[0]),
        "payments": int(row[1]),
        "credit_notes": from_micros(row[2]),
        "excluded_void_draft": from_micros(row[3]),
    }


def cash_by_day(ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Cash received per day, one column per cash method plus total and count; every day of the
    period is a row (zeros included) unless the period has no cash payment at all (then no rows)."""
    fsql, params = filter_sql(filters, "p", dims=PAYMENT_TABLE_DIMENSIONS)
    method_aggs = ", ".join(
        f"COALESCE(SUM(p.amount_micros) FILTER (WHERE p.method = $m_{m}), 0) AS {m}" for m in CASH_METHODS
    )
    method_cols = ", ".join(f"COALESCE(a.{m}, 0) AS {m}" for m in CASH_METHODS)
    sql = f"""
        WITH days AS (
            SELECT CAST(d AS DATE) AS day
            FROM generate_series(CAST($start AS DATE), CAST($end AS DATE), INTERVAL 1 DAY) AS t(d)
        ), agg AS (
            SELECT CAST(p.paid_at AS DATE) AS day, {method_aggs},
                   SUM(p.amount_micros) AS total, COUNT(*) AS payments
            FROM payments p
            WHERE {_IN_PERIOD} AND {_COUNTED}{fsql}
            GROUP BY 1
        )
        SELECT d.day, {method_cols}, COALESCE(a.total, 0) AS total, COALESCE(a.payments, 0) AS payments
        FROM days d LEFT JOIN agg a USING (day)
        WHERE EXISTS (SELECT 1 FROM agg)
        ORDER BY d.day
    """
    values = {"start": period.start, "end": period.end, **params, **{f"m_{m}": m for m in CASH_METHODS}}
    return ctx.frame(sql, values, money=(*CASH_METHODS, "total"))


def cash_by_customer(
    ctx: ReportContext, period: Period, filters: Mapping[str, Sequence[str]]
) -> pd.DataFrame:
    """Cash received per paying customer in the period, largest first (ties by customer code)."""
    fsql, params = filter_sql(filters, "p", dims=PAYMENT_TABLE_DIMENSIONS)
    frame = ctx.frame(
        f"""
        SELECT p.customer_code, any_value(p.customer_name) AS customer_name,
               SUM(p.amount_micros) AS cash_received, COUNT(*) AS payments,
               SUM(p.amount_micros) / NULLIF(SUM(SUM(p.amount_micros)) OVER (), 0) AS share_pct,
               CAST(MAX(p.paid_at) AS DATE) AS last_paid_on
        FROM payments p
        WHERE {_IN_PERIOD} AND {_COUNTED}{fsql}
        GROUP BY p.customer_code
        ORDER BY cash_received DESC, p.customer_code
        """,
        {"start": period.start, "end": period.end, **params},
        money=("cash_received",),
    )
    frame["share_pct"] = frame["share_pct"].astype(float)
    frame["avg_payment"] = pd.Series(
        [c / n if n else None for c, n in zip(frame["cash_received"], frame["payments"], strict=True)],
        index=frame.index,
        dtype=object,
    )
    return frame


def build_payments(ctx: ReportContext, params: ReportParams) -> Report:
    """Cash received in the period (SPEC §2) by method, day and customer, with the invoice-based
    revenue of the same period for comparison; credit notes and void/draft payments shown apart."""
    period = ctx.period
    filters = params.filters
    totals = payment_totals(ctx, period, filters)
    cash = totals["cash"]  # what cash_received() counts, from the same pass over the payments
    revenue = revenue_totals(ctx, {"cur": period}, filters)["cur"]["revenue"]
    count = totals["payments"]
    by_method = bool(filters.get("payment_method"))
    kpis = [
        Kpi("cash_received", "Cash received", cash, "money"),
        Kpi("payments", "Payments", count, "int"),
        Kpi("avg_payment", "Average payment", cash / count if count else None, "money"),
        Kpi("credit_notes", "Credit notes (not cash)", totals["credit_notes"], "money"),
        Kpi(
            "excluded_void_draft",
            "Payments on void or draft orders (excluded)",
            totals["excluded_void_draft"],
            "money",
        ),
        Kpi("revenue", "Revenue (invoiced, for comparison)", revenue, "money"),
        # An invoice is not paid by one method: with a payment-method filter the ratio compares
        # unlike things, so it is left empty (the note says why).
        Kpi(
            "cash_to_revenue_pct",
            "Cash received / revenue",
            None if by_method else ratio(cash, revenue),
            "pct",
        ),
    ]
    tables = [
        cash_by_method_table("by_method", ctx, period, filters),
        Table(
            "by_day",
            "Cash received by day",
            [
                col.DAY,
                *(Column(m, METHOD_LABELS.get(m, m), "money") for m in CASH_METHODS),
                Column("total", "Total", "money"),
                col.PAYMENTS,
            ],
            cash_by_day(ctx, period, filters),
        ),
        Table(
            "by_customer",
            "Cash received by customer",
            [
                *col.CUSTOMER,
                col.CASH_RECEIVED,
                col.PAYMENTS,
                Column("avg_payment", "Average payment", "money"),
                col.SHARE,
                Column("last_paid_on", "Last payment", "date"),
            ],
            cash_by_customer(ctx, period, filters),
        ),
    ]
    charts = [
        ChartSpec("by_day", "Cash received by day and method", "stacked_bar", "by_day", "day", CASH_METHODS),
        ChartSpec("by_method", "Cash received by method", "pie", "by_method", "method", ("cash_received",)),
    ]
    notes = [
        "Cash received counts payments dated in the period on orders that are not void or draft "
        "(refunded orders included), without credit notes."
    ]
    if by_method:
        notes.append(
            "Revenue (invoiced) is not split by payment method: it is the revenue of every order under "
            "the other filters, so cash received / revenue is not shown."
        )
    return make_report(ctx, "payments", "Payments", params, period, kpis, tables, charts, notes)


PAYMENTS = ReportDefinition(
    slug="payments",
    title="Payments",
    description="Cash received (payment-based revenue) by method, day and customer; credit notes "
    "and payments on void or draft orders shown apart; invoiced revenue for comparison.",
    build=build_payments,
    filters=PAYMENT_FILTERS,
    page=Placement("payments", "Payments & Credit", ":material/payments:"),
)
