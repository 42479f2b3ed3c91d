"""The sales_lines report: every sale line of the period with its order, customer, product and money, streamed.

This is the "give me all the data" export, so its one table may hold millions of rows. The table
is streamed (`Table.stream`): the stream opens its own DuckDB connection on the snapshot the
report was built from and reads the lines in date chunks of about `CHUNK_ROWS` rows, each
fetched `BATCH_ROWS` at a time, so memory stays flat however many lines there are. (One
`ORDER BY` over every line would make DuckDB materialise and sort them all first: about 350 MB
more at 1M lines.) The table's `frame` is only a preview of the first `PREVIEW_ROWS` rows, for pages.

Money in the stream: DuckDB rounds the integer micros half-even to whole cents with integer
arithmetic (exact) and hands them over as `cents / 100.0`, the double nearest to that cent
amount. Every writer writes cents (CSV "%.2f", JSON and Excel numbers), so the files hold the
exact half-even cent value, and Python never builds a Decimal per cell: DuckDB's DECIMAL ->
Decimal conversion costs about 1.3 µs a value, 5.5 s for the four money columns of 1M lines,
against 0.5 s for doubles. The preview frame holds exact Decimals like every other report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd

from analytics import columns as col
from analytics.definition import OptionSpec, ReportDefinition, SystemTemplate
from analytics.periods import Period
from analytics.query import ReportContext, filter_sql, make_report, ratio
from analytics.report import Column, Highlight, Kpi, ParamError, Report, ReportParams, Table
from core.money import from_micros
from snapshots.store import Snapshot

SLUG = "sales_lines"
# Rows per ordered query (the stream reads the period in date chunks of about this many rows).
CHUNK_ROWS = 25_000
# Rows per fetch from a chunk's cursor: one batch handed to the writers.
BATCH_ROWS = 2_000
PREVIEW_ROWS = 200
STATUS_CHOICES = ("all", "completed")

_DATA_CHANGED = "The data changed while this export was being written; generate the report again."

ALL_FILTERS = ("region", "category", "storefront", "customer_type", "sales_rep", "customer", "product")


def half_even_cents_sql(micros: str) -> str:
    """SQL for integer micros rounded half-even to whole cents, as a DOUBLE amount (cents / 100.0).

    Integer arithmetic on the absolute value, so no floating-point step decides a tie; DuckDB's
    ROUND and DECIMAL casts round half away from zero, which is why they are not used.
    """
    a = f"abs({micros})"
    cents = (
        f"({a} // 10000 + CASE WHEN {a} % 10000 > 5000 "
        f"OR ({a} % 10000 = 5000 AND ({a} // 10000) % 2 = 1) THEN 1 ELSE 0 END)"
    )
    return f"(CASE WHEN {micros} < 0 THEN -1 ELSE 1 END * {cents} / 100.0)"


COLUMNS: list[Column] = [
    col.ORDER_ID,
    col.relabel(col.ORDER_DATE, "Date"),
    col.STATUS,
    *col.CUSTOMER,
    col.CUSTOMER_TYPE,
    col.REGION,
    *col.STOREFRONT,
    col.SALES_REP,
    *col.PRODUCT,
    col.QUANTITY,
    col.UNIT_PRICE,
    Column("discount", "Discount", "pct"),
    Column("net", "Net", "money"),
    col.COST,
    Column("profit", "Profit", "money"),
]

# The SQL expression behind each column key (over the snapshot's `lines` view, alias l).
_MICROS = {
    "unit_price": "l.unit_price_micros",
    "net": "l.net_micros",
    "cost": "l.cost_micros",
    "profit": "(l.net_micros - l.cost_micros)",
}
EXPRESSIONS: dict[str, str] = {
    c.key: (half_even_cents_sql(_MICROS[c.key]) if c.key in _MICROS else f"l.{c.key}") for c in COLUMNS
}
ORDER_BY = "l.order_date, l.order_id, l.sku, l.line_id"


def _where(period: Period, status: str, filters: Mapping[str, Sequence[str]]) -> tuple[str, dict[str, Any]]:
    """WHERE clause (period, status, dimension filters) over `lines l`, with bound parameters."""
    fsql, params = filter_sql(filters, "l")
    status_sql = " AND l.status = 'completed'" if status == "completed" else ""
    params.update({"start": period.start, "end": period.end})
    return f"WHERE l.order_date BETWEEN $start AND $end{status_sql}{fsql}", params


def plan_chunks(day_counts: Sequence[tuple[dt.date, int]], chunk_rows: int) -> list[tuple[dt.date, dt.date]]:
    """Consecutive date ranges of about `chunk_rows` lines each (a day is never split)."""
    chunks: list[tuple[dt.date, dt.date]] = []
    first: dt.date | None = None
    last: dt.date | None = None
    rows = 0
    for day, count in day_counts:
        if first is not None and rows + count > chunk_rows:
            assert last is not None
            chunks.append((first, last))
            first, rows = None, 0
        if first is None:
            first = day
        last, rows = day, rows + count
    if first is not None and last is not None:
        chunks.append((first, last))
    return chunks


def line_batches(
    snapshot: Snapshot,
    where: str,
    params: Mapping[str, Any],
    chunks: Sequence[tuple[dt.date, dt.date]],
    keys: Sequence[str],
    batch_rows: int = BATCH_ROWS,
) -> Iterator[list[tuple[Any, ...]]]:
    """Rows of `keys` in order (date, order, SKU), chunk by chunk, `batch_rows` at a time."""
    unknown = [k for k in keys if k not in EXPRESSIONS]
    if unknown:
        raise ParamError(f"sales_lines has no column {unknown[0]!r}.")
    if not chunks:
        return
    if not snapshot.path.is_dir():
        raise RuntimeError(_DATA_CHANGED)
    select = ", ".join(f"{EXPRESSIONS[k]} AS {k}" for k in keys) if keys else "1"
    sql = f"SELECT {select} FROM lines l {where} AND l.order_date BETWEEN $c_start AND $c_end ORDER BY {ORDER_BY}"
    con = snapshot.connect()
    # Python converting the rows is the bottleneck, not DuckDB; one thread needs less memory.
    con.execute("SET threads = 1")
    try:
        for first, last in chunks:
            cur = con.execute(sql, {**params, "c_start": first, "c_end": last})
            while rows := cur.fetchmany(batch_rows):
                yield rows
    except duckdb.Error as exc:
        if not snapshot.path.is_dir():  # a newer snapshot replaced this one mid-export
            raise RuntimeError(_DATA_CHANGED) from exc
        raise
    finally:
        con.close()


def lines_table(
    ctx: ReportContext,
    period: Period,
    status: str,
    filters: Mapping[str, Sequence[str]],
    *,
    chunk_rows: int = CHUNK_ROWS,
    batch_rows: int = BATCH_ROWS,
) -> Table:
    """The streamed lines table of the period: a preview frame plus a stream over the snapshot."""
    if ctx.snapshot is None:
        raise RuntimeError("sales_lines streams from a snapshot: build it through registry.generate.")
    snapshot = ctx.snapshot
    where, params = _where(period, status, filters)
    day_counts = [
        (d, int(n))
        for d, n in ctx.rows(
            f"SELECT l.order_date, COUNT(*) FROM lines l {where} GROUP BY 1 ORDER BY 1", params
        )
    ]
    chunks = plan_chunks(day_counts, chunk_rows)
    keys = [c.key for c in COLUMNS]
    # The preview reads only the first days holding PREVIEW_ROWS lines (a LIMIT over all would decode them all).
    preview_end, seen = period.end, 0
    for day, count in day_counts:
        seen += count
        if seen >= PREVIEW_ROWS:
            preview_end = day
            break
    preview = ctx.frame(
        f"SELECT {', '.join(f'{EXPRESSIONS[k]} AS {k}' for k in keys)} FROM lines l {where} "
        f"AND l.order_date <= $preview_end ORDER BY {ORDER_BY} LIMIT {PREVIEW_ROWS}",
        {**params, "preview_end": preview_end},
    )
    for key in _MICROS:
        preview[key] = pd.Series(
            [Decimal(f"{v:.2f}") for v in preview[key]], index=preview.index, dtype=object
        )

    def stream(wanted: Sequence[str]) -> Iterator[list[tuple[Any, ...]]]:
        return line_batches(snapshot, where, params, chunks, wanted, batch_rows)

    return Table(
        "lines",
        "Sales lines",
        list(COLUMNS),
        preview,
        highlights=[Highlight("profit", "lt", 0, "Sold below cost")],
        stream=stream,
        stream_rows=sum(n for _, n in day_counts),
    )


def build_sales_lines(ctx: ReportContext, params: ReportParams) -> Report:
    """One row per sale line dated in the period (option status: all, default, or completed only).

    KPIs follow SPEC section 2 whatever the status option: revenue, cost, gross profit, margin and
    orders count completed sales only; `other_lines` counts the listed lines of draft, void and
    refunded sales.
    """
    period = ctx.period
    status = params.option("status", "all")
    if status not in STATUS_CHOICES:
        raise ParamError(f"status must be one of {', '.join(STATUS_CHOICES)}, not {status!r}.")
    filters = params.filters
    table = lines_table(ctx, period, status, filters)
    where, sql_params = _where(period, status, filters)
    done = "l.status = 'completed'"
    lines, orders, net, cost, quantity, other = ctx.one(
        f"SELECT COUNT(*), COUNT(DISTINCT l.sale_id) FILTER (WHERE {done}), "
        f"COALESCE(SUM(l.net_micros) FILTER (WHERE {done}), 0), "
        f"COALESCE(SUM(l.cost_micros) FILTER (WHERE {done}), 0), "
        f"COALESCE(SUM(l.quantity) FILTER (WHERE {done}), 0), "
        f"COUNT(*) FILTER (WHERE NOT {done}) FROM lines l {where}",
        sql_params,
    )
    revenue, line_cost = from_micros(net), from_micros(cost)
    kpis = [
        Kpi("lines", "Lines listed", int(lines), "int"),
        Kpi("orders", "Completed orders", int(orders), "int"),
        Kpi("quantity", "Quantity sold", float(quantity), "quantity"),
        Kpi("revenue", "Revenue", revenue, "money"),
        Kpi("cost", "Cost", line_cost, "money"),
        Kpi("gross_profit", "Gross profit", revenue - line_cost, "money"),
        Kpi("margin_pct", "Margin", ratio(revenue - line_cost, revenue), "pct"),
        Kpi("other_lines", "Lines of draft, void or refunded orders", int(other), "int"),
    ]
    notes = []
    if status == "all" and int(other):
        notes.append(
            "The list includes draft, void and refunded orders (see the status column); "
            "revenue and the other totals count completed orders only."
        )
    return make_report(ctx, SLUG, "Sales lines", params, period, kpis, [table], notes=notes)


SALES_LINES = ReportDefinition(
    slug=SLUG,
    title="Sales lines",
    description="Every sale line of the period with order, date, status, customer, product, category, "
    "region, storefront, rep, quantity, unit price, discount, net, cost and profit: the full "
    "data export (streamed, any size).",
    build=build_sales_lines,
    filters=ALL_FILTERS,
    options=(
        OptionSpec(
            "status",
            "Which orders to list: all (draft, void and refunded too, with their status) or completed",
            "all",
            STATUS_CHOICES,
        ),
    ),
    default_period="last_month",
    template=SystemTemplate(formats=("csv",)),
    page=None,  # the full data export (any size) is a download: the builder, CLI and schedules
)
