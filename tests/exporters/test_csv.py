"""The CSV export, read back with the csv and zipfile modules and compared with the Report to the cent."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import math
import os
import shutil
import subprocess
import sys
import zipfile
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.report import Column, ColumnKind, Kpi, ParamError, Report, ReportParams, Table
from core.db import make_sessionmaker
from core.models import Business
from core.settings import Settings
from exporters import EXPORTERS, file_name, table_file_name
from exporters.cells import NO_DATA, csv_cell, csv_column, neutralise
from exporters.csv_export import SUMMARY_NAME, write_csv, write_table_csv, write_zip
from tests.conftest import new_business
from tests.exporters.human import CODE_KEYS, human
from tests.factories import TINY_DIR, insert_tiny
from tests.reports.reporting import run_report

Q1 = ("start=2025-01-01", "end=2025-03-31")
BOM = b"\xef\xbb\xbf"
INJECTIONS = ("=1+2", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx")
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def tiny_id(engine: Engine) -> int:
    business = new_business(engine, "Café Müller €")
    insert_tiny(engine, business.id)
    return business.id


def csv_bytes(report: Report) -> bytes:
    out = io.BytesIO()
    EXPORTERS["csv"].write(report, out)
    return out.getvalue()


def parse(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM)
    return list(csv.reader(io.StringIO(data[len(BOM) :].decode("utf-8"), newline="")))


def rows_of(table: Table) -> list[tuple[Any, ...]]:
    return [row for batch in table.batches() for row in batch]


def missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, Decimal)) and math.isnan(value)


def assert_cell(text: str, value: Any, kind: ColumnKind, key: str = "") -> None:
    """An independent check of one written cell against the Report's value (a code as its label)."""
    if key in CODE_KEYS and isinstance(value, str) and value:
        value = human(value)
    if missing(value):
        assert text == ""
    elif kind == "money":
        assert "," not in text and len(text.split(".")[1]) == 2, text
        exact = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        assert Decimal(text) == exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    elif kind in ("int", "quantity"):
        assert Decimal(text) == Decimal(str(value)) and (kind == "quantity" or "." not in text)
    elif kind in ("pct", "number"):
        assert float(text) == pytest.approx(float(value), rel=1e-12, abs=1e-15)
    elif kind == "date":
        assert text == (value.date() if isinstance(value, dt.datetime) else value).isoformat()
    elif kind == "datetime":
        assert dt.datetime.fromisoformat(text) == pd.Timestamp(value).to_pydatetime()
    elif isinstance(value, (bool, np.bool_)):  # a flag such as a trend's `partial`: true/false
        assert text == ("true" if value else "false")
    elif isinstance(value, str):
        assert text == ("'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value)
    else:
        assert text == str(value)


def assert_table(rows: list[list[str]], table: Table, *, empty_report: bool = False) -> None:
    assert rows[0] == [c.key for c in table.columns]
    expected = rows_of(table)
    body = rows[1:]
    if empty_report:
        assert body == [[NO_DATA]]
        return
    assert len(body) == len(expected) == table.row_count
    for got, want in zip(body, expected, strict=True):
        for text, value, col in zip(got, want, table.columns, strict=True):
            assert_cell(text, value, col.kind, col.key)


# --- whole reports ------------------------------------------------------------------------------------


def test_one_table_is_one_csv(engine: Engine, settings: Settings, tiny_id: int) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny_id, "sales_lines", *Q1)
    data = csv_bytes(report)
    rows = parse(data)
    assert_table(rows, report.tables["lines"])
    assert rows[2] == [
        "O1", "2025-01-05", "Completed", "A1", "Alma Café", "Retail", "North", "M", "Main Street", "ana",
        "P2", "Plantain Chips", "Snacks", "5", "10.00", "0.1", "45.00", "20.00", "25.00",
    ]  # fmt: skip
    assert b"\r\n" in data  # RFC 4180 line ends
    assert EXPORTERS["csv"].extension_for(report) == "csv" and EXPORTERS["csv"].mime_for(report) == "text/csv"
    assert (
        file_name(report, "csv")
        == f"sales_lines_20250101-20250331_{report.generated_at:%Y%m%d-%H%M%S}UTC.csv"
    )


