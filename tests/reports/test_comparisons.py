"""Comparisons that do not mislead (issue 13): month to date against the same days of the previous
month, the compared dates stated, compare=previous|last_year|custom, partial trend buckets and
trends by day over a month or less, and where to open when the default period has no data.

A hand-worked book of sales (literal expected values) and a pandas oracle over demo data.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import uuid
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.kpis import (
    COMPARED,
    YEAR_AGO,
    chosen_comparison,
    comparison,
    comparisons,
    headline_kpis,
    side_by_side,
)
from analytics.periods import Period, resolve
from analytics.query import latest_period_with_data
from analytics.report import ParamError, Report, ReportParams
from api.params import parameters
from api.params import report_params as api_params
from core.errors import BadParameter
from core.settings import Settings
from exporters import EXPORTERS
from exporters.json_export import report_document
from ingest.demo import load_demo
from reports.registry import REPORTS, check_params, definition
from runs.runner import cache_key
from snapshots.store import SnapshotStore
from tests.conftest import new_business
from tests.exporters.test_golden import pdf_text, xlsx_text
from tests.factories import raw_frames
from tests.reports.reporting import run_report
from tests.reports.test_customers import (
    Row,
    completed_lines,
    in_period,
    insert_book,
    kpis_of,
    micros_to_decimal,
)

D = dt.date
NOW = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)  # a Friday: month to date is 1–4 Dec 2026
MTD = ("period=month_to_date",)
CUSTOM = ("compare=custom", "compare_start=2026-11-27", "compare_end=2026-11-30")

BOOK = [
    Row("J1", "2026-01-10", "C1", "P1", "1", "100.00", "40.00"),
    Row("N1", "2026-11-01", "C1", "P1", "1", "400.00", "100.00"),  # 1–4 Nov: 1,000.00
    Row("N2", "2026-11-04", "C2", "P2", "1", "600.00", "300.00"),
    Row("N3", "2026-11-15", "C1", "P1", "1", "5000.00", "1000.00"),
    Row("N4", "2026-11-28", "C2", "P2", "1", "505.05", "200.00"),  # 27–30 Nov: 505.05
    Row("D1", "2026-12-02", "C1", "P1", "1", "250.00", "50.00"),  # 1–4 Dec: 1,000.00
    Row("D2", "2026-12-04", "C2", "P2", "1", "750.00", "450.00"),
    Row("D3", "2026-12-03", "C3", "P1", "1", "99.00", "0", status="void"),
    Row("Y1", "2025-12-03", "C1", "P1", "1", "800.00", "400.00"),  # 1–4 Dec 2025: 800.00
    Row("Y2", "2025-12-05", "C1", "P1", "1", "123.00", "0"),
]


@pytest.fixture(scope="module")
def book(engine: Engine) -> int:
    business = new_business(engine)
    insert_book(engine, business.id, BOOK)
    return business.id


def build(engine: Engine, settings: Settings, business_id: int, slug: str, *pairs: str) -> Report:
    return run_report(engine, settings.snapshot_dir, business_id, slug, *pairs, now=NOW)


def change(now: str, before: str) -> float:
    return float((Decimal(now) - Decimal(before)) / Decimal(before))


# --- (1) month to date against the same days of the previous month ---------------------------------


def test_month_to_date_compares_with_the_same_days_of_the_previous_month(
    engine: Engine, settings: Settings, book: int
) -> None:
    # The example: 1–4 Dec against 27–30 Nov showed "+98 %" (1,000.00 against 505.05).
    report = build(engine, settings, book, "kpi_dashboard", *MTD)
    kpis = kpis_of(report)
    assert report.period == Period(D(2026, 12, 1), D(2026, 12, 4))
    assert (kpis["revenue"], kpis["revenue_previous"]) == (Decimal("1000.00"), Decimal("1000.00"))
    assert kpis["revenue_change_pct"] == 0.0
    assert (kpis["gross_profit"], kpis["gross_profit_previous"]) == (Decimal("500.00"), Decimal("600.00"))
    assert kpis["gross_profit_change_pct"] == pytest.approx(-1 / 6, rel=1e-12)
    assert (kpis["orders"], kpis["orders_previous"], kpis["orders_change_pct"]) == (2, 2, 0.0)
    assert kpis["margin_pct_previous"] == pytest.approx(0.6, rel=1e-12)
    # a year before: 1–4 Dec 2025
    assert (kpis["revenue_year_ago"], kpis["revenue_yoy_pct"]) == (Decimal("800.00"), 0.25)
    assert (kpis["orders_year_ago"], kpis["orders_yoy_pct"]) == (1, 1.0)
    assert kpis["margin_pct_year_ago"] == pytest.approx(0.5, rel=1e-12)
    # explicit dates 1–4 Dec are compared alike
    explicit = kpis_of(build(engine, settings, book, "kpi_dashboard", "start=2026-12-01", "end=2026-12-04"))
    assert {k: v for k, v in explicit.items() if "ytd" not in k} == {
        k: v for k, v in kpis.items() if "ytd" not in k
    }


def test_every_comparison_states_its_dates(engine: Engine, settings: Settings, book: int) -> None:
    report = build(engine, settings, book, "kpi_dashboard", *MTD)
    assert report.kpi("revenue_previous").label == "Revenue, previous period (1–4 Nov 2026)"
    assert report.kpi("revenue_change_pct").label == "Revenue change vs 1–4 Nov 2026"
    assert report.kpi("revenue_year_ago").label == "Revenue, a year before (1–4 Dec 2025)"
    assert report.kpi("revenue_yoy_pct").label == "Revenue change vs 1–4 Dec 2025"
    assert report.kpi("margin_pct_previous").label == "Margin, previous period (1–4 Nov 2026)"
    # the JSON document's parameters: each compared period, resolved, with its text
    params = report_document(report)["parameters"]
    assert params["previous_period"] == {"start": "2026-11-01", "end": "2026-11-04", "text": "1–4 Nov 2026"}
    assert params["year_ago_period"] == {"start": "2025-12-01", "end": "2025-12-04", "text": "1–4 Dec 2025"}
    assert "compared_period" not in params and "compare" not in params  # the default is left out
    # what the page and the email read
    previous, year_ago = comparisons(report, report.kpi("revenue"))
    assert previous is not None and year_ago is not None
    assert (previous.against_dates, previous.dates, previous.label) == (
        "vs 1–4 Nov 2026",
        "1–4 Nov 2026",
        "vs previous period",
    )
    assert (year_ago.against_dates, year_ago.text, year_ago.direction) == ("vs 1–4 Dec 2025", "+25.0 %", "up")
    margin, _ = comparisons(report, report.kpi("margin_pct"))
    assert margin is not None and (margin.unit, margin.text) == ("pp", "-10.0 pp")
    # reports without comparisons state none
    assert "previous_period" not in build(engine, settings, book, "payments", *MTD).parameters


@pytest.mark.parametrize(
    ("slug", "labels"),
    [
        (
            "gross_profit",
            {
                "gross_profit_previous": "Gross profit, previous period (1–4 Nov 2026)",
                "gross_profit_yoy_pct": "Gross profit change vs 1–4 Dec 2025",
            },
        ),
        (
            "customer_performance",
            {
                "revenue_previous": "Revenue, previous period (1–4 Nov 2026)",
                "customers_previous": "Customers, previous period (1–4 Nov 2026)",
            },
        ),
    ],
)
def test_the_other_reports_compare_alike(
    engine: Engine, settings: Settings, book: int, slug: str, labels: dict[str, str]
) -> None:
    report = build(engine, settings, book, slug, *MTD)
    for key, label in labels.items():
        assert report.kpi(key).label == label
    kpis = kpis_of(report)
    if slug == "gross_profit":
        assert (kpis["gross_profit_previous"], kpis["gross_profit_year_ago"]) == (Decimal(600), Decimal(400))
    else:
        assert (kpis["revenue_previous"], kpis["customers_previous"]) == (Decimal(1000), 2)
    assert report.parameters["previous_period"]["text"] == "1–4 Nov 2026"


# --- (2) compare=previous|last_year|custom ----------------------------------------------------------


def test_compare_custom_puts_both_periods_side_by_side(engine: Engine, settings: Settings, book: int) -> None:
    report = build(engine, settings, book, "kpi_dashboard", *MTD, *CUSTOM)
    kpis = kpis_of(report)
    assert kpis["revenue_compared"] == Decimal("505.05")
    assert kpis["revenue_compared_change_pct"] == pytest.approx(change("1000", "505.05"), rel=1e-12)
    assert kpis["gross_profit_compared"] == Decimal("305.05")
    assert kpis["gross_profit_compared_change_pct"] == pytest.approx(change("500", "305.05"), rel=1e-12)
    assert (kpis["orders_compared"], kpis["orders_compared_change_pct"]) == (1, 1.0)
    assert kpis["avg_order_value_compared"] == Decimal("505.05")
    assert kpis["margin_pct_compared"] == pytest.approx(
        float(Decimal("305.05") / Decimal("505.05")), rel=1e-12
    )
    assert "margin_pct_compared_change_pct" not in kpis  # a rate compares in points
    # the stable comparisons stay
    assert (kpis["revenue_previous"], kpis["revenue_year_ago"]) == (Decimal(1000), Decimal(800))
    assert report.kpi("revenue_compared").label == "Revenue, 27–30 Nov 2026"
    assert report.kpi("revenue_compared_change_pct").label == "Revenue change vs 27–30 Nov 2026"
    params = report_document(report)["parameters"]
    assert (params["compare"], params["compare_start"], params["compare_end"]) == (
        "custom",
        "2026-11-27",
        "2026-11-30",
    )
    assert params["compared_period"] == {"start": "2026-11-27", "end": "2026-11-30", "text": "27–30 Nov 2026"}
    # the page's card: the chosen comparison; headline KPIs leave the comparisons out
    chosen = chosen_comparison(report, report.kpi("revenue"))
    assert chosen is not None and chosen.baseline == COMPARED
    assert (chosen.text, chosen.against_dates) == ("+98.0 %", "vs 27–30 Nov 2026")
    assert [k.key for k in headline_kpis(report)] == [
        "revenue",
        "gross_profit",
        "margin_pct",
        "orders",
        "avg_order_value",
        "cash_received",
        "outstanding",
        "forecast_submission_rate",
        "revenue_ytd",
        "gross_profit_ytd",
        "orders_ytd",
    ]


def test_side_by_side_lines_up_each_kpi_in_every_period_with_the_change(
    engine: Engine, settings: Settings, book: int
) -> None:
    """What Overview, the PDF and the Excel summary show: the chosen dates first, then the previous
    period and a year before; hand-worked from BOOK (a rate changes in points)."""
    report = build(engine, settings, book, "kpi_dashboard", *MTD, *CUSTOM)
    table = side_by_side(report)
    assert table is not None
    assert table.columns == [
        "Key figure",
        "1–4 Dec 2026",
        "27–30 Nov 2026",
        "Change vs 27–30 Nov 2026",
        "1–4 Nov 2026",
        "Change vs 1–4 Nov 2026",
        "1–4 Dec 2025",
        "Change vs 1–4 Dec 2025",
    ]
    assert table.texts(report.currency) == [
        ["Revenue", "€1,000.00", "€505.05", "+98.0 %", "€1,000.00", "+0.0 %", "€800.00", "+25.0 %"],
        ["Gross profit", "€500.00", "€305.05", "+63.9 %", "€600.00", "-16.7 %", "€400.00", "+25.0 %"],
        ["Margin", "50.0 %", "60.4 %", "-10.4 pp", "60.0 %", "-10.0 pp", "50.0 %", "+0.0 pp"],
        ["Orders", "2", "1", "+100.0 %", "2", "+0.0 %", "1", "+100.0 %"],
        ["Average order value", "€500.00", "€505.05", "-1.0 %", "€500.00", "+0.0 %", "€800.00", "-37.5 %"],
        ["Cash received", "€0.00", "€0.00", "—", "€0.00", "—", "€0.00", "—"],  # no payments in BOOK
    ]
    # every=True keeps the KPIs no period compares (the Excel summary lists them all), with blanks
    every = side_by_side(report, every=True)
    assert every is not None
    assert [r.kpi.key for r in every.rows][6:] == ["outstanding", "forecast_submission_rate", "revenue_ytd",
                                                   "gross_profit_ytd", "orders_ytd"]  # fmt: skip
    assert every.texts(report.currency)[6][2:] == ["—"] * 6

    last_year = side_by_side(build(engine, settings, book, "gross_profit", *MTD, "compare=last_year"))
    assert last_year is not None
    assert last_year.columns[1:4] == ["1–4 Dec 2026", "1–4 Dec 2025", "Change vs 1–4 Dec 2025"]
    assert [r.kpi.key for r in last_year.rows] == ["gross_profit", "margin_pct"]
    # custom dates equal to the previous period are one column, not two
    same = side_by_side(
        build(
            engine,
            settings,
            book,
            "customer_performance",
            *MTD,
            "compare=custom",
            "compare_start=2026-11-01",
            "compare_end=2026-11-04",
        )
    )
    assert same is not None and same.columns[2::2] == ["1–4 Nov 2026", "1–4 Dec 2025"]
    assert side_by_side(build(engine, settings, book, "sales_summary", *MTD)) is None


def test_compare_last_year_chooses_the_year_before(engine: Engine, settings: Settings, book: int) -> None:
    report = build(engine, settings, book, "kpi_dashboard", *MTD, "compare=last_year")
    chosen = chosen_comparison(report, report.kpi("revenue"))
    assert chosen is not None and chosen.baseline == YEAR_AGO and chosen.text == "+25.0 %"
    assert report.parameters["compare"] == "last_year"
    assert not any(k.key.endswith(("_compared", "_compared_change_pct")) for k in report.kpis)
    default = build(engine, settings, book, "kpi_dashboard", *MTD)
    assert [(k.key, k.value) for k in report.kpis] == [(k.key, k.value) for k in default.kpis]
    chosen = chosen_comparison(default, default.kpi("revenue"))
    assert chosen is not None and chosen.against_dates == "vs 1–4 Nov 2026"


@pytest.mark.parametrize(
    ("slug", "keys"),
    [
        (
            "gross_profit",
            ["gross_profit_compared", "gross_profit_compared_change_pct", "margin_pct_compared"],
        ),
        ("customer_performance", ["revenue_compared", "revenue_compared_change_pct"]),
    ],
)
def test_compare_custom_in_the_other_reports(
    engine: Engine, settings: Settings, book: int, slug: str, keys: list[str]
) -> None:
    report = build(engine, settings, book, slug, *MTD, *CUSTOM)
    kpis = kpis_of(report)
    assert [k for k in kpis if k.endswith(("_compared", "_compared_change_pct"))] == keys
    assert kpis[keys[0]] == (Decimal("305.05") if slug == "gross_profit" else Decimal("505.05"))
    assert comparison(report, report.kpi(keys[0].removesuffix("_compared")), COMPARED) is not None


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "pdf"])
def test_exports_show_the_compared_kpis_and_their_dates(
    engine: Engine, settings: Settings, book: int, fmt: str
) -> None:
    report = build(engine, settings, book, "kpi_dashboard", *MTD, *CUSTOM)
    out = io.BytesIO()
    EXPORTERS[fmt].write(report, out)
    if fmt == "csv":
        with zipfile.ZipFile(io.BytesIO(out.getvalue())) as bundle:
            text = bundle.read("summary.csv").decode("utf-8-sig")
        assert 'kpi,revenue_compared,"Revenue, 27–30 Nov 2026",505.05' in text
        assert 'kpi,revenue_previous,"Revenue, previous period (1–4 Nov 2026)",1000.00' in text
        assert "parameter,compared_period.text,compared_period.text,27–30 Nov 2026" in text
    elif fmt == "xlsx":  # the key figures side by side: the chosen dates, the previous period, a year before
        text = xlsx_text(out.getvalue())
        head = '"Key figures"\t"1–4 Dec 2026"\t"27–30 Nov 2026"\t"Change vs 27–30 Nov 2026"\t"1–4 Nov 2026"'
        assert head in text
        assert '"Revenue"\t1000\t505.05\t0.98000198000198\t1000\t0\t800\t0.25\n' in text
        assert '"Orders"\t2\t1\t1\t2\t0\t1\t1\n' in text
        assert '"Revenue, 27–30 Nov 2026"' not in text  # not listed a second time
    else:
        text = " ".join(pdf_text(out.getvalue()).split())
        for words in (
            "Compared with other periods",
            "Revenue €1,000.00 €505.05 +98.0 % €1,000.00 +0.0 % €800.00 +25.0 %",
            "Margin 50.0 % 60.4 % -10.4 pp 60.0 % -10.0 pp 50.0 % +0.0 pp",
        ):
            assert words in text, words
        assert "Revenue, 27–30 Nov 2026" not in text


# --- (3) partial buckets and trends by day ------------------------------------------------------


def test_the_running_month_of_the_trend_is_partial(engine: Engine, settings: Settings, book: int) -> None:
    report = build(engine, settings, book, "kpi_dashboard", *MTD)
    trend = report_document(report)["tables"]["trend"]
    assert [r["month"] for r in trend] == [f"2026-{m:02d}" for m in range(1, 13)]
    assert [r["partial"] for r in trend] == [False] * 11 + [True]
    assert [r["revenue"] for r in trend if r["revenue"]] == [100.0, 6505.05, 1000.0]
    assert "partial" in [c.key for c in report.tables["trend"].columns]


@pytest.mark.parametrize(
    ("granularity", "buckets"),
    [
        # 15 Nov – 4 Dec: both months are cut short
        ("month", {"2026-11": (True, "5505.05"), "2026-12": (True, "1000.00")}),
        # 15 Nov is a Sunday, 4 Dec a Friday: the first and the last weeks are cut short
        (
            "week",
            {
                D(2026, 11, 9): (True, "5000.00"),
                D(2026, 11, 16): (False, "0"),
                D(2026, 11, 23): (False, "505.05"),
                D(2026, 11, 30): (True, "1000.00"),
            },
        ),
    ],
)
def test_partial_buckets_of_the_sales_summary(
    engine: Engine, settings: Settings, book: int, granularity: str, buckets: dict[Any, tuple[bool, str]]
) -> None:
    pairs = ("start=2026-11-15", "end=2026-12-04", f"granularity={granularity}")
    frame = build(engine, settings, book, "sales_summary", *pairs).tables[f"by_{granularity}"].frame
    got = {
        b: (bool(p), r)
        for b, p, r in zip(frame[granularity], frame["partial"], frame["revenue"], strict=True)
    }
    assert got == {b: (p, Decimal(r)) for b, (p, r) in buckets.items()}


def test_a_short_sales_summary_is_by_day(engine: Engine, settings: Settings, book: int) -> None:
    report = build(engine, settings, book, "sales_summary", "start=2026-11-15", "end=2026-12-04")
    by_day = report.tables["by_day"].frame
    assert len(by_day) == 20 and not by_day["partial"].any()
    assert {d: r for d, r in zip(by_day["day"], by_day["revenue"], strict=True) if r} == {
        D(2026, 11, 15): Decimal("5000.00"),
        D(2026, 11, 28): Decimal("505.05"),
        D(2026, 12, 2): Decimal("250.00"),
        D(2026, 12, 4): Decimal("750.00"),
    }
    assert list(report.tables["by_month"].frame["partial"]) == [True, True]  # still there, by month
    assert next(c for c in report.charts if c.key == "trend").x == "day"
    long = build(engine, settings, book, "sales_summary", "start=2026-01-01", "end=2026-12-04")
    assert "by_day" not in long.tables and len(long.tables["by_month"].frame) == 12


@pytest.mark.parametrize(
    ("start", "end", "grain"),
    [
        ("2026-12-01", "2026-12-04", "day"),
        ("2026-12-01", "2026-12-31", "day"),  # 31 days
        ("2026-11-30", "2026-12-31", "month"),  # 32 days
        ("2026-01-01", "2026-12-31", "month"),
    ],
)
def test_trends_over_a_month_or_less_are_by_day(
    engine: Engine, settings: Settings, book: int, start: str, end: str, grain: str
) -> None:
    for slug in ("gross_profit", "product_analysis"):
        report = build(engine, settings, book, slug, f"start={start}", f"end={end}")
        trend = report.tables["trend"]
        assert trend.columns[0].key == grain and trend.columns[-1].key == "partial", slug
        assert {c.x for c in report.charts if c.table == "trend"} == {grain}, slug
        assert trend.title.endswith(f"by {grain}")


def test_a_trend_by_day_adds_up(engine: Engine, settings: Settings, book: int) -> None:
    profit = build(engine, settings, book, "gross_profit", "start=2026-12-01", "end=2026-12-04")
    rows = report_document(profit)["tables"]["trend"]
    assert [(r["day"], r["revenue"], r["cost"], r["gross_profit"], r["partial"]) for r in rows] == [
        ("2026-12-01", 0.0, 0.0, 0.0, False),
        ("2026-12-02", 250.0, 50.0, 200.0, False),
        ("2026-12-03", 0.0, 0.0, 0.0, False),  # the void order does not count
        ("2026-12-04", 750.0, 450.0, 300.0, False),
    ]
    products = build(engine, settings, book, "product_analysis", "start=2026-12-01", "end=2026-12-04")
    trend = products.tables["trend"].frame
    assert list(trend["quantity"]) == [0.0, 1.0, 0.0, 1.0]
    assert list(trend["revenue"]) == [Decimal(0), Decimal(250), Decimal(0), Decimal(750)]


# --- (4) where to open when the default period has no data ----------------------------------------


LATER = dt.datetime(2027, 3, 10, 9, 0, tzinfo=dt.UTC)  # the book's data ends on 4 Dec 2026


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (resolve("last_month", LATER), Period(D(2026, 12, 1), D(2026, 12, 31))),
        (resolve("month_to_date", LATER), Period(D(2026, 12, 1), D(2026, 12, 4))),
        (resolve("last_7_days", LATER), Period(D(2026, 11, 28), D(2026, 12, 4))),
        (resolve("year_to_date", LATER), Period(D(2026, 1, 1), D(2026, 12, 4))),
        (resolve("last_quarter", LATER), Period(D(2026, 10, 1), D(2026, 12, 31))),
        (Period(D(2027, 1, 1), D(2027, 3, 31)), Period(D(2026, 10, 1), D(2026, 12, 31))),  # 3 whole months
        (Period(D(2027, 1, 10), D(2027, 1, 20)), Period(D(2026, 11, 24), D(2026, 12, 4))),  # 11 days
        # no data before the period's end either: the latest data of all
        (Period(D(2020, 1, 1), D(2020, 1, 31)), Period(D(2026, 12, 1), D(2026, 12, 31))),
        # data before the period's end, and later: the latest before its end (10 Jan 2026)
        (Period(D(2026, 6, 1), D(2026, 6, 30)), Period(D(2026, 1, 1), D(2026, 1, 31))),
    ],
)
def test_latest_period_with_data(
    engine: Engine, settings: Settings, book: int, period: Period, expected: Period
) -> None:
    snapshot = SnapshotStore(engine, settings.snapshot_dir).current(book)
    found = latest_period_with_data(snapshot, period)
    assert found == expected and found is not None and found.name == ""


def test_no_latest_period_without_data(engine: Engine, settings: Settings, book: int) -> None:
    store = SnapshotStore(engine, settings.snapshot_dir)
    month = resolve("last_month", LATER)
    assert latest_period_with_data(store.current(book), month, {"region": ["Nowhere"]}) is None
    assert latest_period_with_data(store.current(book), month, {"customer": ["C2"]}) == Period(
        D(2026, 12, 1), D(2026, 12, 31)
    )
    empty = new_business(engine)
    assert latest_period_with_data(store.current(empty.id), month) is None


# --- (5) a pandas oracle over demo data -------------------------------------------------------------

DEMO_NOW = dt.datetime(2026, 12, 4, 18, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def demo(engine: Engine) -> Iterator[tuple[int, dict[str, pd.DataFrame]]]:
    summary = load_demo(engine, f"cmp{uuid.uuid4().hex[:8]}", rows=2500, seed=1304, today=D(2026, 12, 4))
    yield summary.business_id, raw_frames(engine, summary.business_id)


def _figures(lines: pd.DataFrame, start: dt.date, end: dt.date) -> dict[str, Any]:
    part = in_period(lines, start.isoformat(), end.isoformat())
    revenue = micros_to_decimal(int(part["net_micros"].sum()))
    cost = micros_to_decimal(int(part["cost_micros"].sum()))
    return {"revenue": revenue, "gross_profit": revenue - cost, "orders": int(part["sale_id"].nunique())}


@pytest.mark.parametrize("filters", [{}, {"region": ["North"]}, {"category": ["Beverages", "Snacks"]}])
def test_comparisons_match_an_oracle(
    engine: Engine,
    settings: Settings,
    demo: tuple[int, dict[str, pd.DataFrame]],
    filters: dict[str, list[str]],
) -> None:
    business_id, frames = demo
    lines = completed_lines(frames["lines"], filters)
    pairs = [f"{k}={','.join(v)}" for k, v in filters.items()]
    report = run_report(
        engine,
        settings.snapshot_dir,
        business_id,
        "kpi_dashboard",
        *MTD,
        "compare=custom",
        "compare_start=2026-10-05",
        "compare_end=2026-10-18",
        *pairs,
        now=DEMO_NOW,
    )
    kpis = kpis_of(report)
    periods = {
        "": (D(2026, 12, 1), D(2026, 12, 4)),
        "_previous": (D(2026, 11, 1), D(2026, 11, 4)),
        "_year_ago": (D(2025, 12, 1), D(2025, 12, 4)),
        "_compared": (D(2026, 10, 5), D(2026, 10, 18)),
    }
    current = _figures(lines, *periods[""])
    assert current["orders"] > 0
    for suffix, (start, end) in periods.items():
        expected = _figures(lines, start, end)
        for figure in ("revenue", "gross_profit", "orders"):
            assert kpis[f"{figure}{suffix}"] == expected[figure], (figure, suffix)
    changes = {"_previous": "_change_pct", "_year_ago": "_yoy_pct", "_compared": "_compared_change_pct"}
    for suffix, change_suffix in changes.items():
        before = _figures(lines, *periods[suffix])["revenue"]
        expected_change = float((current["revenue"] - before) / before) if before else None
        assert kpis[f"revenue{change_suffix}"] == pytest.approx(expected_change, rel=1e-12)
    # the 12-month trend: each month's revenue, the running one cut at 4 Dec and marked partial
    trend = report.tables["trend"].frame
    month = lines["order_date"].map(lambda d: f"{d:%Y-%m}")
    window = lines[(lines["order_date"] >= D(2026, 1, 1)) & (lines["order_date"] <= D(2026, 12, 4))]
    expected_months = window.groupby(month[window.index])["net_micros"].sum()
    for m, revenue, partial in zip(trend["month"], trend["revenue"], trend["partial"], strict=True):
        assert revenue == micros_to_decimal(int(expected_months.get(m, 0))), m
        assert bool(partial) == (m == "2026-12"), m


# --- (6) the parameters: CLI --param, API query, URL ---------------------------------------------------


def query_of(pairs: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """CLI pairs as an API query."""
    return [(key, value) for key, _, value in (p.partition("=") for p in pairs)]


def test_compare_parameters_parse_and_key_the_cache() -> None:
    params = ReportParams.from_pairs(["period=month_to_date", *CUSTOM])
    assert (params.compare, params.compare_start, params.compare_end) == (
        "custom",
        D(2026, 11, 27),
        D(2026, 11, 30),
    )
    assert params.compared_period() == Period(D(2026, 11, 27), D(2026, 11, 30))
    assert params.to_dict() == {
        "period": "month_to_date",
        "tz": "UTC",
        "compare": "custom",
        "compare_start": "2026-11-27",
        "compare_end": "2026-11-30",
    }
    assert ReportParams.from_mapping(params.to_dict()) == params  # saved reports, schedules, the run cache
    other = ReportParams.from_pairs(
        ["period=month_to_date", "compare=custom", *CUSTOM[1:2], "compare_end=2026-11-29"]
    )
    assert other.to_dict() != params.to_dict()
    # the default is the same request as none, so the same cache key
    assert ReportParams.from_pairs(["compare=previous"]) == ReportParams.from_pairs([])
    assert "compare" not in ReportParams.from_pairs(["compare=previous"]).to_dict()
    assert ReportParams.from_pairs(["compare=last_year"]).to_dict() == {"tz": "UTC", "compare": "last_year"}
    assert ReportParams.from_pairs(["compare=last_year"]).compared_period() is None


@pytest.mark.parametrize(
    ("pairs", "parameter", "message"),
    [
        (
            ["compare=weekly"],
            "compare",
            "Unknown compare 'weekly'; choose one of: previous, last_year, custom.",
        ),
        (["compare=custom"], "compare_start", "compare=custom needs compare_start and compare_end"),
        (
            ["compare=custom", "compare_start=2026-11-01"],
            "compare_end",
            "needs compare_start and compare_end",
        ),
        (
            ["compare=custom", "compare_start=2026-11-30", "compare_end=2026-11-01"],
            "compare_end",
            "compare_end must not be before compare_start",
        ),
        (["compare_start=2026-11-01", "compare_end=2026-11-30"], "compare_start", "goes with compare=custom"),
        (
            ["compare=last_year", "compare_start=2026-11-01", "compare_end=2026-11-30"],
            "compare_start",
            "goes with compare=custom",
        ),
        (
            ["compare=custom", "compare_start=2026-13-01", "compare_end=2026-11-30"],
            "compare_start",
            "The compare_start date '2026-13-01' is not a date in the form YYYY-MM-DD.",
        ),
        (
            ["compare=custom", "compare_start=2026-11-01", "compare_end=3001-01-01"],
            "compare_end",
            "The compare_end date 3001-01-01 is out of range",
        ),
    ],
)
def test_wrong_compare_parameters_are_named(pairs: list[str], parameter: str, message: str) -> None:
    with pytest.raises(ParamError, match=re.escape(message)) as caught:
        ReportParams.from_pairs(pairs)
    assert caught.value.parameter == parameter
    # the API answers 400 naming the same parameter, with the same sentence
    with pytest.raises(BadParameter, match=re.escape(message)) as bad:
        api_params(definition("kpi_dashboard"), query_of(pairs))
    assert bad.value.parameter == parameter


def test_only_reports_with_comparisons_take_compare() -> None:
    takers = [r.slug for r in REPORTS if r.compares]
    assert takers == ["kpi_dashboard", "customer_performance", "gross_profit"]
    for slug in takers:
        check_params(definition(slug), ReportParams.from_pairs(list(CUSTOM)))
    with pytest.raises(ParamError, match="Report 'payments' makes no comparisons") as caught:
        check_params(definition("payments"), ReportParams.from_pairs(["compare=last_year"]))
    assert caught.value.parameter == "compare"
    for query in ([("compare", "last_year")], [("compare_start", "2026-11-01")]):
        with pytest.raises(BadParameter, match="makes no comparisons") as bad:
            api_params(definition("payments"), query)
        assert bad.value.parameter == query[0][0]
    check_params(definition("payments"), ReportParams.from_pairs(["compare=previous"]))  # the default
    # a complete query passes the API's one-by-one checks
    query = query_of(["period=month_to_date", *CUSTOM])
    assert api_params(definition("kpi_dashboard"), query) == ReportParams.from_pairs(
        ["period=month_to_date", *CUSTOM]
    )
    names = [p["name"] for p in parameters(definition("kpi_dashboard"))]
    assert {"compare", "compare_start", "compare_end"} <= set(names)
    assert "compare" not in [p["name"] for p in parameters(definition("payments"))]


def test_compare_through_the_command_line_and_the_url_form(
    engine: Engine, settings: Settings, book: int
) -> None:
    # the UI's query (ui/filters: the URL's compare keys, passed to ReportParams.from_mapping) and the CLI agree
    cli = build(engine, settings, book, "kpi_dashboard", *MTD, *CUSTOM)
    url = ReportParams.from_mapping(
        {
            "period": "month_to_date",
            "compare": "custom",
            "compare_start": "2026-11-27",
            "compare_end": "2026-11-30",
        }
    )
    assert url == ReportParams.from_pairs(["period=month_to_date", *CUSTOM])
    assert report_document(cli)["parameters"]["compare"] == "custom"


def test_the_run_cache_keys_by_the_comparison_and_the_periods_name() -> None:
    def key(*pairs: str) -> str:
        params = ReportParams.from_pairs(["now=2026-11-15T12:00:00+00:00", *pairs])
        return cache_key(1, "kpi_dashboard", params, ["json"], "token")

    # quarter to date on 15 Nov (1 Oct – 15 Nov) compares with 1 Jul – 15 Aug; the same explicit dates
    # with 1 Aug – 15 Sep: other numbers, so other files
    nov_15 = dt.datetime(2026, 11, 15, 12, 0, tzinfo=dt.UTC)
    assert resolve("quarter_to_date", nov_15).previous() == Period(D(2026, 7, 1), D(2026, 8, 15))
    assert Period(D(2026, 10, 1), D(2026, 11, 15)).previous() == Period(D(2026, 8, 1), D(2026, 9, 15))
    assert key("period=quarter_to_date") != key("start=2026-10-01", "end=2026-11-15")
    assert key("start=2026-10-01", "end=2026-11-15") == key(
        "start=2026-10-01", "end=2026-11-15", "compare=previous"
    )
    assert (
        len(
            {
                key(),
                key("compare=last_year"),
                key(*CUSTOM),
                key(CUSTOM[0], CUSTOM[1], "compare_end=2026-11-29"),
            }
        )
        == 4
    )
