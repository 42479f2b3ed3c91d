"""One table of a stored report file: read from the run's JSON document or CSV file, never held whole.

The JSON document is read line by line in the layout `exporters.json_export.write_json` writes
(each table's header on a line indented four spaces, then one record per line, then its closing
bracket), so a table of a million lines streams in constant memory. The CSV of a report with
several tables is a ZIP holding `{slug}_{table}.csv` (exporters.csv_export); a report with one
table is that table's CSV. tests/api/test_tables.py checks both against the writers for every report.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import IO

import orjson

from core.errors import NotFound

TABLES_LINE = b'  "tables": {'
CHUNK = 1 << 16


def _missing(slug: str, table: str, names: list[str]) -> NotFound:
    return NotFound(f"Report {slug!r} has no table {table!r}; its tables are: {', '.join(names) or 'none'}.")


def json_records(handle: IO[bytes], slug: str, table: str) -> Iterator[bytes]:
    """The records of `table` in the JSON document open in `handle`, one JSON object (bytes) each.

    Finds the table before returning (NotFound naming the report's tables when it has none such);
    the records are then read as they are consumed."""
    for line in handle:
        if line.rstrip(b"\r\n") == TABLES_LINE:
            break
    else:
        raise ValueError("not a report's JSON document")
    names: list[str] = []
    for line in handle:
        if not line.startswith(b"    ") or line.startswith(b"     "):
            break  # "  }," closes the tables
        key, _, opening = line.strip().rstrip(b",").rpartition(b": ")
        name = orjson.loads(key)
        names.append(name)
        if opening == b"[]":  # an empty table
            if name == table:
                return iter(())
            continue
        if name == table:
            return _records(handle)
        for line in handle:
            if line.startswith(b"    ]"):
                break
    raise _missing(slug, table, names)


def _records(handle: IO[bytes]) -> Iterator[bytes]:
    for line in handle:
        if line.startswith(b"    ]"):
            return
        yield line.strip().rstrip(b",")


def json_array(records: Iterator[bytes], handle: IO[bytes]) -> Iterator[bytes]:
    """`records` as one JSON array, one record per line; closes `handle` at the end."""
    try:
        first = True
        for record in records:
            yield (b"[\n" if first else b",\n") + record
            first = False
        yield b"[]\n" if first else b"\n]\n"
    finally:
        handle.close()


def csv_entry(handle: IO[bytes], slug: str, table: str) -> tuple[Iterator[bytes], int] | None:
    """When `handle` holds a ZIP of CSVs: the CSV of `table` (its bytes as read, and its size), or
    NotFound naming the report's tables. None when it is one plain CSV (a report of one table)."""
    if not zipfile.is_zipfile(handle):
        handle.seek(0)
        return None
    handle.seek(0)
    bundle = zipfile.ZipFile(handle)
    prefix = f"{slug}_"
    names = [n.removeprefix(prefix).removesuffix(".csv") for n in bundle.namelist() if n.startswith(prefix)]
    entry = f"{slug}_{table}.csv"
    if table not in names:
        bundle.close()
        raise _missing(slug, table, names)
    size = bundle.getinfo(entry).file_size
    return _entry_chunks(bundle, entry, handle), size


def _entry_chunks(bundle: zipfile.ZipFile, entry: str, handle: IO[bytes]) -> Iterator[bytes]:
    try:
        with bundle.open(entry) as member:
            while chunk := member.read(CHUNK):
                yield chunk
    finally:
        bundle.close()
        handle.close()


def file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    """The file's bytes a chunk at a time; closes `handle` at the end."""
    try:
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()
