"""Imports one CSV or XLSX file per entity into a business: validate every row, then upsert all or nothing.

A file streams through in bounded memory, whatever its size: each row is checked as it is read and,
converted to what the tables store, written to a temporary staging table on the import's own
database connection. Checks across rows (duplicate keys, one header per order, line numbers) and
the merge into the business's tables are set-based SQL over that table; the merge is one
transaction, so a file is imported whole or not at all.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import heapq
import io
import re
import warnings
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path, PurePath
from typing import IO, Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable, Select

from core import money
from core.db import bump_data_version, session_scope
from core.errors import Invalid, NotFound
from core.hashing import file_sha256
from core.models import (
    CUSTOMER_TYPES,
    PAYMENT_METHODS,
    SALE_STATUSES,
    AuditEvent,
    Business,
    Customer,
    Forecast,
    ImportBatch,
    InventoryLevel,
    Payment,
    Product,
    Sale,
    SaleLine,
    Storefront,
)
from core.settings import Settings

ENTITIES = ("customers", "products", "storefronts", "sales", "payments", "forecasts", "inventory")

MAX_REPORTED_ERRORS = 1000
BATCH_ROWS = 5000  # rows staged per executemany / COPY batch, and the progress step

# Every accepted column of each file, in SPEC order; the OPTIONAL_COLUMNS may be left out of a file.
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_code", "name", "customer_type", "region", "credit_limit", "email", "active"),
    "products": ("sku", "name", "category", "unit_cost", "unit_price", "reorder_level"),
    "storefronts": ("code", "name", "region"),
    "sales": (
        "order_id",
        "order_date",
        "customer_code",
        "sku",
        "quantity",
        "unit_price",
        "unit_cost",
        "discount",
        "status",
        "sales_rep",
        "storefront",
        "line_no",
    ),
    "payments": ("payment_id", "order_id", "paid_at", "amount", "method"),
    "forecasts": ("cycle", "customer_code", "sku", "sales_rep", "quantity", "submitted_at"),
    "inventory": ("storefront", "sku", "quantity", "as_of"),
}
OPTIONAL_COLUMNS: dict[str, frozenset[str]] = {
    "customers": frozenset({"credit_limit", "email", "active"}),
    "products": frozenset({"reorder_level"}),
    "sales": frozenset({"discount", "unit_cost", "sales_rep", "storefront", "line_no"}),
}

_NOUNS = {
    "customers": ("customer", "customers"),
    "products": ("product", "products"),
    "storefronts": ("storefront", "storefronts"),
    "sales": ("sales line", "sales lines"),
    "payments": ("payment", "payments"),
    "forecasts": ("forecast", "forecasts"),
    "inventory": ("inventory level", "inventory levels"),
}

_MONEY_PLACES = 6
_QUANTITY_PLACES = 3
_LIMIT = Decimal(10) ** 12  # amounts and quantities stay below a trillion: exact in micros and floats
_INT64_MAX = 2**63 - 1
_MAX_LINE_NO = 999_999_999
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_CYCLE_RE = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])")
_REF_FILES = {"customer": "customers", "product": "products", "storefront": "storefronts", "order": "sales"}
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_READ_BYTES = 1 << 18  # a CSV file is read in chunks of this size
_UPLOAD_SETTING = "TALLYBOARD_MAX_UPLOAD_MB"
_XLSX_SETTING = "TALLYBOARD_MAX_XLSX_EXPANDED_MB"

Cell = str | int | float | bool | Decimal | dt.datetime | dt.date | dt.time | None
Key = tuple[Any, ...]
Values = tuple[Any, ...]


@dataclass(frozen=True)
class RowError:
    """One problem: `row` as the user sees it (header = 1; 0 = the whole file), `column` "" for a whole row."""

    row: int
    column: str
    reason: str


@dataclass
class ImportResult:
    """The outcome of one file: counts of rows (sales: lines) inserted, updated and unchanged, or errors."""

    entity: str
    filename: str
    ok: bool
    rows: int
    inserted: int
    updated: int
    unchanged: int
    errors: list[RowError] = field(default_factory=list)
    message: str = ""


class _CellError(Exception):
    """A cell value that cannot be used; the text is the reason shown to the user."""


class _Errors:
    """Collects problems and counts them all; keeps the first MAX_REPORTED_ERRORS of each pass.

    Problems arrive in row order within a pass (reading the file; then the checks across rows, which
    only see rows that passed the first), so the report, sorted by row, lists the first ones.
    """

    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.total = 0
        self.bad_rows = 0
        self.counting_rows = False  # switched on once the header is accepted
        self._kept_in_pass = 0
        self._last_row = -1

    def add(self, row: int, column: str, reason: str) -> None:
        self.total += 1
        if self.counting_rows and row > 0 and row != self._last_row:
            self._last_row = row
            self.bad_rows += 1
        if self._kept_in_pass < MAX_REPORTED_ERRORS:
            self._kept_in_pass += 1
            self.items.append(RowError(row, column, reason))

    def next_pass(self) -> None:
        self._kept_in_pass = 0
        self._last_row = -1

    def report(self) -> list[RowError]:
        items = sorted(self.items, key=lambda e: e.row)[:MAX_REPORTED_ERRORS]
        left_out = self.total - len(items)
        if left_out > 0:
            items.append(RowError(0, "", f"and {left_out} more problems not listed"))
        return items


class _Progress:
    """Reports progress as rows read and checked (first half) plus the merge's steps (second half)."""

    def __init__(self, callback: Callable[[int, int], None] | None, estimate: int) -> None:
        self.callback = callback
        self.total = max(2 * estimate, 1)
        self.done = 0

    def to(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = max(total, 1)
        self.done = min(done, self.total)
        if self.callback is not None:
            self.callback(self.done, self.total)


# --- reading files -------------------------------------------------------------------------------


class _Source:
    """Rows of a file as (row number, cells); blank rows are skipped. `failure` is set if reading broke."""

    def __init__(self, rows: Iterator[tuple[int, Sequence[Cell]]], estimate: int) -> None:
        self.rows = rows
        self.estimate = estimate
        self.failure: RowError | None = None
        self.close: Callable[[], None] = lambda: None


def _size(n: int) -> str:
    mb = n / (1024 * 1024)
    return f"{mb:.1f} MB" if mb >= 0.1 else f"{n:,} bytes"


def _csv_source(stream: IO[bytes], size: int) -> _Source:
    first = stream.read(_READ_BYTES)
    # Lines in the whole file, guessed from the first chunk (for the progress bar only).
    estimate = first.count(b"\n") or first.count(b"\r")
    if len(first) < size:
        estimate = estimate * size // max(len(first), 1)
    source = _Source(iter(()), estimate)
    # A UTF-8 BOM goes before the CSV parser sees the text: it would otherwise stop a quoted first
    # header ("customer_code",...) from being read as quoted.
    source.rows = _csv_rows(_text_lines(first.removeprefix(b"\xef\xbb\xbf"), stream, source), source)
    return source


def _text_lines(first: bytes, stream: IO[bytes], source: _Source) -> Iterator[str]:
    """The file's lines with their endings (\\n, \\r\\n or \\r), read in chunks and decoded one by one,
    so memory stays bounded and a byte that is not UTF-8 is pinned to its line."""
    number = 0
    rest = b""
    chunk, first = first, b""  # hold each chunk once
    while True:
        if chunk:
            lines = (rest + chunk).splitlines(keepends=True)
            # The last piece may be cut (or a \r whose \n is in the next chunk): keep it for later.
            rest = lines.pop() if lines else b""
        else:
            lines, rest = ([rest] if rest else []), b""
        for raw in lines:
            number += 1
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                source.failure = RowError(
                    number,
                    "",
                    f"The file is not UTF-8 text (the first bad character is on row {number}); "
                    "save it as 'CSV UTF-8' and import it again.",
                )
                return
        if not chunk:
            return
        chunk = stream.read(_READ_BYTES)


def _csv_rows(lines: Iterator[str], source: _Source) -> Iterator[tuple[int, Sequence[Cell]]]:
    reader = csv.reader(lines)
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            source.failure = RowError(number + 1, "", f"Row {number + 1} cannot be read as CSV ({exc}).")
            return
        number += 1
        if number == 1 and cells and cells[0].startswith("\ufeff"):
            cells[0] = cells[0][1:]
        if any(cells):
            yield number, cells


def _xlsx_source(file: IO[bytes], expansion_limit: int | None) -> _Source | RowError:
    """Rows of the first sheet, read in openpyxl's read-only (streaming) mode."""
    not_excel = RowError(0, "", "The file is not a valid Excel (.xlsx) file.")
    try:
        with zipfile.ZipFile(file) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return not_excel
    # zipfile stops every member at its declared size, so this check bounds what openpyxl can inflate.
    if expansion_limit is not None and expanded > expansion_limit:
        return RowError(
            0,
            "",
            f"The Excel file would expand to {_size(expanded)}, over the {_size(expansion_limit)} limit "
            f"(set {_XLSX_SETTING} to raise it); split it or save it as CSV.",
        )
    file.seek(0)
    import openpyxl  # here, not at the top: a CSV import (or the command line) need not load it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(file, read_only=True, data_only=True)
    except Exception:
        return not_excel
    try:
        sheet = workbook.worksheets[0]
        estimate = int(sheet.max_row or 0)
        sheet.reset_dimensions()  # some writers store wrong dimensions; read every row there is
    except Exception:
        workbook.close()
        return not_excel
    source = _Source(iter(()), estimate)
    source.rows = _xlsx_rows(sheet, source)
    source.close = workbook.close
    return source


def _xlsx_rows(sheet: Any, source: _Source) -> Iterator[tuple[int, Sequence[Cell]]]:
    rows = sheet.iter_rows(values_only=True)
    number = 0
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cells = next(rows)
        except StopIteration:
            return
        except Exception:
            source.failure = RowError(number + 1, "", f"Row {number + 1} of the Excel file cannot be read.")
            return
        number += 1
        if any(c is not None and c != "" for c in cells):
            yield number, cells


# --- cells ---------------------------------------------------------------------------------------


def _show(value: Cell) -> str:
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _cell_text(value: Cell) -> str:
    if isinstance(value, str):
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else format(value, ".15g")
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _blank(value: Cell) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _to_decimal(value: Cell) -> Decimal:
    if isinstance(value, bool):
        raise _CellError(f"{_show(value)} is not a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise _CellError(f"{_show(value)} is not a number")
        return Decimal(format(value, ".15g"))  # what Excel shows: drops binary noise like 0.30000000000000004
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if not _NUMBER_RE.fullmatch(text):
            raise _CellError(
                f"{_show(text)} is not a number; write digits with '.' as the decimal point, e.g. 1234.50"
            )
        number = Decimal(text)
    else:
        raise _CellError(f"{_show(value)} is not a number")
    if not number.is_finite():
        raise _CellError(f"{_show(value)} is not a number")
    return number


def _too_precise(number: Decimal, places: int) -> bool:
    exponent = number.as_tuple().exponent
    return isinstance(exponent, int) and exponent < -places and number != round(number, places)


def _to_date(value: Cell) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) <= 10:
                return dt.date.fromisoformat(text)
            return dt.datetime.fromisoformat(text).date()
        except ValueError:
            pass
    raise _CellError(f"{_show(value)} is not a date; write it as YYYY-MM-DD, e.g. 2025-01-31")


def _to_datetime(value: Cell) -> dt.datetime:
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            raise _CellError(
                f"{_show(value)} is not a date and time; write it as YYYY-MM-DDTHH:MM:SS "
                "(or YYYY-MM-DD for midnight)"
            ) from None
    else:
        raise _CellError(f"{_show(value)} is not a date and time; write it as YYYY-MM-DDTHH:MM:SS")
    if moment.tzinfo is not None:
        raise _CellError(f"{_show(value)} has a time zone; give the business's local time without one")
    return moment


@functools.cache
def _max_length(table: Table, column: str) -> int:
    kind = table.c[column].type
    return kind.length if isinstance(kind, String) and kind.length else 255


_CACHE_LIMIT = 200_000  # distinct texts remembered per column: prices, dates and codes repeat a lot


def _number_or_reason(
    value: Cell, column: str, places: int, positive: bool, at_most_one: bool
) -> Decimal | str:
    try:
        number = _to_decimal(value)
    except _CellError as exc:
        return str(exc)
    if at_most_one and not 0 <= number <= 1:
        return f"{_show(value)} is outside 0–1; write a discount as a fraction, e.g. 0.1 for 10 %"
    if positive and number <= 0:
        return f"{_show(value)} is not more than 0; {column} must be more than 0"
    if number < 0:
        return f"{_show(value)} is negative; {column} must be 0 or more"
    if number >= _LIMIT:
        return f"{_show(value)} is too large; the largest accepted value is 999,999,999,999"
    if _too_precise(number, places):
        return f"{_show(value)} has more than {places} decimals"
    return number


class _Number:
    """A checked number from a cell, with the forms the tables want, worked out once per distinct text."""

    __slots__ = ("decimal", "float", "micros")

    def __init__(self, decimal: Decimal) -> None:
        self.decimal = decimal
        self.float = float(decimal)
        self.micros = money.to_micros(decimal)


_ZERO = _Number(Decimal(0))


class _Row:
    """Reads and checks the cells of one row at a time; every problem goes to the error list."""

    def __init__(self, entity: str, index: dict[str, int], errors: _Errors) -> None:
        # A column left out of the file points one past the header: a None pad added to every row.
        self.width = max(index.values(), default=-1) + 1
        self.pos = {column: index.get(column, self.width) for column in COLUMNS[entity]}
        self.errors = errors
        self.line = 0
        self.cells: list[Cell] = []
        self.ok = True
        self.cache: dict[str, dict[Cell, Any]] = {column: {} for column in COLUMNS[entity]}  # text -> value

    def load(self, number: int, cells: Sequence[Cell]) -> None:
        self.line = number
        self.ok = True
        width = self.width
        if len(cells) == width and isinstance(cells, list):
            cells.append(None)
            self.cells = cells
            return
        if len(cells) > width and any(not _blank(c) for c in cells[width:]):
            self.fail("", f"this row has values in {len(cells)} columns but the header names only {width}")
        self.cells = [*cells[:width], *([None] * (width + 1 - min(len(cells), width)))]

    def fail(self, column: str, reason: str) -> None:
        self.ok = False
        self.errors.add(self.line, column, reason)

    def raw(self, column: str) -> Cell:
        return self.cells[self.pos[column]]

    def text(self, column: str, max_length: int, *, required: bool = True) -> str:
        value = self.cells[self.pos[column]]
        text = value.strip() if type(value) is str else _cell_text(value)
        if not text:
            if required:
                self.fail(column, "is empty; a value is required")
            return ""
        if len(text) > max_length:
            self.fail(column, f"is {len(text)} characters long; at most {max_length} are allowed")
        elif "\x00" in text:
            self.fail(column, "contains a NUL character")
        return text

    def number(
        self,
        column: str,
        places: int,
        *,
        positive: bool = False,
        at_most_one: bool = False,
        required: bool = True,
    ) -> _Number | None:
        """A non-negative number (> 0 if `positive`, ≤ 1 if `at_most_one`); None when blank or bad."""
        value = self.cells[self.pos[column]]
        cache = self.cache[column]
        result: _Number | str | None = cache.get(value)
        if result is None:
            if _blank(value):
                if required:
                    self.fail(column, "is empty; a number is required")
                return None
            checked = _number_or_reason(value, column, places, positive, at_most_one)
            result = checked if isinstance(checked, str) else _Number(checked)
            if type(value) is str and len(cache) < _CACHE_LIMIT:
                cache[value] = result
        if isinstance(result, str):
            self.fail(column, result)
            return None
        return result

    def date(self, column: str) -> dt.date | None:
        value = self.cells[self.pos[column]]
        cache = self.cache[column]
        result: dt.date | str | None = cache.get(value)
        if result is None:
            if _blank(value):
                self.fail(column, "is empty; a date is required")
                return None
            try:
                result = _to_date(value)
            except _CellError as exc:
                result = str(exc)
            if type(value) is str and len(cache) < _CACHE_LIMIT:
                cache[value] = result
        if isinstance(result, str):
            self.fail(column, result)
            return None
        return result

    def datetime(self, column: str) -> dt.datetime | None:
        value = self.cells[self.pos[column]]
        if _blank(value):
            self.fail(column, "is empty; a date and time is required")
            return None
        try:
            return _to_datetime(value)
        except _CellError as exc:
            self.fail(column, str(exc))
            return None

    def cycle(self, column: str) -> str:
        value = self.raw(column)
        if isinstance(value, dt.date):  # Excel turns a typed 2025-01 into a date
            return f"{value.year:04d}-{value.month:02d}"
        text = _cell_text(value)
        if not _CYCLE_RE.fullmatch(text):
            self.fail(column, f"{_show(text)} is not a cycle; write it as YYYY-MM, e.g. 2025-01")
        return text

    def choice(self, column: str, allowed: Sequence[str]) -> str:
        value = self.cells[self.pos[column]]
        cache = self.cache[column]
        known: str | None = cache.get(value)
        if known is not None:
            return known
        text = self.text(column, 20).lower()
        if text in allowed and type(value) is str:
            cache[value] = text
        if text and text not in allowed:
            self.fail(column, f"{_show(text)} is not one of: {', '.join(allowed)}")
        return text

    def flag(self, column: str) -> bool:
        value = self.raw(column)
        if isinstance(value, bool):
            return value
        text = _cell_text(value).lower()
        if not text:
            return True
        if text not in _BOOLS:
            self.fail(column, f"{_show(text)} is not true or false (accepted: true/false, 1/0, yes/no)")
            return True
        return _BOOLS[text]

    def line_number(self, column: str) -> int | None:
        """A whole number from 1 to _MAX_LINE_NO naming a line within its order; None when blank or bad."""
        value = self.cells[self.pos[column]]
        cache = self.cache[column]
        result: int | str | None = cache.get(value)
        if result is None:
            if _blank(value):
                self.fail(column, "is empty; every line needs a line_no when the file has that column")
                return None
            try:
                number = _to_decimal(value)
            except _CellError:
                number = Decimal(-1)
            if number == number.to_integral_value() and 1 <= number <= _MAX_LINE_NO:
                result = int(number)
            else:
                result = (
                    f"{_show(value)} is not a line number; write a whole number from 1 to {_MAX_LINE_NO:,}"
                )
            if type(value) is str and len(cache) < _CACHE_LIMIT:
                cache[value] = result
        if isinstance(result, str):
            self.fail(column, result)
            return None
        return result

    def ref(self, column: str, known: dict[str, Any], what: str, *, required: bool = True) -> Any:
        """The id (or id tuple) a code refers to in this business; None when blank or unknown."""
        found = known.get(self.cells[self.pos[column]])  # type: ignore[arg-type]
        if found is not None:
            return found
        code = self.text(column, 64, required=required)
        if not code:
            return None
        found = known.get(code)
        if found is None:
            self.fail(
                column,
                f"unknown {column} {_show(code)}: there is no such {what} in this business "
                f"(import the {_REF_FILES[what]} file first)",
            )
        return found


# --- the header ----------------------------------------------------------------------------------


def _header_index(entity: str, number: int, cells: Sequence[Cell], errors: _Errors) -> dict[str, int]:
    names = [_cell_text(c).lstrip("\ufeff").strip().lower() for c in cells]
    while names and not names[-1]:
        names.pop()
    accepted = COLUMNS[entity]
    optional = OPTIONAL_COLUMNS.get(entity, frozenset())
    if len(names) == 1 and (";" in names[0] or "\t" in names[0]):
        sep = "';'" if ";" in names[0] else "tabs"
        errors.add(
            number, "", f"The columns seem to be separated by {sep}; save the file as CSV with commas."
        )
        return {}
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name:
            errors.add(number, "", f"Column {i + 1} of the header row has no name.")
        elif name in index:
            errors.add(number, name, f"Column {name!r} appears twice in the header row.")
        elif name not in accepted:
            errors.add(
                number,
                name,
                f"Unknown column {name!r}; a {entity} file has the columns {', '.join(accepted)}.",
            )
        else:
            index[name] = i
    for name in accepted:
        if name not in index and name not in optional:
            errors.add(number, name, f"The required column {name!r} is missing from the header row.")
    return index


# --- validation, one parser per entity -----------------------------------------------------------


@dataclass
class _Refs:
    """Natural key -> id maps of one business, loaded once before validation."""

    customers: dict[str, int] = field(default_factory=dict)
    products: dict[str, tuple[int, _Number]] = field(default_factory=dict)  # sku -> (id, unit cost)
    storefronts: dict[str, int] = field(default_factory=dict)
    sales: dict[str, int] = field(default_factory=dict)


def _load_refs(conn: Connection, business_id: int, entity: str) -> _Refs:
    refs = _Refs()
    if entity in ("sales", "forecasts"):
        c = _CUSTOMERS.c
        found = conn.execute(select(c.customer_code, c.id).where(c.business_id == business_id))
        refs.customers = {code: id_ for code, id_ in found}
    if entity in ("sales", "forecasts", "inventory"):
        p = _PRODUCTS.c
        costs = conn.execute(select(p.sku, p.id, p.unit_cost_micros).where(p.business_id == business_id))
        refs.products = {sku: (id_, _Number(money.from_micros(cost))) for sku, id_, cost in costs}
    if entity in ("sales", "inventory"):
        s = _STOREFRONTS.c
        found = conn.execute(select(s.code, s.id).where(s.business_id == business_id))
        refs.storefronts = {code: id_ for code, id_ in found}
    if entity == "payments":
        o = _SALES.c
        found = conn.execute(select(o.order_id, o.id).where(o.business_id == business_id))
        refs.sales = {order_id: id_ for order_id, id_ in found}
    return refs


@dataclass(frozen=True)
class _Plan:
    """How a simple entity's file maps to its table: natural key columns and value columns, by DB name."""

    table: Table
    key_columns: tuple[str, ...]
    value_columns: tuple[str, ...]
    file_key: str  # the file column named in duplicate-row errors
    parse: Callable[[_Row, _Refs], tuple[Key, Values]]
    # file column -> DB value column, for optional columns (absent: existing rows keep their value)
    optional: dict[str, str] = field(default_factory=dict)


def _table(model: Any) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_CUSTOMERS = _table(Customer)
_PRODUCTS = _table(Product)
_STOREFRONTS = _table(Storefront)
_SALES = _table(Sale)
_LINES = _table(SaleLine)
_PAYMENTS = _table(Payment)
_FORECASTS = _table(Forecast)
_INVENTORY = _table(InventoryLevel)


def _parse_customer(row: _Row, refs: _Refs) -> tuple[Key, Values]:
    code = row.text("customer_code", _max_length(_CUSTOMERS, "customer_code"))
    name = row.text("name", _max_length(_CUSTOMERS, "name"))
    kind = row.choice("customer_type", CUSTOMER_TYPES)
    region = row.text("region", _max_length(_CUSTOMERS, "region"))
    limit = row.number("credit_limit", _MONEY_PLACES, required=False)
    email = row.text("email", _max_length(_CUSTOMERS, "email"), required=False)
    if email and ("@" not in email or " " in email):
        row.fail("email", f"{_show(email)} is not an email address")
    active = row.flag("active")
    return (code,), (name, kind, region, limit.micros if limit else 0, email, active)


def _parse_product(row: _Row, refs: _Refs) -> tuple[Key, Values]:
    sku = row.text("sku", _max_length(_PRODUCTS, "sku"))
    name = row.text("name", _max_length(_PRODUCTS, "name"))
    category = row.text("category", _max_length(_PRODUCTS, "category"))
    cost = row.number("unit_cost", _MONEY_PLACES)
    price = row.number("unit_price", _MONEY_PLACES)
    reorder = row.number("reorder_level", _QUANTITY_PLACES, required=False)
    return (sku,), (
        name,
        category,
        cost.micros if cost else 0,
        price.micros if price else 0,
        reorder.float if reorder else 0.0,
    )


def _parse_storefront(row: _Row, refs: _Refs) -> tuple[Key, Values]:
    code = row.text("code", _max_length(_STOREFRONTS, "code"))
    name = row.text("name", _max_length(_STOREFRONTS, "name"))
    region = row.text("region", _max_length(_STOREFRONTS, "region"))
    return (code,), (name, region)


def _parse_payment(row: _Row, refs: _Refs) -> tuple[Key, Values]:
    payment_id = row.text("payment_id", _max_length(_PAYMENTS, "payment_id"))
    sale_id = row.ref("order_id", refs.sales, "order")
    paid_at = row.datetime("paid_at")
    amount = row.number("amount", _MONEY_PLACES)
    method = row.choice("method", PAYMENT_METHODS)
    return (payment_id,), (sale_id, paid_at, amount.micros if amount else 0, method)


def _parse_forecast(row: _Row, refs: _Refs) -> tuple[Key, Values]:
    cycle = row.cycle("cycle")
    customer_id = row.ref("customer_code", refs.customers, "customer")
    product = row.ref("sku", refs.products, "product")
    rep = row.text("sales_rep", _max_length(_FORECASTS, "sales_rep"))
    quantity = row.number("quantity", _QUANTITY_PLACES)
    submitted_at = row.datetime("submitted_at")
    product_id = product[0] if product else None
    return (cycle, customer_id, product_id, submitted_at), (rep, quantity.float if quantity else 0.0)


def _parse_inventory(row: _Row, refs: _Refs) -> tuple[Key, Values]:
    storefront_id = row.ref("storefront", refs.storefronts, "storefront")
    product = row.ref("sku", refs.products, "product")
    quantity = row.number("quantity", _QUANTITY_PLACES)
    as_of = row.date("as_of")
    product_id = product[0] if product else None
    return (storefront_id, product_id, as_of), (quantity.float if quantity else 0.0,)


_PLANS: dict[str, _Plan] = {
    "customers": _Plan(
        _CUSTOMERS,
        ("customer_code",),
        ("name", "customer_type", "region", "credit_limit_micros", "email", "active"),
        "customer_code",
        _parse_customer,
        {"credit_limit": "credit_limit_micros", "email": "email", "active": "active"},
    ),
    "products": _Plan(
        _PRODUCTS,
        ("sku",),
        ("name", "category", "unit_cost_micros", "unit_price_micros", "reorder_level"),
        "sku",
        _parse_product,
        {"reorder_level": "reorder_level"},
    ),
    "storefronts": _Plan(_STOREFRONTS, ("code",), ("name", "region"), "code", _parse_storefront),
    "payments": _Plan(
        _PAYMENTS,
        ("payment_id",),
        ("sale_id", "paid_at", "amount_micros", "method"),
        "payment_id",
        _parse_payment,
    ),
    "forecasts": _Plan(
        _FORECASTS,
        ("cycle", "customer_id", "product_id", "submitted_at"),
        ("sales_rep", "quantity"),
        "cycle",
        _parse_forecast,
    ),
    "inventory": _Plan(
        _INVENTORY,
        ("storefront_id", "product_id", "as_of"),
        ("quantity",),
        "storefront",
        _parse_inventory,
    ),
}

_KEY_WORDS = {
    "customers": "customer_code",
    "products": "sku",
    "storefronts": "code",
    "payments": "payment_id",
    "forecasts": "cycle, customer_code, sku and submitted_at",
    "inventory": "storefront, sku and as_of",
}


# --- staging: the file's valid rows in a temporary table ------------------------------------------

_STAGE = "tallyboard_import_rows"  # one row per valid file row; row_no is the file's row number
_ORDERS = "tallyboard_import_orders"  # sales files: one row per order of the file


def _temporary_table(name: str, *columns: Column[Any]) -> Table:
    """A table of this connection only (dropped when the import ends, gone if the connection closes)."""
    return Table(name, MetaData(), *columns, prefixes=["TEMPORARY"])


def _like(table: Table, *names: str) -> list[Column[Any]]:
    """Nullable copies of `table`'s columns: staged values have exactly the types they are stored as."""
    return [Column(name, table.c[name].type, nullable=True) for name in names]


def _date_text(value: dt.date) -> str:
    return value.isoformat()  # SQLAlchemy's storage format for DATE on SQLite


def _datetime_text(value: dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds")  # ... and for DATETIME


class _Stager:
    """Writes rows into a staging table in batches: executemany on SQLite's own cursor, COPY on
    PostgreSQL (psycopg), Core executemany elsewhere. Rows are plain tuples in the table's column order."""

    def __init__(self, conn: Connection, table: Table, *, convert_dates: bool) -> None:
        self.conn = conn
        self.table = table
        self.rows: list[tuple[Any, ...]] = []
        self.names = [c.name for c in table.columns]
        dialect = conn.dialect
        if dialect.name == "sqlite":
            self.mode = "sqlite"
            marks = ", ".join("?" for _ in self.names)
            self.sql = f"INSERT INTO {table.name} ({', '.join(self.names)}) VALUES ({marks})"
        elif dialect.name == "postgresql" and dialect.driver == "psycopg":
            self.mode = "copy"
            self.sql = f"COPY {table.name} ({', '.join(self.names)}) FROM STDIN"
        else:
            self.mode = "core"
        # SQLite stores dates as text; COPY reads text: both take the same ISO text, made here once.
        self.text_dates = self.mode != "core"
        self.converters: list[tuple[int, Callable[[Any], Any]]] = []
        if convert_dates and self.text_dates:
            for i, column in enumerate(table.columns):
                if isinstance(column.type, DateTime):
                    self.converters.append((i, _datetime_text))
                elif isinstance(column.type, Date):
                    self.converters.append((i, _date_text))
        self.date_forms: dict[dt.date, Any] = {}  # date -> as staged (a file has few distinct dates)

    def date_form(self, value: dt.date) -> Any:
        """`value` as this stager stores a DATE."""
        form = self.date_forms.get(value)
        if form is None:
            form = self.date_forms[value] = _date_text(value) if self.text_dates else value
        return form

    def add(self, row: tuple[Any, ...]) -> None:
        self.rows.append(row)
        if len(self.rows) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        rows = self.rows
        if not rows:
            return
        if self.converters:
            converted = []
            for row in rows:
                cells = list(row)
                for i, convert in self.converters:
                    if cells[i] is not None:
                        cells[i] = convert(cells[i])
                converted.append(tuple(cells))
            rows = converted
        if self.mode == "sqlite":
            cursor = self.conn.connection.cursor()
            try:
                cursor.executemany(self.sql, rows)
            finally:
                cursor.close()
        elif self.mode == "copy":
            raw: Any = self.conn.connection.dbapi_connection
            with raw.cursor() as cursor, cursor.copy(self.sql) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            self.conn.execute(insert(self.table), [dict(zip(self.names, row, strict=True)) for row in rows])
        self.rows.clear()  # in place: callers may hold a reference to the list


def _analyze(conn: Connection, *tables: Table) -> None:
    # PostgreSQL never analyzes temporary tables by itself; without statistics it plans the merge's
    # joins over a million staged rows as if they held a few hundred.
    if conn.dialect.name == "postgresql":
        for table in tables:
            conn.exec_driver_sql(f"ANALYZE {table.name}")


_IMPORT_CACHE_KIB = 65536  # SQLite page cache of the import's connection, main and temp database each


def _bigger_cache(conn: Connection) -> list[str]:
    """On SQLite, a bigger page cache for the import (indexes of a million new lines stay in memory);
    the statements that restore the connection's settings afterwards."""
    if conn.dialect.name != "sqlite":
        return []
    restore = []
    for schema in ("main", "temp"):
        size = conn.exec_driver_sql(f"PRAGMA {schema}.cache_size").scalar()
        restore.append(f"PRAGMA {schema}.cache_size = {int(size or 0)}")
        conn.exec_driver_sql(f"PRAGMA {schema}.cache_size = -{_IMPORT_CACHE_KIB}")
    return restore


def _drop_staging(conn: Connection, restore: Sequence[str]) -> None:
    try:
        conn.rollback()
        for name in (_ORDERS, _RUNS, _STAGE):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        conn.commit()
        for statement in restore:
            conn.exec_driver_sql(statement)
    except Exception:
        conn.invalidate()  # the pool then opens a fresh connection: nothing staged can leak


def _merged_in_row_order(*streams: Iterable[tuple[int, str, str]]) -> Iterator[tuple[int, str, str]]:
    return heapq.merge(*streams, key=lambda problem: problem[0])


# --- simple entities: one row per record, keyed by a natural key ----------------------------------


def _stage_simple(
    conn: Connection,
    entity: str,
    source: _Source,
    row: _Row,
    refs: _Refs,
    progress: _Progress,
) -> tuple[Table, int]:
    plan = _PLANS[entity]
    stage = _temporary_table(
        _STAGE,
        Column("row_no", Integer, primary_key=True, autoincrement=False),
        *_like(plan.table, *plan.key_columns, *plan.value_columns),
    )
    stage.create(conn)
    stager = _Stager(conn, stage, convert_dates=True)
    count = 0
    for number, cells in source.rows:
        row.load(number, cells)
        key, values = plan.parse(row, refs)
        count += 1
        if count % BATCH_ROWS == 0:
            progress.to(count)
        if row.ok:
            stager.add((number, *key, *values))
    stager.flush()
    return stage, count


def _check_simple(conn: Connection, entity: str, stage: Table) -> Iterator[tuple[int, str, str]]:
    """Rows repeating the natural key of an earlier row, in row order."""
    plan = _PLANS[entity]
    keys = [stage.c[k] for k in plan.key_columns]
    Index(f"ix_{_STAGE}_key", *keys).create(conn)
    _analyze(conn, stage)
    firsts = (
        select(*keys, func.min(stage.c.row_no).label("first_row"))
        .group_by(*keys)
        .having(func.count() > 1)
        .subquery()
    )
    repeated = (
        select(stage.c.row_no, firsts.c.first_row)
        .join_from(stage, firsts, and_(*(firsts.c[k.name] == k for k in keys)))
        .where(stage.c.row_no != firsts.c.first_row)
        .order_by(stage.c.row_no)
    )
    reason = "duplicate of row {}, which has the same " + _KEY_WORDS[entity]
    for number, first in conn.execute(repeated.execution_options(stream_results=True)):
        yield number, plan.file_key, reason.format(first)


def _merge_simple(conn: Connection, business_id: int, entity: str, stage: Table, absent: set[str]) -> _Counts:
    plan = _PLANS[entity]
    target = plan.table
    match = and_(target.c.business_id == business_id, *(target.c[k] == stage.c[k] for k in plan.key_columns))
    compared = [c for c in plan.value_columns if c not in absent]
    differs: ColumnElement[bool] = (
        or_(*(target.c[c].is_distinct_from(stage.c[c]) for c in compared)) if compared else false()
    )
    staged, found, changed = conn.execute(
        select(
            func.count(),
            func.count(target.c.id),
            func.coalesce(func.sum(case((and_(target.c.id.is_not(None), differs), 1), else_=0)), 0),
        ).select_from(stage.outerjoin(target, match))
    ).one()
    counts = _Counts(inserted=staged - found, updated=int(changed), unchanged=found - int(changed))
    if counts.updated:
        conn.execute(update(target).where(match, differs).values({c: stage.c[c] for c in compared}))
    if counts.inserted:
        columns = [*plan.key_columns, *plan.value_columns]
        rows = (
            select(literal(business_id, Integer), *(stage.c[c] for c in columns))
            .where(~exists().where(match))
            .order_by(stage.c.row_no)
        )
        conn.execute(insert(target).from_select(["business_id", *columns], rows))
    return counts


# --- sales: one row per order line; an order's lines become exactly the file's lines --------------
#
# Every line is staged with its order_id and line number. Consecutive lines of one order (a "run":
# the usual shape of a sales file) are checked against each other and summed as they are read, and
# staged as one row of the runs table; orders are the runs grouped by order_id. So the SQL work per
# line is one staged row and one insert, and only an order split over several runs of the file needs
# the checks across its runs in SQL.

_RUNS = "tallyboard_import_runs"
_HEADER = (  # (file column, DB column): what every line of one order must agree on
    ("order_date", "order_date"),
    ("customer_code", "customer_id"),
    ("storefront", "storefront_id"),
    ("sales_rep", "sales_rep"),
    ("status", "status"),
)
_HEADER_COLUMNS = tuple(db for _, db in _HEADER)
_LINE_VALUES = ("quantity", "unit_price_micros", "unit_cost_micros", "discount", "net_micros", "cost_micros")
_LINE_COLUMNS = ("product_id", *_LINE_VALUES)  # what a stored line is compared on


def _lines_stage() -> Table:
    return _temporary_table(
        _STAGE,
        Column("row_no", Integer, primary_key=True, autoincrement=False),
        *_like(_SALES, "order_id"),
        *_like(_LINES, "line_no", *_LINE_COLUMNS),
    )


def _runs_stage() -> Table:
    return _temporary_table(
        _RUNS,
        Column("first_row", Integer, primary_key=True, autoincrement=False),
        Column("last_row", Integer),
        *_like(_SALES, "order_id", *_HEADER_COLUMNS, "net_micros", "cost_micros"),
    )


def _orders_stage() -> Table:
    return _temporary_table(
        _ORDERS,
        *_like(_SALES, "order_id"),
        Column("first_row", Integer),
        *_like(_SALES, *_HEADER_COLUMNS, "net_micros", "cost_micros"),
        Column("runs", Integer),
        Column("sale_id", Integer, nullable=True),
        Column("state", Integer),  # 0 new order, 1 stored with the same header, 2 stored, header changed
    )


def _rounds_up(quotient: int, remainder: int, divisor: int) -> int:
    """1 when quotient + remainder/divisor rounds half-even up to quotient + 1, else 0."""
    return int(2 * remainder > divisor or (2 * remainder == divisor and quotient & 1 == 1))


_MICROS_SQUARED = money.MICROS**2  # quantity x price x (1 - discount), all in micros: two millions too many


def _header_reason(first_row: int, order_id: str) -> str:
    return (
        f"differs from row {first_row} of order {_show(order_id)}; all lines of one order "
        "must have the same order_date, customer_code, storefront, sales_rep and status"
    )


def _line_no_reason(first_row: int, order_id: str, line_no: int) -> str:
    return (
        f"duplicate of row {first_row}: order {_show(order_id)} has line_no {line_no} twice; "
        "each line of an order needs its own number"
    )


def _stage_sales(
    conn: Connection,
    source: _Source,
    row: _Row,
    refs: _Refs,
    progress: _Progress,
    numbered: bool,
) -> tuple[Table, int]:
    stage, runs = _lines_stage(), _runs_stage()
    stage.create(conn)
    runs.create(conn)
    lines_out, runs_out = _Stager(conn, stage, convert_dates=False), _Stager(conn, runs, convert_dates=False)
    date_forms = lines_out.date_forms
    pending = lines_out.rows
    order_id_length = _max_length(_SALES, "order_id")
    rep_length = _max_length(_SALES, "sales_rep")
    largest = _INT64_MAX // 1000  # leaves room for order and report totals
    million = money.MICROS
    # Fast paths: a cell text seen before is looked up in the row's caches and the reference maps
    # directly; anything else (first sight, blanks, errors) goes through the _Row methods.
    pos, cache = row.pos, row.cache
    at_order, at_date, at_customer, at_sku = (
        pos["order_id"],
        pos["order_date"],
        pos["customer_code"],
        pos["sku"],
    )
    at_quantity, at_price, at_cost, at_discount = (
        pos[c] for c in ("quantity", "unit_price", "unit_cost", "discount")
    )
    at_status, at_rep, at_storefront = pos["status"], pos["sales_rep"], pos["storefront"]
    dates, statuses, reps = cache["order_date"], cache["status"], cache["sales_rep"]
    quantities, prices, costs, discounts = (
        cache[c] for c in ("quantity", "unit_price", "unit_cost", "discount")
    )
    customers, products, storefronts = refs.customers, refs.products, refs.storefronts
    number_type, date_type = _Number, dt.date

    run_order: str | None = None  # the run being read: its order, first and last row, header, sums
    run_first = run_last = run_lines = run_net = run_cost = 0
    run_header: tuple[Any, ...] = ()
    run_numbers: dict[int, int] = {}  # line_no -> row, when the file numbers its lines
    count = 0
    for number, raw in source.rows:
        row.load(number, raw)
        cells = row.cells
        count += 1
        if count % BATCH_ROWS == 0:
            progress.to(count)
        order_id = cells[at_order]
        if (
            type(order_id) is not str
            or not order_id
            or len(order_id) > order_id_length
            or order_id != order_id.strip()
            or "\x00" in order_id
        ):
            order_id = row.text("order_id", order_id_length)
        line_no = (row.line_number("line_no") or 0) if numbered else 0  # 0: bad, and row.ok is False
        order_date = dates.get(cells[at_date])
        if type(order_date) is not date_type:
            order_date = row.date("order_date")
        customer_id = customers.get(cells[at_customer])  # type: ignore[arg-type]
        if customer_id is None:
            customer_id = row.ref("customer_code", customers, "customer")
        product = products.get(cells[at_sku])  # type: ignore[arg-type]
        if product is None:
            product = row.ref("sku", products, "product")
        quantity = quantities.get(cells[at_quantity])
        if type(quantity) is not number_type:
            quantity = row.number("quantity", _QUANTITY_PLACES, positive=True)
        unit_price = prices.get(cells[at_price])
        if type(unit_price) is not number_type:
            unit_price = row.number("unit_price", _MONEY_PLACES)
        unit_cost = costs.get(cells[at_cost])
        if type(unit_cost) is not number_type:
            unit_cost = row.number("unit_cost", _MONEY_PLACES, required=False)
        discount = discounts.get(cells[at_discount])
        if type(discount) is not number_type:
            discount = row.number("discount", _MONEY_PLACES, at_most_one=True, required=False)
        status = statuses.get(cells[at_status])
        if status is None:
            status = row.choice("status", SALE_STATUSES)
        raw_rep = cells[at_rep]
        sales_rep = reps.get(raw_rep)  # type: ignore[arg-type]
        if sales_rep is None:
            sales_rep = row.text("sales_rep", rep_length, required=False)
            good = len(sales_rep) <= rep_length and "\x00" not in sales_rep
            if good and (raw_rep is None or type(raw_rep) is str) and len(reps) < _CACHE_LIMIT:
                reps[raw_rep] = sales_rep
        storefront_id = storefronts.get(cells[at_storefront])  # type: ignore[arg-type]
        if storefront_id is None:
            storefront_id = row.ref("storefront", storefronts, "storefront", required=False)
        if not row.ok or quantity is None or unit_price is None or product is None or order_date is None:
            continue
        product_id, product_cost = product
        cost_each = product_cost if unit_cost is None else unit_cost
        if discount is None:
            discount = _ZERO
        # Exact integer arithmetic rounded half-even to micros: money.line_net_micros without Decimal.
        net, rest = divmod(quantity.micros * unit_price.micros * (million - discount.micros), _MICROS_SQUARED)
        if rest:
            net += _rounds_up(net, rest, _MICROS_SQUARED)
        cost, rest = divmod(quantity.micros * cost_each.micros, million)
        if rest:
            cost += _rounds_up(cost, rest, million)
        if max(net, cost) > largest:
            row.fail("quantity", "quantity × unit price of this line is too large")
            continue
        day = date_forms.get(order_date)
        if day is None:
            day = lines_out.date_form(order_date)
        header = (day, customer_id, storefront_id, sales_rep, status)
        if order_id == run_order:
            if header != run_header:
                for (column, _), mine, theirs in zip(_HEADER, header, run_header, strict=True):
                    if mine != theirs:
                        row.fail(column, _header_reason(run_first, order_id))
                continue
            if numbered:
                earlier = run_numbers.get(line_no)
                if earlier is not None:
                    row.fail("line_no", _line_no_reason(earlier, order_id, line_no))
                    continue
                run_numbers[line_no] = number
        else:
            if run_order is not None:
                runs_out.add((run_first, run_last, run_order, *run_header, run_net, run_cost))
            run_order, run_first, run_header = order_id, number, header
            run_lines = run_net = run_cost = 0
            if numbered:
                run_numbers = {line_no: number}
        run_last = number
        run_lines += 1
        run_net += net
        run_cost += cost
        pending.append(
            (
                number,
                order_id,
                line_no if numbered else run_lines,  # by position; orders split over runs are renumbered
                product_id,
                quantity.float,
                unit_price.micros,
                cost_each.micros,
                discount.float,
                net,
                cost,
            )
        )
        if len(pending) >= BATCH_ROWS:
            lines_out.flush()
    if run_order is not None:
        runs_out.add((run_first, run_last, run_order, *run_header, run_net, run_cost))
    lines_out.flush()
    runs_out.flush()
    return stage, count


def _check_sales(conn: Connection, stage: Table, numbered: bool) -> Iterator[tuple[int, str, str]]:
    """Gather the orders from their runs; for orders split over several runs, number their lines and
    yield the lines that disagree with the rest of their order, in row order."""
    s, runs, orders = stage, _runs_stage(), _orders_stage()
    orders.create(conn)
    grouped = (
        select(
            runs.c.order_id,
            func.min(runs.c.first_row).label("first_row"),
            func.sum(runs.c.net_micros).label("net"),
            func.sum(runs.c.cost_micros).label("cost"),
            func.count().label("runs"),
        )
        .group_by(runs.c.order_id)
        .subquery()
    )
    first = runs.alias("first_run")
    conn.execute(
        insert(orders).from_select(
            ["order_id", "first_row", *_HEADER_COLUMNS, "net_micros", "cost_micros", "runs", "state"],
            select(
                grouped.c.order_id,
                grouped.c.first_row,
                *(first.c[c] for c in _HEADER_COLUMNS),
                grouped.c.net,
                grouped.c.cost,
                grouped.c.runs,
                literal(0, Integer),
            ).join_from(grouped, first, first.c.first_row == grouped.c.first_row),
        )
    )
    Index(f"ix_{_ORDERS}_order", orders.c.order_id, unique=True).create(conn)
    _analyze(conn, s, runs, orders)
    split = select(orders.c.order_id).where(orders.c.runs > 1)
    if conn.execute(select(exists(split))).scalar():
        if not numbered:
            position = (
                select(
                    s.c.row_no,
                    func.row_number().over(partition_by=s.c.order_id, order_by=s.c.row_no).label("n"),
                )
                .where(s.c.order_id.in_(split))
                .subquery()
            )
            conn.execute(update(s).where(s.c.row_no == position.c.row_no).values(line_no=position.c.n))
        streams = [_header_problems(conn, s, runs, orders)]
        if numbered:
            streams.append(_line_no_problems(conn, s, split))
        yield from _merged_in_row_order(*streams)


def _header_problems(
    conn: Connection, s: Table, runs: Table, orders: Table
) -> Iterator[tuple[int, str, str]]:
    """Lines of a later run of an order whose header differs from the order's first line."""
    differs = or_(*(runs.c[c].is_distinct_from(orders.c[c]) for c in _HEADER_COLUMNS))
    bad = (
        select(
            runs.c.first_row.label("run_first"),
            runs.c.last_row.label("run_last"),
            orders.c.first_row,
            runs.c.order_id,
            *(runs.c[c].label(f"mine_{c}") for c in _HEADER_COLUMNS),
            *(orders.c[c].label(f"theirs_{c}") for c in _HEADER_COLUMNS),
        )
        .join_from(runs, orders, orders.c.order_id == runs.c.order_id)
        .where(orders.c.runs > 1, runs.c.first_row != orders.c.first_row, differs)
        .subquery()
    )
    query = (
        select(s.c.row_no, bad)
        .join_from(s, bad, s.c.row_no.between(bad.c.run_first, bad.c.run_last))
        .order_by(s.c.row_no)
    )
    n = len(_HEADER)
    for found in conn.execute(query.execution_options(stream_results=True)):
        number, first_row, order_id = found[0], found[3], found[4]
        mine, theirs = found[5 : 5 + n], found[5 + n :]
        for (column, _), a, b in zip(_HEADER, mine, theirs, strict=True):
            if a != b:
                yield number, column, _header_reason(first_row, order_id)


def _line_no_problems(conn: Connection, s: Table, split: Select[Any]) -> Iterator[tuple[int, str, str]]:
    """Lines numbered like an earlier line of their order in another run of the file."""
    firsts = (
        select(s.c.order_id, s.c.line_no, func.min(s.c.row_no).label("first_row"))
        .where(s.c.order_id.in_(split))
        .group_by(s.c.order_id, s.c.line_no)
        .having(func.count() > 1)
        .subquery()
    )
    query = (
        select(s.c.row_no, firsts.c.first_row, s.c.order_id, s.c.line_no)
        .join_from(s, firsts, and_(firsts.c.order_id == s.c.order_id, firsts.c.line_no == s.c.line_no))
        .where(s.c.row_no != firsts.c.first_row)
        .order_by(s.c.row_no)
    )
    for number, first_row, order_id, line_no in conn.execute(query.execution_options(stream_results=True)):
        yield number, "line_no", _line_no_reason(first_row, order_id, line_no)


def _row_count(conn: Connection, statement: Executable) -> int:
    """Rows an INSERT ... SELECT or DELETE wrote (SQLAlchemy keeps INSERT row counts only when asked)."""
    return int(conn.execute(statement.execution_options(preserve_rowcount=True)).rowcount)


def _merge_sales(conn: Connection, business_id: int, stage: Table) -> _Counts:
    s, o, sales, lines = stage, _orders_stage(), _SALES, _LINES
    # Which orders are stored already, and whether their header changes. Each order of the file looks
    # its sale up by (business, order_id): a small file never walks a big business's sales.
    stored_id = (
        select(sales.c.id).where(sales.c.business_id == business_id, sales.c.order_id == o.c.order_id)
    ).scalar_subquery()
    conn.execute(update(o).values(sale_id=stored_id))
    same_header = exists().where(
        sales.c.id == o.c.sale_id, *(sales.c[c].is_not_distinct_from(o.c[c]) for c in _HEADER_COLUMNS)
    )
    conn.execute(update(o).where(o.c.sale_id.is_not(None)).values(state=case((same_header, 1), else_=2)))
    conn.execute(
        update(sales)
        .where(
            sales.c.id == o.c.sale_id,
            or_(o.c.state == 2, sales.c.net_micros != o.c.net_micros, sales.c.cost_micros != o.c.cost_micros),
        )
        .values({c: o.c[c] for c in (*_HEADER_COLUMNS, "net_micros", "cost_micros")})
    )
    order_columns = ["order_id", *_HEADER_COLUMNS, "net_micros", "cost_micros"]
    conn.execute(
        insert(sales).from_select(
            ["business_id", *order_columns],
            select(literal(business_id, Integer), *(o.c[c] for c in order_columns))
            .where(o.c.sale_id.is_(None))
            .order_by(o.c.first_row),
        )
    )
    conn.execute(update(o).where(o.c.sale_id.is_(None)).values(sale_id=stored_id))

    counts = _Counts()
    line_columns = ["business_id", "sale_id", "line_no", *_LINE_COLUMNS]
    new_lines = select(
        literal(business_id, Integer), o.c.sale_id, s.c.line_no, *(s.c[c] for c in _LINE_COLUMNS)
    )
    joined = new_lines.join_from(s, o, o.c.order_id == s.c.order_id)
    counts.inserted = _row_count(
        conn, insert(lines).from_select(line_columns, joined.where(o.c.state == 0).order_by(s.c.row_no))
    )
    if not conn.execute(select(exists().where(o.c.state != 0))).scalar():
        return counts
    # Lines of stored orders: compare with what is stored under the same (order, line_no).
    Index(f"ix_{_STAGE}_line", s.c.order_id, s.c.line_no).create(conn)
    _analyze(conn, s, o)
    line_of = and_(lines.c.sale_id == o.c.sale_id, lines.c.line_no == s.c.line_no)
    differs = or_(*(lines.c[c] != s.c[c] for c in _LINE_COLUMNS))
    staged, found, changed = conn.execute(
        select(
            func.count(),
            func.count(lines.c.id),
            func.coalesce(
                func.sum(case((and_(lines.c.id.is_not(None), or_(o.c.state == 2, differs)), 1), else_=0)), 0
            ),
        )
        .select_from(o.join(s, s.c.order_id == o.c.order_id).outerjoin(lines, line_of))
        .where(o.c.state != 0)
    ).one()
    counts.updated, counts.unchanged = int(changed), found - int(changed)
    old = lines.alias("old")
    gone = (
        select(old.c.id)
        .join_from(o, old, old.c.sale_id == o.c.sale_id)
        .where(o.c.state != 0, ~exists().where(s.c.order_id == o.c.order_id, s.c.line_no == old.c.line_no))
    )
    counts.deleted = _row_count(conn, delete(lines).where(lines.c.id.in_(gone)))
    if counts.updated:
        conn.execute(
            update(lines)
            .where(line_of, o.c.order_id == s.c.order_id, o.c.state != 0, differs)
            .values({c: s.c[c] for c in _LINE_COLUMNS})
        )
    if staged > found:
        added = joined.where(
            o.c.state != 0, ~exists().where(old.c.sale_id == o.c.sale_id, old.c.line_no == s.c.line_no)
        ).order_by(s.c.row_no)
        counts.inserted += _row_count(conn, insert(lines).from_select(line_columns, added))
    return counts


# --- writing -------------------------------------------------------------------------------------


@dataclass
class _Counts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted)


def _lock_business(conn: Connection, business_id: int) -> None:
    # A no-op write: takes the business row lock on PostgreSQL and the write lock on SQLite up front,
    # so two imports into one business run one after the other instead of colliding on unique keys.
    businesses = _table(Business)
    result = conn.execute(
        update(businesses)
        .where(businesses.c.id == business_id)
        .values(data_version=businesses.c.data_version)
    )
    if result.rowcount != 1:
        raise NotFound(f"No business with id {business_id}.")


def _record(
    conn: Connection,
    business_id: int,
    entity: str,
    filename: str,
    digest: str,
    username: str,
    rows: int,
    counts: _Counts,
) -> None:
    """Inside the import's transaction: a new data version if anything changed, the batch, the audit event."""
    session = Session(bind=conn)
    try:
        if counts.changed:
            bump_data_version(session, business_id)
        batch = ImportBatch(
            business_id=business_id,
            entity=entity,
            filename=filename[:255],
            sha256=digest,
            status="imported",
            rows=rows,
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
            error_count=0,
            message=_success_message(entity, rows, counts),
            username=username[:80],
        )
        session.add(batch)
        session.flush()
        session.add(
            AuditEvent(
                business_id=business_id,
                user=username[:80],
                event_type="import",
                entity=entity,
                entity_id=str(batch.id),
                detail={
                    "filename": filename,
                    "rows": rows,
                    "inserted": counts.inserted,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged,
                    "deleted": counts.deleted,
                    "import_batch_id": batch.id,
                },
            )
        )
        session.flush()
    finally:
        session.close()


# --- the entry points ----------------------------------------------------------------------------


def _plural(n: int, entity: str) -> str:
    one, many = _NOUNS[entity]
    return f"{n:,} {one if n == 1 else many}"


def _success_message(entity: str, rows: int, counts: _Counts) -> str:
    if not counts.changed:
        if rows == 1:
            return f"Nothing changed: the {_NOUNS[entity][0]} in the file was already up to date."
        return f"Nothing changed: all {_plural(rows, entity)} in the file were already up to date."
    parts = [
        f"{n:,} {word}"
        for n, word in (
            (counts.inserted, "new"),
            (counts.updated, "updated"),
            (counts.unchanged, "unchanged"),
        )
        if n
    ]
    if counts.deleted:
        parts.append(f"{_plural(counts.deleted, entity)} no longer in the file removed")
    return f"Imported {_plural(rows, entity)} ({', '.join(parts)})."


def _rejection_message(errors: _Errors) -> str:
    if errors.bad_rows:
        rows = "1 row has problems" if errors.bad_rows == 1 else f"{errors.bad_rows:,} rows have problems"
        return f"Rejected: {rows}; nothing was imported."
    if errors.total > 1:  # only the header row yields several problems before any data row is read
        return "Rejected: the header row has problems; nothing was imported."
    reason = errors.items[0].reason.rstrip(".")
    return f"Rejected: {reason[:1].lower()}{reason[1:]}; nothing was imported."


def _check_entity(entity: str) -> None:
    if entity not in ENTITIES:
        raise Invalid(f"unknown entity {entity!r}; expected one of {', '.join(ENTITIES)}")


def import_file(
    engine: Engine,
    business_id: int,
    entity: str,
    filename: str,
    data: bytes,
    settings: Settings,
    *,
    username: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import an uploaded file (the web page's door): validate every row, then upsert it all in one
    transaction, or nothing.

    Files over the upload limit (`settings.max_upload_bytes`, TALLYBOARD_MAX_UPLOAD_MB) and Excel
    files that would expand past `settings.max_xlsx_expanded_bytes` are refused unread. User errors
    never raise: they come back as ok=False with every problem listed. `progress(done, total)` is
    called every batch; `done` reaches `total` at the end. An unknown `entity` (Invalid, a ValueError)
    or `business_id` (NotFound) is a programming error.
    """
    _check_entity(entity)
    refusal = ""
    if len(data) > settings.max_upload_bytes:
        refusal = (
            f"The file is {_size(len(data))}, over the {_size(settings.max_upload_bytes)} upload limit "
            f"(set {_UPLOAD_SETTING} to raise it)."
        )
    return _import(
        engine,
        business_id,
        entity,
        filename,
        lambda: io.BytesIO(data),
        len(data),
        lambda: hashlib.sha256(data).hexdigest(),
        settings.max_xlsx_expanded_bytes,
        username,
        progress,
        refusal,
    )


def import_path(
    engine: Engine,
    business_id: int,
    entity: str,
    path: Path,
    settings: Settings,
    *,
    username: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import a file on disk (the command line's door): like `import_file`, but of any size, streamed
    from disk in bounded memory; the upload and Excel expansion limits of the web page do not apply."""
    _check_entity(entity)
    return _import(
        engine,
        business_id,
        entity,
        path.name,
        lambda: path.open("rb"),
        path.stat().st_size,
        lambda: file_sha256(path),
        None,
        username,
        progress,
        "",
    )


def _import(
    engine: Engine,
    business_id: int,
    entity: str,
    filename: str,
    opener: Callable[[], IO[bytes]],
    size: int,
    sha256: Callable[[], str],
    expansion_limit: int | None,
    username: str,
    progress: Callable[[int, int], None] | None,
    refusal: str,
) -> ImportResult:
    errors = _Errors()
    result = ImportResult(entity, filename, ok=False, rows=0, inserted=0, updated=0, unchanged=0)
    sha256 = functools.cache(sha256)  # read a file on disk once for its hash, however it ends
    suffix = PurePath(filename).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        shown = f"'{suffix}'" if suffix else "a file without an extension"
        errors.add(0, "", f"Wrong file type ({shown}); accepted types are .csv and .xlsx.")
    elif refusal:
        errors.add(0, "", refusal)
    elif size == 0:
        errors.add(0, "", "The file has no data rows (it is empty).")
    else:
        digest = sha256()
        with opener() as stream:
            counts = _read_and_merge(
                engine, business_id, entity, filename, suffix, stream, size, digest, expansion_limit,
                username, errors, result, progress,
            )  # fmt: skip
        if counts is not None:
            result.ok = True
            result.inserted, result.updated, result.unchanged = (
                counts.inserted,
                counts.updated,
                counts.unchanged,
            )
            result.message = _success_message(entity, result.rows, counts)
            return result
    result.errors = errors.report()
    result.message = _rejection_message(errors)
    with session_scope(engine) as session:
        session.add(
            ImportBatch(
                business_id=business_id,
                entity=entity,
                filename=filename[:255],
                sha256=sha256(),
                status="rejected",
                rows=result.rows,
                error_count=errors.total,
                message=result.message,
                username=username[:80],
            )
        )
    return result


def _read_and_merge(
    engine: Engine,
    business_id: int,
    entity: str,
    filename: str,
    suffix: str,
    stream: IO[bytes],
    size: int,
    digest: str,
    expansion_limit: int | None,
    username: str,
    errors: _Errors,
    result: ImportResult,
    progress: Callable[[int, int], None] | None,
) -> _Counts | None:
    """Stage and check every row, then merge them in one transaction; None when the file is rejected."""
    opened = _csv_source(stream, size) if suffix == ".csv" else _xlsx_source(stream, expansion_limit)
    if isinstance(opened, RowError):
        errors.add(opened.row, opened.column, opened.reason)
        return None
    source = opened
    tracker = _Progress(progress, source.estimate)
    with engine.connect() as conn:
        restore = _bigger_cache(conn)
        try:
            try:
                staged = _stage(conn, business_id, entity, source, errors, tracker)
            finally:
                source.close()
            if source.failure is not None:
                errors.add(source.failure.row, source.failure.column, source.failure.reason)
            if staged is None:
                return None
            stage, result.rows, absent, numbered = staged
            if not errors.total and result.rows == 0:
                errors.add(0, "", "The file has no data rows.")
            errors.next_pass()
            checks = (
                _check_sales(conn, stage, numbered)
                if entity == "sales"
                else _check_simple(conn, entity, stage)
            )
            for number, column, reason in checks:
                errors.add(number, column, reason)
            if errors.total:
                return None
            conn.commit()  # the staged rows; nothing of the business has changed yet
            tracker.to(result.rows + result.rows // 4)
            try:
                with conn.begin():
                    _lock_business(conn, business_id)
                    if entity == "sales":
                        counts = _merge_sales(conn, business_id, stage)
                    else:
                        counts = _merge_simple(conn, business_id, entity, stage, absent)
                    tracker.to(result.rows + result.rows * 3 // 4)
                    _record(conn, business_id, entity, filename, digest, username, result.rows, counts)
            except (IntegrityError, DataError) as exc:
                errors.add(
                    0, "", f"The database refused the data ({type(exc.orig).__name__}); try the import again."
                )
                return None
            tracker.to(tracker.total)
            return counts
        finally:
            _drop_staging(conn, restore)


def _stage(
    conn: Connection, business_id: int, entity: str, source: _Source, errors: _Errors, tracker: _Progress
) -> tuple[Table, int, set[str], bool] | None:
    """Read the header, then every row into the staging table: (table, data rows, DB columns left
    out of the file, whether a sales file names its lines); None when there is no usable header."""
    first = next(source.rows, None)
    if first is None:
        if source.failure is None:
            errors.add(0, "", "The file has no data rows (not even a header row).")
        return None
    index = _header_index(entity, first[0], first[1], errors)
    if errors.total:
        return None
    errors.counting_rows = True
    absent = (
        {db for column, db in _PLANS[entity].optional.items() if column not in index}
        if entity in _PLANS
        else set()
    )
    refs = _load_refs(conn, business_id, entity)
    row = _Row(entity, index, errors)
    numbered = "line_no" in index
    if entity == "sales":
        stage, count = _stage_sales(conn, source, row, refs, tracker, numbered)
    else:
        stage, count = _stage_simple(conn, entity, source, row, refs, tracker)
    tracker.to(count, 2 * count)
    return stage, count, absent, numbered
