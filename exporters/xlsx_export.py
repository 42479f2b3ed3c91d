"""Report -> Excel workbook: Summary, one sheet per table (split past the row limit), Charts; streamed rows."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import IO, Any

import xlsxwriter
from xlsxwriter.utility import _preserve_whitespace, _utf16_len, xl_col_to_name

from analytics.formatting import currency_symbol, is_missing
from analytics.kpis import side_by_side
from analytics.labels import CODE_FILTERS, label, labeller
from analytics.report import ChartSpec, Column, ColumnKind, Highlight, Kpi, Report, Table
from core.clock import in_zone
from exporters.cells import Remembered, columns_of, neutralise, time_text

# Excel's sheet holds 1,048,576 rows: the header plus this many data rows.
MAX_DATA_ROWS = 1_048_575
# Charts read their data from the table's sheet; bigger tables make unreadable, slow charts.
CHART_ROW_LIMIT = 5_000
# Column widths are fitted from the header and this many first rows (rows arrive streamed).
WIDTH_SAMPLE = 1_000
NO_DATA = "No data for this period"
# Booleans show TRUE/FALSE in Excel whatever the format; LibreOffice needs this format to (and its
# PDF export fails on a conditionally formatted boolean cell without it: LibreOffice 7.4).
BOOL_FORMAT = '"TRUE";"TRUE";"FALSE"'

_CENT = Decimal("0.01")
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
_HEADER_BLUE = "#1F4E78"
_LIGHT_RED = {"bg_color": "#FFC7CE", "font_color": "#9C0006"}
_LIGHT_AMBER = {"bg_color": "#FFEB9C", "font_color": "#9C5700"}
_RED_FONT = {"font_color": "#C00000", "bold": True}

CellWriter = Callable[[int, int, Any], object]


def write_xlsx(
    report: Report,
    out: IO[bytes],
    *,
    max_rows_per_sheet: int = MAX_DATA_ROWS,
    chart_row_limit: int = CHART_ROW_LIMIT,
    fast_rows: bool = True,
) -> None:
    """Write the report as an .xlsx workbook to a binary stream, in constant memory however many rows.

    Tables longer than `max_rows_per_sheet` data rows continue on "<Sheet> (2)", "<Sheet> (3)", ...
    Charts are drawn only for tables of at most `chart_row_limit` rows that fit on one sheet.
    `fast_rows=False` writes every cell through XlsxWriter's own methods: the same bytes, slower
    (the reference the tests compare the fast rows with).
    """
    if not 1 <= max_rows_per_sheet <= MAX_DATA_ROWS:
        raise ValueError(f"max_rows_per_sheet must be between 1 and {MAX_DATA_ROWS:,}")
    wb = xlsxwriter.Workbook(out, {"constant_memory": True, "remove_timezone": True})
    try:
        book = _Book(wb, report, max_rows_per_sheet, chart_row_limit)
        book.fast_rows = fast_rows
        plans = book.plan_sheets()
        book.write_summary(plans)
        for plan in plans:
            book.write_table(plan)
        if report.charts:
            book.write_charts(plans)
        wb.set_properties(_properties(report))
    except BaseException:
        with contextlib.suppress(Exception):  # free the temporary files; the first error is the one to see
            wb.close()
        raise
    wb.close()


# --- number formats and cell values ---------------------------------------------------------------


def _safe(text: str) -> str:
    """Text as a cell holds it: neutralised (exporters.cells), and never taken for markup.

    In constant_memory mode XlsxWriter writes a string that starts with "<r>" and ends with "</r>"
    into the sheet's XML as it is (a rich string it made itself): a customer named like that could
    add cells, formulas included. Such text gets the same "'" prefix as a formula-like one.
    """
    text = neutralise(text)
    return "'" + text if text.startswith("<r>") and text.endswith("</r>") else text


def money_format(currency: str, decimals: int = 2) -> str:
    """Excel number format for an amount in `currency`: its symbol (or code and a space) before the
    digits, as analytics.formatting.currency_symbol writes it everywhere."""
    digits = "#,##0" + ("." + "0" * decimals if decimals else "")
    symbol = currency_symbol(currency).replace('"', "")
    return f'"{symbol}"{digits}' if symbol else digits


def _kind_formats(currency: str) -> dict[ColumnKind, str]:
    return {
        "text": "General",
        "int": "#,##0",
        "quantity": "#,##0",
        "number": "#,##0.00",
        "money": money_format(currency),
        "pct": "0.0%",
        "date": "yyyy-mm-dd",
        "month": "mmm yyyy",
        "datetime": "yyyy-mm-dd hh:mm:ss",
    }


def money_value(value: Any) -> float | None:
    """A money cell as the number written: rounded half-even to cents (None when missing)."""
    if value.__class__ is Decimal:
        return float(value.quantize(_CENT, rounding=ROUND_HALF_EVEN)) if value.is_finite() else None
    if is_missing(value):
        return None
    if isinstance(value, float):  # round() on a float rounds its exact value half-even
        return round(value, 2) if math.isfinite(value) else None
    amount = Decimal(str(value))
    return float(amount.quantize(_CENT, rounding=ROUND_HALF_EVEN)) if amount.is_finite() else None


def number_value(value: Any) -> float | None:
    if is_missing(value):
        return None
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


_MONTHS: dict[str, dt.date] = {}


def month_value(value: Any) -> dt.date | None:
    """A month cell ("YYYY-MM", a date or a timestamp) as its first day: sorts and filters by date."""
    if value.__class__ is str:
        day = _MONTHS.get(value)
        if day is None:
            try:
                day = dt.date(int(value[:4]), int(value[5:7]), 1)
            except ValueError:
                return None
            _MONTHS[value] = day
        return day
    if is_missing(value):
        return None
    if isinstance(value, dt.date):
        return dt.date(value.year, value.month, 1)
    return None


def date_value(value: Any) -> dt.date | None:
    if is_missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def datetime_value(value: Any) -> dt.datetime | None:
    if is_missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time())
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.replace(tzinfo=None)


def text_value(value: Any) -> str | bool | None:
    """A text cell: neutralised text (never a formula); a boolean stays a boolean."""
    if value.__class__ is str:
        return _safe(value) if value else None
    if hasattr(value, "item") and not isinstance(value, dt.date):  # numpy scalars
        value = value.item()
    if isinstance(value, bool):
        return value
    if is_missing(value):
        return None
    return _safe(str(value))


# A cell as written: ("n", number), ("d", date or datetime), ("s", text) or ("b", boolean); None
# writes nothing (a missing value).
Cell = tuple[str, Any] | None


def cell_of(kind: ColumnKind, key: str = "") -> Callable[[Any], Cell]:
    """The cell one value of a column of `kind` becomes: typed, neutralised, a code as its label
    (analytics.labels). The common Python types take a short path; the rest go through the
    *_value converters above."""
    if kind == "money":
        quantize, cent, half_even = Decimal.quantize, _CENT, ROUND_HALF_EVEN

        def money(v: Any) -> Cell:
            cls = v.__class__
            if cls is float and v - v == 0:  # v - v is NaN for NaN and infinities
                return ("n", round(v, 2))  # round() rounds a float's exact value half-even
            if cls is Decimal and v.is_finite():
                return ("n", float(quantize(v, cent, rounding=half_even)))
            x = money_value(v)
            return None if x is None else ("n", x)

        return money
    if kind in ("int", "quantity", "number", "pct"):

        def number(v: Any) -> Cell:
            cls = v.__class__
            if (cls is float and v - v == 0) or cls is int:
                return ("n", v)
            x = number_value(v)
            return None if x is None else ("n", x)

        return number
    if kind in ("date", "month", "datetime"):
        convert = {"date": date_value, "month": month_value, "datetime": datetime_value}[kind]
        fast = dt.datetime if kind == "datetime" else dt.date if kind == "date" else None

        def when(v: Any) -> Cell:
            if v.__class__ is fast:
                return ("d", v)
            x = convert(v)
            return None if x is None else ("d", x)

        return when
    named = labeller(key)

    def text(v: Any) -> Cell:
        if named is not None:
            v = named(v)
        if v.__class__ is str:
            return ("s", _safe(v)) if v else None
        x = text_value(v)
        if x is None:
            return None
        return ("b", x) if isinstance(x, bool) else ("s", x)

    return text


def _cell_writer(ws: Any, kind: ColumnKind, fmt: Any, bool_fmt: Any, key: str = "") -> CellWriter:
    """One column's writer through XlsxWriter's own methods: typed cell, column format, nothing for
    a missing value. (The table sheets write rows faster, see _Rows; this is their reference and
    their way for what the fast rows do not take.)

    XlsxWriter's public write_* methods only add a check for "A1" style arguments around the
    private ones: with integer rows and columns the private methods (same arguments, checked
    against the pinned version by the tests) save about 10 % of the time.
    """
    value_of = cell_of(kind, key)
    write = {
        "n": _unchecked(ws, "write_number"),
        "d": _unchecked(ws, "write_datetime"),
        "s": _unchecked(ws, "write_string"),
    }
    boolean = _unchecked(ws, "write_boolean")

    def write_cell(r: int, c: int, v: Any) -> None:
        cell = value_of(v)
        if cell is None:
            return
        what, x = cell
        if what == "b":
            boolean(r, c, x, bool_fmt)
        else:
            write[what](r, c, x, fmt)

    return write_cell


class _Fragments(Remembered):
    """value -> the XML of its cell after `<c r="A2"`, exactly as XlsxWriter writes it in
    constant_memory mode (inline strings): "" for a missing value, None for a cell the fast rows
    leave to XlsxWriter (a boolean, a text over Excel's 32,767 characters). Text values are only
    remembered when they are str: 1, 1.0 and True are equal keys but different text cells."""

    LIMIT = 2_000  # per column: the XML of a cell is longer than its CSV text

    def __init__(self, ws: Any, value_of: Callable[[Any], Cell], fmt: Any, text: bool) -> None:
        super().__init__(self.fragment)
        self.ws = ws
        self.value_of = value_of
        self.fmt = fmt
        self.style = ""  # ' s="N"': N is given when the format is first used, as XlsxWriter does
        self.text = text

    def __missing__(self, value: Any) -> Any:
        if self.text and value.__class__ is not str:
            return self.fragment(value)
        return super().__missing__(value)

    def fragment(self, value: Any) -> str | None:
        cell = self.value_of(value)
        if cell is None:
            return ""
        what, x = cell
        if self.fmt and not self.style:
            self.style = f' s="{self.fmt._get_xf_index()}"'
        ws, style = self.ws, self.style
        if what == "n":
            return f"{style}><v>{x:.16G}</v></c>"
        if what == "d":
            return f"{style}><v>{ws._convert_date_time(x):.16G}</v></c>"
        if what == "s":
            if len(x) > ws.xls_strmax // 2 and _utf16_len(x) > ws.xls_strmax:
                return None  # XlsxWriter cuts it (and says so)
            x = ws._escape_control_characters(x)
            if x.startswith("<r>") and x.endswith("</r>"):
                return f'{style} t="inlineStr"><is>{x}</is></c>'
            preserve = ' xml:space="preserve"' if _preserve_whitespace(x) else ""
            return f'{style} t="inlineStr"><is><t{preserve}>{ws._escape_data(x)}</t></is></c>'
        return None


class _Rows:
    """Writes a table sheet's data rows.

    XlsxWriter in constant_memory mode keeps one row of cells as objects, then turns each cell into
    XML with a few function calls and regular expressions: most of an export's time. Here each
    column's values become the XML of their cells through a per-column memory (`_Fragments`: equal
    values repeat a lot), and a batch's rows are joined and appended to the sheet's row file at
    once: the same bytes XlsxWriter would write (tests compare them), in a fraction of the time.
    A row holding a cell the fast way does not take goes through XlsxWriter's own methods.
    Needs the pinned XlsxWriter's internals (checked by the tests); without them every row goes
    the reference way.
    """

    def __init__(
        self, ws: Any, columns: Sequence[Column], formats: Sequence[Any], bool_fmt: Any, *, fast: bool = True
    ) -> None:
        self.ws = ws
        self.writers = [
            _cell_writer(ws, col.kind, fmt, bool_fmt, col.key)
            for col, fmt in zip(columns, formats, strict=True)
        ]
        self.last_col = len(columns) - 1
        self.fast = fast and bool(columns) and _fast_rows_possible(ws)
        if self.fast:
            self.fragments = [
                _Fragments(ws, cell_of(col.kind, col.key), fmt, col.kind == "text").column
                for col, fmt in zip(columns, formats, strict=True)
            ]
            self.refs = [f'<c r="{xl_col_to_name(c)}' for c in range(len(columns))]

    def write(self, rows: Sequence[Sequence[Any]], last: int) -> int:
        """Write `rows` after row number `last` (0-based; the header is row 0); returns the new last."""
        if not rows:
            return last
        if not self.fast:
            cols = range(len(self.writers))
            for row in rows:
                last += 1
                for write, c, v in zip(self.writers, cols, row, strict=True):
                    write(last, c, v)
            return last
        ws = self.ws
        if ws.table:  # the header (or a row written the reference way) goes first, as in XlsxWriter
            ws._write_single_row(last + 1)
        pieces = zip(
            *[f(values) for f, values in zip(self.fragments, columns_of(rows), strict=True)], strict=True
        )
        refs = self.refs
        out: list[str] = []
        filled = -1  # the last row written here with a cell: the sheet's dimensions reach it
        for frags, row in zip(pieces, rows, strict=True):
            last += 1
            if None in frags:  # XlsxWriter's own way for this row
                if out:
                    ws.fh.write("".join(out))
                    out.clear()
                for c, (write, v) in enumerate(zip(self.writers, row, strict=True)):
                    write(last, c, v)
                continue
            if ws.table:  # a row written the reference way is still pending: XlsxWriter writes it
                ws._write_single_row(last)
            n = str(last + 1)
            cells = "".join([f'{ref}{n}"{frag}' for ref, frag in zip(refs, frags, strict=True) if frag])
            if cells:
                out.append(f'<row r="{n}">{cells}</row>')
                filled = last
        if out:
            ws.fh.write("".join(out))
        if filled >= ws.previous_row:
            ws._check_dimensions(filled, self.last_col)
        ws.previous_row = max(ws.previous_row, last)
        return last


def _fast_rows_possible(ws: Any) -> bool:
    """The pinned XlsxWriter's constant_memory internals the fast rows write through, in their
    default state (no custom row height, Excel 2007 row tags)."""
    needed = ("fh", "table", "previous_row", "xls_strmax", "default_row_height", "original_row_height")
    methods = (
        "_write_single_row",
        "_check_dimensions",
        "_convert_date_time",
        "_escape_control_characters",
        "_escape_data",
    )
    return (
        bool(getattr(ws, "constant_memory", False))
        and all(hasattr(ws, name) for name in needed)
        and all(callable(getattr(ws, name, None)) for name in methods)
        and ws.default_row_height == ws.original_row_height
        and getattr(ws, "excel_version", 2007) == 2007
    )


def _unchecked(ws: Any, method: str) -> Callable[..., Any]:
    """XlsxWriter's write method without its A1-notation wrapper (the public one if that is gone)."""
    private = getattr(ws, "_" + method, None)
    return private if callable(private) else getattr(ws, method)  # type: ignore[no-any-return]


