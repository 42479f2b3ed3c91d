"""The PDF export and its static charts, read back with pypdf (and pdftotext where installed)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import Engine

from analytics.periods import Period
from analytics.report import ChartSpec, Column, Highlight, Kpi, Report, ReportParams, Table
from core.money import to_cents
from core.settings import Settings
from exporters.pdf_export import pdf_bytes, write_pdf
from exporters.static_charts import axis_formatter, chart_png
from reports.registry import REGISTRY
from tests.conftest import new_business
from tests.factories import insert_tiny
from tests.reports.reporting import run_report

PERIOD = ("start=2025-01-01", "end=2025-03-31")
MONEY = re.compile(r"-?€[\d,]+\.\d\d")
ACCENTED = ("Café Ñandú €", "Alles für 1 € Krüger", "Piso ₱1 Sari-Sari Store", "Smørrebrød Åsa Öztürk")


@pytest.fixture(scope="module")
def tiny_id(engine: Engine) -> int:
    business = new_business(engine, "Tiny Trading")
    insert_tiny(engine, business.id)
    return business.id


def _pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def _outline_titles(data: bytes) -> list[str]:
    def walk(items: Sequence[Any]) -> Iterator[str]:
        for item in items:
            if isinstance(item, list):
                yield from walk(item)
            else:
                yield str(item.title)

    return list(walk(PdfReader(io.BytesIO(data)).outline))


def _amounts(text: str) -> set[Decimal]:
    return {Decimal(m.replace("€", "").replace(",", "")) for m in MONEY.findall(text)}


def _synthetic(
    rows: int,
    *,
    names: Sequence[str] = ("Müller & Söhne",),
    currency: str = "EUR",
    stream_rows: int | None = None,
    batches_read: list[int] | None = None,
) -> Report:
    """A one-table report of `rows` sale lines (or a stream of `stream_rows`) built in memory."""
    columns = [
        Column("order_id", "Order"),
        Column("order_date", "Date", "date"),
        Column("customer_name", "Customer"),
        Column("product_name", "Product"),
        Column("region", "Region"),
        Column("quantity", "Quantity", "quantity"),
        Column("unit_price", "Unit price", "money"),
        Column("discount", "Discount", "pct"),
        Column("net", "Net", "money"),
        Column("cost", "Cost", "money"),
        Column("profit", "Profit", "money"),
        Column("margin_pct", "Margin", "pct"),
    ]

    def row(i: int) -> tuple[Any, ...]:
        net = Decimal(i % 997) + Decimal("0.125")  # a half-cent: rounds half-even to .12
        cost = Decimal(i % 331)
        return (
            f"SO-{i:07d}",
            dt.date(2025, 1, 1) + dt.timedelta(days=i % 90),
            names[i % len(names)],
            "Espresso Beans Extra Dark Roast Single Origin 1 kg",
            ("North", "South", "East")[i % 3],
            i % 40 + 1,
            Decimal("12.50"),
            0.05 if i % 4 == 0 else 0.0,
            net,
            cost,
            net - cost,
            float((net - cost) / net),
        )

    keys = [c.key for c in columns]
    frame = pd.DataFrame([row(i) for i in range(1, rows + 1)], columns=keys)
    table = Table("lines", "Sales lines", columns, frame, [Highlight("profit", "lt", 0, "Sold below cost")])
    if stream_rows is not None:
        read = batches_read if batches_read is not None else []

        def stream(wanted: Sequence[str]) -> Iterator[list[tuple[Any, ...]]]:
            assert list(wanted) == keys
            for start in range(1, stream_rows + 1, 500):
                read.append(start)
                yield [row(i) for i in range(start, min(start + 500, stream_rows + 1))]

        table = Table("lines", "Sales lines", columns, frame.head(0), table.highlights, stream, stream_rows)
    net_total = sum((Decimal(i % 997) + Decimal("0.125") for i in range(1, rows + 1)), Decimal(0))
    return Report(
        slug="synthetic_lines",
        title="Synthetic lines",
        business_code="syn",
        business_name="Café Ñandú € Trading",
        currency=currency,
        params=ReportParams(
            start=dt.date(2025, 1, 1), end=dt.date(2025, 3, 31), filters={"region": ("North",)}
        ),
        generated_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        period=Period(dt.date(2025, 1, 1), dt.date(2025, 3, 31)),
        kpis=[
            Kpi("lines", "Lines", rows, "int"),
            Kpi("net", "Net", net_total, "money"),
            Kpi("margin_pct", "Margin", 0.2734, "pct"),
        ],
        tables={"lines": table},
        notes=["A note under the key figures."],
    )


# --- axis labels --------------------------------------------------------------------------------


def test_money_axis_labels_have_thousands_separators() -> None:
    assert axis_formatter("money", "EUR")(1_234_567, None) == "€1,234,567"
    assert axis_formatter("money", "PHP", decimals=2)(-1500.5, None) == "-₱1,500.50"
    assert axis_formatter("pct", "EUR")(0.25, None) == "25 %"
    assert axis_formatter("int", "EUR")(12_000, None) == "12,000"


# --- real reports on the tiny example ----------------------------------------------------------


def test_kpi_dashboard_pdf(engine: Engine, settings: Settings, tiny_id: int) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny_id, "kpi_dashboard", *PERIOD)
    out = io.BytesIO()
    write_pdf(report, out)
    data = out.getvalue()
    assert data.startswith(b"%PDF-")
    assert _size(data) == (842, 595)  # A4 landscape, points
    pages = _pages(data)
    for number, text in enumerate(pages, start=1):
        assert "KPI dashboard" in text
        assert "Period: 1 Jan – 31 Mar 2025" in text
        assert "Tiny Trading" in text
        assert f"Page {number} of {len(pages)}" in text
        assert "Generated " in text

    first = pages[0]
    # The hand-checked figures of shared/examples/tiny/expected.json, as printed.
    for printed in ("€1,585.00", "€433.00", "27.3 %", "€396.25", "€1,395.00", "€565.00"):
        assert printed in first
    # Every money KPI equals the Report's value to the cent (amounts parsed back from the page).
    amounts = _amounts(first)
    for kpi in report.kpis:
        if kpi.kind == "money" and kpi.value is not None:
            assert to_cents(Decimal(kpi.value)) in amounts, kpi.key
        if kpi.kind == "int" and kpi.value is not None:
            assert f"{int(kpi.value):,}" in first, kpi.key

    # Table cells, parsed back, equal the report's table to the cent.
    by_region = report.tables["by_region"]
    text = "\n".join(pages)
    for region, revenue in zip(by_region.frame["region"], by_region.frame["revenue"], strict=True):
        assert re.search(rf"{region} €{to_cents(revenue):,}", text), region

    titles = _outline_titles(data)
    assert titles[0] == "Key figures"
    assert "Charts" in titles
    assert {c.title for c in report.charts} <= set(titles)
    assert {t.title for t in report.tables.values()} <= set(titles)


@pytest.mark.parametrize("slug", ["sales_summary", "credit_aging", "forecast_vs_actual", "sales_lines"])
def test_reports_render(engine: Engine, settings: Settings, tiny_id: int, slug: str) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny_id, slug, *PERIOD)
    pages = _pages(pdf_bytes(report))
    assert f"Page {len(pages)} of {len(pages)}" in pages[-1]
    text = "\n".join(pages)
    for table in report.tables.values():
        assert table.title in text


def _size(data: bytes) -> tuple[int, int]:
    box = PdfReader(io.BytesIO(data)).pages[0].mediabox
    return round(float(box.width)), round(float(box.height))


def test_letter_size(engine: Engine, settings: Settings, tiny_id: int) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny_id, "sales_lines", *PERIOD)
    assert _size(pdf_bytes(report, page_size="Letter")) == (792, 612)  # landscape, points


@pytest.mark.parametrize("slug", ["payments", "sales_lines"])
def test_empty_period_says_no_data(engine: Engine, settings: Settings, tiny_id: int, slug: str) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny_id, slug, "start=2031-01-01", "end=2031-01-31")
    assert report.is_empty
    data = pdf_bytes(report)
    pages = _pages(data)
    assert len(pages) == 1
    assert "No data for this period" in pages[0]
    assert "1–31 Jan 2031" in pages[0]
    assert "Time zone" in pages[0] and "UTC" in pages[0]
    assert "Page 1 of 1" in pages[0]
    assert _outline_titles(data) == ["No data for this period"]


# --- synthetic reports -------------------------------------------------------------------------


def test_accents_euro_and_peso_render() -> None:
    data = pdf_bytes(_synthetic(12, names=ACCENTED, currency="PHP"))
    text = "\n".join(_pages(data))
    assert "Café Ñandú € Trading" in text  # the business name in the header
    for name in ACCENTED:
        assert name in text
    assert "₱12.50" in text
    if shutil.which("pdftotext"):  # a second, independent reader (poppler)
        poppler = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True).stdout
        for name in ACCENTED:
            assert name in poppler.decode("utf-8")


def test_long_table_stops_at_the_limit_with_a_notice() -> None:
    report = _synthetic(120)
    pages = _pages(pdf_bytes(report, max_table_rows=50))
    text = "\n".join(pages)
    assert "70 more rows are not shown; the CSV and Excel exports contain all 120 rows." in text
    assert "SO-0000050" in text
    assert "SO-0000051" not in text
    assert "Tinted rows: Sold below cost" in text


def test_streamed_table_stops_reading_at_the_limit() -> None:
    read: list[int] = []
    report = _synthetic(0, stream_rows=1_000_000, batches_read=read)
    text = "\n".join(_pages(pdf_bytes(report, max_table_rows=1_200)))
    assert "998,800 more rows are not shown; the CSV and Excel exports contain all 1,000,000 rows." in text
    assert "SO-0001200" in text and "SO-0001201" not in text
    assert read == [1, 501, 1001]  # the rest of the million rows were never produced


def test_header_row_repeats_on_every_page_of_a_table() -> None:
    pages = _pages(pdf_bytes(_synthetic(300)))
    assert len(pages) > 3
    for text in pages[1:]:
        assert "Sales lines (continued)" in text
        assert "Order Date Customer Product Region Quantity" in text.replace("\n", " ")


@pytest.mark.slow
def test_ten_thousand_rows() -> None:
    report = _synthetic(10_000)
    started = time.perf_counter()
    data = pdf_bytes(report, max_table_rows=10_000)
    seconds = time.perf_counter() - started
    assert seconds < 20, seconds  # loosely: bench/exports.py measures it properly
    reader = PdfReader(io.BytesIO(data))
    assert 150 < len(reader.pages) < 400
    last = reader.pages[-1].extract_text()
    assert "SO-0010000" in last
    assert f"Page {len(reader.pages)} of {len(reader.pages)}" in last
    assert "more rows are not shown" not in last


# --- static charts -----------------------------------------------------------------------------


def test_every_chart_of_every_report_is_a_png(engine: Engine, settings: Settings, tiny_id: int) -> None:
    drawn = 0
    for slug in REGISTRY:
        report = run_report(engine, settings.snapshot_dir, tiny_id, slug, *PERIOD)
        for chart in report.charts:
            png = chart_png(chart, report.tables[chart.table], report.currency, width_px=480, height_px=300)
            assert png.startswith(b"\x89PNG\r\n\x1a\n"), (slug, chart.key)
            with Image.open(io.BytesIO(png)) as image:
                assert image.size == (480, 300), (slug, chart.key)
            drawn += 1
    assert drawn >= 30


@pytest.mark.parametrize("kind", ["line", "bar", "stacked_bar", "pie", "pareto"])
def test_chart_kinds_on_empty_and_awkward_data(kind: Any) -> None:
    columns = [Column("name", "Name"), Column("a", "A", "money"), Column("b", "B", "pct")]
    values = [("x", Decimal("-5"), None), ("y", None, 0.5), ("z", Decimal("1e6"), float("nan"))]
    for rows in ([], values, [(f"c{i}", Decimal(i), i / 100) for i in range(200)]):
        table = Table("t", "T", columns, pd.DataFrame(rows, columns=["name", "a", "b"]))
        y = ("a",) if kind == "pie" else ("a", "b")
        png = chart_png(
            ChartSpec("k", "Title", kind, "t", "name", y), table, "EUR", width_px=400, height_px=250
        )
        assert png.startswith(b"\x89PNG")


# --- what people read: the business's time zone, codes as words -----------------------------------


def test_times_are_in_the_business_zone_named(engine: Engine, settings: Settings, tiny_id: int) -> None:
    report = run_report(
        engine, settings.snapshot_dir, tiny_id, "payments", *PERIOD, "customer_type=wholesale"
    )
    report = dataclasses.replace(
        report, generated_at=dt.datetime(2025, 4, 2, 6, 20, tzinfo=dt.UTC), timezone="Europe/Berlin"
    )
    pages = _pages(pdf_bytes(report))
    assert all("Generated 2025-04-02 08:20 CEST" in page for page in pages)  # UTC+2 in April
    assert not any("UTC · Tallyboard" in page for page in pages)
    text = "\n".join(pages)
    assert "Customer type: Wholesale" in text  # the filter, as people say it
    assert "Bank transfer" in text and "bank_transfer" not in text and "wholesale" not in text
