"""`manage.py report --format csv` writes what its --out says: one table as CSV (`--table NAME`), every
table as a ZIP (an --out ending in .zip), and never a ZIP under a .csv name (refused in one line).
Standard output keeps what it got before: the run's file (a ZIP for several tables)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.models import Business
from core.settings import Settings
from manage import main
from tests.factories import insert_tiny
from tests.test_manage_runs import run_cli_bytes

PERIOD = ["--param", "start=2025-01-01", "--param", "end=2025-03-31"]
BOM = b"\xef\xbb\xbf"
SALES_SUMMARY_TABLES = ("by_region", "by_category", "by_customer", "by_product", "by_storefront")


@pytest.fixture
def shop(engine: Engine, business: Business) -> Business:
    insert_tiny(engine, business.id)
    return business


def _report(shop: Business, slug: str, out: Path | str, *extra: str, fmt: str = "csv") -> int:
    return main(
        ["report", slug, "--business", shop.code, "--format", fmt, "--out", str(out), *PERIOD, *extra]
    )


def _rows(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM), data[:20]
    return list(csv.reader(io.StringIO(data[len(BOM) :].decode("utf-8"), newline="")))


def _document(shop: Business, slug: str, tmp_path: Path) -> dict[str, list[dict[str, object]]]:
    """The same report's tables as the JSON document has them (codes, numbers): the independent side."""
    out = tmp_path / f"{slug}.json"
    assert _report(shop, slug, out, fmt="json") == 0
    tables: dict[str, list[dict[str, object]]] = json.loads(out.read_text())["tables"]
    return tables


def test_table_writes_that_one_table_as_csv(cli_env: Settings, shop: Business, tmp_path: Path) -> None:
    out = tmp_path / "regions.csv"
    assert _report(shop, "sales_summary", out, "--table", "by_region") == 0
    data = out.read_bytes()
    assert not zipfile.is_zipfile(io.BytesIO(data))
    rows = _rows(data)
    records = _document(shop, "sales_summary", tmp_path)["by_region"]
    assert rows[0] == list(records[0])  # the header: the table's column keys
    assert len(rows) - 1 == len(records)
    for row, record in zip(rows[1:], records, strict=True):
        assert row[0] == record["region"]
        assert Decimal(row[rows[0].index("revenue")]) == Decimal(str(record["revenue"])).quantize(
            Decimal("0.01")
        )


def test_table_names_a_table_of_the_report(
    cli_env: Settings, shop: Business, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.csv"
    assert _report(shop, "sales_summary", out, "--table", "by_colour") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "no table 'by_colour'" in err
    assert all(name in err for name in SALES_SUMMARY_TABLES)
    assert not out.exists()


def test_a_zip_out_gets_every_table(cli_env: Settings, shop: Business, tmp_path: Path) -> None:
    out = tmp_path / "summary.zip"
    assert _report(shop, "sales_summary", out) == 0
    records = _document(shop, "sales_summary", tmp_path)
    with zipfile.ZipFile(out) as bundle:
        names = bundle.namelist()
        assert names == ["summary.csv", *(f"sales_summary_{t}.csv" for t in records)]
        for table, rows in records.items():
            assert len(_rows(bundle.read(f"sales_summary_{table}.csv"))) - 1 == len(rows)
        assert all(info.date_time[0] >= 2025 for info in bundle.infolist())  # not 1980-01-01


def test_a_zip_out_of_a_one_table_report_is_a_zip_too(
    cli_env: Settings, shop: Business, tmp_path: Path
) -> None:
    out = tmp_path / "lines.zip"
    assert _report(shop, "sales_lines", out) == 0
    with zipfile.ZipFile(out) as bundle:
        assert bundle.namelist() == ["summary.csv", "sales_lines_lines.csv"]
        lines = _document(shop, "sales_lines", tmp_path)["lines"]
        assert len(_rows(bundle.read("sales_lines_lines.csv"))) - 1 == len(lines)


def test_a_one_table_report_keeps_writing_a_plain_csv(
    cli_env: Settings, shop: Business, tmp_path: Path
) -> None:
    out = tmp_path / "lines.csv"
    assert _report(shop, "sales_lines", out) == 0
    rows = _rows(out.read_bytes())
    lines = _document(shop, "sales_lines", tmp_path)["lines"]
    assert rows[0] == list(lines[0]) and len(rows) - 1 == len(lines)
    assert _report(shop, "sales_lines", tmp_path / "again.csv", "--table", "lines") == 0
    assert (tmp_path / "again.csv").read_bytes() == out.read_bytes()


def test_a_csv_out_for_several_tables_is_refused_in_one_line(
    cli_env: Settings, shop: Business, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "k.csv"
    assert _report(shop, "sales_summary", out) == 2  # a usage error, like the other wrong command lines
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert all(name in err for name in SALES_SUMMARY_TABLES)
    assert "--table NAME" in err and ".zip" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing written, no temp file left


@pytest.mark.parametrize(
    ("extra", "fmt", "out", "words"),
    [
        (["--table", "by_region"], "xlsx", "x.xlsx", "--format csv only"),
        (["--table", "by_region"], "csv", "x.zip", "one CSV file"),
    ],
)
def test_table_with_another_format_or_a_zip_is_refused(
    cli_env: Settings,
    shop: Business,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    fmt: str,
    out: str,
    words: str,
) -> None:
    assert _report(shop, "sales_summary", tmp_path / out, *extra, fmt=fmt) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err


def test_standard_output_keeps_working(cli_env: Settings, shop: Business) -> None:
    """`--out -`: the run's file as before (a ZIP for several tables); with --table that table's CSV."""
    status, stdout, stderr = run_cli_bytes(
        "report", "sales_summary", "--business", shop.code, "--format", "csv", "--out", "-", *PERIOD
    )
    assert status == 0, stderr
    with zipfile.ZipFile(io.BytesIO(stdout)) as bundle:
        assert "sales_summary_by_region.csv" in bundle.namelist()
        whole = bundle.read("sales_summary_by_region.csv")
    status, stdout, stderr = run_cli_bytes(
        "report", "sales_summary", "--business", shop.code, "--format", "csv", "--out", "-", "--table", "by_region",
        *PERIOD,
    )  # fmt: skip
    assert status == 0, stderr
    assert stdout == whole
