"""Report -> JSON document (the public interface scripts and Power BI read; see README).

The document: {"report", "title", "business", "currency", "parameters", "generated_at", "kpis",
"tables": {name: [records]}, "notes"} (an empty report's notes say "No data for this period"). Money is rounded half-even to cents and written as a
number, pct as a fraction, dates and date-times as ISO strings, missing values as null.

`write_json` streams: it writes the fixed fields, then each table's records a batch at a time
(`Table.batches()`, one orjson call per batch, one record per line), so a streamed table of millions of lines is never held
in memory. `report_document` builds the same document as a dict, for small reports and tests.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import IO, Any

import orjson

from analytics.formatting import is_missing
from analytics.report import ColumnKind, Report, Table
from core.money import to_cents
from exporters.cells import NO_DATA, Remembered, columns_of

ColumnValues = Callable[[Sequence[Any]], Sequence[Any]]


def json_value(value: Any, kind: ColumnKind) -> Any:
    """One cell as JSON: money rounded half-even to cents, fractions as floats, ISO dates."""
    if is_missing(value):
        return None
    if kind == "money":
        if isinstance(value, float):  # round() rounds a float's exact value half-even
            return round(value, 2) + 0.0 if math.isfinite(value) else None
        amount = Decimal(value.item() if hasattr(value, "item") else value)
        return float(to_cents(amount)) + 0.0 if amount.is_finite() else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
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


# --- whole columns of a batch: the common types at C speed, anything else through json_value ------


def _types(values: Sequence[Any]) -> set[type]:
    return set(map(type, values))


def _finite(values: Sequence[Any]) -> bool:
    # NaN and infinities survive a sum (an overflow only costs the slow path).
    try:
        return math.isfinite(sum(values))
    except OverflowError:
        return False


def _exact_types(kind: ColumnKind, allowed: frozenset[type]) -> ColumnValues:
    def convert(values: Sequence[Any]) -> Sequence[Any]:
        types = _types(values)
        if types <= allowed and (float not in types or _finite(values)):
            return values  # as json_value would have them
        return [json_value(v, kind) for v in values]

    return convert


_NUMBERS = frozenset({int, float})
_TEXT: frozenset[type] = frozenset({str, type(None)})
_PASS_THROUGH: dict[str, frozenset[type]] = {
    "int": frozenset({int}),
    "pct": _NUMBERS,
    "number": _NUMBERS,
    "text": _TEXT,
    "month": _TEXT,
}


def json_column(kind: ColumnKind) -> ColumnValues:
    """The converter of one column of a batch to its JSON values; make one per column and export (money,
    quantities and dates remember the results for the values they have seen)."""
    if kind in _PASS_THROUGH:
        return _exact_types(kind, _PASS_THROUGH[kind])
    return Remembered(lambda value: json_value(value, kind)).column


def table_records(table: Table) -> Iterator[list[dict[str, Any]]]:
    """The table's rows as JSON-ready records, a batch at a time."""
    keys = [c.key for c in table.columns]
    converters = [json_column(c.kind) for c in table.columns]
    for batch in table.batches():
        if not batch:
            continue
        columns = [convert(values) for convert, values in zip(converters, columns_of(batch), strict=True)]
        yield [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def _head(report: Report) -> dict[str, Any]:
    return {
        "report": report.slug,
        "title": report.title,
        "business": report.business_code,
        "currency": report.currency,
        "parameters": report.parameters,
        "generated_at": report.generated_at.isoformat(),
        "kpis": {k.key: json_value(k.value, k.kind) for k in report.kpis},
    }


def report_document(report: Report) -> dict[str, Any]:
    """The JSON document as a dict (every row in memory: for small reports and tests)."""
    tables = {
        name: [record for batch in table_records(table) for record in batch]
        for name, table in report.tables.items()
    }
    return {**_head(report), "tables": tables, "notes": notes(report)}


def notes(report: Report) -> list[str]:
    """The report's notes; an empty report also says so."""
    return [*report.notes, NO_DATA] if report.is_empty else list(report.notes)


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def write_json(report: Report, out: IO[bytes]) -> None:
    """Write the report's JSON document to a binary stream, table rows a batch at a time."""
    out.write(b"{\n")
    for key, value in _head(report).items():
        out.write(b"  " + _dumps(key) + b": " + _dumps(value) + b",\n")
    out.write(b'  "tables": {')
    for t, (name, table) in enumerate(report.tables.items()):
        out.write((b",\n    " if t else b"\n    ") + _dumps(name) + b": [")
        sep = b"\n      "
        wrote = False
        # One orjson call per batch (a call per record costs ten times more), then a line break before
        # each record: `},{"<first key>":` can only be a record boundary, since records are flat and a
        # quote inside a string is always escaped.
        first = _dumps(table.columns[0].key) + b":" if table.columns else b""
        boundary, broken = b"},{" + first, b"},\n      {" + first
        for records in table_records(table):
            out.write(sep + orjson.dumps(records)[1:-1].replace(boundary, broken))
            sep = b",\n      "
            wrote = True
        out.write(b"\n    ]" if wrote else b"]")
    out.write(b"\n  }," if report.tables else b"},")
    out.write(b'\n  "notes": ' + _dumps(notes(report)) + b"\n}\n")
