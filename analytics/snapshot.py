"""Columnar read snapshots: one set of Parquet files per business and data version, read by DuckDB.

The database (SQLite or PostgreSQL) is the system of record. Reports aggregate over a
denormalised Parquet copy of one business's rows, taken in a single consistent read and keyed
by the business's `data_version`, so a report never sees a half-finished import and every
aggregation runs in DuckDB's columnar engine with one SQL dialect for both databases.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, select
from sqlalchemy.sql import Select

from analytics.models import (
    Business,
    Customer,
    Forecast,
    InventoryLevel,
    Payment,
    Product,
    Sale,
    SaleLine,
    Storefront,
)

BATCH_ROWS = 100_000
LAYOUT = 2  # bump when the snapshot's files or columns change

_I64 = pa.int64()
_F64 = pa.float64()
_STR = pa.string()
_DATE = pa.date32()
_TS = pa.timestamp("us")
_BOOL = pa.bool_()


def _customer_cols() -> list[Any]:
    return [
        Customer.customer_code,
        Customer.name.label("customer_name"),
        Customer.customer_type,
        Customer.region,
    ]


def _queries(business_id: int) -> dict[str, tuple[Select[Any], pa.Schema]]:
    """Each snapshot table: the portable SELECT that fills it and its Arrow schema."""
    c, p, s, st = Customer, Product, Sale, Storefront
    lines = (
        select(
            SaleLine.id.label("line_id"),
            s.id.label("sale_id"),
            s.order_id,
            s.order_date,
            s.status,
            s.customer_id,
            *_customer_cols(),
            st.code.label("storefront_code"),
            st.name.label("storefront_name"),
            s.sales_rep,
            SaleLine.product_id,
            p.sku,
            p.name.label("product_name"),
            p.category,
            SaleLine.quantity,
            SaleLine.unit_price_micros,
            SaleLine.unit_cost_micros,
            SaleLine.discount,
            SaleLine.net_micros,
            SaleLine.cost_micros,
        )
        .join(s, s.id == SaleLine.sale_id)
        .join(c, c.id == s.customer_id)
        .join(p, p.id == SaleLine.product_id)
        .outerjoin(st, st.id == s.storefront_id)
        .where(SaleLine.business_id == business_id)
    )
    sale_schema = [
        ("sale_id", _I64),
        ("order_id", _STR),
        ("order_date", _DATE),
        ("status", _STR),
        ("customer_id", _I64),
        ("customer_code", _STR),
        ("customer_name", _STR),
        ("customer_type", _STR),
        ("region", _STR),
        ("storefront_code", _STR),
        ("storefront_name", _STR),
        ("sales_rep", _STR),
    ]
    lines_schema = pa.schema(
        [
            ("line_id", _I64),
            *sale_schema,
            ("product_id", _I64),
            ("sku", _STR),
            ("product_name", _STR),
            ("category", _STR),
            ("quantity", _F64),
            ("unit_price_micros", _I64),
            ("unit_cost_micros", _I64),
            ("discount", _F64),
            ("net_micros", _I64),
            ("cost_micros", _I64),
        ]
    )
    sales = (
        select(
            s.id.label("sale_id"),
            s.order_id,
            s.order_date,
            s.status,
            s.customer_id,
            *_customer_cols(),
            st.code.label("storefront_code"),
            st.name.label("storefront_name"),
            s.sales_rep,
            s.net_micros,
            s.cost_micros,
        )
        .join(c, c.id == s.customer_id)
        .outerjoin(st, st.id == s.storefront_id)
        .where(s.business_id == business_id)
    )
    sales_schema = pa.schema([*sale_schema, ("net_micros", _I64), ("cost_micros", _I64)])
    payments = (
        select(
            Payment.id.label("payment_pk"),
            Payment.payment_id,
            Payment.paid_at,
            Payment.amount_micros,
            Payment.method,
            s.id.label("sale_id"),
            s.order_id,
            s.order_date,
            s.status.label("sale_status"),
            s.customer_id,
            *_customer_cols(),
            st.code.label("storefront_code"),
            s.sales_rep,
        )
        .join(s, s.id == Payment.sale_id)
        .join(c, c.id == s.customer_id)
        .outerjoin(st, st.id == s.storefront_id)
        .where(Payment.business_id == business_id)
    )
    payments_schema = pa.schema(
        [
            ("payment_pk", _I64),
            ("payment_id", _STR),
            ("paid_at", _TS),
            ("amount_micros", _I64),
            ("method", _STR),
            ("sale_id", _I64),
            ("order_id", _STR),
            ("order_date", _DATE),
            ("sale_status", _STR),
            ("customer_id", _I64),
            ("customer_code", _STR),
            ("customer_name", _STR),
            ("customer_type", _STR),
            ("region", _STR),
            ("storefront_code", _STR),
            ("sales_rep", _STR),
        ]
    )
    customers = select(
        c.id.label("customer_id"),
        *_customer_cols(),
        c.credit_limit_micros,
        c.email,
        c.active,
    ).where(c.business_id == business_id)
    customers_schema = pa.schema(
        [
            ("customer_id", _I64),
            ("customer_code", _STR),
            ("customer_name", _STR),
            ("customer_type", _STR),
            ("region", _STR),
            ("credit_limit_micros", _I64),
            ("email", _STR),
            ("active", _BOOL),
        ]
    )
    products = select(
        p.id.label("product_id"),
        p.sku,
        p.name.label("product_name"),
        p.category,
        p.unit_cost_micros,
        p.unit_price_micros,
        p.reorder_level,
    ).where(p.business_id == business_id)
    products_schema = pa.schema(
        [
            ("product_id", _I64),
            ("sku", _STR),
            ("product_name", _STR),
            ("category", _STR),
            ("unit_cost_micros", _I64),
            ("unit_price_micros", _I64),
            ("reorder_level", _F64),
        ]
    )
    storefronts = select(
        st.id.label("storefront_id"),
        st.code.label("storefront_code"),
        st.name.label("storefront_name"),
        st.region.label("storefront_region"),
    ).where(st.business_id == business_id)
    storefronts_schema = pa.schema(
        [
            ("storefront_id", _I64),
            ("storefront_code", _STR),
            ("storefront_name", _STR),
            ("storefront_region", _STR),
        ]
    )
    forecasts = (
        select(
            Forecast.id.label("forecast_id"),
            Forecast.cycle,
            Forecast.customer_id,
            *_customer_cols(),
            Forecast.product_id,
            p.sku,
            p.name.label("product_name"),
            p.category,
            Forecast.sales_rep,
            Forecast.quantity,
            Forecast.submitted_at,
        )
        .join(c, c.id == Forecast.customer_id)
        .join(p, p.id == Forecast.product_id)
        .where(Forecast.business_id == business_id)
    )
    forecasts_schema = pa.schema(
        [
            ("forecast_id", _I64),
            ("cycle", _STR),
            ("customer_id", _I64),
            ("customer_code", _STR),
            ("customer_name", _STR),
            ("customer_type", _STR),
            ("region", _STR),
            ("product_id", _I64),
            ("sku", _STR),
            ("product_name", _STR),
            ("category", _STR),
            ("sales_rep", _STR),
            ("quantity", _F64),
            ("submitted_at", _TS),
        ]
    )
    inventory = (
        select(
            InventoryLevel.storefront_id,
            st.code.label("storefront_code"),
            st.name.label("storefront_name"),
            st.region.label("storefront_region"),
            InventoryLevel.product_id,
            p.sku,
            p.name.label("product_name"),
            p.category,
            InventoryLevel.quantity,
            InventoryLevel.as_of,
            p.unit_cost_micros,
            p.unit_price_micros,
            p.reorder_level,
        )
        .join(st, st.id == InventoryLevel.storefront_id)
        .join(p, p.id == InventoryLevel.product_id)
        .where(InventoryLevel.business_id == business_id)
    )
    inventory_schema = pa.schema(
        [
            ("storefront_id", _I64),
            ("storefront_code", _STR),
            ("storefront_name", _STR),
            ("storefront_region", _STR),
            ("product_id", _I64),
            ("sku", _STR),
            ("product_name", _STR),
            ("category", _STR),
            ("quantity", _F64),
            ("as_of", _DATE),
            ("unit_cost_micros", _I64),
            ("unit_price_micros", _I64),
            ("reorder_level", _F64),
        ]
    )
    return {
        "lines": (lines, lines_schema),
        "sales": (sales, sales_schema),
        "payments": (payments, payments_schema),
        "customers": (customers, customers_schema),
        "products": (products, products_schema),
        "storefronts": (storefronts, storefronts_schema),
        "forecasts": (forecasts, forecasts_schema),
        "inventory": (inventory, inventory_schema),
    }


SNAPSHOT_TABLES = (
    "lines",
    "sales",
    "payments",
    "customers",
    "products",
    "storefronts",
    "forecasts",
    "inventory",
)


@dataclass(frozen=True)
class Snapshot:
    """A built snapshot on disk: the folder holding one Parquet file per table."""

    business_id: int
    data_version: int
    path: Path

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection with one view per snapshot table."""
        con = duckdb.connect(
            ":memory:", config={"threads": 2, "memory_limit": "512MB"}
        )
        for name in SNAPSHOT_TABLES:
            file = _quote(self.path / f"{name}.parquet")
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{file}')")
        return con


