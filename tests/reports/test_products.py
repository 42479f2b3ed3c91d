"""product_analysis: tiny example, hand-worked ABC and movement fixtures, a pandas oracle on demo data."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import cast

import pandas as pd
import pytest
from sqlalchemy import Engine

from core.models import Business
from core.settings import Settings
from exporters.json_export import report_document
from ingest.demo import load_demo
from tests.factories import insert_tiny, money, raw_frames
from tests.reports.reporting import run_report
from tests.reports.test_customers import (
    DEMO_TODAY,
    EXPECTED,
    TINY,
    Row,
    abc_classes,
    completed_lines,
    in_period,
    insert_book,
    kpis_of,
    micros_to_decimal,
)

SLUG = "product_analysis"


@pytest.fixture
def tiny(engine: Engine, business: Business) -> Business:
    insert_tiny(engine, business.id)
    return business


@pytest.fixture(scope="module")
def demo(engine: Engine) -> Iterator[tuple[int, dict[str, pd.DataFrame]]]:
    summary = load_demo(engine, f"pa{uuid.uuid4().hex[:8]}", rows=3000, seed=7, today=DEMO_TODAY)
    yield summary.business_id, raw_frames(engine, summary.business_id)


# --- (1) the tiny example -------------------------------------------------------------------------


def test_tiny_products(engine: Engine, settings: Settings, tiny: Business) -> None:
    doc = report_document(run_report(engine, settings.snapshot_dir, tiny.id, SLUG, *TINY))
    kpis = doc["kpis"]
    for key in ("revenue", "gross_profit"):
        assert money(kpis[key]) == money(EXPECTED["kpis"][key])
    assert kpis["margin_pct"] == pytest.approx(EXPECTED["kpis"]["margin_pct"], rel=1e-12)
    assert (kpis["products_sold"], kpis["quantity"], kpis["not_sold"]) == (2, 120, 0)
    # P1: O1 10 + O2 100 + O9 2 = 112 (1510.00); P2: O1 5 + O5 3 = 8 (75.00)
    rows = {r["sku"]: r for r in doc["tables"]["products"]}
    assert [r["sku"] for r in doc["tables"]["products"]] == ["P1", "P2"]
    p1, p2 = rows["P1"], rows["P2"]
    assert (p1["quantity"], money(p1["revenue"]), money(p1["gross_profit"]), p1["orders"]) == (
        112,
        money(1510),
        money(390),
        3,
    )
    assert (p2["quantity"], money(p2["revenue"]), money(p2["gross_profit"]), p2["orders"]) == (
        8,
        money(75),
        money(43),
        2,
    )
    # P1 alone is 95.3 % of revenue: A as the first item; P2 -> 100 % -> C.
    assert (p1["abc_class"], p2["abc_class"]) == ("A", "C")
    assert (p1["movement"], p2["movement"]) == ("fast", "slow")
    assert p1["velocity_per_day"] == pytest.approx(112 / 90)
    assert money(p1["avg_unit_price"]) == money(Decimal(1510) / 112)
    trend = {r["month"]: r for r in doc["tables"]["trend"]}
    assert list(trend) == ["2025-01", "2025-02", "2025-03"]
    assert [trend[m]["quantity"] for m in trend] == [117, 0, 3]
    for month, figures in EXPECTED["by_month"].items():
        assert money(trend[month]["revenue"]) == money(figures["revenue"])
    slow = doc["tables"]["slow_movers"]
    # stock as of 31 March: P1 out of stock (0), P2 7 units
    assert [(r["sku"], r["stock_quantity"]) for r in slow] == [("P2", 7), ("P1", 0)]
    categories = {r["category"]: money(r["revenue"]) for r in doc["tables"]["by_category"]}
    assert categories == {"Drinks": money(1510), "Snacks": money(75)}


# --- (2) hand-worked fixtures ---------------------------------------------------------------------

MOVEMENT_CASES = {
    # n sold -> band = ceil(n / 5): fast = the first `band`, slow = the last `band`
    "one_sold": ({"A": "5"}, {"A": "fast"}),
    "two_sold": ({"A": "5", "B": "1"}, {"A": "fast", "B": "slow"}),
    "five_sold": (
        {"A": "50", "B": "40", "C": "30", "D": "20", "E": "10"},
        {"A": "fast", "B": "normal", "C": "normal", "D": "normal", "E": "slow"},
    ),
    "six_sold": (
        {"A": "60", "B": "50", "C": "40", "D": "30", "E": "20", "F": "10"},
        {"A": "fast", "B": "fast", "C": "normal", "D": "normal", "E": "slow", "F": "slow"},
    ),
    # equal quantities: SKU order decides
    "ties_by_sku": (
        {"B": "10", "A": "10", "C": "10", "D": "10", "E": "10"},
        {"A": "fast", "B": "normal", "C": "normal", "D": "normal", "E": "slow"},
    ),
}


@pytest.mark.parametrize("quantities, expected", MOVEMENT_CASES.values(), ids=MOVEMENT_CASES.keys())
def test_movement(
    engine: Engine,
    settings: Settings,
    business: Business,
    quantities: dict[str, str],
    expected: dict[str, str],
) -> None:
    rows = [Row(f"O-{sku}", "2025-01-10", "C1", sku, qty, "1") for sku, qty in quantities.items()]
    insert_book(engine, business.id, rows, products={"Z-UNSOLD": "General", "Y-UNSOLD": "General"})
    report = run_report(
        engine, settings.snapshot_dir, business.id, SLUG, "start=2025-01-01", "end=2025-01-31"
    )
    table = report.tables["products"].frame.set_index("sku")
    assert dict(table["movement"]) == {**expected, "Y-UNSOLD": "none", "Z-UNSOLD": "none"}
    kpis = kpis_of(report)
    values = list(expected.values())
    assert (kpis["fast_movers"], kpis["slow_movers"], kpis["not_sold"]) == (
        values.count("fast"),
        values.count("slow"),
        2,
    )
    assert kpis["products_sold"] == len(quantities)
    # the bottom of the catalogue: unsold first (by SKU), then the least sold
    slow = report.tables["slow_movers"].frame
    least = sorted(quantities, key=lambda s: (Decimal(quantities[s]), s))
    assert list(slow["sku"]) == ["Y-UNSOLD", "Z-UNSOLD", *least][:10]
    fast = report.tables["fast_movers"].frame
    assert list(fast["sku"]) == sorted(quantities, key=lambda s: (-Decimal(quantities[s]), s))[:10]


def test_abc_negative_margin_and_unsold(engine: Engine, settings: Settings, business: Business) -> None:
    rows = [
        Row("O1", "2025-01-10", "C1", "P-B", "8", "10", cost="6"),  # 80
        Row("O2", "2025-01-11", "C1", "P-A", "1", "15", cost="20"),  # 15, sold at a loss
        Row("O3", "2025-01-12", "C2", "P-C", "1", "5", cost="1"),  # 5
        Row("O4", "2025-01-13", "C2", "P-Z", "2", "10", discount="1"),  # sold, zero revenue
        Row("O5", "2025-01-14", "C2", "P-D", "1", "500", status="refunded"),
    ]
    insert_book(engine, business.id, rows, products={"P-N": "Other"})
    report = run_report(
        engine, settings.snapshot_dir, business.id, SLUG, "start=2025-01-01", "end=2025-01-31"
    )
    table = report.tables["products"].frame.set_index("sku")
    assert list(table.index) == ["P-B", "P-A", "P-C", "P-D", "P-N", "P-Z"]
    assert list(table["abc_class"][:3]) == ["A", "B", "C"]  # 80 % -> A, 95 % -> B
    assert table[["abc_class", "cumulative_share_pct"]].iloc[3:].isna().all().all()
    assert table.loc["P-A", "gross_profit"] == Decimal(-5)
    assert table.loc["P-A", "margin_pct"] == pytest.approx(-5 / 15)
    assert table.loc["P-Z", "movement"] != "none" and table.loc["P-Z", "quantity"] == 2
    assert table.loc["P-D", "movement"] == "none" and table.loc["P-N", "movement"] == "none"
    assert pd.isna(cast(float, table.loc["P-N", "avg_unit_price"]))
    highlight = report.tables["products"].highlights[0]
    assert (highlight.column, highlight.op, highlight.value) == ("margin_pct", "lt", 0)
    kpis = kpis_of(report)
    assert (kpis["a_products"], kpis["b_products"], kpis["c_products"]) == (1, 1, 1)
    assert (kpis["negative_margin_products"], kpis["not_sold"], kpis["products_sold"]) == (1, 2, 4)
    assert kpis["revenue"] == Decimal(100) == sum(table["revenue"])


# --- (3) oracle on generated data -----------------------------------------------------------------

ORACLE_CASES = {
    "whole_months": (("2024-11-01", "2025-02-28"), {}),
    "region_north": (("2024-11-01", "2025-02-28"), {"region": ["North"]}),
    "days_category": (("2024-12-10", "2025-01-20"), {"category": ["Snacks", "Dairy", "Paper Goods"]}),
    "storefront": (("2024-12-10", "2025-01-20"), {"storefront": ["NTH", "CEN"]}),
    # ends after the demo's stock count (today), so slow movers carry stock on hand
    "with_stock": (("2025-04-01", "2025-06-30"), {"storefront": ["NTH", "STH"]}),
}


@pytest.mark.parametrize("cur, filters", ORACLE_CASES.values(), ids=ORACLE_CASES.keys())
def test_matches_pandas_oracle(
    engine: Engine,
    settings: Settings,
    demo: tuple[int, dict[str, pd.DataFrame]],
    cur: tuple[str, str],
    filters: dict[str, list[str]],
) -> None:
    business_id, frames = demo
    pairs = [f"{k}={','.join(v)}" for k, v in filters.items()]
    report = run_report(
        engine, settings.snapshot_dir, business_id, SLUG, f"start={cur[0]}", f"end={cur[1]}", *pairs
    )
    start, end = (dt.date.fromisoformat(d) for d in cur)
    days = (end - start).days + 1
    now = in_period(completed_lines(frames["lines"], filters), *cur)
    catalogue = frames["products"]
    if "category" in filters:
        catalogue = catalogue[catalogue["category"].isin(filters["category"])]
    by_sku = now.groupby("sku")
    quantity = by_sku["quantity"].sum().to_dict()
    revenue = by_sku["net_micros"].sum().to_dict()
    cost = by_sku["cost_micros"].sum().to_dict()
    orders = by_sku["sale_id"].nunique().to_dict()
    abc = abc_classes(revenue)
    sold = sorted((s for s in quantity if quantity[s] > 0), key=lambda s: (-quantity[s], s))
    band = math.ceil(len(sold) / 5)
    movement = {s: "none" for s in catalogue["sku"]}
    for position, sku in enumerate(sold, start=1):
        movement[sku] = "fast" if position <= band else "slow" if position > len(sold) - band else "normal"
    inv = frames["inventory"]
    inv = inv[inv["as_of"] <= end]
    if "storefront" in filters:
        inv = inv[inv["storefront_code"].isin(filters["storefront"])]
    latest = inv.sort_values("as_of").groupby(["storefront_id", "product_id"]).tail(1)
    stock = latest.groupby("sku")["quantity"].sum().to_dict()
    total = sum(revenue.values())
    assert total > 0 and band > 0

    table = report.tables["products"].frame
    expected_order = sorted(catalogue["sku"], key=lambda s: (revenue.get(s, 0) <= 0, -revenue.get(s, 0), s))
    assert list(table["sku"]) == expected_order
    for row in table.to_dict("records"):
        sku = row["sku"]
        assert row["quantity"] == pytest.approx(quantity.get(sku, 0.0))
        assert row["revenue"] == micros_to_decimal(revenue.get(sku, 0))
        assert row["gross_profit"] == micros_to_decimal(revenue.get(sku, 0) - cost.get(sku, 0))
        assert row["orders"] == orders.get(sku, 0)
        assert row["velocity_per_day"] == pytest.approx(quantity.get(sku, 0.0) / days)
        assert row["movement"] == movement[sku]
        if sku in abc:
            assert (row["rank"], row["abc_class"]) == abc[sku][0::2]
            assert row["cumulative_share_pct"] == pytest.approx(float(abc[sku][1]), rel=1e-12)
        else:
            assert pd.isna(row["abc_class"])
    kpis = kpis_of(report)
    assert kpis["revenue"] == micros_to_decimal(total) == sum(table["revenue"])
    assert kpis["gross_profit"] == micros_to_decimal(total - sum(cost.values()))
    assert kpis["quantity"] == pytest.approx(sum(quantity.values()))
    assert kpis["products_sold"] == len(sold)
    assert kpis["not_sold"] == len(catalogue) - len(sold)
    assert [kpis["a_products"], kpis["b_products"], kpis["c_products"]] == [
        sum(1 for v in abc.values() if v[2] == c) for c in "ABC"
    ]
    assert (kpis["fast_movers"], kpis["slow_movers"]) == (band, min(band, len(sold) - band))

    fast = report.tables["fast_movers"].frame
    assert list(fast["sku"]) == sold[:10]
    slow = report.tables["slow_movers"].frame
    bottom = sorted(catalogue["sku"], key=lambda s: (quantity.get(s, 0.0), s))[:10]
    assert list(slow["sku"]) == bottom
    if cur[1] >= DEMO_TODAY.isoformat():
        assert slow["stock_quantity"].notna().all()
    for sku, qty in zip(slow["sku"], slow["stock_quantity"], strict=True):
        if sku in stock:
            assert qty == pytest.approx(stock[sku])
        else:
            assert pd.isna(qty)

    by_category = report.tables["by_category"].frame.set_index("category")
    cat = now.groupby("category")
    assert dict(by_category["revenue"]) == {
        k: micros_to_decimal(v) for k, v in cat["net_micros"].sum().items()
    }
    assert dict(by_category["products_sold"]) == cat["sku"].nunique().to_dict()
    assert sum(by_category["revenue"]) == kpis["revenue"]

    trend = report.tables["trend"].frame.set_index("month")
    month = now["order_date"].map(lambda d: f"{d:%Y-%m}")
    expected_revenue = now.groupby(month)["net_micros"].sum()
    expected_quantity = now.groupby(month)["quantity"].sum()
    for key in trend.index:
        assert trend.loc[key, "revenue"] == micros_to_decimal(expected_revenue.get(key, 0))
        assert trend.loc[key, "quantity"] == pytest.approx(expected_quantity.get(key, 0.0))
    assert sum(trend["revenue"]) == kpis["revenue"]


# --- (4) empty period and a filter that matches nothing -------------------------------------------


@pytest.mark.parametrize(
    "pairs",
    [("start=2001-01-01", "end=2001-01-31"), (*TINY, "region=Atlantis"), (*TINY, "category=None")],
    ids=["empty_period", "region_matches_nothing", "category_matches_nothing"],
)
def test_empty(engine: Engine, settings: Settings, tiny: Business, pairs: tuple[str, ...]) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny.id, SLUG, *pairs)
    doc = report_document(report)
    kpis = doc["kpis"]
    assert (kpis["products_sold"], kpis["quantity"], kpis["revenue"], kpis["a_products"]) == (0, 0, 0, 0)
    assert kpis["margin_pct"] is None
    assert report.is_empty
    assert all(rows == [] for rows in doc["tables"].values())
    # nothing was sold: the whole (filtered) catalogue counts as not sold
    assert kpis["not_sold"] == (0 if "category=None" in pairs else 2)
