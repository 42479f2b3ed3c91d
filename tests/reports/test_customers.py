"""customer_performance: tiny example, hand-worked ABC and retention fixtures, a pandas oracle on demo data."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, NamedTuple, cast

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.report import Report
from core.db import bump_data_version, session_scope
from core.models import Business, Customer, Forecast, Product, Sale, SaleLine, Storefront
from core.money import line_cost_micros, line_net_micros, to_micros
from core.settings import Settings
from exporters.json_export import report_document
from ingest.demo import load_demo
from tests.factories import TINY_DIR, insert_tiny, money, raw_frames
from tests.reports.reporting import run_report

SLUG = "customer_performance"
TINY = ("start=2025-01-01", "end=2025-03-31")
DEMO_TODAY = dt.date(2025, 6, 15)
MICROS = 1_000_000


# --- a small book of sales for hand-worked fixtures (also used by test_products and test_profit) ---


class Row(NamedTuple):
    """One sale line: amounts as strings so they stay exact."""

    order_id: str
    order_date: str
    customer: str
    sku: str
    quantity: str
    price: str
    cost: str = "0"
    status: str = "completed"
    discount: str = "0"
    rep: str = "ana"


def insert_book(
    engine: Engine,
    business_id: int,
    rows: Sequence[Row],
    *,
    customers: Mapping[str, tuple[str, str]] | None = None,
    products: Mapping[str, str] | None = None,
    forecasts: Sequence[tuple[str, str, str, str, str]] = (),
) -> None:
    """Insert `rows` with ORM objects. Customers (code -> (type, region), default retail/North) and
    products (sku -> category, default General) are created as needed, plus the ones listed;
    forecasts are (cycle, customer, sku, quantity, submitted_at)."""
    customers = dict(customers or {})
    products = dict(products or {})
    for r in rows:
        customers.setdefault(r.customer, ("retail", "North"))
        products.setdefault(r.sku, "General")
    for f in forecasts:
        customers.setdefault(f[1], ("retail", "North"))
        products.setdefault(f[2], "General")
    with session_scope(engine) as s:
        front = Storefront(business_id=business_id, code="M", name="Main", region="North")
        s.add(front)
        cust_ids: dict[str, int] = {}
        for code, (ctype, region) in sorted(customers.items()):
            c = Customer(
                business_id=business_id, customer_code=code, name=f"Customer {code}",
                customer_type=ctype, region=region,
            )  # fmt: skip
            s.add(c)
            s.flush()
            cust_ids[code] = c.id
        prod_ids: dict[str, int] = {}
        for sku, category in sorted(products.items()):
            p = Product(
                business_id=business_id, sku=sku, name=f"Product {sku}", category=category,
                unit_cost_micros=0, unit_price_micros=0,
            )  # fmt: skip
            s.add(p)
            s.flush()
            prod_ids[sku] = p.id
        s.flush()
        sales: dict[str, Sale] = {}
        line_nos: dict[str, int] = {}
        for r in rows:
            sale = sales.get(r.order_id)
            if sale is None:
                sale = Sale(
                    business_id=business_id, order_id=r.order_id,
                    order_date=dt.date.fromisoformat(r.order_date), customer_id=cust_ids[r.customer],
                    storefront_id=front.id, sales_rep=r.rep, status=r.status, net_micros=0, cost_micros=0,
                )  # fmt: skip
                s.add(sale)
                s.flush()
                sales[r.order_id] = sale
            line_nos[r.order_id] = line_nos.get(r.order_id, 0) + 1
            q, price, cost, disc = Decimal(r.quantity), Decimal(r.price), Decimal(r.cost), Decimal(r.discount)
            net, line_cost = line_net_micros(q, price, disc), line_cost_micros(q, cost)
            s.add(
                SaleLine(
                    business_id=business_id, sale_id=sale.id, line_no=line_nos[r.order_id],
                    product_id=prod_ids[r.sku], quantity=float(q),
                    unit_price_micros=to_micros(price), unit_cost_micros=to_micros(cost),
                    discount=float(disc), net_micros=net, cost_micros=line_cost,
                )
            )  # fmt: skip
            sale.net_micros += net
            sale.cost_micros += line_cost
        for cycle, code, sku, qty, at in forecasts:
            s.add(
                Forecast(
                    business_id=business_id, cycle=cycle, customer_id=cust_ids[code],
                    product_id=prod_ids[sku], sales_rep="ana", quantity=float(qty),
                    submitted_at=dt.datetime.fromisoformat(at),
                )
            )  # fmt: skip
        bump_data_version(s, business_id)


def one_sale_each(amounts: Mapping[str, str], day: str = "2025-01-15") -> list[Row]:
    """One completed order of quantity 1 at the given price per customer code."""
    return [Row(f"O-{code}", day, code, "P1", "1", price) for code, price in amounts.items()]


def frame_of(report: Report, table: str) -> pd.DataFrame:
    return report.tables[table].frame


def kpis_of(report: Report) -> dict[str, Any]:
    return {k.key: k.value for k in report.kpis}


# --- the shared oracle helpers (pandas over raw rows) ---------------------------------------------

# Raw line column behind each dimension filter.
RAW_FILTER_COLUMNS = {
    "region": "region",
    "category": "category",
    "storefront": "storefront_code",
    "customer_type": "customer_type",
    "sales_rep": "sales_rep",
    "customer": "customer_code",
    "product": "sku",
}


def completed_lines(lines: pd.DataFrame, filters: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    out = lines[lines["status"] == "completed"]
    for dim, values in filters.items():
        out = out[out[RAW_FILTER_COLUMNS[dim]].isin(list(values))]
    return out


def in_period(lines: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    lo, hi = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    return lines[(lines["order_date"] >= lo) & (lines["order_date"] <= hi)]


def abc_classes(revenue_micros: Mapping[Any, int]) -> dict[str, tuple[int, Decimal, str]]:
    """Plain-Python ABC: code -> (rank, cumulative share as an exact fraction, class)."""
    items = sorted(((v, k) for k, v in revenue_micros.items() if v > 0), key=lambda t: (-t[0], t[1]))
    total = sum(v for v, _ in items)
    out: dict[str, tuple[int, Decimal, str]] = {}
    cumulative = 0
    for position, (value, code) in enumerate(items, start=1):
        cumulative += value
        if position == 1 or cumulative * 100 <= total * 80:
            cls = "A"
        elif cumulative * 100 <= total * 95:
            cls = "B"
        else:
            cls = "C"
        out[code] = (position, Decimal(cumulative) / Decimal(total), cls)
    return out


def micros_to_decimal(value: int) -> Decimal:
    return Decimal(int(value)) / MICROS


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture
def tiny(engine: Engine, business: Business) -> Business:
    insert_tiny(engine, business.id)
    return business


@pytest.fixture(scope="module")
def demo(engine: Engine) -> Iterator[tuple[int, dict[str, pd.DataFrame]]]:
    summary = load_demo(engine, f"cp{uuid.uuid4().hex[:8]}", rows=3000, seed=20250615, today=DEMO_TODAY)
    yield summary.business_id, raw_frames(engine, summary.business_id)


# --- (1) the tiny example -------------------------------------------------------------------------

EXPECTED: dict[str, Any] = json.loads((TINY_DIR / "expected.json").read_text(encoding="utf-8"))


def test_tiny_ranking_abc_and_kpis(engine: Engine, settings: Settings, tiny: Business) -> None:
    doc = report_document(run_report(engine, settings.snapshot_dir, tiny.id, SLUG, *TINY))
    rows = doc["tables"]["customers"]
    assert [r["customer_code"] for r in rows] == list(EXPECTED["top_customers"])
    assert [money(r["revenue"]) for r in rows] == [money(v) for v in EXPECTED["top_customers"].values()]
    assert {r["customer_code"]: r["abc_class"] for r in rows} == EXPECTED["abc"]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    # B2 = 1330 of 1585 alone (83.9 %) is A as the first item; A1 brings it to 96.2 % -> C.
    assert rows[0]["cumulative_share_pct"] == pytest.approx(1330 / 1585)
    assert rows[1]["cumulative_share_pct"] == pytest.approx(1525 / 1585)
    assert rows[2]["cumulative_share_pct"] == pytest.approx(1.0)
    kpis = doc["kpis"]
    assert money(kpis["revenue"]) == money(EXPECTED["kpis"]["revenue"])
    assert kpis["customers_active"] == 3
    assert (kpis["a_customers"], kpis["b_customers"], kpis["c_customers"]) == (1, 0, 2)
    # Previous period = Q4 2024: only B2 (O7, 31 Dec) bought; it bought again -> retention 100 %.
    assert (kpis["customers_previous"], kpis["retained"], kpis["lost"]) == (1, 1, 0)
    assert kpis["retention_pct"] == 1.0
    assert kpis["new_customers"] == 2  # A1 and D4 bought for the first time
    assert money(kpis["revenue_per_customer"]) == money(Decimal(1585) / 3)
    assert money(kpis["revenue_previous"]) == money(475)
    assert kpis["revenue_change_pct"] == pytest.approx((1585 - 475) / 475)
    assert kpis["revenue_yoy_pct"] is None  # nothing a year before
    assert kpis["forecast_accuracy"] == pytest.approx(EXPECTED["forecast_accuracy"]["accuracy"])
    b2 = rows[0]
    assert (money(b2["revenue_previous"]), b2["growth_pct"], b2["segment"]) == (money(475), 1.8, "retained")
    assert money(b2["gross_profit"]) == money(330)
    assert b2["margin_pct"] == pytest.approx(330 / 1330)
    # Forecasts: B2 F=120 A=100 -> 0.8; A1 |10-8| + |5-5| over 15 -> 13/15; D4 (1 vs 2, 3 vs 3) -> 0.8.
    accuracy = {r["customer_code"]: r["forecast_accuracy"] for r in rows}
    assert accuracy == pytest.approx({"B2": 0.8, "A1": 13 / 15, "D4": 0.8})
    d4 = rows[2]
    assert (d4["orders"], money(d4["avg_order_value"])) == (2, money(30))
    abc = {r["abc_class"]: (r["customers"], money(r["revenue"])) for r in doc["tables"]["abc_summary"]}
    assert abc == {"A": (1, money(1330)), "B": (0, money(0)), "C": (2, money(255))}
    retention = {r["segment"]: (r["customers"], money(r["revenue"])) for r in doc["tables"]["retention"]}
    assert retention == {
        "retained": (1, money(1330)),
        "new": (2, money(255)),
        "reactivated": (0, money(0)),
        "lost": (0, money(0)),
    }


# --- (2) hand-worked ABC fixtures -----------------------------------------------------------------

ABC_CASES = {
    # exactly 80 % -> A, exactly 95 % -> B, the rest C
    "boundaries_exact": ({"C1": "80", "C2": "15", "C3": "5"}, ["C1", "C2", "C3"], "ABC"),
    # 80.000001 % is just over: B; 95.000001 % just over: C
    "just_over": (
        {"C1": "50", "C2": "30.000001", "C3": "15", "C4": "4.999999"},
        ["C1", "C2", "C3", "C4"],
        "ABCC",
    ),
    # one micro under each limit stays in the lower class
    "just_under": (
        {"C1": "50", "C2": "29.999999", "C3": "15.000001", "C4": "5"},
        ["C1", "C2", "C3", "C4"],
        "AABC",
    ),
    # the first item is A even above 80 %; the next one is then over 95 %
    "first_always_a": ({"C1": "96", "C2": "3", "C3": "1"}, ["C1", "C2", "C3"], "ACC"),
    # equal revenue: the lower code ranks first and takes the lower class
    "ties_by_code": ({"Y": "45", "X": "45", "Z": "10"}, ["X", "Y", "Z"], "ABC"),
    "single_customer": ({"S1": "12.34"}, ["S1"], "A"),
    # decimal amounts whose float sums are inexact: 0.7 + 0.1 is 0.8 of 1.0 exactly -> A
    "decimal_amounts": (
        {"C1": "0.7", "C2": "0.1", "C3": "0.1", "C4": "0.1"},
        ["C1", "C2", "C3", "C4"],
        "AABC",
    ),
}


@pytest.mark.parametrize("amounts, order, classes", ABC_CASES.values(), ids=ABC_CASES.keys())
def test_abc_boundaries(
    engine: Engine,
    settings: Settings,
    business: Business,
    amounts: dict[str, str],
    order: list[str],
    classes: str,
) -> None:
    insert_book(engine, business.id, one_sale_each(amounts))
    report = run_report(
        engine, settings.snapshot_dir, business.id, SLUG, "start=2025-01-01", "end=2025-01-31"
    )
    table = frame_of(report, "customers")
    assert list(table["customer_code"]) == order
    assert "".join(table["abc_class"]) == classes
    assert list(table["rank"]) == list(range(1, len(order) + 1))
    total = sum(Decimal(v) for v in amounts.values())
    cumulative = Decimal(0)
    for code, share in zip(table["customer_code"], table["cumulative_share_pct"], strict=True):
        cumulative += Decimal(amounts[code])
        assert share == pytest.approx(float(cumulative / total), abs=1e-12)
    kpis = kpis_of(report)
    assert [kpis["a_customers"], kpis["b_customers"], kpis["c_customers"]] == [
        classes.count(c) for c in "ABC"
    ]


def test_abc_excludes_zero_revenue_customers(engine: Engine, settings: Settings, business: Business) -> None:
    rows = [
        *one_sale_each({"C1": "90", "C2": "10"}),
        Row("O-Z", "2025-01-10", "Z0", "P1", "3", "10", discount="1"),  # bought, but at 100 % discount
        Row("O-D", "2025-01-10", "D0", "P1", "1", "500", status="draft"),  # never revenue
        Row("O-V", "2025-01-10", "V0", "P1", "1", "500", status="void"),
    ]
    insert_book(engine, business.id, rows, customers={"N0": ("retail", "North")})
    report = run_report(
        engine, settings.snapshot_dir, business.id, SLUG, "start=2025-01-01", "end=2025-01-31"
    )
    table = frame_of(report, "customers")
    # Z0 bought (a completed sale) so it is listed, ranked last and unclassified; D0, V0, N0 are not.
    assert list(table["customer_code"]) == ["C1", "C2", "Z0"]
    assert list(table["abc_class"][:2]) == ["A", "C"]
    assert pd.isna(table["abc_class"].iloc[2]) and pd.isna(table["cumulative_share_pct"].iloc[2])
    assert table["revenue"].iloc[2] == 0
    kpis = kpis_of(report)
    assert (kpis["a_customers"], kpis["b_customers"], kpis["c_customers"]) == (1, 0, 1)
    assert kpis["customers_active"] == 3
    summary = frame_of(report, "abc_summary")
    assert list(summary["customers"]) == [1, 0, 1]
    assert sum(summary["revenue"]) == Decimal(100)


# --- (2) hand-worked retention and growth ---------------------------------------------------------

RETENTION_ROWS = [
    Row("R-JAN", "2025-01-10", "R", "P1", "1", "100"),
    Row("R-FEB", "2025-02-10", "R", "P1", "1", "150"),
    Row("R-YAGO", "2024-02-20", "R", "P1", "1", "50"),
    Row("L-JAN", "2025-01-31", "L", "P1", "1", "70"),
    Row("N-FEB", "2025-02-01", "N", "P1", "1", "20"),
    Row("X-NOV", "2024-11-05", "X", "P1", "1", "10"),
    Row("X-FEB", "2025-02-28", "X", "P1", "1", "30"),
    Row("D-JAN", "2025-01-05", "D", "P1", "1", "40", status="draft"),  # a draft is not a purchase
    Row("D-FEB", "2025-02-05", "D", "P1", "1", "40"),
    Row("V-JAN", "2025-01-05", "V", "P1", "1", "60"),
    Row("V-FEB", "2025-02-05", "V", "P1", "1", "60", status="void"),
    Row("M-MAR", "2025-03-01", "M", "P1", "1", "99"),  # after the period: ignored
]


def test_retention_segments_and_growth(engine: Engine, settings: Settings, business: Business) -> None:
    insert_book(engine, business.id, RETENTION_ROWS)
    report = run_report(
        engine, settings.snapshot_dir, business.id, SLUG, "start=2025-02-01", "end=2025-02-28"
    )
    kpis = kpis_of(report)
    # previous period = January: R, L, V bought; of them only R bought again in February.
    assert (kpis["customers_previous"], kpis["retained"], kpis["lost"]) == (3, 1, 2)
    assert kpis["retention_pct"] == pytest.approx(1 / 3)
    assert kpis["customers_active"] == 4  # R, N, X, D
    assert (kpis["new_customers"], kpis["reactivated_customers"]) == (2, 1)  # N, D new; X back
    assert kpis["revenue"] == Decimal(240)
    assert kpis["revenue_per_customer"] == Decimal(60)
    assert kpis["revenue_previous"] == Decimal(230)
    assert kpis["revenue_change_pct"] == pytest.approx(10 / 230)
    assert kpis["revenue_year_ago"] == Decimal(50)
    table = frame_of(report, "customers").set_index("customer_code")
    assert dict(table["segment"]) == {"R": "retained", "N": "new", "D": "new", "X": "reactivated"}
    assert table.loc["R", "growth_pct"] == pytest.approx(0.5)
    assert table.loc["R", "yoy_pct"] == pytest.approx(2.0)
    assert table.loc["R", "revenue_year_ago"] == Decimal(50)
    assert pd.isna(cast(float, table.loc["X", "growth_pct"])) and table.loc["X", "revenue_previous"] == 0
    retention = frame_of(report, "retention").set_index("segment")
    assert list(retention.index) == ["retained", "new", "reactivated", "lost"]
    assert list(retention["customers"]) == [1, 2, 1, 2]
    assert list(retention["revenue"]) == [Decimal(150), Decimal(60), Decimal(30), Decimal(0)]
    assert retention.loc["lost", "revenue_previous"] == Decimal(130)
    growth = frame_of(report, "top_growth")
    assert list(growth["customer_code"]) == ["R", "D", "X", "N"]  # +50, +40, +30, +20
    decline = frame_of(report, "top_decline")
    assert list(decline["customer_code"]) == ["L", "V"]
    assert list(decline["revenue_change"]) == [Decimal(-70), Decimal(-60)]


def test_forecast_accuracy_per_customer(engine: Engine, settings: Settings, business: Business) -> None:
    rows = [
        Row("F1-JAN", "2025-01-05", "F1", "P1", "12", "1"),
        Row("F1-FEB", "2025-02-05", "F1", "P1", "4", "1"),  # another cycle: not compared
        Row("F3-JAN", "2025-01-20", "F3", "P1", "1", "1"),
    ]
    forecasts = [
        ("2025-01", "F1", "P1", "10", "2024-12-20T09:00:00"),
        ("2025-01", "F1", "P1", "12", "2024-12-28T09:00:00"),  # the latest submission replaces 10
        ("2025-01", "F1", "P2", "5", "2024-12-28T09:00:00"),  # nothing sold: |0 - 5|
        ("2025-01", "F2", "P1", "3", "2024-12-28T09:00:00"),  # F2 bought nothing: not listed
    ]
    insert_book(engine, business.id, rows, forecasts=forecasts)
    report = run_report(
        engine, settings.snapshot_dir, business.id, SLUG, "start=2025-01-01", "end=2025-01-31"
    )
    table = frame_of(report, "customers").set_index("customer_code")
    assert list(table.index) == ["F1", "F3"]
    assert table.loc["F1", "forecast_accuracy"] == pytest.approx(1 - 5 / 12)
    assert pd.isna(cast(float, table.loc["F3", "forecast_accuracy"]))
    # over all forecast rows: |12 - 12| + |0 - 5| + |0 - 3| = 8 against 12 sold
    assert kpis_of(report)["forecast_accuracy"] == pytest.approx(1 - 8 / 12)


# --- (3) oracle on generated data -----------------------------------------------------------------

ORACLE_CASES = {
    # whole months across the year end: previous = the 4 months before; a year before = the same
    # whole months, so it ends on 29 Feb 2024
    "whole_months": (
        ("2024-11-01", "2025-02-28"),
        ("2024-07-01", "2024-10-31"),
        ("2023-11-01", "2024-02-29"),
        {},
    ),
    "region_north": (
        ("2024-11-01", "2025-02-28"),
        ("2024-07-01", "2024-10-31"),
        ("2023-11-01", "2024-02-29"),
        {"region": ["North"]},
    ),
    # 42 days across the year end: previous = the 42 days before
    "days_category": (
        ("2024-12-10", "2025-01-20"),
        ("2024-10-29", "2024-12-09"),
        ("2023-12-10", "2024-01-20"),
        {"category": ["Snacks", "Dairy", "Paper Goods"]},
    ),
    "rep_and_type": (
        ("2024-12-10", "2025-01-20"),
        ("2024-10-29", "2024-12-09"),
        ("2023-12-10", "2024-01-20"),
        {"sales_rep": ["ana", "ben", "carla"], "customer_type": ["retail"]},
    ),
    "storefront": (
        ("2025-01-01", "2025-03-31"),
        ("2024-10-01", "2024-12-31"),
        ("2024-01-01", "2024-03-31"),
        {"storefront": ["NTH"]},
    ),
}


def _forecast_accuracy_oracle(
    frames: dict[str, pd.DataFrame], start: str, end: str, filters: Mapping[str, Sequence[str]]
) -> dict[str, float | None]:
    lo, hi = start[:7], end[:7]
    fc = frames["forecasts"]
    fc = fc[(fc["cycle"] >= lo) & (fc["cycle"] <= hi)]
    fc = fc.sort_values(["submitted_at", "id"]).groupby(["cycle", "customer_code", "sku"]).tail(1)
    customers = frames["customers"].set_index("customer_code")
    products = frames["products"].set_index("sku")
    fc = fc.assign(
        region=[customers.loc[c, "region"] for c in fc["customer_code"]],
        customer_type=[customers.loc[c, "customer_type"] for c in fc["customer_code"]],
        category=[products.loc[p, "category"] for p in fc["sku"]],
    )
    for dim, values in filters.items():
        if dim != "storefront":  # forecasts belong to no storefront
            fc = fc[fc[RAW_FILTER_COLUMNS[dim]].isin(list(values))]
    lines = frames["lines"][frames["lines"]["status"] == "completed"]
    month = lines["order_date"].map(lambda d: f"{d:%Y-%m}")
    actual = lines.groupby([month, lines["customer_code"], lines["sku"]])["quantity"].sum().to_dict()
    out: dict[str, float | None] = {}
    for code, group in fc.groupby("customer_code"):
        err = act = 0.0
        for cycle, sku, f in zip(group["cycle"], group["sku"], group["quantity"], strict=True):
            a = float(actual.get((cycle, code, sku), 0.0))
            err += abs(a - float(f))
            act += a
        out[str(code)] = max(0.0, 1 - err / act) if act else None
    return out


@pytest.mark.parametrize("cur, prev, yago, filters", ORACLE_CASES.values(), ids=ORACLE_CASES.keys())
def test_matches_pandas_oracle(
    engine: Engine,
    settings: Settings,
    demo: tuple[int, dict[str, pd.DataFrame]],
    cur: tuple[str, str],
    prev: tuple[str, str],
    yago: tuple[str, str],
    filters: dict[str, list[str]],
) -> None:
    business_id, frames = demo
    pairs = [f"{k}={','.join(v)}" for k, v in filters.items()]
    report = run_report(
        engine, settings.snapshot_dir, business_id, SLUG, f"start={cur[0]}", f"end={cur[1]}", *pairs
    )
    lines = completed_lines(frames["lines"], filters)
    now, before, year_ago = in_period(lines, *cur), in_period(lines, *prev), in_period(lines, *yago)
    history = lines[lines["order_date"] <= dt.date.fromisoformat(cur[1])]
    first_day = history.groupby("customer_code")["order_date"].min()
    revenue = now.groupby("customer_code")["net_micros"].sum().to_dict()
    cost = now.groupby("customer_code")["cost_micros"].sum().to_dict()
    orders = now.groupby("customer_code")["sale_id"].nunique().to_dict()
    rev_prev = before.groupby("customer_code")["net_micros"].sum().to_dict()
    rev_yago = year_ago.groupby("customer_code")["net_micros"].sum().to_dict()
    abc = abc_classes(revenue)
    accuracy = _forecast_accuracy_oracle(frames, *cur, filters)
    assert ("storefront" in filters) == any("storefront" in note for note in report.notes)
    total = sum(revenue.values())
    assert total > 0, "the oracle period must hold sales"

    table = frame_of(report, "customers")
    expected_order = sorted(revenue, key=lambda c: (-revenue[c], c))
    assert list(table["customer_code"]) == expected_order
    for row in table.to_dict("records"):
        code = row["customer_code"]
        assert row["revenue"] == micros_to_decimal(revenue[code])
        assert row["gross_profit"] == micros_to_decimal(revenue[code] - cost[code])
        assert row["orders"] == orders[code]
        assert row["share_pct"] == pytest.approx(revenue[code] / total, rel=1e-12)
        assert row["revenue_previous"] == micros_to_decimal(rev_prev.get(code, 0))
        assert row["revenue_year_ago"] == micros_to_decimal(rev_yago.get(code, 0))
        rank, share, cls = abc[code]
        assert (row["rank"], row["abc_class"]) == (rank, cls)
        assert row["cumulative_share_pct"] == pytest.approx(float(share), rel=1e-12)
        if rev_prev.get(code):
            assert row["growth_pct"] == pytest.approx((revenue[code] - rev_prev[code]) / rev_prev[code])
        else:
            assert pd.isna(row["growth_pct"])
        expected_acc = accuracy.get(code)
        if expected_acc is None:
            assert pd.isna(row["forecast_accuracy"])
        else:
            assert row["forecast_accuracy"] == pytest.approx(expected_acc, rel=1e-9)
        if code in set(before["customer_code"]):
            assert row["segment"] == "retained"
        elif first_day[code] >= dt.date.fromisoformat(cur[0]):
            assert row["segment"] == "new"
        else:
            assert row["segment"] == "reactivated"

    kpis = kpis_of(report)
    bought_now, bought_before = set(now["customer_code"]), set(before["customer_code"])
    assert kpis["customers_active"] == len(bought_now)
    assert kpis["customers_previous"] == len(bought_before)
    assert kpis["retained"] == len(bought_now & bought_before)
    assert kpis["lost"] == len(bought_before - bought_now)
    assert kpis["retention_pct"] == pytest.approx(len(bought_now & bought_before) / len(bought_before))
    assert kpis["new_customers"] == sum(
        1 for c in bought_now if first_day[c] >= dt.date.fromisoformat(cur[0])
    )
    assert kpis["revenue"] == micros_to_decimal(total) == sum(table["revenue"])
    assert kpis["revenue_previous"] == micros_to_decimal(sum(rev_prev.values()))
    assert kpis["revenue_year_ago"] == micros_to_decimal(sum(rev_yago.values()))
    counts = [sum(1 for v in abc.values() if v[2] == c) for c in "ABC"]
    assert [kpis["a_customers"], kpis["b_customers"], kpis["c_customers"]] == counts
    summary = frame_of(report, "abc_summary")
    assert list(summary["customers"]) == counts
    assert sum(summary["revenue"]) == kpis["revenue"]
    retention = frame_of(report, "retention").set_index("segment")
    assert retention["customers"].sum() - cast(int, retention.loc["lost", "customers"]) == len(bought_now)
    assert sum(retention["revenue"]) == kpis["revenue"]
    assert sum(retention["revenue_previous"]) == kpis["revenue_previous"]


# --- (4) empty period and a filter that matches nothing -------------------------------------------


@pytest.mark.parametrize(
    "pairs",
    [("start=2001-01-01", "end=2001-01-31"), (*TINY, "region=Atlantis"), (*TINY, "product=NOPE")],
    ids=["empty_period", "region_matches_nothing", "product_matches_nothing"],
)
def test_empty(engine: Engine, settings: Settings, tiny: Business, pairs: tuple[str, ...]) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny.id, SLUG, *pairs)
    assert report.is_empty
    doc = report_document(report)
    assert all(rows == [] for rows in doc["tables"].values())
    kpis = doc["kpis"]
    assert kpis["customers_active"] == 0 and kpis["revenue"] == 0
    assert kpis["retention_pct"] is None and kpis["revenue_per_customer"] is None
    assert kpis["a_customers"] == 0
