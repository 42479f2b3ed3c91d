"""Orders per product and per category (sales_summary, kpi_dashboard) against a pandas oracle.

The snapshot counts them as rows of its (sale, product) and (sale, category) pair tables; the
oracle counts distinct orders over the raw lines. Demo data plus one order that lists the same
product twice and another product of the same category, with filters of each kind.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from core.db import bump_data_version, session_scope
from core.models import Business, Product, Sale, SaleLine
from core.settings import Settings
from exporters.json_export import report_document
from ingest.demo import load_demo
from tests.factories import raw_frames
from tests.reports.reporting import run_report

TODAY = dt.date(2026, 11, 21)
START, END = "2026-01-01", "2026-06-30"


@pytest.fixture(scope="module")
def demo(engine: Engine) -> int:
    code = f"d{uuid.uuid4().hex[:8]}"
    load_demo(engine, code, rows=4000, seed=7, today=TODAY)
    with session_scope(engine) as s:
        business = s.scalar(select(Business).where(Business.code == code))
        assert business is not None
        sale = s.scalars(
            select(Sale).where(
                Sale.business_id == business.id,
                Sale.status == "completed",
                Sale.order_date >= dt.date(2026, 2, 1),
            )
        ).first()
        assert sale is not None
        line = s.scalars(select(SaleLine).where(SaleLine.sale_id == sale.id)).first()
        assert line is not None
        product = s.get(Product, line.product_id)
        assert product is not None
        sibling = s.scalars(
            select(Product).where(
                Product.business_id == business.id,
                Product.category == product.category,
                Product.id != product.id,
            )
        ).first()
        assert sibling is not None
        used = {p for p in s.scalars(select(SaleLine.product_id).where(SaleLine.sale_id == sale.id))}
        top = s.scalar(select(func.max(SaleLine.line_no)).where(SaleLine.sale_id == sale.id)) or 0
        extra = [(product, 1)] + ([(sibling, 2)] if sibling.id not in used else [])
        for n, (prod, qty) in enumerate(extra, start=1):  # the same SKU again, and a same-category SKU
            net = qty * prod.unit_price_micros
            s.add(
                SaleLine(
                    business_id=business.id,
                    sale_id=sale.id,
                    line_no=top + n,
                    product_id=prod.id,
                    quantity=qty,
                    unit_price_micros=prod.unit_price_micros,
                    unit_cost_micros=prod.unit_cost_micros,
                    discount=0,
                    net_micros=net,
                    cost_micros=qty * prod.unit_cost_micros,
                )
            )
            sale.net_micros += net
            sale.cost_micros += qty * prod.unit_cost_micros
        bump_data_version(s, business.id)
        return business.id


def _oracle(lines: pd.DataFrame, keys: list[str], filters: dict[str, list[str]]) -> dict[Any, int]:
    cols = {"region": "region", "category": "category", "product": "sku", "storefront": "storefront_code"}
    cur = lines[
        (lines["status"] == "completed")
        & (lines["order_date"] >= dt.date.fromisoformat(START))
        & (lines["order_date"] <= dt.date.fromisoformat(END))
    ]
    for dim, values in filters.items():
        cur = cur[cur[cols[dim]].isin(values)]
    counted = cur.groupby(keys)["sale_id"].nunique()
    return {k: int(v) for k, v in counted.items()}


@pytest.mark.parametrize(
    "filters",
    [{}, {"region": ["North"]}, {"category": ["Bakery", "Beverages"]}, {"product": []}],
    ids=["none", "region", "category", "product"],
)
def test_orders_per_product_and_category_match_distinct_orders(
    engine: Engine, settings: Settings, demo: int, filters: dict[str, list[str]]
) -> None:
    lines = raw_frames(engine, demo)["lines"]
    if "product" in filters:  # two products of the repeated order's category
        repeated = lines.groupby(["sale_id", "sku"]).size()
        _sale, sku = repeated[repeated > 1].index[0]
        category = lines.loc[lines["sku"] == sku, "category"].iloc[0]
        other = lines.loc[(lines["category"] == category) & (lines["sku"] != sku), "sku"].iloc[0]
        filters = {"product": [sku, other]}
    pairs = [f"start={START}", f"end={END}", *(f"{k}={','.join(v)}" for k, v in filters.items())]
    tables = report_document(run_report(engine, settings.snapshot_dir, demo, "sales_summary", *pairs))[
        "tables"
    ]
    by_product = {r["sku"]: r["orders"] for r in tables["by_product"]}
    by_category = {r["category"]: r["orders"] for r in tables["by_category"]}
    assert by_product == _oracle(lines, ["sku"], filters)
    assert by_category == _oracle(lines, ["category"], filters)
    assert by_product and by_category
    kpi = report_document(run_report(engine, settings.snapshot_dir, demo, "kpi_dashboard", *pairs))["tables"]
    oracle = _oracle(lines, ["sku"], filters)
    assert all(oracle[r["sku"]] == r["orders"] for r in kpi["top_products"])
    assert {r["category"]: r["orders"] for r in kpi["by_category"]} == _oracle(lines, ["category"], filters)


def test_the_demo_order_lists_a_product_twice(engine: Engine, demo: int) -> None:
    lines = raw_frames(engine, demo)["lines"]
    assert (lines.groupby(["sale_id", "sku"]).size() > 1).any()  # the case the pair tables exist for
