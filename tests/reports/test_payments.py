"""payments: cash received by method, day and customer (tiny example, hand-worked, oracle, empty)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import cast

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.report import ParamError, Report
from core.models import Business
from core.settings import Settings
from ingest.demo import load_demo
from tests.conftest import new_business
from tests.factories import TINY_DIR, insert_tiny, money, raw_frames
from tests.reports.reporting import run_report
from tests.reports.test_credit import Ledger

EXPECTED = json.loads((TINY_DIR / "expected.json").read_text(encoding="utf-8"))
METHODS = ("cash", "card", "bank_transfer", "mobile")
JUNE = ("start=2025-06-01", "end=2025-06-30")


def payments(engine: Engine, settings: Settings, business: Business, *pairs: str) -> Report:
    return run_report(engine, settings.snapshot_dir, business.id, "payments", *pairs)


def assert_tables_add_up(report: Report) -> None:
    """Every table's rows add up to the cash received KPI (a report total is the sum of its rows)."""
    cash = report.kpi("cash_received").value
    count = report.kpi("payments").value
    by_method = report.tables["by_method"].frame
    by_day = report.tables["by_day"].frame
    by_customer = report.tables["by_customer"].frame
    assert sum(by_method["cash_received"], Decimal(0)) == cash
    assert sum(by_day["total"], Decimal(0)) == cash
    assert sum(by_customer["cash_received"], Decimal(0)) == cash
    assert int(by_method["payments"].sum()) == int(by_day["payments"].sum()) == count
    for _, row in by_day.iterrows():
        assert sum((row[m] for m in METHODS), Decimal(0)) == row["total"]
    for method in METHODS:
        per_method = dict(zip(by_method["method"], by_method["cash_received"], strict=True))
        assert sum(by_day[method], Decimal(0)) == per_method.get(method, Decimal(0)), method


# --- (1) the tiny example -----------------------------------------------------------------------


@pytest.fixture
def tiny(engine: Engine, business: Business) -> Business:
    insert_tiny(engine, business.id)
    return business


def test_tiny_cash_received(engine: Engine, settings: Settings, tiny: Business) -> None:
    report = payments(engine, settings, tiny, "start=2025-01-01", "end=2025-03-31")
    assert money(report.kpi("cash_received").value) == money(EXPECTED["kpis"]["cash_received"])
    assert money(report.kpi("revenue").value) == money(EXPECTED["kpis"]["revenue"])
    # Y3 (credit note on O2) is not cash; Y4 (cash on the void O4) is excluded; Y6 is after the period.
    assert report.kpi("credit_notes").value == Decimal(100)
    assert report.kpi("excluded_void_draft").value == Decimal(60)
    assert report.kpi("payments").value == 3
    assert report.kpi("avg_payment").value == Decimal(465)
    methods = {r["method"]: r["cash_received"] for r in report.tables["by_method"].records()}
    assert methods == {"bank_transfer": Decimal(1000), "cash": Decimal(200), "card": Decimal(195)}
    by_day = report.tables["by_day"].frame
    assert len(by_day) == 90 and by_day["day"].iloc[0] == dt.date(2025, 1, 1)
    day = by_day.set_index("day")
    assert day.at[dt.date(2025, 1, 10), "cash"] == Decimal(200)  # O7's January payment (order from 2024)
    customers = [(r["customer_code"], r["cash_received"]) for r in report.tables["by_customer"].records()]
    assert customers == [("B2", Decimal(1200)), ("A1", Decimal(195))]
    assert_tables_add_up(report)
    chart = next(c for c in report.charts if c.key == "by_day")
    assert (chart.kind, chart.table, chart.x, chart.y) == ("stacked_bar", "by_day", "day", METHODS)


# --- (2) hand-worked fixtures -------------------------------------------------------------------


@pytest.fixture
def june(engine: Engine, business: Business) -> Business:
    (
        Ledger(engine, business.id)
        .customer("A", region="North")
        .customer("B", region="South")
        .sale("S1", "2025-05-20", "A", "100")
        .pay("S1", "2025-05-31T23:59:59", "10", "cash")  # the day before the period
        .pay("S1", "2025-06-01T00:00:00", "40", "card")  # first instant of the period
        .pay("S1", "2025-06-15T10:00:00", "20", "credit_note")  # settles, but is not cash
        .pay("S1", "2025-06-30T23:59:59", "25", "mobile")  # last instant of the period
        .pay("S1", "2025-07-01T00:00:00", "5", "cash")  # the day after
        .sale("S2", "2025-06-05", "B", "60", status="refunded")
        .pay("S2", "2025-06-05T12:00:00", "60", "bank_transfer")  # SPEC excludes only void and draft
        .sale("S3", "2025-06-10", "B", "55", status="void")
        .pay("S3", "2025-06-10T12:00:00", "50", "cash")
        .pay("S3", "2025-06-11T12:00:00", "5", "credit_note")
        .sale("S4", "2025-06-12", "A", "30", status="draft")
        .pay("S4", "2025-06-12T12:00:00", "30", "card")
        .sale("S5", "2025-06-20", "A", "200")  # revenue of the period, not yet paid
        .save()
    )
    return business


