"""Report -> CSV: one table is one CSV file; several tables are a ZIP of one CSV per table plus summary.csv.

`write_csv` is the CSV format of EXPORTERS (the download button, run files, email attachments);
`write_zip` writes the ZIP whatever the number of tables and `write_table_csv` one table of a report
as CSV (the command line's `--out x.zip` and `--table NAME`).

Every CSV is UTF-8 with a byte-order mark (so Excel shows accents, € and ₱ correctly), comma
separated, CRLF line ends (RFC 4180), with a header row of column keys (the names scripts and the
`columns.<table>=` parameter use). Cells are written as `exporters.cells` describes: money
"1234.50", pct as fractions, ISO dates, formula-like text neutralised. Rows are read through
`Table.batches()` and written batch by batch, so a streamed table of millions of lines never sits
in memory, also inside a ZIP entry.

In the ZIP, table `t` of report `slug` is `{slug}_{t}.csv`; `summary.csv` holds the report's
title, business, period, generation time, parameters, KPIs and notes (columns section, key,
label, value). A report whose tables are all empty still writes each table's header, followed by
one row saying "No data for this period". Each entry carries the report's generation time as the
business's wall-clock time (ZIP times have no zone), not the format's 1980-01-01 default. Columns of
codes hold their labels ("Bank transfer"), as every file a person opens does.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

from analytics.report import ParamError, Report, Table
from core.clock import in_zone
from exporters.cells import NO_DATA, columns_of, csv_cell, csv_column, neutralise

SUMMARY_NAME = "summary.csv"
# A ZIP entry whose size is not known in advance needs ZIP64 headers once it may pass 2 GiB.
_ZIP64_ROWS = 1_000_000


def entry_name(report: Report, table: Table) -> str:
    """The ZIP entry holding `table` of `report`."""
    return f"{report.slug}_{table.name}.csv"


def is_bundle(report: Report) -> bool:
    """True when the report is written as a ZIP (it has more than one table)."""
    return len(report.tables) > 1


def write_csv(report: Report, out: IO[bytes]) -> None:
    """Write the report as one CSV (one table, or none: then the summary) or a ZIP of CSVs."""
    tables = list(report.tables.values())
    if is_bundle(report):
        write_zip(report, out)
        return
    with _text(out) as handle:
        if tables:
            write_table(handle, tables[0], empty_report=report.is_empty)
        else:
            write_summary(handle, report)


def write_zip(report: Report, out: IO[bytes]) -> None:
    """Write the report as a ZIP: summary.csv and one CSV per table (however many tables)."""
    when = in_zone(report.generated_at, report.timezone).timetuple()[:6]

    def entry(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=when)
        info.compress_type = zipfile.ZIP_DEFLATED  # zlib's default level, 6
        return info

    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as bundle:
        with bundle.open(entry(SUMMARY_NAME), "w") as raw, _text(raw) as handle:
            write_summary(handle, report)
        for table in report.tables.values():
            large = table.row_count >= _ZIP64_ROWS
            with (
                bundle.open(entry(entry_name(report, table)), "w", force_zip64=large) as raw,
                _text(raw) as handle,
            ):
                write_table(handle, table, empty_report=report.is_empty)


def write_table_csv(report: Report, name: str, out: IO[bytes]) -> None:
    """Write table `name` of the report as one CSV file (ParamError naming the tables if it has none such)."""
    table = report.tables.get(name)
    if table is None:
        raise ParamError(
            f"Report {report.slug!r} has no table {name!r}; its tables are: {', '.join(report.tables)}."
        )
    with _text(out) as handle:
        write_table(handle, table, empty_report=report.is_empty)


@contextmanager
def _text(raw: IO[bytes]) -> Iterator[IO[str]]:
    """A text stream over `raw` that starts with the UTF-8 byte-order mark and leaves `raw` open."""
    raw.write(codecs.BOM_UTF8)
    handle = io.TextIOWrapper(raw, encoding="utf-8", newline="")  # type: ignore[type-var]
    try:
        yield handle
    finally:
        handle.flush()
        handle.detach()


def write_table(handle: IO[str], table: Table, *, empty_report: bool = False) -> int:
    """Header plus every row of `table`, converted a column of a batch at a time; returns the rows."""
    writer = csv.writer(handle)
    writer.writerow([c.key for c in table.columns])
    converters = [csv_column(c.kind, c.key) for c in table.columns]
    rows = 0
    for batch in table.batches():
        if not batch:
            continue
        columns: list[Sequence[Any]] = [
            convert(values) for convert, values in zip(converters, columns_of(batch), strict=True)
        ]
        writer.writerows(zip(*columns, strict=True))
        rows += len(batch)
    if empty_report and rows == 0:
        writer.writerow([NO_DATA])
    return rows


def summary_rows(report: Report) -> list[list[Any]]:
    """The summary sheet as rows of section, key, label, value."""
    rows: list[list[Any]] = [
        ["report", "report", "Report", report.slug],
        ["report", "title", "Title", report.title],
        ["report", "business", "Business", report.business_name or report.business_code],
        ["report", "business_code", "Business code", report.business_code],
        ["report", "period", "Period", report.period_label()],
        ["report", "generated_at", "Generated at", report.generated_at.isoformat(sep=" ")],
        ["report", "currency", "Currency", report.currency],
    ]
    for key, value in report.parameters.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                rows.append(["parameter", f"{key}.{sub}", f"{key}.{sub}", _joined(inner)])
        else:
            rows.append(["parameter", key, key, _joined(value)])
    for kpi in report.kpis:
        rows.append(["kpi", kpi.key, kpi.label, csv_cell(kpi.value, kpi.kind)])
    for name, table in report.tables.items():
        rows.append(["table", name, table.title, table.row_count])
    if report.is_empty:
        rows.append(["note", "no_data", "Note", NO_DATA])
    for i, note in enumerate(report.notes, start=1):
        rows.append(["note", f"note_{i}", "Note", note])
    return [[neutralise(v) if isinstance(v, str) else v for v in row] for row in rows]


def _joined(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def write_summary(handle: IO[str], report: Report) -> None:
    writer = csv.writer(handle)
    writer.writerow(["section", "key", "label", "value"])
    writer.writerows(summary_rows(report))
