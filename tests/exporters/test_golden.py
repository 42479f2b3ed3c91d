"""Golden files: every report of the tiny example, built with `now` pinned, in every format,
compared literally with the files under tests/golden/ (as Datasette tests its output).

For each report, tests/golden/<slug>/ holds:

- `report.json`: the JSON document, byte for byte;
- the CSV, byte for byte (BOM, CRLF): `report.csv` for a report of one table, else each entry of
  the ZIP under its own name (`summary.csv`, `<slug>_<table>.csv`);
- `report.xlsx.txt`: the workbook's cell values sheet by sheet, as openpyxl reads them: a line
  `== <sheet> ==`, then one line per non-empty row, its number and its cells tab-separated (text
  in JSON quotes, numbers as Python writes them, dates ISO: see `xlsx_text`);
- `report.pdf.txt`: the PDF's text page by page, as pypdf extracts it.

Nothing in them depends on the clock or the database: `now` is pinned (generated_at and the
relative period, `last_quarter` = Q1 2025, the tiny example's quarter), the business has a fixed
code, and no output holds a database id or snapshot token. (ZIP entry times and the PDF's and
workbook's creation metadata are not compared: only the texts above.)

When a change to the output is intended, rewrite the files, then read the diff:

    TALLYBOARD_UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/exporters/test_golden.py -p no:cacheprovider
    git diff tests/golden/
"""

from __future__ import annotations

import datetime as dt
import difflib
import io
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pypdf import PdfReader
from sqlalchemy import Engine

from analytics.report import Report, ReportParams, Scope
from core.db import make_sessionmaker
from core.models import Business
from core.settings import Settings
from exporters import EXPORTERS
from reports.registry import REPORTS, generate
from snapshots.store import SnapshotStore
from tests.factories import insert_tiny

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("TALLYBOARD_UPDATE_GOLDEN") == "1"
NOW = dt.datetime(2025, 4, 2, 8, 30, 15, tzinfo=dt.UTC)
PARAMS = ReportParams(period="last_quarter")
SLUGS = [r.slug for r in REPORTS]


@pytest.fixture(scope="module")
def reports(engine: Engine, settings: Settings) -> Callable[[str], Report]:
    """Each report of the tiny example, built once at NOW for the formats to share."""
    with make_sessionmaker(engine)() as s:
        business = Business(code="golden", name="Tiny Trading", currency="EUR", timezone="UTC")
        s.add(business)
        s.commit()
        business_id = business.id
    insert_tiny(engine, business_id)
    store = SnapshotStore(engine, settings.snapshot_dir)
    built: dict[str, Report] = {}

    def get(slug: str) -> Report:
        if slug not in built:
            with make_sessionmaker(engine)() as session:
                built[slug] = generate(session, store, Scope(business_id), slug, PARAMS, now=NOW)
        return built[slug]

    return get


def written(report: Report, fmt: str) -> bytes:
    out = io.BytesIO()
    EXPORTERS[fmt].write(report, out)
    return out.getvalue()


def csv_files(report: Report) -> dict[str, bytes]:
    data = written(report, "csv")
    if EXPORTERS["csv"].extension_for(report) == "csv":
        return {"report.csv": data}
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return json.dumps(str(value), ensure_ascii=False)


def xlsx_text(data: bytes) -> str:
    """The workbook's cell values, sheet by sheet: `== sheet ==`, then `row<TAB>cell<TAB>cell...`."""
    book = openpyxl.load_workbook(io.BytesIO(data))
    lines: list[str] = []
    for sheet in book.worksheets:
        lines.append(f"== {sheet.title} ==")
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_cell(v) for v in row]
            while cells and not cells[-1]:
                cells.pop()
            if cells:
                lines.append("\t".join([str(number), *cells]))
    return "\n".join(lines) + "\n"


def pdf_text(data: bytes) -> str:
    pages = PdfReader(io.BytesIO(data)).pages
    return "".join(f"== page {i} ==\n{page.extract_text().rstrip()}\n" for i, page in enumerate(pages, 1))


def outputs(report: Report, fmt: str) -> dict[str, bytes]:
    """The golden files of one format: file name -> bytes."""
    if fmt == "json":
        return {"report.json": written(report, "json")}
    if fmt == "csv":
        return csv_files(report)
    if fmt == "xlsx":
        return {"report.xlsx.txt": xlsx_text(written(report, "xlsx")).encode()}
    assert fmt == "pdf"
    return {"report.pdf.txt": pdf_text(written(report, "pdf")).encode()}


def stored(folder: Path, fmt: str) -> dict[str, bytes]:
    """The golden files of one format in `folder` (CSV: every *.csv there)."""
    names = {"json": ["report.json"], "xlsx": ["report.xlsx.txt"], "pdf": ["report.pdf.txt"]}
    paths = sorted(folder.glob("*.csv")) if fmt == "csv" else [folder / n for n in names[fmt]]
    return {p.name: p.read_bytes() for p in paths if p.exists()}


def difference(name: str, expected: bytes, actual: bytes) -> str:
    lines = difflib.unified_diff(
        expected.decode("utf-8", "replace").splitlines(),
        actual.decode("utf-8", "replace").splitlines(),
        f"golden/{name}",
        "now",
        lineterm="",
    )
    return "\n".join(list(lines)[:80])


@pytest.mark.parametrize("fmt", list(EXPORTERS))
@pytest.mark.parametrize("slug", SLUGS)
def test_output_equals_the_golden_file(reports: Callable[[str], Report], slug: str, fmt: str) -> None:
    folder = GOLDEN / slug
    actual = outputs(reports(slug), fmt)
    if UPDATE:
        folder.mkdir(parents=True, exist_ok=True)
        for path in stored(folder, fmt):
            (folder / path).unlink()
        for name, data in actual.items():
            (folder / name).write_bytes(data)
    expected = stored(folder, fmt)
    assert sorted(expected) == sorted(actual), (
        f"tests/golden/{slug}: files differ; see this module's docstring to rewrite them"
    )
    for name, data in actual.items():
        assert data == expected[name], (
            f"tests/golden/{slug}/{name} differs (TALLYBOARD_UPDATE_GOLDEN=1 rewrites it):\n"
            + difference(f"{slug}/{name}", expected[name], data)
        )


def test_every_report_has_golden_files_and_no_other_folder_is_there() -> None:
    if UPDATE:  # a report that left the registry leaves its folder behind
        for folder in GOLDEN.iterdir():
            if folder.is_dir() and folder.name not in SLUGS:
                shutil.rmtree(folder)
    folders = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
    assert folders == sorted(SLUGS)