def test_hand_worked_month(engine: Engine, settings: Settings, june: Business) -> None:
    report = payments(engine, settings, june, *JUNE)
    kpis = {k.key: k.value for k in report.kpis}
    assert kpis["cash_received"] == Decimal(125)  # 40 card + 25 mobile + 60 bank transfer (refunded order)
    assert kpis["payments"] == 3
    assert kpis["avg_payment"] == Decimal(125) / 3
    assert kpis["credit_notes"] == Decimal(20)  # the void order's credit note is excluded, not here
    assert kpis["excluded_void_draft"] == Decimal(85)  # 50 + 5 on the void order, 30 on the draft
    assert kpis["revenue"] == Decimal(200)
    assert kpis["cash_to_revenue_pct"] == pytest.approx(0.625)
    assert [
        (r["method"], r["cash_received"], r["payments"]) for r in report.tables["by_method"].records()
    ] == [
        ("bank_transfer", Decimal(60), 1),
        ("card", Decimal(40), 1),
        ("mobile", Decimal(25), 1),
    ]
    by_day = report.tables["by_day"].frame.set_index("day")
    assert len(by_day) == 30
    assert by_day.at[dt.date(2025, 6, 1), "card"] == Decimal(40)
    assert by_day.at[dt.date(2025, 6, 5), "bank_transfer"] == Decimal(60)
    assert by_day.at[dt.date(2025, 6, 30), "mobile"] == Decimal(25)
    assert by_day.at[dt.date(2025, 6, 10), "total"] == Decimal(0)
    customers = report.tables["by_customer"].records()
    assert [(r["customer_code"], r["cash_received"], r["payments"]) for r in customers] == [
        ("A", Decimal(65), 2),
        ("B", Decimal(60), 1),
    ]
    assert customers[0]["last_paid_on"] == dt.date(2025, 6, 30)
    assert_tables_add_up(report)


def test_three_way_split_covers_every_payment(engine: Engine, settings: Settings, june: Business) -> None:
    report = payments(engine, settings, june, *JUNE)
    split = sum(
        (
            cast(Decimal, report.kpi(k).value)
            for k in ("cash_received", "credit_notes", "excluded_void_draft")
        ),
        Decimal(0),
    )
    assert split == Decimal(40 + 20 + 25 + 60 + 50 + 5 + 30)


@pytest.mark.parametrize(
    ("pairs", "cash", "excluded", "credit_notes"),
    [
        (("region=South",), Decimal(60), Decimal(55), Decimal(0)),
        (("region=North",), Decimal(65), Decimal(30), Decimal(20)),
        (("customer=A", "customer_type=retail"), Decimal(65), Decimal(30), Decimal(20)),
        (("sales_rep=nobody",), Decimal(0), Decimal(0), Decimal(0)),
        (("storefront=M",), Decimal(125), Decimal(85), Decimal(20)),
    ],
)
def test_filters(
    engine: Engine,
    settings: Settings,
    june: Business,
    pairs: tuple[str, ...],
    cash: Decimal,
    excluded: Decimal,
    credit_notes: Decimal,
) -> None:
    report = payments(engine, settings, june, *JUNE, *pairs)
    assert report.kpi("cash_received").value == cash
    assert report.kpi("excluded_void_draft").value == excluded
    assert report.kpi("credit_notes").value == credit_notes
    assert_tables_add_up(report)


@pytest.mark.parametrize(
    ("status", "counted"), [("completed", True), ("refunded", True), ("void", False), ("draft", False)]
)
def test_which_orders_count(
    engine: Engine, settings: Settings, business: Business, status: str, counted: bool
) -> None:
    (
        Ledger(engine, business.id)
        .customer("A")
        .sale("S1", "2025-06-02", "A", "10", status=status)
        .pay("S1", "2025-06-02T09:00:00", "10.005", "card")
        .save()
    )
    report = payments(engine, settings, business, *JUNE)
    amount = Decimal("10.005")
    assert report.kpi("cash_received").value == (amount if counted else 0)
    assert report.kpi("excluded_void_draft").value == (0 if counted else amount)
    assert len(report.tables["by_day"].frame) == (30 if counted else 0)


