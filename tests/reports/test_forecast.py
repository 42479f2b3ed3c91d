"""Forecast reports: forecast_vs_actual, forecast_accuracy and submission_status (SPEC section 2)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any, cast

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.report import ParamError
from core.db import bump_data_version, session_scope
from core.models import Business, Customer, Forecast, Product, Sale, SaleLine, Storefront
from core.money import line_cost_micros, line_net_micros, to_micros
from core.settings import Settings
from exporters.json_export import report_document
from ingest.demo import load_demo
from tests.conftest import new_business
from tests.factories import TINY_DIR, insert_tiny, money, raw_frames
from tests.reports.reporting import run_report

EXPECTED = json.loads((TINY_DIR / "expected.json").read_text(encoding="utf-8"))
TINY_PERIOD = ("start=2025-01-01", "end=2025-03-31")
Doc = dict[str, Any]


def _doc(engine: Engine, settings: Settings, business_id: int, slug: str, *pairs: str) -> Doc:
    return report_document(run_report(engine, settings.snapshot_dir, business_id, slug, *pairs))


def _rows(doc: Doc, table: str, *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in keys) for r in doc["tables"][table]]


# --- the tiny example -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(engine: Engine) -> Business:
    business = new_business(engine, "Tiny forecasts")
    insert_tiny(engine, business.id)
    return business


def test_tiny_forecast_accuracy_matches_expected(engine: Engine, settings: Settings, tiny: Business) -> None:
    # The six forecast rows of cycles 2025-01..2025-03 (A = completed quantity in the cycle's month):
    #   cycle    key    rep  F    A    |A-F|  (A-F)^2  |A-F|/A
    #   2025-01  A1 P1  ana    8   10    2      4      0.2      O1
    #   2025-01  A1 P2  ana    5    5    0      0      0        O1
    #   2025-01  B2 P1  ben  120  100   20    400      0.2      O2
    #   2025-01  D4 P1  ben    1    2    1      1      0.5      O9
    #   2025-02  C3 P2  ana   10    0   10    100      -        O3 is a draft: A = 0, left out of MAPE
    #   2025-03  D4 P2  ben    3    3    0      0      0        O5 (on the period's last day)
    # sum F = 147, sum A = 120, sum |A-F| = 33, sum (A-F)^2 = 505.
    # MAD = 33/6 = 5.5; RMSE = sqrt(505/6) = 9.17423929634859;
    # MAPE = (0.2 + 0 + 0.2 + 0.5 + 0) / 5 = 0.18 over 5 rows, 1 row excluded (A = 0);
    # WAPE = 33/120 = 0.275; accuracy = 1 - 0.275 = 0.725; bias = (147 - 120)/120 = 0.225.
    kpis = _doc(engine, settings, tiny.id, "forecast_accuracy", *TINY_PERIOD)["kpis"]
    for key, value in EXPECTED["forecast_accuracy"].items():
        assert kpis[key] == pytest.approx(value, rel=1e-12), key
    assert kpis["mape_excluded_rows"] == 1
    assert kpis["rows"] == 6
    assert (kpis["forecast_qty"], kpis["actual_qty"]) == (147, 120)
    # Every completed sale of the period's months has a forecast (O7 is December 2024).
    assert kpis["unforecast_qty"] == 0
    assert money(kpis["unforecast_revenue"]) == money(0)


def test_tiny_forecast_accuracy_rollups(engine: Engine, settings: Settings, tiny: Business) -> None:
    tables = _doc(engine, settings, tiny.id, "forecast_accuracy", *TINY_PERIOD)["tables"]
    # ana: A1 P1 (8/10), A1 P2 (5/5), C3 P2 (10/0): |A-F| = 2, 0, 10 -> MAD 4, WAPE 12/15,
    # MAPE over A1 only = (0.2 + 0)/2 = 0.1 with C3 excluded; bias (23 - 15)/15.
    by_rep = {r["sales_rep"]: r for r in tables["by_rep"]}
    assert by_rep["ana"]["mad"] == pytest.approx(4.0)
    assert by_rep["ana"]["rmse"] == pytest.approx(math.sqrt(104 / 3))
    assert by_rep["ana"]["mape"] == pytest.approx(0.1)
    assert by_rep["ana"]["mape_excluded_rows"] == 1
    assert by_rep["ana"]["wape"] == pytest.approx(0.8)
    assert by_rep["ana"]["accuracy"] == pytest.approx(0.2)
    assert by_rep["ana"]["bias"] == pytest.approx(8 / 15)
    # C3 only has the A = 0 row: WAPE, accuracy, bias and MAPE are undefined, not 0.
    c3 = next(r for r in tables["by_customer"] if r["customer_code"] == "C3")
    assert (c3["mape"], c3["wape"], c3["accuracy"], c3["bias"], c3["rows"]) == (None, None, None, None, 1)
    # P2: F 18, A 8, sum |A-F| = 10 -> WAPE 1.25, accuracy floored at 0.
    p2 = next(r for r in tables["by_product"] if r["sku"] == "P2")
    assert (p2["wape"], p2["accuracy"]) == (pytest.approx(1.25), 0.0)
    assert [r["month"] for r in tables["by_month"]] == ["2025-01", "2025-02", "2025-03"]


def test_tiny_forecast_vs_actual(engine: Engine, settings: Settings, tiny: Business) -> None:
    doc = _doc(engine, settings, tiny.id, "forecast_vs_actual", *TINY_PERIOD)
    kpis = doc["kpis"]
    assert (kpis["forecast_qty"], kpis["actual_qty"], kpis["variance_qty"]) == (147, 120, -27)
    assert kpis["variance_pct"] == pytest.approx(-27 / 147)
    assert (kpis["exceptions"], kpis["over_forecast"], kpis["under_forecast"]) == (3, 2, 2)
    assert kpis["exact_forecast"] == 2
    assert kpis["accuracy"] == pytest.approx(EXPECTED["forecast_accuracy"]["accuracy"])
    assert _rows(
        doc, "variance", "cycle", "customer_code", "sku", "variance_qty", "direction", "exception"
    ) == [
        ("2025-01", "A1", "P1", 2, "under", True),  # +25 %
        ("2025-01", "A1", "P2", 0, "exact", False),
        ("2025-01", "B2", "P1", -20, "over", False),  # -16.7 %
        ("2025-01", "D4", "P1", 1, "under", True),  # +100 %
        ("2025-02", "C3", "P2", -10, "over", True),  # -100 %
        ("2025-03", "D4", "P2", 0, "exact", False),
    ]
    # |variance %| descending; the two 100 % rows tie and the larger |variance| comes first.
    assert _rows(doc, "exceptions", "cycle", "customer_code", "sku", "variance_pct") == [
        ("2025-02", "C3", "P2", -1.0),
        ("2025-01", "D4", "P1", 1.0),
        ("2025-01", "A1", "P1", 0.25),
    ]
    by_month = {r["month"]: r for r in doc["tables"]["by_month"]}
    assert (by_month["2025-01"]["forecast_qty"], by_month["2025-01"]["actual_qty"]) == (134, 117)
    assert by_month["2025-01"]["exceptions"] == 2
    report = run_report(engine, settings.snapshot_dir, tiny.id, "forecast_vs_actual", *TINY_PERIOD)
    assert any(h.column == "variance_pct" and h.op == "abs_gt" for h in report.tables["variance"].highlights)
    trend = next(c for c in report.charts if c.table == "by_month")
    assert trend.y == ("forecast_qty", "actual_qty")


def test_tiny_submission_status(engine: Engine, settings: Settings, tiny: Business) -> None:
    # A rep owes a forecast for cycle M for every customer they forecast (any product) in M-3..M-1.
    # The tiny forecasts: 2025-01 ana/A1 (P1, P2; 2024-12-28), ben/B2 (2025-01-03), ben/D4 (2024-12-30);
    # 2025-02 ana/C3 (2025-01-27); 2025-03 ben/D4 (2025-02-25). Sales play no part.
    #   2025-01 (from 2024-10..2024-12): nothing due; ana/A1, ben/B2, ben/D4 submitted -> 3 not due
    #           (ben/B2 came late, but it was not owed, so it is not a late forecast)
    #   2025-02 (from 2024-11..2025-01): ana/A1, ben/B2, ben/D4 due, none submitted -> 3 missing;
    #           ana/C3 is new to ana's portfolio -> not due
    #   2025-03 (from 2024-12..2025-02): ana/A1, ben/B2, ben/D4, ana/C3 due; ben/D4 on 2025-02-25
    #           (on time), the other 3 missing
    # Totals: 7 due, 1 submitted (on time), 0 late, 6 missing, 4 not due.
    doc = _doc(engine, settings, tiny.id, "submission_status", *TINY_PERIOD)
    kpis = doc["kpis"]
    counts = ("expected", "submitted", "on_time", "late", "missing", "not_due")
    assert tuple(kpis[k] for k in counts) == (7, 1, 1, 0, 6, 4)
    assert kpis["submission_rate"] == pytest.approx(1 / 7)
    assert kpis["on_time_rate"] == pytest.approx(1 / 7)
    assert _rows(doc, "late", "cycle", "sales_rep", "customer_code", "first_submitted_at", "days_late") == []
    assert _rows(doc, "missing", "cycle", "sales_rep", "customer_code", "customer_name") == [
        ("2025-02", "ana", "A1", "Alma Café"),
        ("2025-02", "ben", "B2", "Bodega Grande"),
        ("2025-02", "ben", "D4", "Dulce Deli"),
        ("2025-03", "ana", "A1", "Alma Café"),
        ("2025-03", "ana", "C3", "Corner Shop"),
        ("2025-03", "ben", "B2", "Bodega Grande"),
    ]
    assert _rows(doc, "by_cycle", "cycle", *counts) == [
        ("2025-01", 0, 0, 0, 0, 0, 3),
        ("2025-02", 3, 0, 0, 0, 3, 1),
        ("2025-03", 4, 1, 1, 0, 3, 0),
    ]
    # Nothing is due in 2025-01, so both rates are undefined there, not 0.
    by_cycle = {r["cycle"]: r for r in doc["tables"]["by_cycle"]}
    assert (by_cycle["2025-01"]["submission_rate"], by_cycle["2025-01"]["on_time_rate"]) == (None, None)
    assert _rows(doc, "by_rep", "sales_rep", *counts) == [
        ("ana", 3, 0, 0, 0, 3, 2),  # due: 2025-02 A1, 2025-03 A1 and C3; not due: 2025-01 A1, 2025-02 C3
        ("ben", 4, 1, 1, 0, 3, 2),  # due: 2025-02 B2, D4, 2025-03 B2, D4; not due: 2025-01 B2, D4
    ]


@pytest.mark.parametrize(
    ("period", "rate"),
    [
        (TINY_PERIOD, 1 / 7),  # 1 of the 7 due forecasts above was submitted
        (("start=2025-01-01", "end=2025-01-31"), None),  # nothing due: undefined, not 0
        (("start=2025-02-01", "end=2025-02-28"), 0.0),  # 3 due, none submitted
        (("start=2025-03-10", "end=2025-03-20"), 1 / 4),  # cycle 2025-03: ben/D4 of 4 due
        (("start=2025-04-01", "end=2025-04-30"), 0.0),  # from 2025-01..03: A1, B2, D4, C3; none submitted
    ],
)
def test_tiny_dashboard_submission_rate(
    engine: Engine, settings: Settings, tiny: Business, period: tuple[str, str], rate: float | None
) -> None:
    # The KPI dashboard's forecast submission rate is the submission_status definition.
    dash = _doc(engine, settings, tiny.id, "kpi_dashboard", *period)["kpis"]
    assert dash["forecast_submission_rate"] == (None if rate is None else pytest.approx(rate))
    status = _doc(engine, settings, tiny.id, "submission_status", *period)["kpis"]
    assert status["submission_rate"] == dash["forecast_submission_rate"]


def test_storefront_filter(engine: Engine, settings: Settings, tiny: Business) -> None:
    # Forecasts have no storefront: the forecast reports refuse the filter ...
    for slug in ("forecast_accuracy", "forecast_vs_actual", "submission_status"):
        with pytest.raises(ParamError, match="storefront"):
            run_report(engine, settings.snapshot_dir, tiny.id, slug, *TINY_PERIOD, "storefront=M")
    # ... and the dashboard's submission rate ignores it: what is due comes from forecasts alone.
    for front in ("M", "NOWHERE"):
        dash = _doc(engine, settings, tiny.id, "kpi_dashboard", *TINY_PERIOD, f"storefront={front}")["kpis"]
        assert dash["forecast_submission_rate"] == pytest.approx(1 / 7)
    # The other forecast dimensions narrow both what is due and what was submitted.
    dash = _doc(engine, settings, tiny.id, "kpi_dashboard", *TINY_PERIOD, "sales_rep=ben")["kpis"]
    assert dash["forecast_submission_rate"] == pytest.approx(1 / 4)
    dash = _doc(engine, settings, tiny.id, "kpi_dashboard", *TINY_PERIOD, "product=P2")["kpis"]
    # P2 forecasts: 2025-01 ana/A1, 2025-02 ana/C3, 2025-03 ben/D4. Due: 2025-02 ana/A1 (missing);
    # 2025-03 ana/A1, ana/C3 (missing); ben/D4's P2 is new (its earlier forecast was P1): not due.
    assert dash["forecast_submission_rate"] == pytest.approx(0.0)


# --- hand-worked fixtures ----------------------------------------------------------------------

CUSTOMERS = {"C1": ("North", "retail"), "C2": ("South", "wholesale"), "C3": ("North", "retail")}
PRODUCTS = {"P1": ("Drinks", "10", "6"), "P2": ("Snacks", "4", "2")}  # category, price, cost
SaleRow = tuple[str, str, str, str, str, Sequence[tuple[str, str]]]  # order, date, cust, rep, status, lines
ForecastRow = tuple[str, str, str, str, str, str]  # cycle, customer, sku, rep, quantity, submitted_at


def seed(
    engine: Engine, business_id: int, sales: Sequence[SaleRow], forecasts: Sequence[ForecastRow]
) -> None:
    """Insert the fixed customers and products, then the given sales (list price) and forecasts."""
    with session_scope(engine) as s:
        front = Storefront(business_id=business_id, code="M", name="Main", region="North")
        s.add(front)
        custs: dict[str, int] = {}
        for code, (region, ctype) in CUSTOMERS.items():
            c = Customer(
                business_id=business_id,
                customer_code=code,
                name=f"Customer {code}",
                customer_type=ctype,
                region=region,
            )
            s.add(c)
            s.flush()
            custs[code] = c.id
        prods: dict[str, int] = {}
        for sku, (category, price, cost) in PRODUCTS.items():
            p = Product(
                business_id=business_id,
                sku=sku,
                name=f"Product {sku}",
                category=category,
                unit_cost_micros=to_micros(cost),
                unit_price_micros=to_micros(price),
            )
            s.add(p)
            s.flush()
            prods[sku] = p.id
        s.flush()
        for order_id, day, cust, rep, status, lines in sales:
            sale = Sale(
                business_id=business_id,
                order_id=order_id,
                order_date=dt.date.fromisoformat(day),
                customer_id=custs[cust],
                storefront_id=front.id,
                sales_rep=rep,
                status=status,
                net_micros=0,
                cost_micros=0,
            )
            s.add(sale)
            s.flush()
            for line_no, (sku, qty) in enumerate(lines, 1):
                _, price, cost = PRODUCTS[sku]
                net = line_net_micros(Decimal(qty), Decimal(price), Decimal(0))
                line_cost = line_cost_micros(Decimal(qty), Decimal(cost))
                s.add(
                    SaleLine(
                        business_id=business_id,
                        sale_id=sale.id,
                        line_no=line_no,
                        product_id=prods[sku],
                        quantity=float(qty),
                        unit_price_micros=to_micros(price),
                        unit_cost_micros=to_micros(cost),
                        discount=0.0,
                        net_micros=net,
                        cost_micros=line_cost,
                    )
                )
                sale.net_micros += net
                sale.cost_micros += line_cost
        for cycle, cust, sku, rep, qty, at in forecasts:
            s.add(
                Forecast(
                    business_id=business_id,
                    cycle=cycle,
                    customer_id=custs[cust],
                    product_id=prods[sku],
                    sales_rep=rep,
                    quantity=float(qty),
                    submitted_at=dt.datetime.fromisoformat(at),
                )
            )
        bump_data_version(s, business_id)


# Cycle 2025-03 (period March 2025):
#   C1 P1: ana forecast 10, re-submitted as 12 (the latest counts); sold 12 (+ a draft of 5 and an
#          April sale of 3, neither counts)                           F 12  A 12  exact
#   C1 P2: ana forecast 0; sold 4                                     F  0  A  4  under, exception, pct None
#   C2 P1: ben forecast 20; nothing sold                              F 20  A  0  over, exception (-100 %)
#   C2 P2: ana forecast 8, re-submitted as 10 by ben (the row's rep)  F 10  A 11  under, +10 %
#   C3 P2: ana forecast 0; nothing sold                               F  0  A  0  exact, pct None
#   C3 P1: sold 7 x 10.00 by ana with no forecast: unforecast 7, revenue 70.00
HAND_SALES: list[SaleRow] = [
    ("S1", "2025-03-10", "C1", "ana", "completed", [("P1", "12"), ("P2", "4")]),
    ("S2", "2025-03-11", "C1", "ana", "draft", [("P1", "5")]),
    ("S3", "2025-04-01", "C1", "ana", "completed", [("P1", "3")]),
    ("S4", "2025-03-31", "C2", "ben", "completed", [("P2", "11")]),
    ("S5", "2025-03-01", "C3", "ana", "completed", [("P1", "7")]),
]
HAND_FORECASTS: list[ForecastRow] = [
    ("2025-03", "C1", "P1", "ana", "10", "2025-02-20T10:00:00"),
    ("2025-03", "C1", "P1", "ana", "12", "2025-02-27T10:00:00"),
    ("2025-03", "C1", "P2", "ana", "0", "2025-02-20T10:00:00"),
    ("2025-03", "C2", "P1", "ben", "20", "2025-02-21T10:00:00"),
    ("2025-03", "C2", "P2", "ana", "8", "2025-02-20T10:00:00"),
    ("2025-03", "C2", "P2", "ben", "10", "2025-02-26T10:00:00"),
    ("2025-03", "C3", "P2", "ana", "0", "2025-02-20T10:00:00"),
]
MARCH = ("start=2025-03-01", "end=2025-03-31")


@pytest.fixture(scope="module")
def hand(engine: Engine) -> Business:
    business = new_business(engine, "Hand-worked forecasts")
    seed(engine, business.id, HAND_SALES, HAND_FORECASTS)
    return business


def test_hand_variance_rows(engine: Engine, settings: Settings, hand: Business) -> None:
    doc = _doc(engine, settings, hand.id, "forecast_vs_actual", *MARCH)
    cols = (
        "sales_rep",
        "customer_code",
        "sku",
        "forecast_qty",
        "actual_qty",
        "variance_pct",
        "direction",
        "exception",
    )
    assert _rows(doc, "variance", *cols) == [
        ("ana", "C1", "P1", 12, 12, 0.0, "exact", False),
        ("ana", "C1", "P2", 0, 4, None, "under", True),
        ("ana", "C3", "P2", 0, 0, None, "exact", False),
        ("ben", "C2", "P1", 20, 0, -1.0, "over", True),
        ("ben", "C2", "P2", 10, 11, pytest.approx(0.1), "under", False),
    ]
    # F = 0 with a sale is an unbounded variance: it leads the exception list.
    assert _rows(doc, "exceptions", "customer_code", "sku") == [("C1", "P2"), ("C2", "P1")]
    kpis = doc["kpis"]
    assert (kpis["forecast_qty"], kpis["actual_qty"], kpis["variance_qty"]) == (42, 27, -15)
    assert (kpis["exceptions"], kpis["over_forecast"], kpis["under_forecast"], kpis["exact_forecast"]) == (
        2,
        1,
        2,
        2,
    )
    assert kpis["unforecast_qty"] == 7
    assert money(kpis["unforecast_revenue"]) == Decimal("70.00")
    assert _rows(doc, "by_rep", "sales_rep", "forecast_qty", "actual_qty", "rows", "exceptions") == [
        ("ana", 12, 16, 3, 1),
        ("ben", 30, 11, 2, 1),
    ]


def test_hand_accuracy(engine: Engine, settings: Settings, hand: Business) -> None:
    # |A-F| = 0, 4, 0, 20, 1 over 5 rows; sum F = 42, sum A = 27.
    # MAD = 25/5 = 5; RMSE = sqrt((16 + 400 + 1)/5); MAPE over A > 0 (C1 P1, C1 P2, C2 P2) =
    # (0 + 4/4 + 1/11)/3 = 4/11, with C3 P2 and C2 P1 (A = 0) excluded; WAPE = 25/27;
    # accuracy = 2/27; bias = (42 - 27)/27 = 5/9.
    kpis = _doc(engine, settings, hand.id, "forecast_accuracy", *MARCH)["kpis"]
    assert kpis["mad"] == pytest.approx(5.0)
    assert kpis["rmse"] == pytest.approx(math.sqrt(417 / 5))
    assert kpis["mape"] == pytest.approx(4 / 11)
    assert kpis["mape_excluded_rows"] == 2
    assert kpis["wape"] == pytest.approx(25 / 27)
    assert kpis["accuracy"] == pytest.approx(2 / 27)
    assert kpis["bias"] == pytest.approx(5 / 9)
    assert kpis["rows"] == 5


@pytest.mark.parametrize(
    ("filters", "rows", "unforecast"),
    [
        (("sales_rep=ben",), [("C2", "P1"), ("C2", "P2")], 0),  # C2 P2's latest row is ben's
        (("sales_rep=ana",), [("C1", "P1"), ("C1", "P2"), ("C3", "P2")], 7),
        (("region=North", "category=Drinks"), [("C1", "P1")], 7),
        (("customer_type=wholesale",), [("C2", "P1"), ("C2", "P2")], 0),
        (("customer=C3", "product=P1"), [], 7),
        (("region=Nowhere",), [], 0),
    ],
)
def test_hand_filters(
    engine: Engine,
    settings: Settings,
    hand: Business,
    filters: tuple[str, ...],
    rows: list[Any],
    unforecast: int,
) -> None:
    doc = _doc(engine, settings, hand.id, "forecast_vs_actual", *MARCH, *filters)
    assert _rows(doc, "variance", "customer_code", "sku") == rows
    assert doc["kpis"]["rows"] == len(rows)
    assert doc["kpis"]["unforecast_qty"] == unforecast
    acc = _doc(engine, settings, hand.id, "forecast_accuracy", *MARCH, *filters)
    assert acc["kpis"]["rows"] == len(rows)
    assert sum(r["rows"] for r in acc["tables"]["by_customer"]) == len(rows)


@pytest.mark.parametrize(
    ("forecast", "actual", "pct", "direction", "exception"),
    [
        ("10", "12", 0.2, "under", False),  # exactly 20 % is not an exception
        ("10", "8", -0.2, "over", False),
        ("10", "12.001", 0.2001, "under", True),
        ("10", "7.999", -0.2001, "over", True),
        ("3", "3.6", 0.2, "under", False),  # 0.6/3 is 0.19999... in floats: compared exactly
        ("0", "0", None, "exact", False),
        ("0", "0.001", None, "under", True),
        ("2.5", "2.5", 0.0, "exact", False),
    ],
)
def test_exception_boundary(
    engine: Engine,
    settings: Settings,
    business: Business,
    forecast: str,
    actual: str,
    pct: float | None,
    direction: str,
    exception: bool,
) -> None:
    seed(
        engine,
        business.id,
        [("S1", "2025-03-15", "C1", "ana", "completed", [("P1", actual)])] if actual != "0" else [],
        [("2025-03", "C1", "P1", "ana", forecast, "2025-02-20T10:00:00")],
    )
    doc = _doc(engine, settings, business.id, "forecast_vs_actual", *MARCH)
    [row] = doc["tables"]["variance"]
    assert row["variance_pct"] == (None if pct is None else pytest.approx(pct))
    assert (row["direction"], row["exception"]) == (direction, exception)
    assert len(doc["tables"]["exceptions"]) == int(exception)


# A rep owes a forecast for cycle M for every customer they forecast in cycles M-3..M-1 (any product,
# any submission). Cycle 2025-03 is due from forecasts of cycles 2024-12, 2025-01 and 2025-02:
#   ana/C1: forecast for 2024-12 (M-3, the first lookback cycle); first submitted 2025-02-28 23:59:59
#           (on time), revised 2025-03-05
#   ben/C2: forecast for 2025-02 (M-1); first submitted 2025-03-01 00:00:00 (late by 1 day)
#   ana/C3: forecast for 2025-01 (M-2); never submitted (missing)
#   dan/C3: forecast for 2024-11 (M-4), one cycle before the lookback: not due, nothing submitted
#   cara/C2: no earlier forecast; submitted 2025-03-02: not due (not counted as late)
#   eve/C1: a forecast for 2025-04 submitted in February is a later cycle, not a lookback one
#   dan/C1: completed sales in the lookback months but never forecast: sales make nothing due
SUBMISSION_SALES: list[SaleRow] = [
    ("S1", "2025-01-15", "C1", "dan", "completed", [("P1", "1")]),
    ("S2", "2025-02-10", "C1", "dan", "completed", [("P2", "1")]),
    ("S3", "2025-02-11", "C2", "ben", "completed", [("P1", "1")]),
]
SUBMISSION_FORECASTS: list[ForecastRow] = [
    ("2024-11", "C3", "P1", "dan", "1", "2024-10-25T09:00:00"),
    ("2024-12", "C1", "P1", "ana", "1", "2024-11-25T09:00:00"),
    ("2025-01", "C3", "P1", "ana", "1", "2024-12-20T09:00:00"),
    ("2025-02", "C2", "P2", "ben", "1", "2025-01-25T09:00:00"),
    ("2025-04", "C1", "P2", "eve", "1", "2025-02-15T09:00:00"),
    ("2025-03", "C1", "P1", "ana", "5", "2025-02-28T23:59:59"),
    ("2025-03", "C1", "P1", "ana", "6", "2025-03-05T08:00:00"),
    ("2025-03", "C2", "P2", "ben", "5", "2025-03-01T00:00:00"),
    ("2025-03", "C2", "P1", "cara", "5", "2025-03-02T12:00:00"),
]


@pytest.fixture(scope="module")
def submissions(engine: Engine) -> Business:
    business = new_business(engine, "Hand-worked submissions")
    seed(engine, business.id, SUBMISSION_SALES, SUBMISSION_FORECASTS)
    return business


def test_submission_deadline_boundary(engine: Engine, settings: Settings, submissions: Business) -> None:
    doc = _doc(engine, settings, submissions.id, "submission_status", *MARCH)
    counts = ("expected", "submitted", "on_time", "late", "missing", "not_due")
    assert tuple(doc["kpis"][k] for k in counts) == (3, 2, 1, 1, 1, 1)
    assert doc["kpis"]["submission_rate"] == pytest.approx(2 / 3)
    assert doc["kpis"]["on_time_rate"] == pytest.approx(1 / 3)
    assert _rows(doc, "by_cycle_rep", "sales_rep", *counts) == [
        ("ana", 2, 1, 1, 0, 1, 0),
        ("ben", 1, 1, 0, 1, 0, 0),
        ("cara", 0, 0, 0, 0, 0, 1),
    ]
    assert _rows(doc, "late", "sales_rep", "customer_code", "first_submitted_at", "days_late") == [
        ("ben", "C2", "2025-03-01T00:00:00", 1)
    ]
    assert _rows(doc, "missing", "cycle", "sales_rep", "customer_code", "customer_name") == [
        ("2025-03", "ana", "C3", "Customer C3")
    ]


# The same forecasts seen from the neighbouring cycles (counts: due, submitted, on time, late,
# missing, not due):
#   2025-02 (from 2024-11..2025-01): dan/C3 (2024-11 is M-3 here), ana/C1, ana/C3 due, none
#           submitted; ben/C2's 2025-02 forecast is new to his portfolio: not due
#   2025-04 (from 2025-01..2025-03): ana/C3, ben/C2, ana/C1, cara/C2 (her March forecast puts C2
#           in her portfolio) due, none submitted; eve/C1 (on time, but new): not due
#   2025-05 (from 2025-02..2025-04): ben/C2, ana/C1, cara/C2, eve/C1; ana/C3 (last forecast for
#           2025-01, now M-4) has left ana's portfolio
@pytest.mark.parametrize(
    ("period", "counts", "missing"),
    [
        (
            ("start=2025-02-01", "end=2025-02-28"),
            (3, 0, 0, 0, 3, 1),
            [("ana", "C1"), ("ana", "C3"), ("dan", "C3")],
        ),
        (
            ("start=2025-04-01", "end=2025-04-30"),
            (4, 0, 0, 0, 4, 1),
            [("ana", "C1"), ("ana", "C3"), ("ben", "C2"), ("cara", "C2")],
        ),
        (
            ("start=2025-05-01", "end=2025-05-31"),
            (4, 0, 0, 0, 4, 0),
            [("ana", "C1"), ("ben", "C2"), ("cara", "C2"), ("eve", "C1")],
        ),
        (("start=2024-11-01", "end=2024-11-30"), (0, 0, 0, 0, 0, 1), []),  # dan/C3: nothing before
    ],
)
def test_submission_lookback_boundary(
    engine: Engine,
    settings: Settings,
    submissions: Business,
    period: tuple[str, str],
    counts: tuple[int, ...],
    missing: list[tuple[str, str]],
) -> None:
    doc = _doc(engine, settings, submissions.id, "submission_status", *period)
    keys = ("expected", "submitted", "on_time", "late", "missing", "not_due")
    assert tuple(doc["kpis"][k] for k in keys) == counts
    assert _rows(doc, "missing", "sales_rep", "customer_code") == missing
    # dan sold to C1 in the lookback months but never forecast it: it is never due.
    assert ("dan", "C1") not in _rows(doc, "missing", "sales_rep", "customer_code")


def test_submission_cycles_in_one_period(engine: Engine, settings: Settings, submissions: Business) -> None:
    # Each cycle of a long period has its own lookback:
    #   2024-11: nothing before it; dan/C3 submitted (not due)
    #   2024-12: dan/C3 due (from 2024-11), missing; ana/C1 submitted (not due)
    #   2025-01: dan/C3, ana/C1 due, missing; ana/C3 submitted (not due)
    #   2025-02 .. 2025-05: as in the two tests above
    doc = _doc(engine, settings, submissions.id, "submission_status", "start=2024-11-01", "end=2025-05-31")
    keys = ("expected", "submitted", "on_time", "late", "missing", "not_due")
    assert _rows(doc, "by_cycle", "cycle", *keys) == [
        ("2024-11", 0, 0, 0, 0, 0, 1),
        ("2024-12", 1, 0, 0, 0, 1, 1),
        ("2025-01", 2, 0, 0, 0, 2, 1),
        ("2025-02", 3, 0, 0, 0, 3, 1),
        ("2025-03", 3, 2, 1, 1, 1, 1),
        ("2025-04", 4, 0, 0, 0, 4, 1),
        ("2025-05", 4, 0, 0, 0, 4, 0),
    ]
    assert tuple(doc["kpis"][k] for k in keys) == (17, 2, 1, 1, 15, 6)
    assert doc["kpis"]["submission_rate"] == pytest.approx(2 / 17)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (("sales_rep=ben",), (1, 1, 0, 1, 0)),
        (("region=North",), (2, 1, 1, 0, 1)),  # C1, C3; cara's C2 is South
        (("customer=C1,C2",), (2, 2, 1, 1, 0)),
        # due: reps with a P2 forecast in the lookback (ben/C2 for 2025-02; eve's P2 is for 2025-04)
        (("product=P2",), (1, 1, 0, 1, 0)),
        # due: ana/C1 (P1 for 2024-12), ana/C3 (P1 for 2025-01); ben/C2 forecast only P2 before
        (("product=P1",), (2, 1, 1, 0, 1)),
        (("category=Snacks", "customer_type=wholesale"), (1, 1, 0, 1, 0)),  # P2 at C2
        (("customer_type=nobody",), (0, 0, 0, 0, 0)),
    ],
)
def test_submission_filters(
    engine: Engine,
    settings: Settings,
    submissions: Business,
    filters: tuple[str, ...],
    expected: tuple[int, ...],
) -> None:
    kpis = _doc(engine, settings, submissions.id, "submission_status", *MARCH, *filters)["kpis"]
    assert tuple(kpis[k] for k in ("expected", "submitted", "on_time", "late", "missing")) == expected


def test_period_cutting_months_covers_whole_cycles(
    engine: Engine, settings: Settings, hand: Business
) -> None:
    # 2025-03-20 .. 2025-04-02 selects cycles 2025-03 and 2025-04; March's actuals are the whole month.
    doc = _doc(engine, settings, hand.id, "forecast_accuracy", "start=2025-03-20", "end=2025-04-02")
    assert doc["kpis"]["rows"] == 5
    assert doc["kpis"]["actual_qty"] == 27
    assert doc["kpis"]["unforecast_qty"] == 10  # C3 P1 (7, March 1st) + C1 P1 in April (3, no April forecast)
    assert any("2025-03 to 2025-04" in note for note in doc["notes"])
    assert _doc(engine, settings, hand.id, "forecast_accuracy", *MARCH)["notes"] == []


# --- empty period ------------------------------------------------------------------------------


@pytest.mark.parametrize("slug", ["forecast_vs_actual", "forecast_accuracy", "submission_status"])
def test_empty_period(engine: Engine, settings: Settings, tiny: Business, slug: str) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny.id, slug, "start=2030-01-01", "end=2030-03-31")
    assert report.is_empty
    for kpi in report.kpis:
        assert kpi.value in (0, None), kpi.key
    assert report_document(report)["tables"]  # serialises


# --- generated data against an independent pandas oracle ---------------------------------------

DEMO_TODAY = dt.date(2025, 6, 15)


@pytest.fixture(scope="module")
def demo(engine: Engine) -> Iterator[tuple[int, dict[str, pd.DataFrame]]]:
    business = new_business(engine, "Forecast oracle")
    summary = load_demo(engine, business.code, rows=3000, seed=11, today=DEMO_TODAY)
    yield summary.business_id, raw_frames(engine, summary.business_id)


def _months(start: dt.date, end: dt.date) -> list[str]:
    out, y, m = [], start.year, start.month
    while (y, m) <= (end.year, end.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _qty(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.001"))


def _match(frame: pd.DataFrame, filters: dict[str, list[str]], rep_col: str = "sales_rep") -> pd.Series:
    cols = {
        "region": "region",
        "category": "category",
        "customer_type": "customer_type",
        "sales_rep": rep_col,
    }
    cols |= {"customer": "customer_code", "product": "sku"}
    keep = pd.Series(True, index=frame.index)
    for dim, values in filters.items():
        keep &= frame[cols[dim]].isin(values)
    return keep


def oracle_forecast(
    raw: dict[str, pd.DataFrame], start: dt.date, end: dt.date, filters: dict[str, list[str]]
) -> tuple[pd.DataFrame, Decimal, Decimal]:
    """Forecast rows (F, A as Decimal) and the unforecast quantity and revenue, in plain pandas."""
    cycles = _months(start, end)
    customers = raw["customers"].rename(columns={"name": "customer_name"})
    products = raw["products"].rename(columns={"name": "product_name"})
    fc = raw["forecasts"][raw["forecasts"]["cycle"].isin(cycles)].sort_values("submitted_at")
    latest = fc.groupby(["cycle", "customer_code", "sku"], as_index=False).last()
    latest = latest.merge(
        customers[["customer_code", "customer_name", "region", "customer_type"]], on="customer_code"
    )
    latest = latest.merge(products[["sku", "product_name", "category"]], on="sku")
    latest = latest[_match(latest, filters)]
    lines = raw["lines"][raw["lines"]["status"] == "completed"].copy()
    lines["cycle"] = [f"{d:%Y-%m}" for d in lines["order_date"]]
    lines = lines[lines["cycle"].isin(cycles)]
    actual: dict[tuple[str, str, str], Decimal] = {}
    for key, qty in zip(
        zip(lines["cycle"], lines["customer_code"], lines["sku"], strict=True), lines["quantity"], strict=True
    ):
        actual[key] = actual.get(key, Decimal(0)) + _qty(qty)
    keys = zip(latest["cycle"], latest["customer_code"], latest["sku"], strict=True)
    latest["F"] = pd.Series([_qty(q) for q in latest["quantity"]], index=latest.index)
    latest["A"] = pd.Series([actual.get(k, Decimal(0)) for k in keys], index=latest.index)
    forecast_keys = set(zip(fc["cycle"], fc["customer_code"], fc["sku"], strict=True))
    unf = lines[
        [
            k not in forecast_keys
            for k in zip(lines["cycle"], lines["customer_code"], lines["sku"], strict=True)
        ]
    ]
    unf = unf[_match(unf, filters)]
    return latest, sum((_qty(q) for q in unf["quantity"]), Decimal(0)), sum(unf["net"], Decimal(0))


def oracle_metrics(rows: pd.DataFrame) -> dict[str, Any]:
    f, a = list(rows["F"]), list(rows["A"])
    err = [abs(x - y) for x, y in zip(a, f, strict=True)]
    sf, sa, se = sum(f, Decimal(0)), sum(a, Decimal(0)), sum(err, Decimal(0))
    n = len(f)
    mape_terms = [float(e / y) for e, y in zip(err, a, strict=True) if y > 0]
    exception = [abs(y - x) > Decimal("0.2") * abs(x) for x, y in zip(f, a, strict=True)]
    return {
        "forecast_qty": float(sf),
        "actual_qty": float(sa),
        "variance_qty": float(sa - sf),
        "variance_pct": float((sa - sf) / sf) if sf else None,
        "mad": float(se / n) if n else None,
        "rmse": math.sqrt(float(sum(e * e for e in err) / n)) if n else None,
        "mape": sum(mape_terms) / len(mape_terms) if mape_terms else None,
        "mape_excluded_rows": n - len(mape_terms),
        "wape": float(se / sa) if sa else None,
        "accuracy": max(0.0, float(1 - se / sa)) if sa else None,
        "bias": float((sf - sa) / sa) if sa else None,
        "rows": n,
        "exceptions": sum(exception),
        "over_forecast": sum(x > y for x, y in zip(f, a, strict=True)),
        "under_forecast": sum(x < y for x, y in zip(f, a, strict=True)),
    }


def _close(got: Any, want: Any) -> bool:
    if want is None or got is None:
        return got is want
    return bool(got == pytest.approx(want, rel=1e-9, abs=1e-9))


ORACLE_CASES = [
    ("2024-11-01", "2025-02-28", {}),  # crosses a year boundary
    ("2024-12-10", "2025-01-20", {"region": ["North", "South"]}),  # cuts both months
    ("2024-10-01", "2025-03-31", {"sales_rep": ["ben", "emil"]}),
    ("2025-01-01", "2025-05-31", {"customer_type": ["wholesale"], "category": ["Dairy", "Snacks", "Bakery"]}),
]


@pytest.mark.parametrize(("start", "end", "filters"), ORACLE_CASES)
def test_forecast_reports_match_oracle(
    engine: Engine,
    settings: Settings,
    demo: tuple[int, dict[str, pd.DataFrame]],
    start: str,
    end: str,
    filters: dict[str, list[str]],
) -> None:
    business_id, raw = demo
    pairs = (f"start={start}", f"end={end}", *(f"{k}={','.join(v)}" for k, v in filters.items()))
    rows, unf_qty, unf_revenue = oracle_forecast(
        raw, dt.date.fromisoformat(start), dt.date.fromisoformat(end), filters
    )
    assert len(rows) > 10 and (rows["A"] > 0).sum() > 3  # the case exercises real data
    fva = run_report(engine, settings.snapshot_dir, business_id, "forecast_vs_actual", *pairs)
    acc = run_report(engine, settings.snapshot_dir, business_id, "forecast_accuracy", *pairs)
    want = oracle_metrics(rows)
    for report in (fva, acc):
        for kpi in report.kpis:
            if kpi.key == "unforecast_qty":
                assert _close(kpi.value, float(unf_qty))
            elif kpi.key == "unforecast_revenue":
                assert kpi.value == unf_revenue  # exact Decimal
            elif kpi.key in want:
                assert _close(kpi.value, want[kpi.key]), (report.slug, kpi.key, kpi.value, want[kpi.key])
    # The variance table, row by row.
    variance = fva.tables["variance"].frame
    got = {
        (r.cycle, r.customer_code, r.sku): (r.sales_rep, r.forecast_qty, r.actual_qty, r.exception)
        for r in variance.itertuples()
    }
    expected = {
        (r.cycle, r.customer_code, r.sku): (
            r.sales_rep,
            float(r.F),
            float(r.A),
            abs(r.A - r.F) > Decimal("0.2") * abs(r.F),
        )
        for r in cast("Iterator[Any]", rows.itertuples())  # pandas-stubs types each field as any scalar
    }
    assert got == expected
    assert list(variance["cycle"] + variance["sales_rep"]) == sorted(
        variance["cycle"] + variance["sales_rep"]
    )
    assert len(fva.tables["exceptions"].frame) == want["exceptions"]
    # Every rollup of both reports, group by group.
    month_rows = rows.rename(columns={"cycle": "month"})
    for name, keys in (
        ("by_rep", ["sales_rep"]),
        ("by_customer", ["customer_code"]),
        ("by_product", ["sku"]),
        ("by_month", ["month"]),
    ):
        source = month_rows if name == "by_month" else rows
        oracle = {k if isinstance(k, tuple) else (k,): oracle_metrics(g) for k, g in source.groupby(keys)}
        for report in (fva, acc):
            frame = report.tables[name].frame
            assert len(frame) == len(oracle), (report.slug, name)
            for record in frame.to_dict("records"):
                group = oracle[tuple(record[k] for k in keys)]
                for col, value in record.items():
                    if col in group:
                        value = None if isinstance(value, float) and math.isnan(value) else value
                        assert _close(value, group[col]), (report.slug, name, record, col, group[col])


def _cycles_before(cycle: str, n: int) -> set[str]:
    """The n cycles (YYYY-MM) before `cycle`, by month arithmetic."""
    index = int(cycle[:4]) * 12 + int(cycle[5:]) - 1
    return {f"{(index - k) // 12:04d}-{(index - k) % 12 + 1:02d}" for k in range(1, n + 1)}


def oracle_submissions(
    raw: dict[str, pd.DataFrame], start: dt.date, end: dt.date, filters: dict[str, list[str]]
) -> pd.DataFrame:
    """Per (cycle, rep, customer): due, first submission, status — the rule of reports.submissions:
    due for the customers the rep forecast (any product, any submission) in the 3 cycles before."""
    fc = raw["forecasts"]
    fc = fc.merge(raw["customers"][["customer_code", "region", "customer_type"]], on="customer_code")
    fc = fc.merge(raw["products"][["sku", "category"]], on="sku")
    fc = fc[_match(fc, filters)]
    out = []
    for cycle in _months(start, end):
        first = dt.date.fromisoformat(cycle + "-01")
        before = fc[fc["cycle"].isin(_cycles_before(cycle, 3))]
        expected = set(zip(before["sales_rep"], before["customer_code"], strict=True))
        firsts = cast(
            "dict[tuple[str, str], pd.Timestamp]",
            fc[fc["cycle"] == cycle].groupby(["sales_rep", "customer_code"])["submitted_at"].min().to_dict(),
        )
        deadline = pd.Timestamp(first)
        for rep, cust in expected | set(firsts):
            at = firsts.get((rep, cust))
            out.append(
                {
                    "cycle": cycle,
                    "sales_rep": rep,
                    "customer_code": cust,
                    "expected": (rep, cust) in expected,
                    "on_time": at is not None and at < deadline,
                    "late": at is not None and at >= deadline,
                    "missing": at is None,
                    "days_late": (at.date() - first).days + 1 if at is not None and at >= deadline else None,
                }
            )
    return pd.DataFrame(
        out,
        columns=[
            "cycle",
            "sales_rep",
            "customer_code",
            "expected",
            "on_time",
            "late",
            "missing",
            "days_late",
        ],
    )


@pytest.mark.parametrize(
    ("start", "end", "filters"),
    [*ORACLE_CASES, ("2024-12-01", "2025-01-31", {"category": ["Beverages", "Dairy"]})],
)
def test_submission_status_matches_oracle(
    engine: Engine,
    settings: Settings,
    demo: tuple[int, dict[str, pd.DataFrame]],
    start: str,
    end: str,
    filters: dict[str, list[str]],
) -> None:
    business_id, raw = demo
    pairs = (f"start={start}", f"end={end}", *(f"{k}={','.join(v)}" for k, v in filters.items()))
    report = run_report(engine, settings.snapshot_dir, business_id, "submission_status", *pairs)
    subs = oracle_submissions(raw, dt.date.fromisoformat(start), dt.date.fromisoformat(end), filters)
    due = subs[subs["expected"]]
    assert len(due) > 0
    if not filters:  # the unfiltered case exercises every status
        assert due["missing"].any() and due["late"].any() and due["on_time"].any()
        assert not subs["expected"].all()
    by_cycle_rep = {
        (cycle, rep): (len(g), int(g["on_time"].sum()), int(g["late"].sum()), int(g["missing"].sum()))
        for (cycle, rep), g in due.groupby(["cycle", "sales_rep"])
    }
    got = {
        (r.cycle, r.sales_rep): (r.expected, r.on_time, r.late, r.missing)
        for r in report.tables["by_cycle_rep"].frame.itertuples()
        if r.expected
    }
    assert got == by_cycle_rep
    kpis = {k.key: k.value for k in report.kpis}
    assert kpis["expected"] == len(due)
    assert kpis["missing"] == int(due["missing"].sum())
    assert kpis["not_due"] == int((~subs["expected"]).sum())
    assert _close(kpis["submission_rate"], 1 - due["missing"].sum() / len(due))
    dash = run_report(engine, settings.snapshot_dir, business_id, "kpi_dashboard", *pairs)
    rate = next(k.value for k in dash.kpis if k.key == "forecast_submission_rate")
    assert _close(rate, 1 - due["missing"].sum() / len(due))
    missing = report.tables["missing"].frame
    assert sorted(
        zip(missing["cycle"], missing["sales_rep"], missing["customer_code"], strict=True)
    ) == sorted(zip(*(due[due["missing"]][c] for c in ("cycle", "sales_rep", "customer_code")), strict=True))
    late = report.tables["late"].frame
    want_late = due[due["late"]]
    assert {(r.cycle, r.sales_rep, r.customer_code): r.days_late for r in late.itertuples()} == {
        (r.cycle, r.sales_rep, r.customer_code): r.days_late for r in want_late.itertuples()
    }
