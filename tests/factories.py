"""Test data: the hand-checked tiny example, and raw rows for independent (pandas) oracles."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from core.db import make_engine, session_scope
from core.models import (
    Customer,
    Forecast,
    InventoryLevel,
    Payment,
    Product,
    Sale,
    SaleLine,
    Storefront,
)
from core.money import line_cost_micros, line_net_micros, to_micros

# A copy of ../shared/examples/tiny (the hand-checked worked example), so a clone tests alone.
TINY_DIR = Path(__file__).resolve().parent / "fixtures" / "tiny"
TINY_ENTITIES = ("storefronts", "customers", "products", "sales", "payments", "forecasts", "inventory")


def tiny_rows(entity: str, folder: Path = TINY_DIR) -> list[dict[str, str]]:
    with open(folder / f"{entity}.csv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def insert_tiny(engine: Engine, business_id: int, folder: Path = TINY_DIR) -> None:
    """Insert the tiny example with plain ORM objects (independent of the importer)."""
    with session_scope(engine) as s:
        fronts: dict[str, int] = {}
        for r in tiny_rows("storefronts", folder):
            f = Storefront(business_id=business_id, code=r["code"], name=r["name"], region=r["region"])
            s.add(f)
            s.flush()
            fronts[r["code"]] = f.id
        custs: dict[str, int] = {}
        for r in tiny_rows("customers", folder):
            c = Customer(
                business_id=business_id,
                customer_code=r["customer_code"],
                name=r["name"],
                customer_type=r["customer_type"],
                region=r["region"],
                credit_limit_micros=to_micros(r["credit_limit"]),
                email=r["email"],
                active=r["active"] == "true",
            )
            s.add(c)
            s.flush()
            custs[r["customer_code"]] = c.id
        prods: dict[str, int] = {}
        for r in tiny_rows("products", folder):
            p = Product(
                business_id=business_id,
                sku=r["sku"],
                name=r["name"],
                category=r["category"],
                unit_cost_micros=to_micros(r["unit_cost"]),
                unit_price_micros=to_micros(r["unit_price"]),
                reorder_level=float(r["reorder_level"]),
            )
            s.add(p)
            s.flush()
            prods[r["sku"]] = p.id
        sales: dict[str, Sale] = {}
        line_nos: dict[str, int] = {}  # lines of each order so far: a line's number is its position
        for r in tiny_rows("sales", folder):
            sale = sales.get(r["order_id"])
            if sale is None:
                sale = Sale(
                    business_id=business_id,
                    order_id=r["order_id"],
                    order_date=dt.date.fromisoformat(r["order_date"]),
                    customer_id=custs[r["customer_code"]],
                    storefront_id=fronts[r["storefront"]],
                    sales_rep=r["sales_rep"],
                    status=r["status"],
                    net_micros=0,
                    cost_micros=0,
                )
                s.add(sale)
                s.flush()
                sales[r["order_id"]] = sale
            line_nos[r["order_id"]] = line_nos.get(r["order_id"], 0) + 1
            q, price, cost, disc = (
                Decimal(r[k]) for k in ("quantity", "unit_price", "unit_cost", "discount")
            )
            net, line_cost = line_net_micros(q, price, disc), line_cost_micros(q, cost)
            s.add(
                SaleLine(
                    business_id=business_id,
                    sale_id=sale.id,
                    line_no=line_nos[r["order_id"]],
                    product_id=prods[r["sku"]],
                    quantity=float(q),
                    unit_price_micros=to_micros(price),
                    unit_cost_micros=to_micros(cost),
                    discount=float(disc),
                    net_micros=net,
                    cost_micros=line_cost,
                )
            )
            sale.net_micros += net
            sale.cost_micros += line_cost
        for r in tiny_rows("payments", folder):
            s.add(
                Payment(
                    business_id=business_id,
                    payment_id=r["payment_id"],
                    sale_id=sales[r["order_id"]].id,
                    paid_at=dt.datetime.fromisoformat(r["paid_at"]),
                    amount_micros=to_micros(r["amount"]),
                    method=r["method"],
                )
            )
        for r in tiny_rows("forecasts", folder):
            s.add(
                Forecast(
                    business_id=business_id,
                    cycle=r["cycle"],
                    customer_id=custs[r["customer_code"]],
                    product_id=prods[r["sku"]],
                    sales_rep=r["sales_rep"],
                    quantity=float(r["quantity"]),
                    submitted_at=dt.datetime.fromisoformat(r["submitted_at"]),
                )
            )
        for r in tiny_rows("inventory", folder):
            s.add(
                InventoryLevel(
                    business_id=business_id,
                    storefront_id=fronts[r["storefront"]],
                    product_id=prods[r["sku"]],
                    quantity=float(r["quantity"]),
                    as_of=dt.date.fromisoformat(r["as_of"]),
                )
            )
        from core.db import bump_data_version

        bump_data_version(s, business_id)


def raw_frames(engine: Engine, business_id: int) -> dict[str, pd.DataFrame]:
    """The business's raw rows straight from the database, for pandas oracles.

    lines: one row per sale line joined with its sale, customer, product and storefront, with
    Decimal `net` and `cost` recomputed from quantity x price x (1 - discount) in Python.
    """
    b = {"b": business_id}
    with engine.connect() as conn:
        lines = pd.read_sql(
            text(
                """
            SELECT l.id AS line_id, s.id AS sale_id, s.order_id, s.order_date, s.status, s.sales_rep,
                   c.customer_code, c.name AS customer_name, c.customer_type, c.region,
                   st.code AS storefront_code, st.name AS storefront_name,
                   p.sku, p.name AS product_name, p.category,
                   l.quantity, l.unit_price_micros, l.unit_cost_micros, l.discount,
                   l.net_micros, l.cost_micros
            FROM sale_lines l JOIN sales s ON s.id = l.sale_id
            JOIN customers c ON c.id = s.customer_id JOIN products p ON p.id = l.product_id
            LEFT JOIN storefronts st ON st.id = s.storefront_id
            WHERE l.business_id = :b
            """
            ),
            conn,
            params=b,
        )
        tables: dict[str, pd.DataFrame] = {"lines": lines}
        for name, sql in {
            "sales": "SELECT s.*, c.customer_code, c.region, c.customer_type, c.name AS customer_name "
            "FROM sales s JOIN customers c ON c.id = s.customer_id WHERE s.business_id = :b",
            "payments": "SELECT p.*, s.order_id, s.status AS sale_status, s.order_date, s.customer_id "
            "FROM payments p JOIN sales s ON s.id = p.sale_id WHERE p.business_id = :b",
            "customers": "SELECT * FROM customers WHERE business_id = :b",
            "products": "SELECT * FROM products WHERE business_id = :b",
            "storefronts": "SELECT * FROM storefronts WHERE business_id = :b",
            "forecasts": "SELECT f.*, c.customer_code, p.sku FROM forecasts f "
            "JOIN customers c ON c.id = f.customer_id JOIN products p ON p.id = f.product_id "
            "WHERE f.business_id = :b",
            "inventory": "SELECT i.*, st.code AS storefront_code, p.sku, p.unit_cost_micros, "
            "p.unit_price_micros, p.reorder_level FROM inventory i "
            "JOIN storefronts st ON st.id = i.storefront_id JOIN products p ON p.id = i.product_id "
            "WHERE i.business_id = :b",
        }.items():
            tables[name] = pd.read_sql(text(sql), conn, params=b)
    for frame in tables.values():
        for col in frame.columns:
            if col in ("order_date", "as_of"):
                frame[col] = pd.to_datetime(frame[col]).dt.date
            elif col in ("paid_at", "submitted_at"):
                frame[col] = pd.to_datetime(frame[col])
    lines["net"] = pd.Series([Decimal(int(v)) / 1_000_000 for v in lines["net_micros"]], index=lines.index)
    lines["cost"] = pd.Series([Decimal(int(v)) / 1_000_000 for v in lines["cost_micros"]], index=lines.index)
    return tables


def add_one_line_sale(
    s: Session,
    business_id: int,
    *,
    order_id: str,
    day: dt.date,
    customer_id: int,
    product_id: int,
    net: int,
    cost: int,
    **fields: Any,
) -> Sale:
    """A completed sale of one line (quantity 1 at `net` micros, costing `cost`), added and flushed;
    `fields` set other columns of the sale (storefront_id, sales_rep, status)."""
    sale = Sale(
        business_id=business_id,
        order_id=order_id,
        order_date=day,
        customer_id=customer_id,
        **{"sales_rep": "ana", "status": "completed", **fields},
        net_micros=net,
        cost_micros=cost,
    )
    s.add(sale)
    s.flush()
    s.add(
        SaleLine(
            business_id=business_id,
            sale_id=sale.id,
            line_no=1,
            product_id=product_id,
            quantity=1.0,
            unit_price_micros=net,
            unit_cost_micros=cost,
            discount=0.0,
            net_micros=net,
            cost_micros=cost,
        )
    )
    return sale


def money(value: Any) -> Decimal:
    """A JSON or Decimal money value as Decimal rounded to cents (for comparisons)."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


__all__ = [
    "TINY_DIR",
    "TINY_ENTITIES",
    "add_one_line_sale",
    "insert_tiny",
    "make_engine",
    "money",
    "raw_frames",
    "tiny_rows",
]
