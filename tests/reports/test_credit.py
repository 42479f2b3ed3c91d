"""credit_aging: outstanding balances by customer and age bucket (tiny example, hand-worked, oracle)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, cast

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.report import ParamError, Report
from core.db import bump_data_version, session_scope
from core.models import Business, Customer, Payment, Product, Sale, SaleLine, Storefront
from core.money import to_micros
from core.settings import Settings
from ingest.demo import load_demo
from tests.conftest import new_business
from tests.factories import TINY_DIR, insert_tiny, money, raw_frames
from tests.reports.reporting import run_report

EXPECTED = json.loads((TINY_DIR / "expected.json").read_text(encoding="utf-8"))
BUCKET_KEYS = ("bucket_0_30", "bucket_31_60", "bucket_61_90", "bucket_90_plus")
BY_CUSTOMER_COLUMNS = ["customer_code", "customer_name", *BUCKET_KEYS, "total"]


class Ledger:
    """A tiny hand-made business: customers, completed-or-not sales with one line, payments."""

    def __init__(self, engine: Engine, business_id: int) -> None:
        self.engine, self.business_id = engine, business_id
        self.customers: dict[str, dict[str, Any]] = {}
        self.sales: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []

    def customer(self, code: str, *, limit: str = "0", region: str = "North") -> Ledger:
        self.customers[code] = {"limit": limit, "region": region}
        return self

    def sale(
        self,
        order_id: str,
        order_date: str,
        customer: str,
        net: str,
        *,
        status: str = "completed",
        storefront: str = "M",
        rep: str = "ana",
    ) -> Ledger:
        self.sales.append(
            {"order_id": order_id, "date": order_date, "customer": customer, "net": net}
            | {"status": status, "storefront": storefront, "rep": rep}
        )
        return self

    def pay(self, order_id: str, paid_at: str, amount: str, method: str = "cash") -> Ledger:
        self.payments.append({"order_id": order_id, "at": paid_at, "amount": amount, "method": method})
        return self

    def save(self) -> None:
        b = self.business_id
        with session_scope(self.engine) as s:
            fronts = {}
            for code in sorted({x["storefront"] for x in self.sales}):
                front = Storefront(business_id=b, code=code, name=f"Store {code}", region="North")
                s.add(front)
                s.flush()
                fronts[code] = front.id
            product = Product(
                business_id=b, sku="P", name="Thing", category="C", unit_cost_micros=0, unit_price_micros=0
            )
            s.add(product)
            custs = {}
            for code, c in self.customers.items():
                row = Customer(
                    business_id=b,
                    customer_code=code,
                    name=f"Customer {code}",
                    customer_type="retail",
                    region=c["region"],
                    credit_limit_micros=to_micros(c["limit"]),
                )
                s.add(row)
                s.flush()
                custs[code] = row.id
            sale_ids = {}
            for x in self.sales:
                net = to_micros(x["net"])
                sale = Sale(
                    business_id=b,
                    order_id=x["order_id"],
                    order_date=dt.date.fromisoformat(x["date"]),
                    customer_id=custs[x["customer"]],
                    storefront_id=fronts[x["storefront"]],
                    sales_rep=x["rep"],
                    status=x["status"],
                    net_micros=net,
                    cost_micros=0,
                )
                s.add(sale)
                s.flush()
                sale_ids[x["order_id"]] = sale.id
                s.add(
                    SaleLine(
                        business_id=b,
                        sale_id=sale.id,
                        line_no=1,
                        product_id=product.id,
                        quantity=1.0,
                        unit_price_micros=net,
                        unit_cost_micros=0,
                        discount=0.0,
                        net_micros=net,
                        cost_micros=0,
                    )
                )
            for i, p in enumerate(self.payments):
                s.add(
                    Payment(
                        business_id=b,
                        payment_id=f"Y{i}",
                        sale_id=sale_ids[p["order_id"]],
                        paid_at=dt.datetime.fromisoformat(p["at"]),
                        amount_micros=to_micros(p["amount"]),
                        method=p["method"],
                    )
                )
            bump_data_version(s, b)


def aging(engine: Engine, settings: Settings, business: Business, *pairs: str) -> Report:
    return run_report(engine, settings.snapshot_dir, business.id, "credit_aging", *pairs)


def frame_of(report: Report, table: str) -> pd.DataFrame:
    return report.tables[table].frame


def assert_totals_are_sums(report: Report) -> None:
    """A report total equals the sum of its rows, in every table that carries the balance."""
    total = report.kpi("outstanding_total").value
    customers = frame_of(report, "by_customer")
    assert sum(customers["total"], Decimal(0)) == total
    assert sum(frame_of(report, "open_orders")["outstanding"], Decimal(0)) == total
    assert sum(frame_of(report, "by_bucket")["outstanding"], Decimal(0)) == total
    for key in BUCKET_KEYS:
        assert sum(customers[key], Decimal(0)) == report.kpi(key).value, key
    bucket_sum = customers[list(BUCKET_KEYS)].sum(axis=1)
    assert all(a == b for a, b in zip(bucket_sum, customers["total"], strict=True))
    assert sum(frame_of(report, "over_limit")["over_limit_amount"], Decimal(0)) == (
        report.kpi("over_limit_amount").value
    )


# --- (1) the tiny example -----------------------------------------------------------------------


@pytest.fixture
def tiny(engine: Engine, business: Business) -> Business:
    insert_tiny(engine, business.id)
    return business


def test_tiny_aging_matches_expected(engine: Engine, settings: Settings, tiny: Business) -> None:
    report = aging(engine, settings, tiny, "start=2025-01-01", "end=2025-03-31")
    assert report.kpi("outstanding_total").value == Decimal(str(EXPECTED["kpis"]["outstanding"]))
    rows = {r["customer_code"]: r for r in report.tables["by_customer"].records()}
    assert set(rows) == set(EXPECTED["aging"])
    for code, figures in EXPECTED["aging"].items():
        for key, value in figures.items():
            assert money(rows[code][key]) == money(value), (code, key)
    assert_totals_are_sums(report)


def test_tiny_columns_over_limit_and_open_orders(engine: Engine, settings: Settings, tiny: Business) -> None:
    report = aging(engine, settings, tiny, "start=2025-01-01", "end=2025-03-31")
    by_customer = report.tables["by_customer"]
    keys = [c.key for c in by_customer.columns]
    assert keys[:7] == BY_CUSTOMER_COLUMNS
    assert {"credit_limit", "over_limit", "over_limit_amount"} <= set(keys)
    assert by_customer.highlights and by_customer.highlights[0].column == "over_limit"
    # B2 owes 505 against a limit of 500; D4 owes 60 against 300.
    over = report.tables["over_limit"].records()
    assert [(r["customer_code"], r["over_limit_amount"]) for r in over] == [("B2", Decimal("5"))]
    assert report.kpi("over_limit_customers").value == 1
    orders = [
        (r["order_id"], r["days_old"], r["bucket"], r["outstanding"])
        for r in report.tables["open_orders"].records()
    ]
    assert orders == [
        ("O7", 90, "61-90", Decimal(275)),
        ("O9", 60, "31-60", Decimal(30)),  # paid two days after the period: still owed at its end
        ("O2", 59, "31-60", Decimal(230)),  # the credit note reduces the balance
        ("O5", 0, "0-30", Decimal(30)),
    ]
    # Weighted age: (90*275 + 60*30 + 59*230 + 0*30) / 565.
    assert report.kpi("avg_days_outstanding").value == pytest.approx((90 * 275 + 60 * 30 + 59 * 230) / 565)
    assert [c.y for c in report.charts if c.key == "by_customer"] == [BUCKET_KEYS]


def test_tiny_as_of_option_overrides_period_end(engine: Engine, settings: Settings, tiny: Business) -> None:
    # At 2025-04-02 O9 is paid (Y6) and O6 (2025-04-01, 15, unpaid) is owed.
    report = aging(engine, settings, tiny, "start=2025-01-01", "end=2025-03-31", "as_of=2025-04-02")
    orders = {r["order_id"]: r["outstanding"] for r in report.tables["open_orders"].records()}
    assert orders == {"O7": Decimal(275), "O2": Decimal(230), "O5": Decimal(30), "O6": Decimal(15)}
    assert report.notes[0].startswith("Balances as of 2025-04-02")


# --- (2) hand-worked fixtures -------------------------------------------------------------------

AS_OF = "2025-06-30"


@pytest.mark.parametrize(
    ("order_date", "days", "bucket"),
    [
        ("2025-06-30", 0, "bucket_0_30"),
        ("2025-05-31", 30, "bucket_0_30"),
        ("2025-05-30", 31, "bucket_31_60"),
        ("2025-05-01", 60, "bucket_31_60"),
        ("2025-04-30", 61, "bucket_61_90"),
        ("2025-04-01", 90, "bucket_61_90"),
        ("2025-03-31", 91, "bucket_90_plus"),
        ("2023-06-30", 731, "bucket_90_plus"),
    ],
)
def test_bucket_boundaries(
    engine: Engine, settings: Settings, business: Business, order_date: str, days: int, bucket: str
) -> None:
    Ledger(engine, business.id).customer("C").sale("S1", order_date, "C", "100.10").save()
    report = aging(engine, settings, business, "start=2025-06-01", f"end={AS_OF}")
    (row,) = report.tables["by_customer"].records()
    assert {k: row[k] for k in BUCKET_KEYS} == {
        k: (Decimal("100.10") if k == bucket else Decimal(0)) for k in BUCKET_KEYS
    }
    (order,) = report.tables["open_orders"].records()
    assert order["days_old"] == days
    assert report.kpi(bucket).value == Decimal("100.10")


def test_payments_credit_notes_overpayment_and_cutoff(
    engine: Engine, settings: Settings, business: Business
) -> None:
    (
        Ledger(engine, business.id)
        .customer("A", limit="100")
        .customer("B", limit="0")
        # partial payments: 300 - 100 - 50.25 = 149.75
        .sale("S1", "2025-06-10", "A", "300")
        .pay("S1", "2025-06-11T10:00:00", "100", "card")
        .pay("S1", "2025-06-20T10:00:00", "50.25", "cash")
        # a credit note reduces the balance (not cash, but it settles): 80 - 30 = 50
        .sale("S2", "2025-04-15", "A", "80")
        .pay("S2", "2025-05-01T09:00:00", "30", "credit_note")
        # overpaid: balance 0, never negative, and it does not offset the customer's other orders
        .sale("S3", "2025-06-01", "A", "40")
        .pay("S3", "2025-06-02T09:00:00", "45", "bank_transfer")
        # paid on the as-of day (late evening) counts; paid the day after does not
        .sale("S4", "2025-03-01", "B", "70")
        .pay("S4", "2025-06-30T23:59:59", "20", "mobile")
        .pay("S4", "2025-07-01T00:00:00", "50", "cash")
        # not completed: never outstanding
        .sale("S5", "2025-06-01", "B", "500", status="draft")
        .sale("S6", "2025-06-01", "B", "500", status="void")
        .sale("S7", "2025-06-01", "B", "500", status="refunded")
        # ordered after the as-of date
        .sale("S8", "2025-07-01", "B", "500")
        # fully paid
        .sale("S9", "2025-06-01", "B", "10")
        .pay("S9", "2025-06-01T12:00:00", "10", "cash")
        .save()
    )
    report = aging(engine, settings, business, "start=2025-06-01", f"end={AS_OF}")
    orders = {r["order_id"]: (r["paid"], r["outstanding"]) for r in report.tables["open_orders"].records()}
    assert orders == {
        "S1": (Decimal("150.25"), Decimal("149.75")),
        "S2": (Decimal(30), Decimal(50)),
        "S4": (Decimal(20), Decimal(50)),
    }
    rows = {r["customer_code"]: r for r in report.tables["by_customer"].records()}
    assert rows["A"]["bucket_0_30"] == Decimal("149.75")
    assert rows["A"]["bucket_61_90"] == Decimal(50)  # S2 is 76 days old
    assert rows["A"]["total"] == Decimal("199.75")
    assert (rows["A"]["over_limit"], rows["A"]["over_limit_amount"]) == (True, Decimal("99.75"))
    assert rows["B"]["bucket_90_plus"] == Decimal(50)  # S4 is 121 days old
    assert (rows["B"]["over_limit"], rows["B"]["over_limit_amount"]) == (False, Decimal(0))  # no limit
    assert [r["customer_code"] for r in report.tables["by_customer"].records()] == ["A", "B"]
    assert report.kpi("outstanding_total").value == Decimal("249.75")
    assert report.kpi("open_orders").value == 3
    assert_totals_are_sums(report)


def test_over_limit_sorted_by_excess_ties_by_code(
    engine: Engine, settings: Settings, business: Business
) -> None:
    ledger = Ledger(engine, business.id)
    for code, limit, owed in [
        ("Z", "100", "150"),
        ("A", "100", "150"),
        ("M", "10", "200"),
        ("Q", "500", "500"),
    ]:
        ledger.customer(code, limit=limit).sale(f"S{code}", "2025-06-01", code, owed)
    ledger.save()
    report = aging(engine, settings, business, "start=2025-06-01", f"end={AS_OF}")
    over = [(r["customer_code"], r["over_limit_amount"]) for r in report.tables["over_limit"].records()]
    assert over == [("M", Decimal(190)), ("A", Decimal(50)), ("Z", Decimal(50))]  # Q is at, not over
    assert report.kpi("over_limit_amount").value == Decimal(290)
    assert [r["customer_code"] for r in report.tables["by_customer"].records()] == ["Q", "M", "A", "Z"]


def test_filters_and_storefront_note(engine: Engine, settings: Settings, business: Business) -> None:
    (
        Ledger(engine, business.id)
        .customer("N", region="North")
        .customer("S", region="South")
        .sale("S1", "2025-06-01", "N", "10", storefront="M", rep="ana")
        .sale("S2", "2025-06-01", "N", "20", storefront="X", rep="ben")
        .sale("S3", "2025-06-01", "S", "40", storefront="M", rep="ana")
        .save()
    )
    period = ("start=2025-06-01", f"end={AS_OF}")
    north = aging(engine, settings, business, *period, "region=North")
    assert north.kpi("outstanding_total").value == Decimal(30)
    assert not any("storefront" in n for n in north.notes)
    store = aging(engine, settings, business, *period, "storefront=X")
    assert store.kpi("outstanding_total").value == Decimal(20)
    assert any("storefront" in n for n in store.notes)
    rep = aging(engine, settings, business, *period, "sales_rep=ana", "customer=S")
    assert rep.kpi("outstanding_total").value == Decimal(40)
    nothing = aging(engine, settings, business, *period, "region=Nowhere")
    assert nothing.is_empty and nothing.kpi("outstanding_total").value == Decimal(0)
    with pytest.raises(ParamError, match="cannot be filtered by 'category'"):
        aging(engine, settings, business, *period, "category=C")
    with pytest.raises(ParamError, match="as_of"):
        aging(engine, settings, business, *period, "as_of=June")


# --- (3) oracle on generated data ---------------------------------------------------------------

TODAY = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def demo(engine: Engine) -> Iterator[tuple[Business, dict[str, pd.DataFrame]]]:
    business = new_business(engine)
    load_demo(engine, business.code, rows=3000, seed=11, today=TODAY)
    yield business, raw_frames(engine, business.id)


def oracle(raw: dict[str, pd.DataFrame], asof: dt.date, region: str | None = None) -> pd.DataFrame:
    """Per customer: outstanding by bucket, recomputed in plain pandas + Decimal from the raw rows."""
    sales = raw["sales"]
    sales = sales[(sales["status"] == "completed") & (sales["order_date"] <= asof)]
    if region:
        sales = sales[sales["region"] == region]
    pays = raw["payments"]
    pays = pays[pays["paid_at"].dt.date <= asof]
    paid = pays.groupby("sale_id")["amount_micros"].sum()
    out: dict[str, dict[str, Any]] = {}
    for s in cast("Iterator[Any]", sales.itertuples()):  # pandas-stubs types each field as any scalar
        owed = max(int(s.net_micros) - int(paid.get(s.id, 0)), 0)
        if owed == 0:
            continue
        days = (asof - s.order_date).days
        key = BUCKET_KEYS[0 if days <= 30 else 1 if days <= 60 else 2 if days <= 90 else 3]
        row = out.setdefault(s.customer_code, dict.fromkeys((*BUCKET_KEYS, "total"), 0))
        row[key] += owed
        row["total"] += owed
    limits = raw["customers"].set_index("customer_code")["credit_limit_micros"]
    frame = pd.DataFrame.from_dict(out, orient="index", columns=[*BUCKET_KEYS, "total"])
    frame["over_limit"] = [bool(0 < limits[c] < t) for c, t in zip(frame.index, frame["total"], strict=True)]
    return frame


@pytest.mark.parametrize(
    ("pairs", "asof", "region"),
    [
        (("start=2025-06-01", "end=2025-06-30"), dt.date(2025, 6, 30), None),
        (("start=2024-12-01", "end=2025-01-15"), dt.date(2025, 1, 15), None),
        (("start=2025-06-01", "end=2025-06-30", "region=North"), dt.date(2025, 6, 30), "North"),
        (("start=2024-01-01", "end=2024-12-31", "as_of=2025-01-03"), dt.date(2025, 1, 3), None),
    ],
)
def test_oracle_on_demo_data(
    engine: Engine,
    settings: Settings,
    demo: tuple[Business, dict[str, pd.DataFrame]],
    pairs: tuple[str, ...],
    asof: dt.date,
    region: str | None,
) -> None:
    business, raw = demo
    expected = oracle(raw, asof, region)
    assert len(expected) > 3, "the demo data should owe something at this date"
    report = aging(engine, settings, business, *pairs)
    got = report.tables["by_customer"].frame.set_index("customer_code")
    assert sorted(got.index) == sorted(expected.index)
    for code, row in cast("Iterator[tuple[str, pd.Series]]", expected.iterrows()):
        for key in (*BUCKET_KEYS, "total"):
            assert got.loc[code, key] == Decimal(int(row[key])) / 1_000_000, (code, key)
        assert bool(got.loc[code, "over_limit"]) == row["over_limit"], code
    assert report.kpi("outstanding_total").value == Decimal(int(expected["total"].sum())) / 1_000_000
    totals = list(got["total"])
    assert totals == sorted(totals, reverse=True)
    assert_totals_are_sums(report)


# --- (4) an empty period ------------------------------------------------------------------------


def test_empty_period(engine: Engine, settings: Settings, tiny: Business) -> None:
    report = aging(engine, settings, tiny, "start=2020-01-01", "end=2020-01-31")
    assert report.is_empty
    assert report.kpi("outstanding_total").value == Decimal(0)
    assert report.kpi("over_limit_customers").value == 0
    assert report.kpi("avg_days_outstanding").value is None
    for table in report.tables.values():
        assert set(table.frame.columns) >= {c.key for c in table.columns}, table.name
