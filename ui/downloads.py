"""Download buttons for a report in every registered export format, generated only when clicked."""

from __future__ import annotations

import io
from collections.abc import Callable

import streamlit as st

from analytics.report import Report
from exporters import EXPORTERS, Exporter
from exporters import file_name as export_file_name

ORDER = ("csv", "xlsx", "pdf", "json")
LABELS = {"csv": "CSV", "xlsx": "Excel", "pdf": "PDF", "json": "JSON"}


def download_buttons(report: Report, key: str) -> None:
    """A row of buttons (CSV, Excel, PDF, JSON — whatever EXPORTERS holds) for `report`.

    The file is written by a callable Streamlit runs on click (deferred download), so a page
    does not build four files on every rerun; the click does not rerun the page either.
    """
    formats = [f for f in ORDER if f in EXPORTERS] + [f for f in EXPORTERS if f not in ORDER]
    if not formats:
        return
    cols = st.columns(len(formats) + 2)
    for col, fmt in zip(cols, formats, strict=False):
        exporter = EXPORTERS[fmt]
        bundled = exporter.extension_for(report) != exporter.extension
        col.download_button(
            LABELS.get(fmt, fmt.upper()) + (f" (.{exporter.extension_for(report)})" if bundled else ""),
            help=f"One {LABELS.get(fmt, fmt)} file per table, packed in one file" if bundled else None,
            data=writer(report, exporter),
            file_name=file_name(report, exporter),
            mime=exporter.mime_for(report),
            key=f"{key}_dl_{fmt}",
            icon=":material/download:",
            on_click="ignore",
            width="stretch",
        )


def file_name(report: Report, exporter: Exporter) -> str:
    """The exporters' file name for the report ({slug}_{period}_{timestamp}.{ext})."""
    return export_file_name(report, exporter.fmt)


def writer(report: Report, exporter: Exporter) -> Callable[[], bytes]:
    """A no-argument callable that writes the file (run by Streamlit, off the script thread)."""

    def write() -> bytes:
        buffer = io.BytesIO()
        exporter.write(report, buffer)
        return buffer.getvalue()

    return write
