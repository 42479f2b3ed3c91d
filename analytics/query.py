"""What a report builder works with: the context (scoped business + DuckDB snapshot) and SQL helpers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd
from sqlalchemy.orm import Session

from analytics.periods import Period, same_kind_at
from analytics.report import ChartSpec, Kpi, Report, ReportParams, Scope, Table
from core.models import Business
from core.money import from_micros
from snapshots.store import Snapshot

# Snapshot column behind each dimension filter (lines, sales, payments and forecasts share them).
FILTER_COLUMNS: dict[str, str] = {
    "region": "region",
    "category": "category",
    "storefront": "storefront_code",
    "customer_type": "customer_type",
    "sales_rep": "sales_rep",
    "customer": "customer_code",
    "product": "sku",
    "payment_method": "method",  # payments only
}
PRODUCT_DIMENSIONS = frozenset({"category", "product"})
# A payment's own attribute: only queries over the payments table take it (PAYMENT_TABLE_DIMENSIONS).
PAYMENT_DIMENSIONS = frozenset({"payment_method"})
SALE_DIMENSIONS = frozenset(FILTER_COLUMNS) - PRODUCT_DIMENSIONS - PAYMENT_DIMENSIONS
PAYMENT_TABLE_DIMENSIONS = SALE_DIMENSIONS | PAYMENT_DIMENSIONS


@dataclass
class ReportContext:
    """Everything a builder may touch: the caller's business, the ORM session, the snapshot, the
    period (resolved once, by `generate`) and `now`, the caller's clock reading (generated_at)."""

    session: Session
    business: Business
    scope: Scope
    db: duckdb.DuckDBPyConnection
    # The snapshot `db` reads; a streamed table opens its own connection on it (`db` is closed
    # when the report is built, before the rows are written).
    snapshot: Snapshot | None = None
    period: Period = field(kw_only=True)
    now: dt.datetime = field(kw_only=True)

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, dict(params or {})).fetchall()

    def one(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        row = self.db.execute(sql, dict(params or {})).fetchone()
        assert row is not None, "aggregate query returned no row"
        return row

    def frame(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        *,
        money: Sequence[str] = (),
    ) -> pd.DataFrame:
        """Run `sql`; columns named in `money` hold integer micros and become exact Decimals."""
        cur = self.db.execute(sql, dict(params or {}))
        names = [d[0] for d in cur.description or []]
        data = cur.fetchall()
        frame = pd.DataFrame.from_records(data, columns=names)
        for col in money:
            frame[col] = pd.Series([from_micros(v) for v in frame[col]], index=frame.index, dtype=object)
        return frame


def filter_sql(
    filters: Mapping[str, Sequence[str]],
    alias: str = "",
    *,
    dims: frozenset[str] = SALE_DIMENSIONS | PRODUCT_DIMENSIONS,
    prefix: str = "f",
) -> tuple[str, dict[str, Any]]:
    """` AND ...` conditions for the filters among `dims`, with their bound parameters."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    dot = f"{alias}." if alias else ""
    for dim, values in sorted(filters.items()):
        if dim not in dims or not values:
            continue
        name = f"{prefix}_{dim}"
        parts.append(f" AND list_contains(${name}, {dot}{FILTER_COLUMNS[dim]})")
        params[name] = list(values)
    return "".join(parts), params


def sale_filter_sql(
    filters: Mapping[str, Sequence[str]], alias: str = "", *, prefix: str = "f"
) -> tuple[str, dict[str, Any]]:
    """Filters for a per-sale table: product dimensions become 'the sale has such a line'."""
    sql, params = filter_sql(filters, alias, dims=SALE_DIMENSIONS, prefix=prefix)
    line_sql, line_params = filter_sql(filters, "", dims=PRODUCT_DIMENSIONS, prefix=prefix)
    if line_sql:
        dot = f"{alias}." if alias else ""
        sql += f" AND {dot}sale_id IN (SELECT sale_id FROM lines WHERE TRUE{line_sql})"
        params.update(line_params)
    return sql, params


def latest_order_date(
    db: duckdb.DuckDBPyConnection,
    filters: Mapping[str, Sequence[str]] | None = None,
    *,
    until: dt.date | None = None,
) -> dt.date | None:
    """The latest order date of a completed sale (with a line matching `filters`), on or before
    `until` when given; None when there is none."""
    fsql, params = filter_sql(filters or {}, "l")
    cond = " AND l.order_date <= $until" if until is not None else ""
    row = db.execute(
        f"SELECT MAX(l.order_date) FROM lines l WHERE l.status = 'completed'{cond}{fsql}",
        {**params, **({"until": until} if until is not None else {})},
    ).fetchone()
    return row[0] if row and row[0] is not None else None


def latest_period_with_data(
    snapshot: Snapshot, period: Period, filters: Mapping[str, Sequence[str]] | None = None
) -> Period | None:
    """Where to open instead of `period` (a resolved period that holds no orders): the period of
    the same kind (`same_kind_at`) around the latest completed order date, the latest on or before
    the period's end, or else the latest of all (data dated later only); None when the business has
    no completed sale at all (none matching `filters`). With data ending 20 Jun 2025, last month is
    1–30 Jun 2025 and month to date 1–20 Jun 2025. The period returned has no name (explicit dates)."""
    db = snapshot.connect()
    try:
        day = latest_order_date(db, filters, until=period.end) or latest_order_date(db, filters)
    finally:
        db.close()
    return same_kind_at(period, day) if day is not None else None


def period_params(period: Period, prefix: str = "") -> dict[str, dt.date]:
    return {f"{prefix}start": period.start, f"{prefix}end": period.end}


def ratio(numerator: Decimal | int | float | None, denominator: Decimal | int | float | None) -> float | None:
    """numerator / denominator as a float fraction; None when the denominator is 0 or missing."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return float(Decimal(numerator) / Decimal(denominator))


def change(current: Decimal | int | float | None, before: Decimal | int | float | None) -> float | None:
    """Relative change (current - before) / before; None when there is nothing to compare with."""
    if current is None or before is None or before == 0:
        return None
    return float((Decimal(current) - Decimal(before)) / abs(Decimal(before)))


def make_report(
    ctx: ReportContext,
    slug: str,
    title: str,
    params: ReportParams,
    period: Period | None,
    kpis: list[Kpi],
    tables: list[Table],
    charts: list[ChartSpec] | None = None,
    notes: list[str] | None = None,
    compared: Mapping[str, Period] | None = None,
) -> Report:
    """Assemble a Report with the common fields (business, parameters, generation time = `ctx.now`);
    `compared`: the periods its comparison KPIs compare with (analytics.kpis.compared_periods)."""
    return Report(
        slug=slug,
        title=title,
        business_code=ctx.business.code,
        business_name=ctx.business.name,
        currency=ctx.business.currency,
        params=params,
        generated_at=ctx.now.replace(microsecond=0),
        period=period,
        kpis=kpis,
        tables={t.name: t for t in tables},
        charts=charts or [],
        notes=notes or [],
        timezone=ctx.business.timezone or "UTC",
        compared=dict(compared or {}),
    )
