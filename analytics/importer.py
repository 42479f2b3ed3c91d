"""Imports one CSV or XLSX file per entity into a business: validate every row, then upsert all or nothing."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import re
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import openpyxl
from sqlalchemy import Engine, String, Table, bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, IntegrityError

from analytics import money
from analytics.db import bump_data_version, session_scope
from analytics.models import (
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
from analytics.settings import Settings

ENTITIES = ("customers", "products", "storefronts", "sales", "payments", "forecasts", "inventory")

MAX_REPORTED_ERRORS = 1000
BATCH_ROWS = 5000
_CHUNK_ORDERS = 1000  # orders whose stored lines are read and compared together

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
    ),
    "payments": ("payment_id", "order_id", "paid_at", "amount", "method"),
    "forecasts": ("cycle", "customer_code", "sku", "sales_rep", "quantity", "submitted_at"),
    "inventory": ("storefront", "sku", "quantity", "as_of"),
}
OPTIONAL_COLUMNS: dict[str, frozenset[str]] = {
    "customers": frozenset({"credit_limit", "email", "active"}),
    "products": frozenset({"reorder_level"}),
    "sales": frozenset({"discount", "unit_cost", "sales_rep", "storefront"}),
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
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_CYCLE_RE = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])")
_REF_FILES = {"customer": "customers", "product": "products", "storefront": "storefronts", "order": "sales"}
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}

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
    """Collects problems in file order; keeps the first MAX_REPORTED_ERRORS but counts them all."""

    def __init__(self) -> None:
        self.items: list[RowError] = []
        self.total = 0
        self.bad_rows = 0
        self.counting_rows = False  # switched on once the header is accepted
        self._last_row = -1

    def add(self, row: int, column: str, reason: str) -> None:
        self.total += 1
        if self.counting_rows and row > 0 and row != self._last_row:
            self._last_row = row
            self.bad_rows += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append(RowError(row, column, reason))

    def report(self) -> list[RowError]:
        items = list(self.items)
        left_out = self.total - len(items)
        if left_out > 0:
            items.append(RowError(0, "", f"and {left_out} more problems not listed"))
        return items


class _Progress:
    """Reports progress as rows validated (first half) plus rows written (second half)."""

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


def _csv_source(data: bytes) -> _Source | RowError:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return RowError(
            line,
            "",
            f"The file is not UTF-8 text (the first bad character is on row {line}); "
            "save it as 'CSV UTF-8' and import it again.",
        )
    source = _Source(iter(()), data.count(b"\n"))
    source.rows = _csv_rows(text, source)
    return source


def _text_lines(text: str) -> Iterator[str]:
    # One line at a time (with its line ending), so the file is never copied into a list of lines.
    sep = "\n" if "\n" in text or "\r" not in text else "\r"
    start, end_of_text = 0, len(text)
    while start < end_of_text:
        end = text.find(sep, start)
        if end < 0:
            yield text[start:]
            return
        yield text[start : end + 1]
        start = end + 1


def _csv_rows(text: str, source: _Source) -> Iterator[tuple[int, Sequence[Cell]]]:
    reader = csv.reader(_text_lines(text))
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


def _xlsx_source(data: bytes, settings: Settings) -> _Source | RowError:
    not_excel = RowError(0, "", "The file is not a valid Excel (.xlsx) file.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return not_excel
    # zipfile stops every member at its declared size, so this check bounds what openpyxl can inflate.
    if expanded > settings.max_xlsx_expanded_bytes:
        return RowError(
            0,
            "",
            f"The Excel file would expand to {_size(expanded)}, over the "
            f"{_size(settings.max_xlsx_expanded_bytes)} limit; split it or save it as CSV.",
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
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


def _load_refs(engine: Engine, business_id: int, entity: str) -> _Refs:
    refs = _Refs()
    with engine.connect() as conn:
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


def _validate_simple(
    entity: str, source: _Source, row: _Row, refs: _Refs, progress: _Progress
) -> tuple[dict[Key, Values], int]:
    plan = _PLANS[entity]
    records: dict[Key, Values] = {}
    first_rows: dict[Key, int] = {}
    count = 0
    for number, cells in source.rows:
        row.load(number, cells)
        key, values = plan.parse(row, refs)
        count += 1
        if count % BATCH_ROWS == 0:
            progress.to(count)
        if not row.ok:
            continue
        earlier = first_rows.get(key)
        if earlier is not None:
            row.fail(plan.file_key, f"duplicate of row {earlier}, which has the same {_KEY_WORDS[entity]}")
            continue
        first_rows[key] = number
        records[key] = values
    return records, count


class _Order:
    """One order of a sales file: its header, its lines by product id, and their totals in micros."""

    __slots__ = ("cost", "first_row", "header", "lines", "net")

    def __init__(self, header: Values, first_row: int) -> None:
        self.header = header
        self.first_row = first_row
        # product id -> (row, quantity, unit_price_micros, unit_cost_micros, discount, net_micros, cost_micros)
        self.lines: dict[int, tuple[int, float, int, int, float, int, int]] = {}
        self.net = 0
        self.cost = 0


_HEADER_COLUMNS = ("order_date", "customer_code", "storefront", "sales_rep", "status")


def _validate_sales(
    source: _Source, row: _Row, refs: _Refs, progress: _Progress
) -> tuple[dict[str, _Order], int]:
    orders: dict[str, _Order] = {}
    order_id_length = _max_length(_SALES, "order_id")
    rep_length = _max_length(_SALES, "sales_rep")
    count = 0
    for number, cells in source.rows:
        row.load(number, cells)
        count += 1
        if count % BATCH_ROWS == 0:
            progress.to(count)
        order_id = row.text("order_id", order_id_length)
        order_date = row.date("order_date")
        customer_id = row.ref("customer_code", refs.customers, "customer")
        product = row.ref("sku", refs.products, "product")
        quantity = row.number("quantity", _QUANTITY_PLACES, positive=True)
        unit_price = row.number("unit_price", _MONEY_PLACES)
        unit_cost = row.number("unit_cost", _MONEY_PLACES, required=False)
        discount = row.number("discount", _MONEY_PLACES, at_most_one=True, required=False)
        status = row.choice("status", SALE_STATUSES)
        sales_rep = row.text("sales_rep", rep_length, required=False)
        storefront_id = row.ref("storefront", refs.storefronts, "storefront", required=False)
        if not row.ok or quantity is None or unit_price is None or product is None:
            continue
        product_id, product_cost = product
        cost_each = product_cost if unit_cost is None else unit_cost
        discount = _ZERO if discount is None else discount
        net = money.line_net_micros(quantity.decimal, unit_price.decimal, discount.decimal)
        cost = money.line_cost_micros(quantity.decimal, cost_each.decimal)
        if max(abs(net), cost) > _INT64_MAX // 1000:  # leaves room for order and report totals
            row.fail("quantity", "quantity × unit price of this line is too large")
            continue
        header = (order_date, customer_id, storefront_id, sales_rep, status)
        order = orders.get(order_id)
        if order is None:
            order = orders[order_id] = _Order(header, number)
        elif order.header != header:
            for column, mine, theirs in zip(_HEADER_COLUMNS, header, order.header, strict=True):
                if mine != theirs:
                    row.fail(
                        column,
                        f"differs from row {order.first_row} of order {_show(order_id)}; all lines of one order "
                        "must have the same order_date, customer_code, storefront, sales_rep and status",
                    )
            continue
        earlier = order.lines.get(product_id)
        if earlier is not None:
            row.fail("sku", f"duplicate of row {earlier[0]}: order {_show(order_id)} lists this sku twice")
            continue
        order.lines[product_id] = (
            number,
            quantity.float,
            unit_price.micros,
            cost_each.micros,
            discount.float,
            net,
            cost,
        )
        order.net += net
        order.cost += cost
    return orders, count


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


class _Writer:
    """Batches of inserts, updates and deletes for one table, sent with executemany."""

    def __init__(
        self, conn: Connection, table: Table, columns: Sequence[str], on_flush: Callable[[int], None]
    ):
        self.conn = conn
        self.table = table
        self.on_flush = on_flush
        id_ = table.c.id
        self.insert_stmt = insert(table)
        self.update_stmt = (
            update(table).where(id_ == bindparam("_id")).values({c: bindparam(f"v_{c}") for c in columns})
        )
        self.delete_stmt = delete(table).where(id_ == bindparam("_id"))
        self.columns = tuple(columns)
        self.inserts: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.deletes: list[dict[str, Any]] = []

    def insert(self, values: dict[str, Any]) -> None:
        self.inserts.append(values)
        if len(self.inserts) >= BATCH_ROWS:
            self.flush_inserts()

    def update(self, id_: int, values: Sequence[Any]) -> None:
        self.updates.append({"_id": id_, **{f"v_{c}": v for c, v in zip(self.columns, values, strict=True)}})
        if len(self.updates) >= BATCH_ROWS:
            self.flush_updates()

    def delete(self, id_: int) -> None:
        self.deletes.append({"_id": id_})
        if len(self.deletes) >= BATCH_ROWS:
            self.flush_deletes()

    def flush_inserts(self) -> None:
        if self.inserts:
            self.conn.execute(self.insert_stmt, self.inserts)
            self.on_flush(len(self.inserts))
            self.inserts = []

    def flush_updates(self) -> None:
        if self.updates:
            self.conn.execute(self.update_stmt, self.updates)
            self.on_flush(len(self.updates))
            self.updates = []

    def flush_deletes(self) -> None:
        if self.deletes:
            self.conn.execute(self.delete_stmt, self.deletes)
            self.deletes = []

    def flush(self) -> None:
        self.flush_deletes()
        self.flush_updates()
        self.flush_inserts()


def _write_simple(
    conn: Connection,
    business_id: int,
    plan: _Plan,
    records: dict[Key, Values],
    absent: set[str],
    on_flush: Callable[[int], None],
) -> _Counts:
    table = plan.table
    key_count = len(plan.key_columns)
    compared = [i for i, c in enumerate(plan.value_columns) if c not in absent]
    compared_columns = [plan.value_columns[i] for i in compared]
    existing: dict[Key, tuple[int, Values]] = {}
    query = select(
        table.c.id, *(table.c[c] for c in plan.key_columns), *(table.c[c] for c in compared_columns)
    ).where(table.c.business_id == business_id)
    for found in conn.execute(query):
        key = tuple(found[1 : 1 + key_count])
        if key in records:
            existing[key] = (found[0], tuple(found[1 + key_count :]))
    counts = _Counts()
    writer = _Writer(conn, table, compared_columns, on_flush)
    for key, values in records.items():
        old = existing.get(key)
        if old is None:
            writer.insert(
                {
                    "business_id": business_id,
                    **dict(zip(plan.key_columns, key, strict=True)),
                    **dict(zip(plan.value_columns, values, strict=True)),
                }
            )
            counts.inserted += 1
            continue
        mine = tuple(values[i] for i in compared)
        if mine != old[1]:
            writer.update(old[0], mine)
            counts.updated += 1
        else:
            counts.unchanged += 1
    writer.flush()
    on_flush(counts.unchanged)
    return counts


_LINE_VALUES = ("quantity", "unit_price_micros", "unit_cost_micros", "discount", "net_micros", "cost_micros")
_SALE_VALUES = (
    "order_date",
    "customer_id",
    "storefront_id",
    "sales_rep",
    "status",
    "net_micros",
    "cost_micros",
)


def _write_sales(
    conn: Connection, business_id: int, orders: dict[str, _Order], on_flush: Callable[[int], None]
) -> _Counts:
    sales, lines = _SALES, _LINES
    existing: dict[str, tuple[int, Values]] = {}
    query = select(sales.c.id, sales.c.order_id, *(sales.c[c] for c in _SALE_VALUES)).where(
        sales.c.business_id == business_id
    )
    for found in conn.execute(query):
        if found[1] in orders:
            existing[found[1]] = (found[0], tuple(found[2:]))

    header_changed: set[str] = set()
    order_writer = _Writer(conn, sales, _SALE_VALUES, lambda n: None)
    for order_id, order in orders.items():
        values = (*order.header, order.net, order.cost)
        old = existing.get(order_id)
        if old is None:
            order_date, customer_id, storefront_id, sales_rep, status = order.header
            order_writer.insert(
                {
                    "business_id": business_id,
                    "order_id": order_id,
                    "order_date": order_date,
                    "customer_id": customer_id,
                    "storefront_id": storefront_id,
                    "sales_rep": sales_rep,
                    "status": status,
                    "net_micros": order.net,
                    "cost_micros": order.cost,
                }
            )
        elif values != old[1]:
            order_writer.update(old[0], values)
            if order.header != old[1][:5]:
                header_changed.add(order_id)
    order_writer.flush()

    sale_ids: dict[str, int] = {}
    for order_id, sale_id in conn.execute(
        select(sales.c.order_id, sales.c.id).where(sales.c.business_id == business_id)
    ):
        if order_id in orders:
            sale_ids[order_id] = sale_id

    counts = _Counts()
    writer = _Writer(conn, lines, _LINE_VALUES, on_flush)
    pending_progress = 0
    # Stored orders first, by id, then new ones. Orders go in chunks; the stored lines of a chunk come
    # from one range read on the (sale_id, product_id) index, which the planner uses even with stale
    # statistics (a long IN list is costed as a table scan on PostgreSQL right after a bulk load).
    order_ids = sorted(existing, key=sale_ids.__getitem__) + [o for o in orders if o not in existing]
    line_query = select(lines.c.id, lines.c.sale_id, lines.c.product_id, *(lines.c[c] for c in _LINE_VALUES))
    for start in range(0, len(order_ids), _CHUNK_ORDERS):
        chunk = order_ids[start : start + _CHUNK_ORDERS]
        old_lines: dict[int, dict[int, tuple[int, Values]]] = {}
        known = {sale_ids[order_id] for order_id in chunk if order_id in existing}
        if known:
            # No business_id term: SQLite would pick that index and scan the whole business per chunk.
            # `known` holds this business's sale ids only, so other tenants' lines are dropped here.
            for found in conn.execute(line_query.where(lines.c.sale_id.between(min(known), max(known)))):
                if found[1] in known:
                    old_lines.setdefault(found[1], {})[found[2]] = (found[0], tuple(found[3:]))
        for order_id in chunk:
            order = orders[order_id]
            sale_id = sale_ids[order_id]
            olds = old_lines.get(sale_id, {})
            header_new = order_id in header_changed
            for product_id, line in order.lines.items():
                _, quantity, unit_price, unit_cost, discount, net, cost = line
                old = olds.pop(product_id, None)
                if old is None:
                    writer.insert(
                        {
                            "business_id": business_id,
                            "sale_id": sale_id,
                            "product_id": product_id,
                            "quantity": quantity,
                            "unit_price_micros": unit_price,
                            "unit_cost_micros": unit_cost,
                            "discount": discount,
                            "net_micros": net,
                            "cost_micros": cost,
                        }
                    )
                    counts.inserted += 1
                    continue
                values = line[1:]
                if values != old[1]:
                    writer.update(old[0], values)
                    counts.updated += 1
                    continue
                if header_new:
                    counts.updated += 1
                else:
                    counts.unchanged += 1
                pending_progress += 1
            for line_id, _ in olds.values():
                writer.delete(line_id)
                counts.deleted += 1
        if pending_progress >= BATCH_ROWS:
            on_flush(pending_progress)
            pending_progress = 0
    writer.flush()
    on_flush(pending_progress)
    return counts


# --- the entry point -----------------------------------------------------------------------------


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
        raise ValueError(f"business {business_id} does not exist")


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
    """Validate every row of one CSV/XLSX file, then upsert it all in one transaction, or nothing.

    User errors never raise: they come back as ok=False with every problem listed. `progress(done,
    total)` is called every batch; `done` reaches `total` at the end. An unknown `entity` or
    `business_id` is a programming error and raises ValueError.
    """
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r}; expected one of {', '.join(ENTITIES)}")
    errors = _Errors()
    result = ImportResult(entity, filename, ok=False, rows=0, inserted=0, updated=0, unchanged=0)
    source = _open(filename, data, settings, errors)
    if source is not None:
        tracker = _Progress(progress, source.estimate)
        try:
            result.rows, parsed, absent = _validate(engine, business_id, entity, source, errors, tracker)
        finally:
            source.close()
        if source.failure is not None:
            errors.add(source.failure.row, source.failure.column, source.failure.reason)
        if not errors.total and result.rows == 0:
            errors.add(0, "", "The file has no data rows.")
        if not errors.total:
            try:
                counts = _write(
                    engine, business_id, entity, filename, data, username, parsed, absent, result, tracker
                )
            except (IntegrityError, DataError) as exc:
                errors.add(
                    0, "", f"The database refused the data ({type(exc.orig).__name__}); try the import again."
                )
            else:
                result.ok = True
                result.inserted, result.updated, result.unchanged = (
                    counts.inserted,
                    counts.updated,
                    counts.unchanged,
                )
                result.message = _success_message(entity, result.rows, counts)
                tracker.to(tracker.total)
                return result
    result.errors = errors.report()
    result.message = _rejection_message(errors)
    with session_scope(engine) as session:
        session.add(
            ImportBatch(
                business_id=business_id,
                entity=entity,
                filename=filename[:255],
                sha256=hashlib.sha256(data).hexdigest(),
                status="rejected",
                rows=result.rows,
                error_count=errors.total,
                message=result.message,
                username=username[:80],
            )
        )
    return result


def _open(filename: str, data: bytes, settings: Settings, errors: _Errors) -> _Source | None:
    suffix = PurePath(filename).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        shown = f"'{suffix}'" if suffix else "a file without an extension"
        errors.add(0, "", f"Wrong file type ({shown}); accepted types are .csv and .xlsx.")
        return None
    if len(data) > settings.max_upload_bytes:
        errors.add(
            0,
            "",
            f"The file is {_size(len(data))}, over the {_size(settings.max_upload_bytes)} upload limit.",
        )
        return None
    if not data.strip():
        errors.add(0, "", "The file has no data rows (it is empty).")
        return None
    opened = _csv_source(data) if suffix == ".csv" else _xlsx_source(data, settings)
    if isinstance(opened, RowError):
        errors.add(opened.row, opened.column, opened.reason)
        return None
    return opened


def _validate(
    engine: Engine, business_id: int, entity: str, source: _Source, errors: _Errors, tracker: _Progress
) -> tuple[int, Any, set[str]]:
    """(data rows, parsed records, DB columns left out of the file); problems go to `errors`."""
    first = next(source.rows, None)
    if first is None:
        if source.failure is None:
            errors.add(0, "", "The file has no data rows (not even a header row).")
        return 0, None, set()
    index = _header_index(entity, first[0], first[1], errors)
    if errors.total:
        return 0, None, set()
    errors.counting_rows = True
    absent = (
        {db for column, db in _PLANS[entity].optional.items() if column not in index}
        if entity in _PLANS
        else set()
    )
    refs = _load_refs(engine, business_id, entity)
    row = _Row(entity, index, errors)
    parsed: Any
    if entity == "sales":
        parsed, count = _validate_sales(source, row, refs, tracker)
    else:
        parsed, count = _validate_simple(entity, source, row, refs, tracker)
    tracker.to(count, 2 * count)
    return count, parsed, absent


def _write(
    engine: Engine,
    business_id: int,
    entity: str,
    filename: str,
    data: bytes,
    username: str,
    parsed: Any,
    absent: set[str],
    result: ImportResult,
    tracker: _Progress,
) -> _Counts:
    def on_flush(n: int) -> None:
        tracker.to(tracker.done + n)

    with session_scope(engine) as session:
        conn = session.connection()
        _lock_business(conn, business_id)
        if entity == "sales":
            counts = _write_sales(conn, business_id, parsed, on_flush)
        else:
            counts = _write_simple(conn, business_id, _PLANS[entity], parsed, absent, on_flush)
        if counts.changed:
            bump_data_version(session, business_id)
        message = _success_message(entity, result.rows, counts)
        batch = ImportBatch(
            business_id=business_id,
            entity=entity,
            filename=filename[:255],
            sha256=hashlib.sha256(data).hexdigest(),
            status="imported",
            rows=result.rows,
            inserted=counts.inserted,
            updated=counts.updated,
            unchanged=counts.unchanged,
            error_count=0,
            message=message,
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
                    "rows": result.rows,
                    "inserted": counts.inserted,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged,
                    "deleted": counts.deleted,
                    "import_batch_id": batch.id,
                },
            )
        )
    return counts
