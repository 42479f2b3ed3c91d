"""gross_profit: tiny example, hand-worked loss and contribution fixtures, a pandas oracle on demo data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.report import Report
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
    completed_lines,
    in_period,
    insert_book,
    kpis_of,
    micros_to_decimal,
)

SLUG = "gross_profit"
ROW_TABLES = ("by_customer", "by_product", "by_category", "trend")


@pytest.fixture
def tiny(engine: Engine, business: Business) -> Business:
    insert_tiny(engine, business.id)
    return business


@pytest.fixture(scope="module")
def demo(engine: Engine) -> Iterator[tuple[int, dict[str, pd.DataFrame]]]:
    summary = load_demo(engine, f"gp{uuid.uuid4().hex[:8]}", rows=3000, seed=99, today=DEMO_TODAY)
    yield summary.business_id, raw_frames(engine, summary.business_id)


def assert_totals_are_sums_of_rows(report: Report) -> None:
    """Every row table adds up exactly to the KPI totals; contributions add up to 1."""
    kpis = kpis_of(report)
    assert kpis["revenue"] - kpis["cost"] == kpis["gross_profit"]
    for name in ROW_TABLES:
        frame = report.tables[name].frame
        for key in ("revenue", "cost", "gross_profit"):
            assert sum(frame[key], Decimal(0)) == kpis[key], (name, key)
        assert all(
            r - c == g for r, c, g in zip(frame["revenue"], frame["cost"], frame["gross_profit"], strict=True)
        )
        if name != "trend" and len(frame) and kpis["gross_profit"] != 0:
            assert frame["contribution_pct"].sum() == pytest.approx(1.0)


# --- (1) the tiny example -------------------------------------------------------------------------


def test_tiny_gross_profit(engine: Engine, settings: Settings, tiny: Business) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny.id, SLUG, *TINY)
    doc = report_document(report)
    kpis = doc["kpis"]
    for key in ("revenue", "gross_profit"):
        assert money(kpis[key]) == money(EXPECTED["kpis"][key])
    assert money(kpis["cost"]) == money(1585 - 433)
    assert kpis["margin_pct"] == pytest.approx(EXPECTED["kpis"]["margin_pct"], rel=1e-12)
    # Q4 2024: O7 = 50 x 9.50 - 50 x 4 = 275 gross profit
    assert money(kpis["gross_profit_previous"]) == money(275)
    assert kpis["gross_profit_change_pct"] == pytest.approx((433 - 275) / 275)
    customers = [(r["customer_code"], money(r["gross_profit"])) for r in doc["tables"]["by_customer"]]
    assert customers == [("B2", money(330)), ("A1", money(75)), ("D4", money(28))]
    b2 = doc["tables"]["by_customer"][0]
    assert (money(b2["revenue"]), money(b2["cost"])) == (money(1330), money(1000))
    assert b2["contribution_pct"] == pytest.approx(330 / 433)
    assert kpis["top_customer_contribution_pct"] == pytest.approx(330 / 433)
    products = {r["sku"]: (money(r["cost"]), money(r["gross_profit"])) for r in doc["tables"]["by_product"]}
    assert products == {"P1": (money(1120), money(390)), "P2": (money(32), money(43))}
    trend = {r["month"]: r for r in doc["tables"]["trend"]}
    assert list(trend) == ["2025-01", "2025-02", "2025-03"]
    for month, figures in EXPECTED["by_month"].items():
        assert money(trend[month]["revenue"]) == money(figures["revenue"])
        assert money(trend[month]["gross_profit"]) == money(figures["gross_profit"])
    assert doc["tables"]["negative_margin"] == []
    assert_totals_are_sums_of_rows(report)


# --- (2) hand-worked fixtures ---------------------------------------------------------------------


def test_losses_and_contribution(engine: Engine, settings: Settings, business: Business) -> None:
    rows = [
        Row("O1", "2025-01-10", "C1", "P-GOOD", "10", "10", cost="6"),  # +40
        Row("O2", "2025-01-11", "C2", "P-LOSS", "2", "10", cost="15"),  # -10
        Row("O3", "2025-01-12", "C2", "P-GOOD", "1", "10", cost="6"),  # +4 -> C2 = -6
        Row("O4", "2025-01-12", "C3", "P-LOSS", "1", "10", cost="15", discount="0.5"),  # -10
        Row("O5", "2025-01-13", "C1", "P-LOSS", "9", "10", cost="15", status="void"),
    ]
    insert_book(engine, business.id, rows, products={"P-GOOD": "Food", "P-LOSS": "Tools"})
    report = run_report(
        engine, settings.snapshot_dir, business.id, SLUG, "start=2025-01-01", "end=2025-01-31"
    )
    kpis = kpis_of(report)
    assert (kpis["revenue"], kpis["cost"], kpis["gross_profit"]) == (Decimal(135), Decimal(111), Decimal(24))
    assert kpis["margin_pct"] == pytest.approx(24 / 135)
    by_product = report.tables["by_product"].frame
    assert list(by_product["sku"]) == ["P-GOOD", "P-LOSS"]
    assert list(by_product["contribution_pct"]) == pytest.approx([44 / 24, -20 / 24])
    assert by_product["margin_pct"].iloc[1] == pytest.approx(-20 / 25)
    by_customer = report.tables["by_customer"].frame
    assert list(by_customer["customer_code"]) == ["C1", "C2", "C3"]
    assert list(by_customer["gross_profit"]) == [Decimal(40), Decimal(-6), Decimal(-10)]
    negative = report.tables["negative_margin"].frame
    assert list(zip(negative["item_type"], negative["code"], negative["gross_profit"], strict=True)) == [
        ("product", "P-LOSS", Decimal(-20)),
        ("customer", "C3", Decimal(-10)),
        ("customer", "C2", Decimal(-6)),
    ]
    assert (kpis["negative_margin_products"], kpis["negative_margin_customers"]) == (1, 2)
    assert kpis["negative_gross_profit"] == Decimal(-20)
    for name in (*ROW_TABLES, "negative_margin"):
        highlight = report.tables[name].highlights[0]
        assert (highlight.column, highlight.op, highlight.value) == ("margin_pct", "lt", 0)
    assert_totals_are_sums_of_rows(report)


def test_zero_total_gross_profit_has_no_contribution(
    engine: Engine, settings: Settings, business: Business
) -> None:
    rows = [
        Row("O1", "2025-01-10", "C1", "P1", "1", "20", cost="10"),  # +10
        Row("O2", "2025-01-11", "C2", "P2", "1", "10", cost="20"),  # -10
    ]
    insert_book(engine, business.id, rows)
    report = run_report(
        engine, settings.snapshot_dir, business.id, SLUG, "start=2025-01-01", "end=2025-01-31"
    )
    assert kpis_of(report)["gross_profit"] == 0
    assert report.tables["by_product"].frame["contribution_pct"].isna().all()
    assert kpis_of(report)["top_product_contribution_pct"] is None
    assert_totals_are_sums_of_rows(report)


# --- (3) oracle on generated data -----------------------------------------------------------------

ORACLE_CASES = {
    "whole_months_across_year": (("2024-11-01", "2025-02-28"), {}),
    "days_across_year_north": (("2024-12-10", "2025-01-20"), {"region": ["North"]}),
    "wholesale_two_categories": (
        ("2024-10-01", "2025-03-31"),
        {"customer_type": ["wholesale"], "category": ["Dairy", "Snacks"]},
    ),
    "rep_and_storefront": (
        ("2024-07-01", "2025-06-30"),
        {"sales_rep": ["ana", "carla"], "storefront": ["NTH", "STH"]},
    ),
    "products": (("2024-01-01", "2025-06-30"), {"product": ["CON-011", "COF-001", "BEV-018", "DAI-015"]}),
}


def _grouped(lines: pd.DataFrame, keys: list[str]) -> dict[object, tuple[Decimal, Decimal]]:
    sums = lines.groupby(keys)[["net_micros", "cost_micros"]].sum()
    out: dict[object, tuple[Decimal, Decimal]] = {}
    for key, row in sums.iterrows():
        out[key] = (micros_to_decimal(row["net_micros"]), micros_to_decimal(row["cost_micros"]))
    return out


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
    now = in_period(completed_lines(frames["lines"], filters), *cur)
    revenue = micros_to_decimal(int(now["net_micros"].sum()))
    cost = micros_to_decimal(int(now["cost_micros"].sum()))
    assert revenue > 0
    kpis = kpis_of(report)
    assert (kpis["revenue"], kpis["cost"], kpis["gross_profit"]) == (revenue, cost, revenue - cost)
    assert kpis["margin_pct"] == pytest.approx(float((revenue - cost) / revenue), rel=1e-12)
    profit = revenue - cost

    month = now["order_date"].map(lambda d: f"{d:%Y-%m}").rename("month")
    for name, keys, column in (
        ("by_customer", ["customer_code"], "customer_code"),
        ("by_product", ["sku"], "sku"),
        ("by_category", ["category"], "category"),
    ):
        expected = _grouped(now, keys)
        frame = report.tables[name].frame
        got = {k: (r, c) for k, r, c in zip(frame[column], frame["revenue"], frame["cost"], strict=True)}
        assert got == expected, name
        # sorted by gross profit, biggest first, ties by code
        order = sorted(expected, key=lambda k: (-(expected[k][0] - expected[k][1]), str(k)))
        assert list(frame[column]) == order, name
        for g, share in zip(frame["gross_profit"], frame["contribution_pct"], strict=True):
            assert share == pytest.approx(float(g / profit), rel=1e-12)
    trend = report.tables["trend"].frame
    expected_trend = now.assign(month=month).groupby("month")[["net_micros", "cost_micros"]].sum()
    for row in trend.to_dict("records"):
        if row["month"] in expected_trend.index:
            src = expected_trend.loc[row["month"]]
            assert row["revenue"] == micros_to_decimal(src["net_micros"])
            assert row["cost"] == micros_to_decimal(src["cost_micros"])
        else:
            assert row["revenue"] == row["cost"] == 0

    losing_products = {k for k, (r, c) in _grouped(now, ["sku"]).items() if r - c < 0}
    losing_customers = {k for k, (r, c) in _grouped(now, ["customer_code"]).items() if r - c < 0}
    negative = report.tables["negative_margin"].frame
    assert set(negative.loc[negative["item_type"] == "product", "code"]) == losing_products
    assert set(negative.loc[negative["item_type"] == "customer", "code"]) == losing_customers
    assert list(negative["gross_profit"]) == sorted(negative["gross_profit"])
    assert_totals_are_sums_of_rows(report)


def test_oracle_data_has_losses(demo: tuple[int, dict[str, pd.DataFrame]]) -> None:
    """The generated data must exercise the negative-margin table (else the oracle proves little)."""
    lines = completed_lines(demo[1]["lines"], {})
    assert (lines["net_micros"] < lines["cost_micros"]).any()


# --- (4) empty period and a filter that matches nothing -------------------------------------------


@pytest.mark.parametrize(
    "pairs",
    [("start=2001-01-01", "end=2001-03-31"), (*TINY, "customer=ZZ"), (*TINY, "storefront=NOPE")],
    ids=["empty_period", "customer_matches_nothing", "storefront_matches_nothing"],
)
def test_empty(engine: Engine, settings: Settings, tiny: Business, pairs: tuple[str, ...]) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny.id, SLUG, *pairs)
    assert report.is_empty
    doc = report_document(report)
    assert all(rows == [] for rows in doc["tables"].values())
    kpis = doc["kpis"]
    assert (kpis["revenue"], kpis["cost"], kpis["gross_profit"]) == (0, 0, 0)
    assert kpis["margin_pct"] is None and kpis["top_product_contribution_pct"] is None
    assert kpis["negative_margin_products"] == 0
