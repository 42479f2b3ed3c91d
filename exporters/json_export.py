"""Report -> JSON document (the public interface scripts and Power BI read; see README)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import IO, Any

import orjson
import pandas as pd

from analytics.money import to_cents
from analytics.report import Column, ColumnKind, Report


def json_value(value: Any, kind: ColumnKind) -> Any:
    """One cell as JSON: money rounded half-even to cents, fractions as floats, ISO dates."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if kind == "money":
        return float(to_cents(Decimal(value)))
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if kind == "int":
        return int(value)
    if kind in ("pct", "number"):
        return float(value)
    if kind == "quantity":
        number = float(value)
        return int(number) if number.is_integer() else number
    if hasattr(value, "item"):
        return value.item()
    return value


def _record(columns: list[Column], row: tuple[Any, ...]) -> dict[str, Any]:
    return {c.key: json_value(v, c.kind) for c, v in zip(columns, row, strict=True)}


def report_document(report: Report) -> dict[str, Any]:
    """The JSON document: report, parameters, generated_at, kpis, tables (+ title, business, notes)."""
    tables = {}
    for name, table in report.tables.items():
        keys = [c.key for c in table.columns]
        tables[name] = [_record(table.columns, row) for row in table.frame[keys].itertuples(index=False)]
    return {
        "report": report.slug,
        "title": report.title,
        "business": report.business_code,
        "currency": report.currency,
        "parameters": report.parameters,
        "generated_at": report.generated_at.isoformat(),
        "kpis": {k.key: json_value(k.value, k.kind) for k in report.kpis},
        "tables": tables,
        "notes": report.notes,
    }


def write_json(report: Report, out: IO[bytes]) -> None:
    """Write the report's JSON document to a binary stream."""
    out.write(orjson.dumps(report_document(report), option=orjson.OPT_INDENT_2))
