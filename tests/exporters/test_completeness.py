"""Every report of the registry in every format of EXPORTERS: a valid, non-empty file, read back by an
independent reader, for the tiny business and for an empty period (which must say "No data")."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from analytics.report import Report
from core.settings import Settings
from exporters import EXPORTERS, file_name
from exporters.cells import NO_DATA
from reports.registry import REGISTRY
from tests.conftest import new_business
from tests.factories import insert_tiny
from tests.reports.reporting import run_report

PERIODS = {"tiny": ("start=2025-01-01", "end=2025-03-31"), "empty": ("start=2000-01-01", "end=2000-01-31")}
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def reports(engine: Engine, settings: Settings) -> Callable[[str, str], Report]:
    """Each report built once per period and shared by the formats."""
    business = new_business(engine, "Alles für 1 € Krüger")
    insert_tiny(engine, business.id)
    built: dict[tuple[str, str], Report] = {}

    def get(slug: str, period: str) -> Report:
        if (slug, period) not in built:
            built[slug, period] = run_report(
                engine, settings.snapshot_dir, business.id, slug, *PERIODS[period]
            )
        return built[slug, period]

    return get


# --- one independent reader per format: returns all the text it could read --------------------------------


def _csv_text(data: bytes) -> str:
    assert data.startswith(BOM), "CSV must start with the UTF-8 byte-order mark"
    rows = list(csv.reader(io.StringIO(data[len(BOM) :].decode("utf-8"), newline="")))
    assert rows and rows[0], "CSV without a header row"
    width = len(rows[0])
    assert all(len(r) in (width, 1) for r in rows), "ragged CSV rows"
    return "\n".join(",".join(r) for r in rows)


def read_csv(data: bytes, report: Report) -> str:
    if EXPORTERS["csv"].extension_for(report) == "zip":
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            assert bundle.testzip() is None
            assert len(bundle.namelist()) == len(report.tables) + 1
            return "\n".join(_csv_text(bundle.read(name)) for name in bundle.namelist())
    return _csv_text(data)


def read_json(data: bytes, report: Report) -> str:
    doc = json.loads(data.decode("utf-8"))
    assert doc["report"] == report.slug and set(doc["tables"]) == set(report.tables)
    for name, table in report.tables.items():
        assert len(doc["tables"][name]) == table.row_count
    return json.dumps(doc, ensure_ascii=False)


def read_xlsx(data: bytes, report: Report) -> str:
    import openpyxl

    book = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
    texts = [
        str(cell)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
        for cell in row
        if cell
    ]
    assert book.sheetnames and texts
    book.close()
    return "\n".join(texts)


def read_pdf(data: bytes, report: Report) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) >= 1
    return "\n".join(page.extract_text() or "" for page in reader.pages)


READERS: dict[str, Callable[[bytes, Report], str]] = {
    "csv": read_csv,
    "json": read_json,
    "xlsx": read_xlsx,
    "pdf": read_pdf,
}


@pytest.mark.parametrize("period", list(PERIODS))
@pytest.mark.parametrize("fmt", list(EXPORTERS))
@pytest.mark.parametrize("slug", list(REGISTRY))
def test_every_report_in_every_format(
    reports: Callable[[str, str], Report], slug: str, fmt: str, period: str
) -> None:
    report = reports(slug, period)
    exporter = EXPORTERS[fmt]
    out = io.BytesIO()
    exporter.write(report, out)
    data = out.getvalue()
    assert data, f"{slug} as {fmt} is empty"
    reader = READERS.get(fmt)
    if reader is None:
        pytest.fail(f"No independent reader for format {fmt!r}: add one to READERS in this file.")
    text = reader(data, report)
    name = file_name(report, fmt)
    assert name.startswith(f"{slug}_") and name.endswith("." + exporter.extension_for(report))
    if report.is_empty:
        assert NO_DATA.lower() in " ".join(text.lower().split()), (
            f"{slug} as {fmt} does not say there is no data"
        )


def test_the_empty_period_is_empty_for_most_reports(reports: Callable[[str, str], Report]) -> None:
    # kpi_dashboard and sales_summary list every month of the period, with zeros: never empty.
    empty = {slug for slug in REGISTRY if reports(slug, "empty").is_empty}
    assert empty == set(REGISTRY) - {"kpi_dashboard", "sales_summary"}


def test_every_format_has_a_reader() -> None:
    assert set(EXPORTERS) <= set(READERS), "add an independent reader for the new format"
