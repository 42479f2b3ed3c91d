"""inventory_valuation: latest stock per storefront and product, value, status (tiny, hand-worked, oracle)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, cast

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.report import ParamError, Report
from core.db import bump_data_version, session_scope
from core.models import Business, InventoryLevel, Product, Storefront
from core.money import to_micros
from core.settings import Settings
from ingest.demo import load_demo
from tests.conftest import new_business
from tests.factories import insert_tiny, raw_frames
from tests.reports.reporting import run_report


def valuation(engine: Engine, settings: Settings, business: Business, *pairs: str) -> Report:
    return run_report(engine, settings.snapshot_dir, business.id, "inventory_valuation", *pairs)


def insert_stock(
    engine: Engine,
    business_id: int,
    fronts: dict[str, str],
    products: dict[str, tuple[str, str, str, float]],
    counts: list[tuple[str, str, float, str]],
) -> None:
    """fronts {code: region}; products {sku: (category, unit_cost, unit_price, reorder_level)};
    counts [(storefront, sku, quantity, as_of)]."""
    with session_scope(engine) as s:
        front_ids, product_ids = {}, {}
        for code, region in fronts.items():
            shop = Storefront(business_id=business_id, code=code, name=f"Store {code}", region=region)
            s.add(shop)
            s.flush()
            front_ids[code] = shop.id
        for sku, (category, cost, price, reorder) in products.items():
            product = Product(
                business_id=business_id,
                sku=sku,
                name=f"Product {sku}",
                category=category,
                unit_cost_micros=to_micros(cost),
                unit_price_micros=to_micros(price),
                reorder_level=reorder,
            )
            s.add(product)
            s.flush()
            product_ids[sku] = product.id
        for front, sku, quantity, as_of in counts:
            s.add(
                InventoryLevel(
                    business_id=business_id,
                    storefront_id=front_ids[front],
                    product_id=product_ids[sku],
                    quantity=quantity,
                    as_of=dt.date.fromisoformat(as_of),
                )
            )
        bump_data_version(s, business_id)


def assert_totals_are_sums(report: Report) -> None:
    items = report.tables["by_item"].frame
    for key in ("inventory_value", "retail_value"):
        total = report.kpi(key).value
        assert sum(items[key], Decimal(0)) == total, key
        assert sum(report.tables["by_storefront"].frame[key], Decimal(0)) == total, key
        assert sum(report.tables["by_category"].frame[key], Decimal(0)) == total, key
    status = report.tables["status_counts"].frame
    assert sum(status["value"], Decimal(0)) == report.kpi("inventory_value").value
    assert int(status["items"].sum()) == report.kpi("items").value == len(items)
    for name in ("out_of_stock", "low_stock", "in_stock"):
        assert report.kpi(name).value == int((items["status"] == name).sum()), name


# --- (1) the tiny example -----------------------------------------------------------------------


def test_tiny_stock_status_and_value(engine: Engine, settings: Settings, business: Business) -> None:
    insert_tiny(engine, business.id)
    report = valuation(engine, settings, business, "start=2025-01-01", "end=2025-03-31")
    rows = {r["sku"]: r for r in report.tables["by_item"].records()}
    assert (rows["P1"]["status"], rows["P1"]["inventory_value"]) == ("out_of_stock", Decimal(0))
    assert rows["P2"]["status"] == "low_stock"  # 7 <= reorder level 10
    assert (rows["P2"]["inventory_value"], rows["P2"]["retail_value"]) == (Decimal(28), Decimal(70))
    kpis = {k.key: k.value for k in report.kpis}
    assert (kpis["inventory_value"], kpis["retail_value"], kpis["items"]) == (Decimal(28), Decimal(70), 2)
    assert (kpis["out_of_stock"], kpis["low_stock"], kpis["in_stock"]) == (1, 1, 0)
    assert [(r["status"], r["items"]) for r in report.tables["status_counts"].records()] == [
        ("out_of_stock", 1),
        ("low_stock", 1),
        ("in_stock", 0),
    ]
    assert [c.key for c in report.tables["by_item"].columns] == [
        "storefront_code",
        "storefront_name",
        "sku",
        "product_name",
        "category",
        "quantity",
        "reorder_level",
        "status",
        "unit_cost",
        "unit_price",
        "inventory_value",
        "retail_value",
        "as_of",
    ]
    assert_totals_are_sums(report)


# --- (2) hand-worked fixtures -------------------------------------------------------------------

FRONTS = {"N1": "North", "S1": "South"}
PRODUCTS = {
    "A": ("Drinks", "2.50", "4.00", 10.0),
    "B": ("Snacks", "0.000001", "0.000003", 0.0),
    "C": ("Snacks", "1.00", "3.00", 5.0),
}


@pytest.fixture
def stock(engine: Engine, business: Business) -> Business:
    insert_stock(
        engine,
        business.id,
        FRONTS,
        PRODUCTS,
        [
            ("N1", "A", 50.0, "2025-05-01"),
            ("N1", "A", 12.5, "2025-06-15"),  # latest on or before 2025-06-30
            ("N1", "A", 99.0, "2025-07-01"),  # after the as-of date: ignored
            ("S1", "A", 10.0, "2025-06-30"),  # = reorder level: low
            ("N1", "B", 2.5, "2025-06-01"),  # 2.5 micros -> 2 (half-even); retail 7.5 -> 8
            ("S1", "B", 3.5, "2025-06-01"),  # 3.5 micros -> 4; retail 10.5 -> 10
            ("N1", "C", 0.0, "2025-06-20"),  # out
            ("S1", "C", 5.001, "2025-06-20"),  # just above the reorder level: in stock
            ("S1", "C", 1.0, "2025-07-02"),  # after: ignored
        ],
    )
    return business


def test_latest_count_value_and_status(engine: Engine, settings: Settings, stock: Business) -> None:
    report = valuation(engine, settings, stock, "start=2025-06-01", "end=2025-06-30")
    rows = {(r["storefront_code"], r["sku"]): r for r in report.tables["by_item"].records()}
    assert list(rows) == [("N1", "A"), ("N1", "B"), ("N1", "C"), ("S1", "A"), ("S1", "B"), ("S1", "C")]
    assert (rows["N1", "A"]["quantity"], rows["N1", "A"]["as_of"]) == (12.5, dt.date(2025, 6, 15))
    assert rows["N1", "A"]["inventory_value"] == Decimal("31.25")
    assert rows["N1", "A"]["retail_value"] == Decimal("50")
    assert rows["N1", "A"]["status"] == "in_stock"
    assert rows["S1", "A"]["status"] == "low_stock"
    assert (rows["N1", "B"]["inventory_value"], rows["N1", "B"]["retail_value"]) == (
        Decimal("0.000002"),
        Decimal("0.000008"),
    )
    assert (rows["S1", "B"]["inventory_value"], rows["S1", "B"]["retail_value"]) == (
        Decimal("0.000004"),
        Decimal("0.000010"),
    )
    assert rows["N1", "C"]["status"] == "out_of_stock"
    assert (rows["S1", "C"]["status"], rows["S1", "C"]["inventory_value"]) == ("in_stock", Decimal("5.001"))
    assert report.kpi("inventory_value").value == Decimal("31.25") + 25 + Decimal("0.000006") + Decimal(
        "5.001"
    )
    assert_totals_are_sums(report)


@pytest.mark.parametrize(
    ("end", "n1_a_quantity"),
    [("2025-05-01", 50.0), ("2025-06-14", 50.0), ("2025-06-15", 12.5), ("2025-07-31", 99.0)],
)
def test_as_of_is_the_period_end(
    engine: Engine, settings: Settings, stock: Business, end: str, n1_a_quantity: float
) -> None:
    report = valuation(engine, settings, stock, "start=2025-01-01", f"end={end}")
    rows = {(r["storefront_code"], r["sku"]): r["quantity"] for r in report.tables["by_item"].records()}
    assert rows["N1", "A"] == n1_a_quantity


@pytest.mark.parametrize(
    ("pairs", "keys"),
    [
        (("region=North",), {("N1", "A"), ("N1", "B"), ("N1", "C")}),  # the storefront's region
        (("storefront=S1", "category=Snacks"), {("S1", "B"), ("S1", "C")}),
        (("product=A,C",), {("N1", "A"), ("S1", "A"), ("N1", "C"), ("S1", "C")}),
        (("region=Nowhere",), set()),
    ],
)
def test_filters(
    engine: Engine, settings: Settings, stock: Business, pairs: tuple[str, ...], keys: set[tuple[str, str]]
) -> None:
    report = valuation(engine, settings, stock, "start=2025-06-01", "end=2025-06-30", *pairs)
    got = {(r["storefront_code"], r["sku"]) for r in report.tables["by_item"].records()}
    assert got == keys
    assert report.is_empty == (not keys)
    assert_totals_are_sums(report)


def test_breakdowns_sorted_by_value(engine: Engine, settings: Settings, stock: Business) -> None:
    report = valuation(engine, settings, stock, "start=2025-06-01", "end=2025-06-30")
    by_category = [(r["category"], r["inventory_value"]) for r in report.tables["by_category"].records()]
    assert by_category == [("Drinks", Decimal("56.25")), ("Snacks", Decimal("5.001006"))]
    by_front = [
        (r["storefront_code"], r["items"], r["region"]) for r in report.tables["by_storefront"].records()
    ]
    assert by_front == [("N1", 3, "North"), ("S1", 3, "South")]
    quantities = [r["quantity"] for r in report.tables["by_storefront"].records()]
    assert quantities == [15.0, 18.501]  # summed as exact thousandths
    with pytest.raises(ParamError, match="cannot be filtered by 'customer'"):
        valuation(engine, settings, stock, "start=2025-06-01", "end=2025-06-30", "customer=X")


# --- (3) oracle on generated data ---------------------------------------------------------------

TODAY = dt.date(2025, 1, 10)


@pytest.fixture(scope="module")
def demo(engine: Engine) -> Iterator[tuple[Business, dict[str, pd.DataFrame]]]:
    business = new_business(engine)
    load_demo(engine, business.code, rows=3000, seed=3, today=TODAY)
    yield business, raw_frames(engine, business.id)


def _value(quantity: float, unit_micros: int) -> Decimal:
    exact = Decimal(str(quantity)) * int(unit_micros)
    return exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN) / 1_000_000


@pytest.mark.parametrize(
    "pairs",
    [
        (),
        ("region=North",),
        ("storefront=CEN,STH", "category=Beverages"),
    ],
)
def test_oracle_on_demo_data(
    engine: Engine, settings: Settings, demo: tuple[Business, dict[str, pd.DataFrame]], pairs: tuple[str, ...]
) -> None:
    business, raw = demo
    inv = raw["inventory"][raw["inventory"]["as_of"] <= TODAY]
    inv = inv.sort_values("as_of").groupby(["storefront_id", "product_id"]).tail(1)
    fronts = raw["storefronts"].rename(columns={"id": "storefront_id", "region": "front_region"})
    inv = inv.merge(fronts[["storefront_id", "front_region"]], on="storefront_id")
    products = raw["products"].rename(columns={"id": "product_id"})[["product_id", "category"]]
    inv = inv.merge(products, on="product_id")
    options = dict(p.split("=") for p in pairs)
    if "region" in options:
        inv = inv[inv["front_region"] == options["region"]]
    if "storefront" in options:
        inv = inv[inv["storefront_code"].isin(options["storefront"].split(","))]
    if "category" in options:
        inv = inv[inv["category"] == options["category"]]
    assert len(inv) > 10
    report = valuation(engine, settings, business, "start=2024-12-01", f"end={TODAY}", *pairs)
    got = report.tables["by_item"].frame.set_index(["storefront_code", "sku"])
    assert len(got) == len(inv)
    statuses = {"out_of_stock": 0, "low_stock": 0, "in_stock": 0}
    total = Decimal(0)
    for r in cast("Iterator[Any]", inv.itertuples()):  # pandas-stubs types each field as any scalar
        row = got.loc[(r.storefront_code, r.sku)]
        value = _value(r.quantity, r.unit_cost_micros)
        assert row["inventory_value"] == value
        assert row["retail_value"] == _value(r.quantity, r.unit_price_micros)
        status = (
            "out_of_stock"
            if r.quantity == 0
            else "low_stock"
            if r.quantity <= r.reorder_level
            else "in_stock"
        )
        assert row["status"] == status
        statuses[status] += 1
        total += value
    assert report.kpi("inventory_value").value == total
    assert {k: report.kpi(k).value for k in statuses} == statuses
    by_category = report.tables["by_category"].frame
    values = list(by_category["inventory_value"])
    assert values == sorted(values, reverse=True)
    assert_totals_are_sums(report)


# --- (4) an empty period ------------------------------------------------------------------------


def test_empty_before_any_count(engine: Engine, settings: Settings, stock: Business) -> None:
    report = valuation(engine, settings, stock, "start=2025-01-01", "end=2025-01-31")
    assert report.is_empty
    assert report.kpi("inventory_value").value == Decimal(0)
    assert report.kpi("items").value == 0
    for table in report.tables.values():
        assert set(table.frame.columns) >= {c.key for c in table.columns}, table.name
