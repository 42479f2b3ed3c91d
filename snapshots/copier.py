"""The snapshot copy, run as a child process: DuckDB reads one business's rows from the database and
writes one Parquet file per snapshot table (`python -m snapshots.copier`, request on stdin).

It runs apart from the caller because DuckDB's sqlite extension carries its own SQLite library:
two SQLite libraries in one process release each other's POSIX locks and corrupt a live database.
It imports nothing of ours but this module, so it starts fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROW_GROUP_ROWS = 100_000

# Each snapshot table: the DuckDB SELECT over the attached database `{s}` (schema-qualified prefix)
# that fills it, for business `{b}`. Explicit casts give both databases the same column types.
# Columns several tables carry are declared once here.
_CUSTOMER = """c.customer_code, c.name AS customer_name, c.customer_type, c.region"""
_PRODUCT = """p.sku, p.name AS product_name, p.category"""
_PRODUCT_STOCK = (
    """p.unit_cost_micros, p.unit_price_micros, CAST(p.reorder_level AS DOUBLE) AS reorder_level"""
)
_STOREFRONT_NAME = """st.code AS storefront_code, st.name AS storefront_name"""
_STOREFRONT = f"""{_STOREFRONT_NAME}, st.region AS storefront_region"""
_SALE = f"""s.id AS sale_id, s.order_id, CAST(s.order_date AS DATE) AS order_date, s.status,
    s.customer_id, {_CUSTOMER}, {_STOREFRONT_NAME}, s.sales_rep"""
_SALE_DIMS = "customer_code, customer_type, region, storefront_code, sales_rep"
_TABLES: dict[str, str] = {
    # lines first: sales takes each sale's quantity from the finished lines file
    "lines": f"""
        SELECT l.id AS line_id, l.line_no, {_SALE}, l.product_id, {_PRODUCT},
               CAST(l.quantity AS DOUBLE) AS quantity, l.unit_price_micros, l.unit_cost_micros,
               CAST(l.discount AS DOUBLE) AS discount, l.net_micros, l.cost_micros
        FROM {{s}}sale_lines l
        JOIN {{s}}sales s ON s.id = l.sale_id
        JOIN {{s}}customers c ON c.id = s.customer_id
        JOIN {{s}}products p ON p.id = l.product_id
        LEFT JOIN {{s}}storefronts st ON st.id = s.storefront_id
        WHERE l.business_id = {{b}} AND s.business_id = {{b}}
        ORDER BY order_date, sale_id, line_no""",
    "sales": f"""
        SELECT {_SALE}, s.net_micros, s.cost_micros, COALESCE(q.quantity, 0) AS quantity,
               -- every payment of the sale, whenever made: a balance as of a date then needs only
               -- the payments after that date (few, for recent dates)
               COALESCE(pay.paid_micros, 0) AS paid_micros
        FROM {{s}}sales s
        JOIN {{s}}customers c ON c.id = s.customer_id
        LEFT JOIN {{s}}storefronts st ON st.id = s.storefront_id
        LEFT JOIN (SELECT sale_id, SUM(quantity) AS quantity FROM read_parquet('{{lines}}')
                   GROUP BY sale_id) q ON q.sale_id = s.id
        LEFT JOIN (SELECT sale_id, SUM(amount_micros) AS paid_micros FROM {{s}}payments
                   WHERE business_id = {{b}} GROUP BY sale_id) pay ON pay.sale_id = s.id
        WHERE s.business_id = {{b}}
        ORDER BY order_date, sale_id""",
    # One row per (sale, product) and per (sale, category) an order lists, with the sale's
    # dimensions: "orders per product/category" is then COUNT(*), not COUNT(DISTINCT sale_id) over
    # the lines (an order may list a product, and so a category, on several lines).
    "sale_products": f"""
        SELECT DISTINCT sale_id, order_date, status, {_SALE_DIMS}, sku, category
        FROM read_parquet('{{lines}}') ORDER BY order_date, sale_id""",
    "sale_categories": f"""
        SELECT DISTINCT sale_id, order_date, status, {_SALE_DIMS}, category
        FROM read_parquet('{{lines}}') ORDER BY order_date, sale_id""",
    "payments": f"""
        SELECT pm.id AS payment_pk, pm.payment_id, CAST(pm.paid_at AS TIMESTAMP) AS paid_at,
               pm.amount_micros, pm.method, s.id AS sale_id, s.order_id,
               CAST(s.order_date AS DATE) AS order_date, s.status AS sale_status, s.customer_id,
               {_CUSTOMER}, st.code AS storefront_code, s.sales_rep
        FROM {{s}}payments pm
        JOIN {{s}}sales s ON s.id = pm.sale_id
        JOIN {{s}}customers c ON c.id = s.customer_id
        LEFT JOIN {{s}}storefronts st ON st.id = s.storefront_id
        WHERE pm.business_id = {{b}}
        ORDER BY paid_at, payment_pk""",
    "customers": f"""
        SELECT c.id AS customer_id, {_CUSTOMER}, c.credit_limit_micros, c.email,
               CAST(c.active AS BOOLEAN) AS active
        FROM {{s}}customers c WHERE c.business_id = {{b}} ORDER BY c.id""",
    "products": f"""
        SELECT p.id AS product_id, {_PRODUCT}, {_PRODUCT_STOCK}
        FROM {{s}}products p WHERE p.business_id = {{b}} ORDER BY p.id""",
    "storefronts": f"""
        SELECT st.id AS storefront_id, {_STOREFRONT}
        FROM {{s}}storefronts st WHERE st.business_id = {{b}} ORDER BY st.id""",
    "forecasts": f"""
        SELECT f.id AS forecast_id, f.cycle, f.customer_id, {_CUSTOMER}, f.product_id, {_PRODUCT},
               f.sales_rep, CAST(f.quantity AS DOUBLE) AS quantity,
               CAST(f.submitted_at AS TIMESTAMP) AS submitted_at
        FROM {{s}}forecasts f
        JOIN {{s}}customers c ON c.id = f.customer_id
        JOIN {{s}}products p ON p.id = f.product_id
        WHERE f.business_id = {{b}} ORDER BY f.id""",
    "inventory": f"""
        SELECT i.storefront_id, {_STOREFRONT}, i.product_id, {_PRODUCT},
               CAST(i.quantity AS DOUBLE) AS quantity, CAST(i.as_of AS DATE) AS as_of, {_PRODUCT_STOCK}
        FROM {{s}}inventory i
        JOIN {{s}}storefronts st ON st.id = i.storefront_id
        JOIN {{s}}products p ON p.id = i.product_id
        WHERE i.business_id = {{b}} ORDER BY i.id""",
}
TABLE_NAMES = tuple(_TABLES)


def copy(request: dict[str, Any]) -> str | None:
    """Write every table of the request's business into its folder; the data token read afterwards.

    The caller compares that token with the one it read before: a different one means an import
    committed during the copy, and the copy is thrown away.
    """
    import duckdb

    folder = Path(request["folder"])
    con = duckdb.connect(
        ":memory:",
        config={
            "threads": 2,
            "memory_limit": request["memory"],
            "temp_directory": str(folder / ".spill"),
            "preserve_insertion_order": False,
        },
    )
    try:
        con.execute("SET enable_progress_bar = false")
        prefix = _attach(con, request)
        business = int(request["business_id"])
        for name, query in _TABLES.items():
            sql = query.format(s=prefix, b=business, lines=_quote(folder / "lines.parquet"))
            out = _quote(folder / f"{name}.parquet")
            con.execute(
                f"COPY ({sql}) TO '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
            )
        row = con.execute(f"SELECT data_token FROM {prefix}businesses WHERE id = {business}").fetchone()
    finally:
        con.close()
    return None if row is None else str(row[0])


def _attach(con: Any, request: dict[str, Any]) -> str:
    """Attach the database read-only as `src`; the prefix that names its tables."""
    from sqlalchemy import make_url

    from snapshots.extensions import load

    url = make_url(request["url"])
    extensions = Path(request["extensions"])
    backend = url.get_backend_name()
    if backend == "sqlite":
        load(con, "sqlite", extensions)
        path = url.database or ""
        if path in ("", ":memory:"):
            raise ValueError("Snapshots need a database file, not an in-memory SQLite database.")
        con.execute(f"ATTACH '{_quote(Path(path).resolve())}' AS src (TYPE sqlite, READ_ONLY)")
        return "src.main."
    if backend == "postgresql":
        load(con, "postgres", extensions)
        con.execute(f"ATTACH '{_sql_text(_libpq_dsn(url))}' AS src (TYPE postgres, READ_ONLY)")
        schema = str(request["schema"]).replace(chr(34), chr(34) * 2)
        return f'src."{schema}".'
    raise ValueError(f"Snapshots cannot read a {backend} database.")


def _libpq_dsn(url: Any) -> str:
    """A libpq keyword/value string for a SQLAlchemy URL (host, port, user, password, dbname, ssl)."""
    parts: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "dbname": url.database,
    }
    for key, value in url.query.items():
        if key in ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "host"):
            parts[key] = value if isinstance(value, str) else value[0]

    def quoted(value: object) -> str:
        text = str(value).replace("\\", "\\\\").replace("'", "\\'")
        return f"'{text}'"

    return " ".join(f"{k}={quoted(v)}" for k, v in parts.items() if v not in (None, ""))


def _quote(path: Path) -> str:
    return path.as_posix().replace("'", "''")


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def main() -> int:
    request = json.loads(sys.stdin.read())
    try:
        token = copy(request)
    except Exception as exc:  # one line for the parent's error message
        print(f"{type(exc).__name__}: {exc}".replace("\n", " "), file=sys.stderr)
        return 1
    print(json.dumps({"token": token}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