def test_several_tables_are_a_zip_of_csvs_with_a_summary(
    engine: Engine, settings: Settings, tiny_id: int
) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny_id, "sales_summary", *Q1)
    data = csv_bytes(report)
    assert EXPORTERS["csv"].extension_for(report) == "zip"
    assert EXPORTERS["csv"].mime_for(report) == "application/zip"
    assert file_name(report, "csv").endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        assert bundle.testzip() is None
        names = bundle.namelist()
        assert names == [SUMMARY_NAME] + [f"sales_summary_{name}.csv" for name in report.tables]
        for name, table in report.tables.items():
            assert_table(parse(bundle.read(f"sales_summary_{name}.csv")), table)
        summary = parse(bundle.read(SUMMARY_NAME))
    assert summary[0] == ["section", "key", "label", "value"]
    by_key = {(r[0], r[1]): r[3] for r in summary[1:]}
    assert by_key[("report", "title")] == report.title
    assert by_key[("report", "business")] == "Café Müller €"
    assert by_key[("parameter", "start")] == "2025-01-01"
    assert Decimal(by_key[("kpi", "revenue")]) == Decimal("1585.00")
    for kpi in report.kpis:
        assert_cell(by_key[("kpi", kpi.key)], kpi.value, kpi.kind)
    for name, table in report.tables.items():
        assert int(by_key[("table", name)]) == table.row_count


def test_empty_period_says_no_data(engine: Engine, settings: Settings, tiny_id: int) -> None:
    empty = ("start=2030-01-01", "end=2030-01-31")
    lines = run_report(engine, settings.snapshot_dir, tiny_id, "sales_lines", *empty)
    assert_table(parse(csv_bytes(lines)), lines.tables["lines"], empty_report=True)
    profit = run_report(engine, settings.snapshot_dir, tiny_id, "gross_profit", *empty)
    assert profit.is_empty and len(profit.tables) > 1
    with zipfile.ZipFile(io.BytesIO(csv_bytes(profit))) as bundle:
        assert [NO_DATA] in [r[3:] for r in parse(bundle.read(SUMMARY_NAME))]
        for name, table in profit.tables.items():
            assert_table(parse(bundle.read(f"gross_profit_{name}.csv")), table, empty_report=True)


def test_injection_strings_from_imported_names_are_neutralised(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "tiny"
    shutil.copytree(TINY_DIR, folder)
    customers = (folder / "customers.csv").read_text(encoding="utf-8").splitlines()
    sales = (folder / "sales.csv").read_text(encoding="utf-8").splitlines()
    for i, name in enumerate(INJECTIONS):
        code = f"X{i}"
        customers.append(f'{code},"{name}",retail,North,100,x{i}@example.com,true')
        # sold below cost: a negative profit, which must stay a number
        sales.append(f"Z{i},2025-02-{10 + i},{code},P2,2,3,4,0,completed,ana,M")
    (folder / "customers.csv").write_text("\n".join(customers) + "\n", encoding="utf-8")
    (folder / "sales.csv").write_text("\n".join(sales) + "\n", encoding="utf-8")
    business = new_business(engine, '=HYPERLINK("x")')
    insert_tiny(engine, business.id, folder)

    report = run_report(engine, settings.snapshot_dir, business.id, "sales_lines", *Q1)
    rows = parse(csv_bytes(report))
    header = rows[0]
    by_order = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:]}
    for i, name in enumerate(INJECTIONS):
        line = by_order[f"Z{i}"]
        assert line["customer_name"] == "'" + name
        assert (line["net"], line["cost"], line["profit"]) == ("6.00", "8.00", "-2.00")
    assert_table(rows, report.tables["lines"])

    bundle_report = run_report(engine, settings.snapshot_dir, business.id, "sales_summary", *Q1)
    with zipfile.ZipFile(io.BytesIO(csv_bytes(bundle_report))) as bundle:
        summary = {(r[0], r[1]): r[3] for r in parse(bundle.read(SUMMARY_NAME))[1:]}
        by_customer = parse(bundle.read("sales_summary_by_customer.csv"))
    assert summary[("report", "business")] == '\'=HYPERLINK("x")'
    names = {r[by_customer[0].index("customer_name")] for r in by_customer[1:]}
    assert {"'" + n for n in INJECTIONS} <= names


