"""The JSON export, read back with json.loads and compared with the Report and with report_document."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine

from analytics.report import Column, ColumnKind, Kpi, Report, ReportParams, Table
from core.settings import Settings
from exporters import EXPORTERS
from exporters.cells import NO_DATA
from exporters.json_export import json_column, json_value, report_document, write_json
from reports.registry import REGISTRY
from tests.conftest import new_business
from tests.factories import insert_tiny, money
from tests.reports.reporting import run_report

Q1 = ("start=2025-01-01", "end=2025-03-31")
TOP = ["report", "title", "business", "currency", "parameters", "generated_at", "kpis", "tables", "notes"]


@pytest.fixture(scope="module")
def tiny_id(engine: Engine) -> int:
    business = new_business(engine, "Piso ₱1 Sari-Sari Store")
    insert_tiny(engine, business.id)
    return business.id


def loads(report: Report) -> Any:
    out = io.BytesIO()
    EXPORTERS["json"].write(report, out)
    return json.loads(out.getvalue().decode("utf-8"))


@pytest.mark.parametrize("slug", list(REGISTRY))
def test_streamed_document_equals_report_document(
    engine: Engine, settings: Settings, tiny_id: int, slug: str
) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny_id, slug, *Q1)
    doc = loads(report)
    assert list(doc) == TOP
    assert doc == json.loads(json.dumps(report_document(report)))
    for name, table in report.tables.items():
        assert len(doc["tables"][name]) == table.row_count
        assert all(list(r) == [c.key for c in table.columns] for r in doc["tables"][name])


def test_sales_lines_records_to_the_cent(engine: Engine, settings: Settings, tiny_id: int) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny_id, "sales_lines", *Q1)
    doc = loads(report)
    assert doc["report"] == "sales_lines" and doc["currency"] == "EUR"
    assert doc["parameters"] == {"start": "2025-01-01", "end": "2025-03-31", "tz": "UTC"}
    assert doc["kpis"]["revenue"] == 1585.0 and doc["kpis"]["lines"] == 8 and doc["kpis"]["quantity"] == 120
    line = doc["tables"]["lines"][1]
    assert line == {
        "order_id": "O1",
        "order_date": "2025-01-05",
        "status": "completed",
        "customer_code": "A1",
        "customer_name": "Alma Café",
        "customer_type": "retail",
        "region": "North",
        "storefront_code": "M",
        "storefront_name": "Main Street",
        "sales_rep": "ana",
        "sku": "P2",
        "product_name": "Plantain Chips",
        "category": "Snacks",
        "quantity": 5,
        "unit_price": 10.0,
        "discount": 0.1,
        "net": 45.0,
        "cost": 20.0,
        "profit": 25.0,
    }
    completed = [r for r in doc["tables"]["lines"] if r["status"] == "completed"]
    assert sum(money(r["net"]) for r in completed) == money(doc["kpis"]["revenue"])


def test_every_money_cell_matches_the_report(engine: Engine, settings: Settings, tiny_id: int) -> None:
    for slug in ("gross_profit", "credit_aging", "payments"):
        report = run_report(engine, settings.snapshot_dir, tiny_id, slug, *Q1)
        doc = loads(report)
        for name, table in report.tables.items():
            rows = [row for batch in table.batches() for row in batch]
            for record, row in zip(doc["tables"][name], rows, strict=True):
                for col, value in zip(table.columns, row, strict=True):
                    if col.kind == "money" and record[col.key] is not None:
                        assert money(record[col.key]) == money(value), (slug, name, col.key)


def test_empty_period_is_valid_and_says_no_data(engine: Engine, settings: Settings, tiny_id: int) -> None:
    report = run_report(
        engine, settings.snapshot_dir, tiny_id, "sales_lines", "start=2000-01-01", "end=2000-01-31"
    )
    doc = loads(report)
    assert doc["tables"] == {"lines": []} and doc["notes"] == [NO_DATA]
    assert report_document(report)["notes"] == [NO_DATA]


def hand_report(table: Table) -> Report:
    return Report(
        "hand", "Hand", "b", "B", "EUR", ReportParams(), dt.datetime(2025, 4, 2, tzinfo=dt.UTC), None,
        [Kpi("total", "Total", Decimal("2.675"), "money")], {table.name: table},
    )  # fmt: skip


def test_streamed_table_is_written_a_batch_at_a_time() -> None:
    pulled: list[int] = []

    def stream(keys: Any) -> Any:
        for start in range(0, 7, 2):
            pulled.append(start)
            yield [(f"n{i}", i + 0.005, dt.date(2025, 1, 1 + i)) for i in range(start, min(start + 2, 7))]

    cols = [Column("name", "Name"), Column("amount", "Amount", "money"), Column("day", "Day", "date")]
    table = Table(
        "t", "T", cols, pd.DataFrame(columns=["name", "amount", "day"]), stream=stream, stream_rows=7
    )

    class Recorder(io.BytesIO):
        def write(self, b: Any) -> int:
            writes.append(len(pulled))
            return super().write(b)

    writes: list[int] = []
    out = Recorder()
    write_json(hand_report(table), out)
    doc = json.loads(out.getvalue())
    assert pulled == [0, 2, 4, 6]
    assert writes.index(2) < writes.index(4)  # the first batch was written before the next was read
    assert [r["name"] for r in doc["tables"]["t"]] == [f"n{i}" for i in range(7)]
    assert doc["tables"]["t"][0] == {"name": "n0", "amount": 0.01, "day": "2025-01-01"}
    assert doc["kpis"] == {"total": 2.68}
    assert out.getvalue().count(b"\n") > 7  # one record a line


@pytest.mark.parametrize("name", ['},{"name":"x', '"},{"name":', "a\nb", "é € ₱"])
def test_record_boundaries_survive_any_text(name: str) -> None:
    def stream(keys: Any) -> Any:
        yield [(name, 1.0, dt.date(2025, 1, 1)), ("plain", 2.0, dt.date(2025, 1, 2))]
        yield [(name, 3.0, dt.date(2025, 1, 3))]

    cols = [Column("name", "Name"), Column("amount", "Amount", "money"), Column("day", "Day", "date")]
    table = Table(
        "t", "T", cols, pd.DataFrame(columns=["name", "amount", "day"]), stream=stream, stream_rows=3
    )
    out = io.BytesIO()
    write_json(hand_report(table), out)
    records = json.loads(out.getvalue())["tables"]["t"]
    assert [r["name"] for r in records] == [name, "plain", name]
    assert [r["amount"] for r in records] == [1.0, 2.0, 3.0]


MIXED: dict[ColumnKind, list[list[Any]]] = {
    "money": [[1.005, 2.675, -0.001], [Decimal("0.125"), 1.5, None], [float("nan"), 1.0]],
    "int": [[1, 2], [1.0, None], [True]],
    "quantity": [[1.0, 2.0], [1.5, 2.0], [Decimal("2"), 3]],
    "pct": [[0.1, 2], [Decimal("0.5"), None]],
    "date": [[dt.date(2025, 1, 1)], [pd.Timestamp("2025-02-01"), pd.NaT]],
    "datetime": [[dt.datetime(2025, 1, 1, 5, 6, 7, 8)], [pd.Timestamp("2025-02-01 10:00")]],
    "text": [["a", None], ["a", float("nan")], [1]],
}


@pytest.mark.parametrize(("kind", "values"), [(k, v) for k, vs in MIXED.items() for v in vs])
def test_column_fast_paths_agree_with_json_value(kind: ColumnKind, values: list[Any]) -> None:
    def dumped(cells: Any) -> Any:
        return json.loads(json.dumps(json.loads(_orjson(list(cells)))))

    assert dumped(json_column(kind)(tuple(values))) == dumped([json_value(v, kind) for v in values])


def _orjson(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