def _shown_width(value: Any, kind: ColumnKind, symbol_width: int) -> int:
    """About how many characters a cell shows in its column format."""
    if kind == "money":
        x = money_value(value)
        return 0 if x is None else len(f"{x:,.2f}") + symbol_width
    if kind in ("int", "quantity", "number"):
        x = number_value(value)
        if x is None:
            return 0
        return len(f"{x:,.0f}") if kind == "int" or x.is_integer() else len(f"{x:,.3f}")
    if kind == "pct":
        x = number_value(value)
        return 0 if x is None else len(f"{x * 100:.1f}%")
    if kind == "date":
        return 10
    if kind == "month":
        return 8
    if kind == "datetime":
        return 19
    t = text_value(value)
    if t is None:
        return 0
    return 5 if isinstance(t, bool) else max(len(line) for line in t.split("\n"))


# --- the workbook ---------------------------------------------------------------------------------


@dataclass
class _SheetPlan:
    table: Table
    names: list[str]  # the first sheet, then continuation sheets " (2)", " (3)", ...


class _Book:
    def __init__(self, wb: Any, report: Report, max_rows: int, chart_row_limit: int) -> None:
        self.wb = wb
        self.report = report
        self.max_rows = max_rows
        self.chart_row_limit = chart_row_limit
        self.used_names: set[str] = set()
        self.fast_rows = True
        self.kind_formats = _kind_formats(report.currency)
        self._formats: dict[tuple[Any, ...], Any] = {}
        header = {
            "bold": True,
            "font_color": "#FFFFFF",
            "bg_color": _HEADER_BLUE,
            "border": 1,
            "valign": "top",
            "text_wrap": True,
        }
        self.header = {
            align: wb.add_format({**header, "align": align, "indent": 0 if align == "center" else 1})
            for align in ("left", "center", "right")
        }
        self.tz = report.timezone  # the business's: times people read are in it, the zone named

    def fmt(self, num_format: str | None = None, **props: Any) -> Any:
        props = {k: v for k, v in props.items() if v is not None}
        key = (num_format, *sorted(props.items()))
        found = self._formats.get(key)
        if found is None:
            spec = dict(props)
            if num_format:
                spec["num_format"] = num_format
            found = self._formats[key] = self.wb.add_format(spec)
        return found

    # sheet names: <= 31 characters, none of []:*?/\, unique regardless of case
    def sheet_name(self, wanted: str, reserve: int = 0) -> str:
        base = _BAD_SHEET_CHARS.sub(" ", wanted).strip().strip("'") or "Sheet"
        base = base[: 31 - reserve].rstrip()
        name, n = base, 2
        while name.lower() in self.used_names:
            suffix = f" {n}"
            name = base[: 31 - reserve - len(suffix)].rstrip() + suffix
            n += 1
        self.used_names.add(name.lower())
        return name

    def continuation_name(self, first: str, number: int) -> str:
        suffix = f" ({number})"
        name = first[: 31 - len(suffix)].rstrip() + suffix
        if name.lower() in self.used_names:  # another table's sheet is called that already
            return self.sheet_name(name)
        self.used_names.add(name.lower())
        return name

    def plan_sheets(self) -> list[_SheetPlan]:
        self.sheet_name("Summary")
        if self.report.charts:
            self.sheet_name("Charts")
        plans = []
        for name, table in self.report.tables.items():
            first = self.sheet_name(name.replace("_", " ").strip().capitalize(), reserve=4)
            sheets = max(1, math.ceil(table.row_count / self.max_rows))
            plans.append(
                _SheetPlan(table, [first, *(self.continuation_name(first, n) for n in range(2, sheets + 1))])
            )
        return plans

    def print_setup(self, ws: Any, title: str, *, repeat_header: bool, portrait: bool = False) -> None:
        if portrait:
            ws.set_portrait()
        else:
            ws.set_landscape()
        ws.fit_to_pages(1, 0)
        ws.set_paper(9)  # A4
        ws.set_margins(left=0.5, right=0.5, top=0.75, bottom=0.75)
        if repeat_header:
            ws.repeat_rows(0)
        business = self.report.business_name or self.report.business_code
        # Excel allows 255 characters per header and footer, control codes included
        ws.set_header(f'&L&"-,Bold"{_amp(title[:100])}&R{_amp(business[:80])}')
        ws.set_footer(
            f"&L{_amp(self.report.title[:80])}, {_amp(self.report.period_label())}&CPage &P of &N"
            f"&RGenerated {_amp(time_text(self.report.generated_at, self.tz))}"
        )

    # --- Summary --------------------------------------------------------------------------------

    def write_summary(self, plans: list[_SheetPlan]) -> None:
        report = self.report
        ws = self.wb.add_worksheet("Summary")
        ws.hide_gridlines(2)
        self.print_setup(ws, report.title, repeat_header=False, portrait=True)
        parameters = _parameter_lines(report)
        generated = in_zone(report.generated_at, self.tz)
        generated_label = f"Generated at ({self.tz})"
        # The label column fits its longest label (bold, so a little wider than its characters);
        # the third column takes what is left of a portrait page (it holds the row counts).
        # With comparisons the key figures are a grid: each KPI beside each compared period and the
        # change (landscape, a column per figure); the comparison KPIs are not listed again.
        compared = side_by_side(report, every=True)
        covered = compared.covered if compared is not None else set()
        listed = [k for k in report.kpis if k.key not in covered]
        labels = [key for key, _ in parameters] + [generated_label, "Key figures", "Tables", "Notes"]
        labels += [kpi.label for kpi in listed]
        first = min(80.0, max(24.0, max(len(t) for t in labels) * 1.05 + 2))
        ws.set_column(0, 0, first)
        ws.set_column(1, 1, 24)
        ws.set_column(2, 2, max(12.0, 104 - first - 24))
        if compared is not None:
            for col, heading in enumerate(compared.columns[2:], start=2):
                ws.set_column(col, col, max(16.0 if col == 2 else 12.0, len(heading) * 1.05 + 2))
            ws.set_landscape()
        label = self.fmt(bold=True, font_color="#404040")
        text = self.fmt(None, text_wrap=True, valign="top")
        section = self.fmt(None, bold=True, font_size=12, font_color=_HEADER_BLUE, bottom=1)
        grey = self.fmt(None, italic=True, font_color="#808080")

        ws.set_row(0, 26)
        ws.write_string(0, 0, _safe(report.title), self.fmt(None, bold=True, font_size=18))
        ws.write_string(
            1, 0, _safe(report.business_name or report.business_code), self.fmt(None, font_size=13)
        )
        row = 2
        if report.is_empty:
            ws.write_string(row, 0, NO_DATA, self.fmt(None, bold=True, font_size=12, font_color="#C00000"))
        row += 2

        ws.write_string(row, 0, "Report", section)
        ws.write_blank(row, 1, None, section)
        ws.write_blank(row, 2, None, section)
        row += 1
        for key, value in parameters:
            ws.write_string(row, 0, key, label)
            ws.write_string(row, 1, _safe(value))  # long values run on over the empty cells beside
            row += 1
        ws.write_string(row, 0, generated_label, label)
        zone_name = (generated.tzname() or self.tz).replace('"', "")
        ws.write_datetime(
            row,
            1,
            generated.replace(tzinfo=None),
            self.fmt(f'yyyy-mm-dd hh:mm:ss" {zone_name}"', align="left"),
        )
        row += 2

        if report.kpis:
            ws.write_string(row, 0, "Key figures", section)
            headings = compared.columns[1:] if compared is not None else ["", ""]
            right = self.fmt(None, bold=True, font_size=10, font_color=_HEADER_BLUE, bottom=1, align="right")
            for col, heading in enumerate(headings, start=1):
                if heading:
                    ws.write_string(row, col, heading, right)
                else:
                    ws.write_blank(row, col, None, section)
            row += 1
            grid = {r.kpi.key: r for r in compared.rows} if compared is not None else {}
            for kpi in listed:
                ws.write_string(row, 0, _safe(kpi.label), label)
                self.write_kpi(ws, row, kpi, grey, align="right" if grid else "left")
                found = grid.get(kpi.key)
                for i, (before, moved) in enumerate(
                    zip(found.before, found.changes, strict=True) if found else ()
                ):
                    if before is not None:
                        self.write_kpi(ws, row, before, grey, col=2 + 2 * i, align="right")
                    if moved is not None:
                        # a change in percentage points is written as the difference of the rates
                        change_fmt = (
                            '+0.0" pp";-0.0" pp";0.0" pp"' if moved.unit == "pp" else "+0.0%;-0.0%;0.0%"
                        )
                        x = moved.change * 100 if moved.unit == "pp" else moved.change
                        ws.write_number(row, 3 + 2 * i, x, self.fmt(change_fmt, align="right"))
                    elif before is not None:
                        ws.write_string(
                            row,
                            3 + 2 * i,
                            "n/a",
                            self.fmt(None, italic=True, font_color="#808080", align="right"),
                        )
                row += 1
            row += 1

        ws.write_string(row, 0, "Tables", section)
        ws.write_string(row, 1, "Sheet", section)
        ws.write_string(row, 2, "Rows", section)
        row += 1
        link = self.fmt(None, font_color="#0563C1", underline=1)
        for plan in plans:
            ws.write_string(row, 0, _safe(plan.table.title), self.fmt(None, text_wrap=True, valign="top"))
            sheets = (
                plan.names[0] if len(plan.names) == 1 else f"{plan.names[0]} … ({len(plan.names)} sheets)"
            )
            ws.write_url(row, 1, f"internal:{_quote_sheet(plan.names[0])}!A1", link, sheets)
            ws.write_number(row, 2, plan.table.row_count, self.fmt("#,##0", align="left"))
            row += 1
        if report.charts:
            drawn = sum(not reason for _, reason in self.chart_plan(plans))
            ws.write_string(row, 0, "Charts", self.fmt(None, text_wrap=True, valign="top"))
            ws.write_url(row, 1, "internal:Charts!A1", link, "Charts")
            ws.write_number(row, 2, drawn, self.fmt("#,##0", align="left"))
            row += 1

        if report.notes:
            row += 1
            ws.write_string(row, 0, "Notes", section)
            ws.write_blank(row, 1, None, section)
            ws.write_blank(row, 2, None, section)
            row += 1
            for note in report.notes:
                ws.merge_range(row, 0, row, 2, "", text)
                ws.write_string(row, 0, _safe(note), text)
                ws.set_row(row, 15 * max(1, math.ceil(len(note) / 120)))
                row += 1

    def write_kpi(
        self, ws: Any, row: int, kpi: Kpi, missing_fmt: Any, *, col: int = 1, align: str = "left"
    ) -> None:
        """The KPI's value in cell (row, col), typed by its kind (left-aligned in the list of key
        figures, right-aligned in the grid of compared periods)."""
        value: Any = kpi.value
        left = {"align": align}
        if kpi.kind == "money":
            x = money_value(value)
            if x is not None:
                ws.write_number(row, col, x, self.fmt(self.kind_formats["money"], **left))
                return
        elif kpi.kind in ("int", "quantity", "number", "pct"):
            x = number_value(value)
            if x is not None:
                num_format = self.kind_formats[kpi.kind]
                if kpi.kind == "quantity" and not x.is_integer():
                    num_format = "#,##0.000"
                ws.write_number(row, col, x, self.fmt(num_format, **left))
                return
        elif kpi.kind in ("date", "month", "datetime"):
            when = {"date": date_value, "month": month_value, "datetime": datetime_value}[kpi.kind](value)
            if when is not None:
                ws.write_datetime(row, col, when, self.fmt(self.kind_formats[kpi.kind], **left))
                return
        else:
            t = text_value(value)
            if isinstance(t, bool):
                ws.write_boolean(row, col, t, self.fmt(BOOL_FORMAT, **left))
                return
            if t is not None:
                ws.write_string(row, col, t)
                return
        ws.write_string(row, col, "n/a", missing_fmt)

    # --- table sheets ---------------------------------------------------------------------------

    def write_table(self, plan: _SheetPlan) -> None:
        table = plan.table
        columns = table.columns
        head, rest = _peek(table.batches(), WIDTH_SAMPLE)
        formats = [
            self.fmt(
                self.column_format(col, head, i, table),
                valign="top",
                align=_align(col.kind),
                indent=1 if col.kind == "text" else None,  # keeps text off a number on its left
            )
            for i, col in enumerate(columns)
        ]
        widths = _fit_widths(columns, head, self.report.currency)

        sheet_no = 0
        ws, rows = self.open_table_sheet(plan, sheet_no, formats, widths)
        r = 0  # data rows on the current sheet
        for batch in itertools.chain((head,), rest):
            start, size = 0, len(batch)
            while start < size:
                if r == self.max_rows:
                    self.close_table_sheet(ws, plan, r)
                    sheet_no += 1
                    ws, rows = self.open_table_sheet(plan, sheet_no, formats, widths)
                    r = 0
                stop = min(size, start + self.max_rows - r)
                r = rows.write(batch[start:stop] if start or stop < size else batch, r)
                start = stop
        self.close_table_sheet(ws, plan, r)

    def column_format(self, col: Column, head: Sequence[tuple[Any, ...]], index: int, table: Table) -> str:
        if col.kind != "quantity":
            return self.kind_formats[col.kind]
        streamed = table.stream is not None
        seen = [row[index] for row in head] if streamed else table.frame[col.key].tolist()
        numbers = [number_value(v) for v in seen]
        if any(x is not None and not x.is_integer() for x in numbers):
            return "#,##0.000"
        # a streamed table's later rows are unseen: General shows any fraction there exactly
        return "General" if streamed and table.row_count > len(head) else "#,##0"

    def open_table_sheet(
        self, plan: _SheetPlan, sheet_no: int, formats: list[Any], widths: list[float]
    ) -> tuple[Any, _Rows]:
        table = plan.table
        if sheet_no >= len(plan.names):  # the stream yielded more rows than it announced
            plan.names.append(self.continuation_name(plan.names[0], sheet_no + 1))
        ws = self.wb.add_worksheet(plan.names[sheet_no])
        title = table.title if sheet_no == 0 else f"{table.title} (continued, part {sheet_no + 1})"
        self.print_setup(ws, title, repeat_header=True)
        ws.freeze_panes(1, 0)
        for c, (fmt, width) in enumerate(zip(formats, widths, strict=True)):
            ws.set_column(c, c, width, fmt)
        wraps = any(_header_width(c.label) > w for c, w in zip(table.columns, widths, strict=True))
        ws.set_row(0, 32 if wraps else 20)
        for c, col in enumerate(table.columns):
            ws.write_string(0, c, _safe(col.label), self.header[_align(col.kind)])
        flag = self.fmt(BOOL_FORMAT, valign="top", align="center")
        # XlsxWriter numbers a format when a cell first uses it; numbering the sheet's formats now,
        # in column order, makes the file the same however its rows are written (see _Rows).
        for fmt in [*(self.header[_align(c.kind)] for c in table.columns), *formats, flag]:
            fmt._get_xf_index()
        return ws, _Rows(ws, table.columns, formats, flag, fast=self.fast_rows)

    def close_table_sheet(self, ws: Any, plan: _SheetPlan, rows: int) -> None:
        last_col = len(plan.table.columns) - 1
        ws.autofilter(0, 0, rows, last_col)
        if rows:
            self.highlight(ws, plan.table, rows)

    def highlight(self, ws: Any, table: Table, rows: int) -> None:
        """Conditional formats from the table's highlights over each flagged column's cells."""
        keys = [c.key for c in table.columns]
        fills = [_LIGHT_RED, _LIGHT_AMBER]
        for n, h in enumerate(table.highlights):
            if h.column not in keys:
                continue
            c = keys.index(h.column)
            spec = _condition(h, c)
            look = _RED_FONT if h.op == "lt" else fills[min(n, 1) if h.op == "eq" else 0]
            spec["format"] = self.fmt(None, **look)
            ws.conditional_format(1, c, rows, c, spec)

    # --- charts ---------------------------------------------------------------------------------

    def chart_plan(self, plans: list[_SheetPlan]) -> list[tuple[ChartSpec, str]]:
        """Each chart spec with the reason it is not drawn ("" when it is)."""
        by_name = dict(zip(self.report.tables, plans, strict=True))
        return [
            (spec, _chart_skip_reason(spec, by_name.get(spec.table), self.chart_row_limit))
            for spec in self.report.charts
        ]

    def write_charts(self, plans: list[_SheetPlan]) -> None:
        ws = self.wb.add_worksheet("Charts")
        self.print_setup(ws, f"{self.report.title}: charts", repeat_header=False)
        ws.write_string(0, 0, "Charts", self.fmt(None, bold=True, font_size=14))
        by_name = dict(zip(self.report.tables, plans, strict=True))
        drawn: list[Any] = []
        notes: list[str] = []
        for spec, reason in self.chart_plan(plans):
            if reason:
                notes.append(f"{spec.title}: not drawn — {reason}.")
            else:
                drawn.append(self.chart(spec, by_name[spec.table]))
        row = 1
        note_fmt = self.fmt(None, italic=True, font_color="#595959")
        for note in notes:
            ws.write_string(row, 0, _safe(note), note_fmt)
            row += 1
        if not drawn:
            ws.write_string(row, 0, NO_DATA if self.report.is_empty else "No charts to draw.", note_fmt)
        top = row + 1
        for i, chart in enumerate(drawn):
            ws.insert_chart(top + (i // 2) * 20, (i % 2) * 10, chart, {"x_offset": 8, "y_offset": 4})

    def chart(self, spec: ChartSpec, plan: _SheetPlan) -> Any:
        table = plan.table
        keys = [c.key for c in table.columns]
        sheet = plan.names[0]
        n = table.row_count
        xc = keys.index(spec.x)
        x_kind = table.column(spec.x).kind
        categories = [sheet, 1, xc, n, xc]

        def series(key: str, **extra: Any) -> dict[str, Any]:
            c = keys.index(key)
            return {"name": [sheet, 0, c], "categories": categories, "values": [sheet, 1, c, n, c], **extra}

        axis_format = _axis_format(spec.y_kind, self.report.currency)
        if spec.kind == "pie":
            chart = self.wb.add_chart({"type": "pie"})
            chart.add_series(series(spec.y[0], data_labels={"percentage": True}))
            chart.set_legend({"position": "right"})
        elif spec.kind == "pareto":
            chart = self.wb.add_chart({"type": "column"})
            chart.add_series(series(spec.y[0], gap=50))
            if len(spec.y) > 1:
                line = self.wb.add_chart({"type": "line"})
                line.add_series(series(spec.y[1], y2_axis=True, smooth=False, marker={"type": "none"}))
                second_kind = table.column(spec.y[1]).kind
                line.set_y2_axis({"num_format": _axis_format(second_kind, self.report.currency), "min": 0})
                chart.combine(line)
            chart.set_y_axis({"num_format": axis_format, "major_gridlines": {"visible": True}})
            chart.set_legend({"position": "bottom"})
        else:
            kind = "line" if spec.kind == "line" else "column"
            options: dict[str, Any] = {"type": kind}
            if spec.kind == "stacked_bar":
                options["subtype"] = "stacked"
            chart = self.wb.add_chart(options)
            for key in spec.y:
                extra: dict[str, Any] = (
                    {"smooth": False, "marker": {"type": "circle", "size": 4}} if kind == "line" else {}
                )
                if spec.kind == "stacked_bar":
                    extra["gap"] = 50
                chart.add_series(series(key, **extra))
            chart.set_y_axis({"num_format": axis_format, "major_gridlines": {"visible": True}})
            chart.set_legend({"position": "bottom"} if len(spec.y) > 1 else {"none": True})
        if spec.kind != "pie":
            x_axis: dict[str, Any] = {}
            if x_kind in ("date", "month", "datetime"):
                # one category per row, labelled as in the sheet (a date axis spaces them by time and
                # LibreOffice labels a single month wrongly)
                x_axis["text_axis"] = True
                x_axis["num_format"] = {"date": "yyyy-mm-dd", "month": "mmm yyyy", "datetime": "yyyy-mm-dd"}[
                    x_kind
                ]
            if n > 12:
                x_axis["num_font"] = {"rotation": -45}
            if x_axis:
                chart.set_x_axis(x_axis)
        chart.set_title({"name": spec.title, "name_font": {"size": 12, "bold": True}})
        chart.set_size({"width": 620, "height": 380})
        return chart


# --- small pieces ---------------------------------------------------------------------------------


def _align(kind: ColumnKind) -> str:
    """Dates centred (they sit between left-aligned text and right-aligned numbers); numbers right."""
    if kind in ("date", "month", "datetime"):
        return "center"
    return "left" if kind == "text" else "right"


def _peek(
    batches: Iterable[Sequence[tuple[Any, ...]]], at_least: int
) -> tuple[list[tuple[Any, ...]], Iterator[Sequence[tuple[Any, ...]]]]:
    """The first rows (whole batches, at least `at_least` rows unless the table is shorter) and the rest."""
    it = iter(batches)
    head: list[tuple[Any, ...]] = []
    while len(head) < at_least:
        batch = next(it, None)
        if batch is None:
            break
        head.extend(batch)
    return head, it


def _fit_widths(columns: list[Column], head: Sequence[tuple[Any, ...]], currency: str) -> list[float]:
    """Column widths (in characters) for the header and the first rows; a long header wraps to two lines."""
    symbol_width = len(currency_symbol(currency))
    widths = []
    for i, col in enumerate(columns):
        named = labeller(col.key) or (lambda v: v)
        shown = max(
            (_shown_width(named(row[i]), col.kind, symbol_width) for row in head[:WIDTH_SAMPLE]), default=0
        )
        minimum = {"date": 10, "month": 9, "datetime": 19, "money": 10, "pct": 7}.get(col.kind, 6)
        data = max(minimum, shown + 2)
        # bold header text, its indent and the autofilter button beside it
        one_line = _header_width(col.label)
        if one_line <= max(data, 14):
            width = max(data, one_line)
        else:
            longest_word = max(len(w) for w in col.label.split())
            width = max(data, _header_width("x" * max(longest_word, math.ceil(len(col.label) / 2))))
        widths.append(float(min(60, width)))
    return widths


def _header_width(label: str) -> float:
    return len(label) * 1.1 + 4


def _condition(h: Highlight, c: int) -> dict[str, Any]:
    """XlsxWriter's conditional format options for a highlight on column `c` (rows from the second)."""
    value = label(h.column, h.value)  # the cells of a code column hold its labels
    if h.op == "abs_gt":
        cell = xlsxwriter.utility.xl_rowcol_to_cell(1, c, row_abs=False, col_abs=True)
        return {"type": "formula", "criteria": f"=AND(ISNUMBER({cell}),ABS({cell})>{_formula_number(value)})"}
    criteria = {"gt": ">", "lt": "<", "eq": "=="}[h.op]
    if isinstance(value, bool):
        return {"type": "cell", "criteria": criteria, "value": "TRUE" if value else "FALSE"}
    if isinstance(value, int | float):
        return {"type": "cell", "criteria": criteria, "value": _formula_number(value)}
    escaped = str(value).replace('"', '""')
    return {"type": "cell", "criteria": criteria, "value": f'"{escaped}"'}


def _formula_number(value: float | str) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _chart_skip_reason(spec: ChartSpec, plan: _SheetPlan | None, row_limit: int) -> str:
    if plan is None:
        return f"the report has no table {spec.table!r}"
    table = plan.table
    keys = {c.key for c in table.columns}
    if not {spec.x, *spec.y} <= keys:
        return "its columns are not in the table"
    if table.row_count == 0:
        return "no data for this period"
    if table.stream is not None or table.row_count > row_limit:
        return f"its table has {table.row_count:,} rows (charts are drawn for at most {row_limit:,})"
    if len(plan.names) > 1:
        return "its table continues over several sheets"
    return ""


def _axis_format(kind: ColumnKind, currency: str) -> str:
    if kind == "money":
        return money_format(currency, decimals=0)
    if kind == "pct":
        return "0%"
    if kind == "number":
        return "#,##0.0"
    return "#,##0"


def _parameter_lines(report: Report) -> list[tuple[str, str]]:
    params = report.parameters
    lines = [("Period", report.period_label()), ("Currency", report.currency)]
    filters = params.get("filters") or {}

    def shown(key: str, values: list[Any]) -> str:
        return ", ".join(str(label(key, v)) if key in CODE_FILTERS else str(v) for v in values)

    lines.append(("Filters", "; ".join(f"{k}: {shown(k, v)}" for k, v in filters.items()) or "none"))
    options = params.get("options") or {}
    if options:
        lines.append(("Options", "; ".join(f"{k} = {v}" for k, v in options.items())))
    columns = params.get("columns") or {}
    if columns:
        lines.append(("Columns", "; ".join(f"{k}: {', '.join(map(str, v))}" for k, v in columns.items())))
    lines.append(("Time zone", str(params.get("tz") or "UTC")))
    known = {"period", "start", "end", "tz", "filters", "options", "columns", "now"}
    for key, value in params.items():
        if key not in known:
            # a parameter that says how it reads (a compared period's {"start", "end", "text"}) shows that
            said = value.get("text") if isinstance(value, dict) else label(key, value)
            lines.append(
                (
                    key.replace("_", " ").capitalize(),
                    said if isinstance(said, str) else json.dumps(value, default=str, ensure_ascii=False),
                )
            )
    return lines


def _properties(report: Report) -> dict[str, Any]:
    created = report.generated_at
    if created.tzinfo is not None:
        created = created.astimezone(dt.UTC).replace(tzinfo=None)
    return {
        "title": report.title,
        "subject": report.business_name or report.business_code,
        "author": "Tallyboard",
        "company": report.business_name or report.business_code,
        "keywords": report.slug,
        "created": created,
        "comments": json.dumps(report.parameters, default=str, ensure_ascii=False, sort_keys=True),
    }


def _amp(text: str) -> str:
    """Header/footer text: & starts a control code there, so a literal & is doubled."""
    return text.replace("&", "&&")


def _quote_sheet(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"