# --- cells ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [(s, "'" + s) for s in INJECTIONS]
    + [("a=b", "a=b"), ("", ""), ("1-2", "1-2"), ("Café", "Café"), (" =x", " =x"), ("'=x", "'=x")],
)
def test_neutralise(text: str, expected: str) -> None:
    assert neutralise(text) == expected


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (Decimal("0.125"), "money", "0.12"),
        (Decimal("0.135"), "money", "0.14"),
        (Decimal("-0.125"), "money", "-0.12"),
        (Decimal("-0.001"), "money", "0.00"),
        (Decimal("1234567.5"), "money", "1234567.50"),
        (2.5, "money", "2.50"),
        (-1.0, "money", "-1.00"),
        (7, "money", "7.00"),
        (None, "money", ""),
        (float("nan"), "money", ""),
        (pd.NA, "money", ""),
        (3.0, "quantity", 3),
        (2.5, "quantity", 2.5),
        (12, "int", 12),
        (12.0, "int", 12),
        (0.125, "pct", 0.125),
        (None, "pct", ""),
        (dt.date(2025, 1, 31), "date", "2025-01-31"),
        (pd.Timestamp("2025-01-31"), "date", "2025-01-31"),
        (dt.datetime(2025, 1, 31, 8, 5, 1), "datetime", "2025-01-31 08:05:01"),
        (pd.NaT, "datetime", ""),
        ("2025-01", "month", "2025-01"),
        ("=1+2", "text", "'=1+2"),
        (-5, "text", -5),
        (True, "text", "true"),
    ],
)
def test_csv_cell(value: Any, kind: ColumnKind, expected: Any) -> None:
    assert csv_cell(value, kind) == expected


MIXED: dict[ColumnKind, list[list[Any]]] = {
    "money": [
        [1.005, 2.675, -0.001, 10.0],
        [Decimal("0.125"), 1.5, None],
        [float("nan"), 1.0],
        [float("inf")],
        ["x", 1.0],
    ],
    "int": [[1, 2, 3], [1.0, None], [True, 2]],
    "quantity": [[1.0, 2.0], [1.5, 2.0], [1.0, float("nan")], [Decimal("2"), 3]],
    "pct": [[0.1, 0.25], [0.1, None], [float("nan")], [Decimal("0.5")]],
    "date": [[dt.date(2025, 1, 1)], [dt.datetime(2025, 1, 1, 5), None], [pd.Timestamp("2025-02-01")]],
    "datetime": [[dt.datetime(2025, 1, 1, 5)], [pd.Timestamp("2025-02-01 10:00"), pd.NaT]],
    "text": [["a", "b"], ["a", None, "=x"], ["\rx"], ["ok", float("nan")], [1, "-x"], ["a\n=b"]],
}


@pytest.mark.parametrize(("kind", "values"), [(k, v) for k, vs in MIXED.items() for v in vs])
def test_column_fast_paths_agree_with_cells(kind: ColumnKind, values: list[Any]) -> None:
    def written(cells: Any) -> str:  # what the csv module makes of them (None, dates, floats as they are)
        out = io.StringIO()
        csv.writer(out).writerow(cells)
        return out.getvalue()

    assert written(csv_column(kind)(tuple(values))) == written([csv_cell(v, kind) for v in values])


def hand_report(tables: list[Table], kpis: list[Kpi] | None = None) -> Report:
    return Report(
        "hand", "Hand", "b", "B", "EUR", ReportParams(), dt.datetime(2025, 4, 2, 8, 30, tzinfo=dt.UTC), None,
        kpis or [], {t.name: t for t in tables},
    )  # fmt: skip


def test_streamed_table_goes_into_the_zip_batch_by_batch_on_a_pipe() -> None:
    calls: list[int] = []

    def stream(keys: Any) -> Any:
        for start in range(0, 10, 3):
            calls.append(start)
            yield [(f"r{i}", i * 1.005) for i in range(start, min(start + 3, 10))]

    cols = [Column("name", "Name"), Column("amount", "Amount", "money")]
    big = Table("big", "Big", cols, pd.DataFrame(columns=["name", "amount"]), stream=stream, stream_rows=10)
    small = Table("small", "Small", cols, pd.DataFrame({"name": ["x"], "amount": [Decimal("1.5")]}))

    class Pipe(io.RawIOBase):
        """A write-only, unseekable stream (like stdout into a pipe)."""

        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            self.data += bytes(b)
            return len(b)

    pipe = Pipe()
    write_csv(hand_report([big, small]), pipe)  # type: ignore[arg-type]
    assert calls == [0, 3, 6, 9]
    with zipfile.ZipFile(io.BytesIO(bytes(pipe.data))) as bundle:
        rows = parse(bundle.read("hand_big.csv"))
        assert rows[0] == ["name", "amount"] and len(rows) == 11
        assert rows[2] == [
            "r1",
            "1.00",
        ]  # 1.005 is stored as 1.00499999...: the float's exact value rounds down
        assert parse(bundle.read("hand_small.csv"))[1] == ["x", "1.50"]