def test_wrong_filter_is_refused(engine: Engine, settings: Settings, june: Business) -> None:
    with pytest.raises(ParamError, match="cannot be filtered by 'product'"):
        payments(engine, settings, june, *JUNE, "product=P")


# --- (3) oracle on generated data ---------------------------------------------------------------

TODAY = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def demo(engine: Engine) -> Iterator[tuple[Business, dict[str, pd.DataFrame]]]:
    business = new_business(engine)
    load_demo(engine, business.code, rows=3000, seed=5, today=TODAY)
    yield business, raw_frames(engine, business.id)


def micros(value: int) -> Decimal:
    return Decimal(int(value)) / 1_000_000


@pytest.mark.parametrize(
    ("start", "end", "region", "methods"),
    [
        (dt.date(2024, 11, 15), dt.date(2025, 2, 10), None, ()),
        (dt.date(2024, 11, 15), dt.date(2025, 2, 10), "North", ()),
        (dt.date(2025, 2, 1), dt.date(2025, 5, 31), "South", ()),
        (dt.date(2024, 11, 15), dt.date(2025, 2, 10), None, ("card",)),
        (dt.date(2024, 11, 15), dt.date(2025, 5, 31), None, ("bank_transfer", "credit_note")),
    ],
)
def test_oracle_on_demo_data(
    engine: Engine,
    settings: Settings,
    demo: tuple[Business, dict[str, pd.DataFrame]],
    start: dt.date,
    end: dt.date,
    region: str | None,
    methods: tuple[str, ...],
) -> None:
    business, raw = demo
    pays = raw["payments"].merge(
        raw["customers"][["id", "customer_code", "region"]].rename(columns={"id": "customer_id"}),
        on="customer_id",
    )
    day = pays["paid_at"].dt.date
    pays = pays[(day >= start) & (day <= end)].copy()
    if region:
        pays = pays[pays["region"] == region]
    if methods:
        pays = pays[pays["method"].isin(methods)]
    pays["day"] = pays["paid_at"].dt.date
    excluded = pays["sale_status"].isin(["void", "draft"])
    cash = pays[~excluded & (pays["method"] != "credit_note")]
    assert len(cash) > 10, "the demo data should have payments in this period"
    pairs = [
        f"start={start}",
        f"end={end}",
        *([f"region={region}"] if region else []),
        *([f"payment_method={','.join(methods)}"] if methods else []),
    ]
    report = payments(engine, settings, business, *pairs)
    # An invoice is not paid by one method: with the filter, cash / revenue is left empty and said so.
    assert (report.kpi("cash_to_revenue_pct").value is None) == bool(methods)
    assert any("not split by payment method" in n for n in report.notes) == bool(methods)

    assert report.kpi("cash_received").value == micros(cash["amount_micros"].sum())
    assert report.kpi("payments").value == len(cash)
    assert report.kpi("excluded_void_draft").value == micros(pays[excluded]["amount_micros"].sum())
    notes = pays[~excluded & (pays["method"] == "credit_note")]
    assert report.kpi("credit_notes").value == micros(notes["amount_micros"].sum())

    by_method = cash.groupby("method")["amount_micros"].sum()
    got_methods = {r["method"]: r["cash_received"] for r in report.tables["by_method"].records()}
    assert got_methods == {m: micros(v) for m, v in by_method.items()}

    got_day = report.tables["by_day"].frame.set_index("day")
    assert list(got_day.index) == [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    per_day = cash.groupby(["day", "method"])["amount_micros"].sum()
    for (d, method), value in per_day.items():
        assert got_day.loc[d, method] == micros(value), (d, method)
    assert sum(got_day["total"], Decimal(0)) == micros(cash["amount_micros"].sum())

    per_customer = cash.groupby("customer_code")["amount_micros"].agg(["sum", "count"])
    expected_order = sorted(per_customer.index, key=lambda c: (-per_customer.loc[c, "sum"], c))
    got_customers = report.tables["by_customer"].records()
    assert [r["customer_code"] for r in got_customers] == expected_order
    for r in got_customers:
        assert r["cash_received"] == micros(per_customer.loc[r["customer_code"], "sum"])
        assert r["payments"] == per_customer.loc[r["customer_code"], "count"]
    assert_tables_add_up(report)


# --- (4) an empty period ------------------------------------------------------------------------


def test_empty_period(engine: Engine, settings: Settings, june: Business) -> None:
    report = payments(engine, settings, june, "start=2019-01-01", "end=2019-12-31")
    assert report.is_empty
    assert report.kpi("cash_received").value == Decimal(0)
    assert report.kpi("payments").value == 0
    assert report.kpi("avg_payment").value is None
    assert report.kpi("cash_to_revenue_pct").value is None
    for table in report.tables.values():
        assert set(table.frame.columns) >= {c.key for c in table.columns}, table.name
