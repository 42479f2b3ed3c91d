"""Report -> file: the explicit table from format to writer, and the file name rule.

`EXPORTERS[fmt].write(report, out)` streams the file into a binary stream; the same bytes serve
the download button, the run file (email attachment) and the CLI. Writers are imported on first
use ("module:function"), so a CSV export does not pay for matplotlib (PDF) or XlsxWriter.
Adding a format = one row in EXPORTERS.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from analytics.report import Report

Writer = Callable[[Report, IO[bytes]], None]


@dataclass(frozen=True)
class Exporter:
    """One file format: its file extension and MIME type, and the writer ("module:function" or a callable).

    `bundle` is the (extension, MIME type) used instead when the report has more than one table
    (CSV writes a ZIP of CSVs then): ask `extension_for(report)` and `mime_for(report)`.
    """

    fmt: str
    extension: str
    mime: str
    writer: str | Writer
    bundle: tuple[str, str] | None = None

    def write(self, report: Report, out: IO[bytes]) -> None:
        """Write `report` in this format to the binary stream `out` (left open)."""
        writer = self.writer
        if isinstance(writer, str):
            module, _, name = writer.partition(":")
            writer = getattr(importlib.import_module(module), name)
        assert callable(writer)
        writer(report, out)

    def extension_for(self, report: Report) -> str:
        return self.bundle[0] if self.bundle and len(report.tables) > 1 else self.extension

    def mime_for(self, report: Report) -> str:
        return self.bundle[1] if self.bundle and len(report.tables) > 1 else self.mime


EXPORTERS: dict[str, Exporter] = {
    "csv": Exporter(
        "csv", "csv", "text/csv", "exporters.csv_export:write_csv", bundle=("zip", "application/zip")
    ),
    "json": Exporter("json", "json", "application/json", "exporters.json_export:write_json"),
    "pdf": Exporter("pdf", "pdf", "application/pdf", "exporters.pdf_export:write_pdf"),
    "xlsx": Exporter(
        "xlsx",
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "exporters.xlsx_export:write_xlsx",
    ),
}


def file_name(report: Report, fmt: str) -> str:
    """`{slug}_{period}_{YYYYmmdd-HHMMSS}UTC.{ext}`: period as 20250101-20250331 (or "all"), time =
    generated_at in UTC, and the name says so (inside, the files show the business's time zone)."""
    period = report.period.slug() if report.period else "all"
    extension = EXPORTERS[fmt].extension_for(report)
    generated = report.generated_at
    generated = generated.astimezone(dt.UTC) if generated.tzinfo else generated  # naive = UTC
    return f"{report.slug}_{period}_{generated:%Y%m%d-%H%M%S}UTC.{extension}"


def table_file_name(report: Report, table: str) -> str:
    """One table's CSV: `{slug}_{table}_{period}_{YYYYmmdd-HHMMSS}UTC.csv` (as the API names it)."""
    stem = file_name(report, "csv").rsplit(".", 1)[0].removeprefix(f"{report.slug}_")
    return f"{report.slug}_{table}_{stem}.csv"