def test_report_without_tables_writes_its_summary() -> None:
    data = io.BytesIO()
    write_csv(hand_report([], [Kpi("n", "N", 3, "int")]), data)
    rows = parse(data.getvalue())
    assert rows[0] == ["section", "key", "label", "value"] and ["kpi", "n", "N", "3"] in rows


# --- the command line -------------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        env=os.environ.copy(),
        timeout=180,
    )


def test_cli_writes_csv_and_zip_to_stdout(cli_env: Settings, engine: Engine, tiny_id: int) -> None:
    code = business_of(engine, tiny_id).code
    proc = cli(
        "report",
        "sales_lines",
        "--business",
        code,
        "--param",
        Q1[0],
        "--param",
        Q1[1],
        "--format",
        "csv",
        "--out",
        "-",
    )
    assert proc.returncode == 0, proc.stderr
    rows = parse(proc.stdout)
    assert rows[0][0] == "order_id" and len(rows) == 9 and rows[2][16] == "45.00"
    proc = cli(
        "report",
        "gross_profit",
        "--business",
        code,
        "--param",
        Q1[0],
        "--param",
        Q1[1],
        "--format",
        "csv",
        "--out",
        "-",
    )
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(io.BytesIO(proc.stdout)) as bundle:  # written through a pipe: no seeking
        assert bundle.testzip() is None and SUMMARY_NAME in bundle.namelist()


def business_of(engine: Engine, business_id: int) -> Business:
    with make_sessionmaker(engine)() as session:
        business = session.get(Business, business_id)
        assert business is not None
        return business


def test_zip_entries_carry_the_generation_time_in_the_business_zone(
    engine: Engine, settings: Settings, tiny_id: int
) -> None:
    """Not the ZIP format's 1980-01-01: the report's generated_at as the business's wall-clock time."""
    report = run_report(engine, settings.snapshot_dir, tiny_id, "sales_summary", *Q1)
    report = dataclasses.replace(
        report, generated_at=dt.datetime(2025, 4, 2, 8, 30, 16, tzinfo=dt.UTC), timezone="Europe/Berlin"
    )
    with zipfile.ZipFile(io.BytesIO(csv_bytes(report))) as bundle:
        times = {info.date_time for info in bundle.infolist()}
    assert times == {(2025, 4, 2, 10, 30, 16)}  # CEST, UTC+2 (ZIP times have two-second steps)


def test_write_zip_and_write_table_csv(engine: Engine, settings: Settings, tiny_id: int) -> None:
    lines = run_report(engine, settings.snapshot_dir, tiny_id, "sales_lines", *Q1)
    out = io.BytesIO()
    write_zip(lines, out)  # one table, yet a ZIP when asked
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as bundle:
        assert bundle.namelist() == [SUMMARY_NAME, "sales_lines_lines.csv"]
        assert bundle.read("sales_lines_lines.csv") == csv_bytes(lines)
    summary = run_report(engine, settings.snapshot_dir, tiny_id, "sales_summary", *Q1)
    one = io.BytesIO()
    write_table_csv(summary, "by_region", one)
    assert_table(parse(one.getvalue()), summary.tables["by_region"])
    with zipfile.ZipFile(io.BytesIO(csv_bytes(summary))) as bundle:
        assert bundle.read("sales_summary_by_region.csv") == one.getvalue()
    with pytest.raises(ParamError, match="no table 'nope'; its tables are: "):
        write_table_csv(summary, "nope", io.BytesIO())


def test_codes_are_written_as_their_labels(engine: Engine, settings: Settings, tiny_id: int) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny_id, "kpi_dashboard", *Q1)
    with zipfile.ZipFile(io.BytesIO(csv_bytes(report))) as bundle:
        methods = parse(bundle.read("kpi_dashboard_by_payment_method.csv"))
        types = parse(bundle.read("kpi_dashboard_by_customer_type.csv"))
    assert sorted(r[0] for r in methods[1:]) == ["Bank transfer", "Card", "Cash"]
    assert sorted(r[0] for r in types[1:]) == ["Retail", "Wholesale"]
    assert methods[0][0] == "method"  # the header keeps the keys scripts use


def test_table_file_name_says_which_table_and_utc(engine: Engine, settings: Settings, tiny_id: int) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny_id, "sales_summary", *Q1)
    stamp = report.generated_at.astimezone(dt.UTC)
    assert table_file_name(report, "by_region") == (
        f"sales_summary_by_region_20250101-20250331_{stamp:%Y%m%d-%H%M%S}UTC.csv"
    )
