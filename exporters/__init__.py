"""Report -> file: the explicit table from format to writer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from analytics.report import Report
from exporters.json_export import write_json


@dataclass(frozen=True)
class Exporter:
    fmt: str
    extension: str
    mime: str
    write: Callable[[Report, IO[bytes]], None]


EXPORTERS: dict[str, Exporter] = {
    "json": Exporter("json", "json", "application/json", write_json),
}