class SnapshotStore:
    """Finds or builds the snapshot of a business's current data version under `root`."""

    def __init__(self, engine: Engine, root: Path) -> None:
        self.engine = engine
        self.root = root

    def current(self, business_id: int) -> Snapshot:
        """The snapshot for the business's current data version, built if missing."""
        with self.engine.connect() as conn:
            version = _data_version(conn, business_id)
        folder = self._folder(business_id, version)
        if folder.is_dir():
            return Snapshot(business_id, version, folder)
        with self._lock(business_id):
            if folder.is_dir():
                return Snapshot(business_id, version, folder)
            return self._build(business_id)

    def _folder(self, business_id: int, version: int) -> Path:
        # The layout version keeps a snapshot written by older code from being read by newer code.
        return self.root / f"b{business_id}" / f"v{version}-layout{LAYOUT}"

    @contextmanager
    def _lock(self, business_id: int) -> Iterator[None]:
        base = self.root / f"b{business_id}"
        base.mkdir(parents=True, exist_ok=True)
        with open(base / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _build(self, business_id: int) -> Snapshot:
        """Copy every table of the business in one consistent read, then publish atomically."""
        base = self.root / f"b{business_id}"
        tmp = base / f"tmp-{os.getpid()}-{time.monotonic_ns()}"
        tmp.mkdir(parents=True)
        try:
            conn_opts = {} if self.engine.dialect.name == "sqlite" else {"isolation_level": "REPEATABLE READ"}
            with self.engine.connect().execution_options(**conn_opts) as conn, conn.begin():
                version = _data_version(conn, business_id)
                for name, (query, schema) in _queries(business_id).items():
                    _write_parquet(conn, query, schema, tmp / f"{name}.parquet")
            _finish(tmp)
            folder = self._folder(business_id, version)
            if folder.is_dir():
                shutil.rmtree(tmp)
            else:
                os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old in base.glob("v*"):
            if old != folder and old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
        return Snapshot(business_id, version, folder)


def _data_version(conn: Connection, business_id: int) -> int:
    version = conn.execute(
        select(Business.data_version).where(Business.id == business_id)
    ).scalar_one_or_none()
    if version is None:
        raise LookupError(f"No business with id {business_id}.")
    return int(version)


def _finish(folder: Path) -> None:
    """Sort the big files by date (DuckDB then skips row groups outside a period) and give each
    sale its total quantity, so sale-level questions never need the lines."""
    con = duckdb.connect(":memory:", config={"threads": 2})
    con.execute("SET enable_progress_bar = false")
    try:
        lines, sales = _quote(folder / "lines.parquet"), _quote(folder / "sales.parquet")
        jobs = {
            "lines": f"SELECT * FROM read_parquet('{lines}') ORDER BY order_date, sale_id, line_id",
            "sales": f"""
                SELECT s.*, COALESCE(q.quantity, 0) AS quantity
                FROM read_parquet('{sales}') s
                LEFT JOIN (SELECT sale_id, SUM(quantity) AS quantity
                           FROM read_parquet('{lines}') GROUP BY sale_id) q ON q.sale_id = s.sale_id
                ORDER BY s.order_date, s.sale_id""",
            "payments": f"SELECT * FROM read_parquet('{_quote(folder / 'payments.parquet')}') "
            "ORDER BY paid_at, payment_pk",
        }
        for name, query in jobs.items():
            out = folder / f"{name}.sorted.parquet"
            con.execute(
                f"COPY ({query}) TO '{_quote(out)}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 100000)"
            )
        for name in jobs:
            os.replace(folder / f"{name}.sorted.parquet", folder / f"{name}.parquet")
    finally:
        con.close()


def _quote(path: Path) -> str:
    return path.as_posix().replace("'", "''")


def _write_parquet(conn: Connection, query: Select[Any], schema: pa.Schema, path: Path) -> None:
    result = conn.execution_options(yield_per=BATCH_ROWS).execute(query)
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        wrote = False
        for rows in result.partitions():
            columns: list[Any] = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
            arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
            wrote = True
        if not wrote:
            writer.write_table(schema.empty_table())
