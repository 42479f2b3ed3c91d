"""Report -> PDF: a header and footer on every page, KPI cards, charts, then paged tables (fpdf2).

Tables are drawn cell by cell with `text` and `rect` (fpdf2's `table()` is six times slower):
10,000 rows make about 240 landscape pages in a few seconds. DejaVu Sans, which matplotlib
ships, prints €, ₱ and accented names.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import matplotlib
import pandas as pd
from fpdf import FPDF
from fpdf.enums import Align, PageMode, XPos, YPos
from fpdf.fonts import TTFFont

from analytics.formatting import format_cell, is_highlighted
from analytics.kpis import SideBySide, side_by_side
from analytics.labels import CODE_FILTERS, column_formatter
from analytics.labels import label as code_label
from analytics.report import Column, ColumnKind, Highlight, Kpi, Report, Table
from exporters.cells import time_text
from exporters.static_charts import chart_png

PageSize = Literal["A4", "Letter"]

DEFAULT_MAX_TABLE_ROWS = 5_000
FONT = "DejaVu"
FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
NUMERIC_KINDS: frozenset[ColumnKind] = frozenset({"int", "quantity", "number", "money", "pct"})
ELLIPSIS = "…"

# Page geometry, millimetres (landscape).
MARGIN = 10.0
CONTENT_TOP = 22.0
CONTENT_BOTTOM = 13.0  # distance from the bottom edge where content stops
SECTION_GAP = 6.0

# Tables.
TABLE_FONT_SIZES = (8.0, 7.5, 7.0, 6.5, 6.0)  # many-column tables step down to a smaller size
CELL_PAD = 1.2
MAX_HEADER_LINES = 3
MIN_TEXT_WIDTH = 12.0
STRETCH = 0.8  # a table at least this share of the page wide is widened to the full width
ROOM = 1.25  # narrower tables get this much more than their content needs
NOTICE_HEIGHT = 6.0
KEEP_TOGETHER = 40  # a table of up to this many rows starts on a new page rather than split

# KPI cards and charts.
KPI_COLUMNS = 6
KPI_HEIGHT = 16.0
KPI_GAP = 3.0
CHART_HEIGHT = 78.0
CHART_GAP = 6.0
CHART_DPI = 170

# Colours (RGB).
INK = (15, 23, 42)
MUTED = (100, 116, 139)
RULE = (203, 213, 225)
HEAD_FILL = (30, 58, 95)
HEAD_INK = (255, 255, 255)
STRIPE = (241, 245, 249)
CARD_FILL = (241, 245, 249)
FLAG_FILL = (254, 226, 226)
FLAG_INK = (185, 28, 28)


def write_pdf(
    report: Report,
    out: IO[bytes],
    *,
    page_size: PageSize = "A4",
    max_table_rows: int = DEFAULT_MAX_TABLE_ROWS,
) -> None:
    """Write the report as a landscape PDF; tables stop after `max_table_rows` rows with a notice."""
    out.write(pdf_bytes(report, page_size=page_size, max_table_rows=max_table_rows))


def pdf_bytes(
    report: Report, *, page_size: PageSize = "A4", max_table_rows: int = DEFAULT_MAX_TABLE_ROWS
) -> bytes:
    """The report as PDF bytes (see `write_pdf`)."""
    if max_table_rows < 0:
        raise ValueError("max_table_rows must not be negative")
    doc = _Document(report, page_size)
    doc.add_page()
    if report.is_empty:
        _no_data_page(doc, report)
    else:
        _summary(doc, report)
        _charts(doc, report)
        for table in report.tables.values():
            _table(doc, report, table, max_table_rows)
    return bytes(doc.output())


# --- the document ------------------------------------------------------------------------------


class _Document(FPDF):
    """A4 or Letter landscape with the report's header and a 'Page x of y' footer on every page."""

    def __init__(self, report: Report, page_size: PageSize) -> None:
        super().__init__(orientation="L", unit="mm", format=page_size)
        self.report = report
        self.add_font(FONT, "", str(FONT_DIR / "DejaVuSans.ttf"))
        self.add_font(FONT, "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
        self.glyph_widths = {style: self._glyph_widths(f"{FONT.lower()}{style}") for style in ("", "B")}
        self.set_margins(MARGIN, CONTENT_TOP, MARGIN)
        self.set_auto_page_break(True, margin=CONTENT_BOTTOM)
        self.page_mode = PageMode.USE_OUTLINES
        self.set_creation_date(report.generated_at)
        self.set_title(f"{report.title}, {report.period_label()}")
        self.set_author(report.business_name)
        self.set_subject(f"{report.title} for {report.business_name}, {report.period_label()}")
        self.set_creator("Tallyboard")
        self.set_lang("en")
        self.generated = f"Generated {time_text(report.generated_at, report.timezone)}"

    def _glyph_widths(self, key: str) -> dict[int, float]:
        """Advance width of each code point, in thousandths of the font size (a defaultdict)."""
        font = self.fonts[key]
        assert isinstance(font, TTFFont)
        return font.cw

    @property
    def bottom(self) -> float:
        return self.h - CONTENT_BOTTOM

    def header(self) -> None:
        report = self.report
        self.set_text_color(*INK)
        right = self.w - MARGIN
        name = self.fit(report.business_name, 80, "B", 9)
        self.set_font(FONT, "B", 13)
        self.text(MARGIN, 12, self.fit(report.title, right - MARGIN - 90, "B", 13))
        self.set_font(FONT, "B", 9)
        self.text(right - self.width(name, "B", 9), 12, name)
        self.set_font(FONT, "", 8.5)
        self.set_text_color(*MUTED)
        self.text(MARGIN, 17, f"Period: {report.period_label()}")
        self.set_draw_color(*RULE)
        self.set_line_width(0.3)
        self.line(MARGIN, 19.5, right, 19.5)
        self.set_text_color(*INK)

    def footer(self) -> None:
        self.set_draw_color(*RULE)
        self.set_line_width(0.2)
        self.line(MARGIN, self.h - 10.5, self.w - MARGIN, self.h - 10.5)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*MUTED)
        self.set_xy(MARGIN, self.h - 10)
        self.cell(100, 5, f"{self.generated} · Tallyboard", align=Align.L)
        self.set_xy(self.w - MARGIN - 60, self.h - 10)
        self.cell(60, 5, f"Page {self.page_no()} of {{nb}}", align=Align.R)
        self.set_text_color(*INK)

    # Text measured from the font's glyph widths: far cheaper than get_string_width per cell.
    def units(self, text: str, style: str = "") -> int:
        """Width of `text` in thousandths of the font size."""
        return int(sum(map(self.glyph_widths[style].__getitem__, map(ord, text))))

    def width(self, text: str, style: str, size: float) -> float:
        """Width of `text` in millimetres at `size` points."""
        return self.units(text, style) * size / 1000 / self.k

    def fit(self, text: str, max_mm: float, style: str, size: float) -> str:
        """`text`, cut with an ellipsis if it is wider than `max_mm`."""
        return _fit(self, text, int(max_mm * 1000 * self.k / size), style)

    def wrap(self, text: str, max_mm: float, style: str, size: float, max_lines: int) -> list[str]:
        """Word-wrap `text` into at most `max_lines` lines; the last one is cut with an ellipsis."""
        limit = int(max_mm * 1000 * self.k / size)
        lines: list[str] = []
        current = ""
        for word in text.split():
            candidate = f"{current} {word}" if current else word
            if current and self.units(candidate, style) > limit:
                lines.append(current)
                current = word
            else:
                current = candidate
        if current:
            lines.append(current)
        if len(lines) > max_lines:
            lines = [*lines[: max_lines - 1], " ".join(lines[max_lines - 1 :])]
        return [_fit(self, line, limit, style) for line in lines] or [""]

    def need(self, height: float) -> None:
        """Start a new page unless `height` millimetres still fit on this one."""
        if self.get_y() + height > self.bottom:
            self.add_page()

    def heading(self, text: str, size: float = 11) -> None:
        self.set_font(FONT, "B", size)
        self.set_text_color(*INK)
        self.text(MARGIN, self.get_y() + size * 0.3528, text)
        self.set_y(self.get_y() + size * 0.3528 + 2.5)


def _fit(doc: _Document, text: str, limit: int, style: str) -> str:
    if doc.units(text, style) <= limit:
        return text
    ellipsis = doc.units(ELLIPSIS, style)
    low, high = 0, len(text)
    while low < high:  # longest prefix that fits with the ellipsis
        mid = (low + high + 1) // 2
        if doc.units(text[:mid], style) + ellipsis <= limit:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ELLIPSIS if low else ELLIPSIS


# --- first page: parameters, KPIs, notes -------------------------------------------------------


def parameter_lines(report: Report) -> list[tuple[str, str]]:
    """The report's parameters as (label, value) pairs for people."""
    params = report.parameters
    lines: list[tuple[str, str]] = []
    if report.period is not None:
        lines.append(("Period", report.period_label()))
    if params.get("tz"):
        lines.append(("Time zone", str(params["tz"])))
    for dim, values in dict(params.get("filters") or {}).items():
        shown = [str(code_label(dim, v)) if dim in CODE_FILTERS else str(v) for v in values]
        lines.append((dim.replace("_", " ").capitalize(), ", ".join(shown)))
    for name, value in dict(params.get("options") or {}).items():
        lines.append((name.replace("_", " ").capitalize(), str(value)))
    for table, cols in dict(params.get("columns") or {}).items():
        lines.append((f"Columns of {table}", ", ".join(map(str, cols))))
    return lines


def _parameters(doc: _Document, report: Report) -> None:
    doc.set_font(FONT, "", 8)
    doc.set_text_color(*MUTED)
    summary = " · ".join(f"{label}: {value}" for label, value in parameter_lines(report))
    doc.multi_cell(doc.epw, 3.6, summary, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_text_color(*INK)
    doc.ln(3)


def _summary(doc: _Document, report: Report) -> None:
    _parameters(doc, report)
    compared = side_by_side(report)
    covered = compared.covered if compared is not None else set()
    if report.kpis:
        doc.start_section("Key figures")
        doc.heading("Key figures")
        _kpi_cards(doc, [k for k in report.kpis if k.key not in covered], report.currency)
    if compared is not None:
        table = _side_by_side_table(compared, report.currency)
        figures = [c.key for c in table.columns[1:]]
        _table(doc, report, table, DEFAULT_MAX_TABLE_ROWS, right=figures)
    if report.notes:
        doc.need(12)
        doc.set_font(FONT, "B", 9)
        doc.cell(0, 5, "Notes", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        doc.set_font(FONT, "", 8)
        doc.set_text_color(*MUTED)
        for note in report.notes:
            doc.multi_cell(doc.epw, 3.8, f"•  {note}", align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        doc.set_text_color(*INK)
        doc.ln(2)


def _side_by_side_table(compared: SideBySide, currency: str) -> Table:
    """The KPIs beside each compared period, as text (each row formats its own kind)."""
    names = [f"c{i}" for i in range(len(compared.columns))]
    columns = [Column(n, label) for n, label in zip(names, compared.columns, strict=True)]
    frame = pd.DataFrame(compared.texts(currency), columns=names)
    return Table("side_by_side", "Compared with other periods", columns, frame)


def _kpi_cards(doc: _Document, kpis: Sequence[Kpi], currency: str) -> None:
    width = (doc.epw - (KPI_COLUMNS - 1) * KPI_GAP) / KPI_COLUMNS
    inner = width - 5
    for start in range(0, len(kpis), KPI_COLUMNS):
        doc.need(KPI_HEIGHT + KPI_GAP)
        y = doc.get_y()
        for i, kpi in enumerate(kpis[start : start + KPI_COLUMNS]):
            x = MARGIN + i * (width + KPI_GAP)
            doc.set_fill_color(*CARD_FILL)
            doc.rect(x, y, width, KPI_HEIGHT, style="F", round_corners=True, corner_radius=1.5)
            doc.set_font(FONT, "", 7)
            doc.set_text_color(*MUTED)
            for n, line in enumerate(doc.wrap(kpi.label, inner, "", 7, 2)):
                doc.text(x + 2.5, y + 4.2 + n * 3.0, line)
            value = format_cell(kpi.value, kpi.kind, currency)
            size = 12.0
            while size > 7 and doc.width(value, "B", size) > inner:
                size -= 0.5
            doc.set_font(FONT, "B", size)
            doc.set_text_color(*INK)
            doc.text(x + 2.5, y + KPI_HEIGHT - 2.8, doc.fit(value, inner, "B", size))
        doc.set_y(y + KPI_HEIGHT + KPI_GAP)
    doc.ln(SECTION_GAP - KPI_GAP)


# --- charts ------------------------------------------------------------------------------------


def _charts(doc: _Document, report: Report) -> None:
    charts = [c for c in report.charts if c.table in report.tables]
    if not charts:
        return
    width = (doc.epw - CHART_GAP) / 2
    size_px = (round(width / 25.4 * CHART_DPI), round(CHART_HEIGHT / 25.4 * CHART_DPI))
    doc.need(CHART_HEIGHT + 8)
    doc.start_section("Charts")
    doc.heading("Charts")
    for start in range(0, len(charts), 2):
        doc.need(CHART_HEIGHT)
        y = doc.get_y()
        for i, chart in enumerate(charts[start : start + 2]):
            png = chart_png(
                chart,
                report.tables[chart.table],
                report.currency,
                width_px=size_px[0],
                height_px=size_px[1],
                dpi=CHART_DPI,
            )
            doc.set_y(y)
            doc.start_section(chart.title, level=1)
            doc.image(io.BytesIO(png), x=MARGIN + i * (width + CHART_GAP), y=y, w=width, h=CHART_HEIGHT)
        doc.set_y(y + CHART_HEIGHT + CHART_GAP)


# --- tables ------------------------------------------------------------------------------------


@dataclass
class _Layout:
    size: float  # font size, points
    widths: list[float]  # column widths, mm
    header: list[list[str]]  # each column's header lines
    right: list[bool]  # right-aligned (numbers)

    @property
    def row_height(self) -> float:
        return self.size * 0.3528 * 1.55

    @property
    def header_height(self) -> float:
        return max(len(lines) for lines in self.header) * self.size * 0.3528 * 1.25 + 2.2


def _table(doc: _Document, report: Report, table: Table, max_rows: int, *, right: Sequence[str] = ()) -> None:
    """Draw `table` under its title (after `max_rows` rows a notice); text columns in `right`
    (figures already formatted) align right like numbers."""
    total = table.row_count
    columns = table.columns
    formats = [column_formatter(c, report.currency) for c in columns]
    flags = [(i, h) for h in table.highlights for i, c in enumerate(columns) if c.key == h.column]
    batches = _formatted_batches(table, formats, flags, max_rows) if total and max_rows else iter([])
    first = next(batches, [])
    layout = _layout(doc, columns, first, right)

    title_height = 11 * 0.3528 + 6.0
    body = (
        layout.header_height
        + len(first) * layout.row_height
        + (NOTICE_HEIGHT + 1 if total > len(first) else 0)
    )
    if first and len(first) <= KEEP_TOGETHER and CONTENT_TOP + title_height + body < doc.bottom:
        doc.need(title_height + body)  # a short table is never split
    else:
        doc.need(title_height + layout.header_height + 3 * layout.row_height)
    doc.start_section(table.title)
    doc.heading(table.title)
    _table_caption(doc, total, [h for _, h in flags])

    if not first:
        if total == 0:
            doc.set_font(FONT, "", 8)
            doc.set_text_color(*MUTED)
            doc.text(MARGIN, doc.get_y() + 3, "No rows in this period.")
            doc.set_text_color(*INK)
            doc.set_y(doc.get_y() + 4 + SECTION_GAP)
        else:
            _notice(doc, total, 0)
        return
    cut = min(total, max_rows) < total
    last = min(total, max_rows) - 1
    shown = _draw_rows(doc, table, layout, _chain(first, batches), last_row=last if cut else -1)
    if shown < total:
        _notice(doc, total, shown)
    else:
        doc.set_y(doc.get_y() + SECTION_GAP)


def _table_caption(doc: _Document, total: int, highlights: Sequence[Highlight]) -> None:
    """'465 rows', and what a tinted row means when the table flags rows."""
    doc.set_font(FONT, "", 7.5)
    doc.set_text_color(*MUTED)
    count = f"{total:,} row{'s' if total != 1 else ''}"
    doc.text(MARGIN, doc.get_y() + 1, count)
    legend = "; ".join(dict.fromkeys(h.meaning for h in highlights))
    if legend:
        doc.set_fill_color(*FLAG_FILL)
        x = MARGIN + doc.width(count, "", 7.5) + 6
        doc.rect(x, doc.get_y() - 1.4, 3, 3, style="F")
        doc.set_text_color(*FLAG_INK)
        doc.text(x + 4.5, doc.get_y() + 1, f"Tinted rows: {legend}")
    doc.set_text_color(*INK)
    doc.set_y(doc.get_y() + 3.5)


_Row = tuple[list[str], frozenset[int]]  # cell texts, and the columns a highlight flags (empty: none)


def _formatted_batches(
    table: Table,
    formats: Sequence[Callable[[Any], str]],
    flags: Sequence[tuple[int, Highlight]],
    max_rows: int,
) -> Iterator[list[_Row]]:
    """Rows as text, a batch at a time, stopping after `max_rows` without reading further."""
    left = max_rows
    for batch in table.batches():
        rows: list[_Row] = []
        for raw in batch[:left]:
            cells = [fmt(value) for fmt, value in zip(formats, raw, strict=True)]
            hit = frozenset(i for i, h in flags if is_highlighted(raw[i], h)) if flags else frozenset()
            rows.append((cells, hit))
        left -= len(rows)
        yield rows
        if left <= 0:
            return


def _chain(first: list[_Row], rest: Iterator[list[_Row]]) -> Iterator[list[_Row]]:
    yield first
    yield from rest


def _layout(
    doc: _Document, columns: Sequence[Column], sample: Sequence[_Row], also_right: Sequence[str] = ()
) -> _Layout:
    """Font size and column widths that fit the page: headers may wrap, long text is cut."""
    per_pt = 1 / 1000 / doc.k  # mm per unit per point
    right = [c.kind in NUMERIC_KINDS or c.key in also_right for c in columns]
    data = [0.0] * len(columns)
    for cells, _ in sample:
        for i, text in enumerate(cells):
            units = doc.units(text)
            if units > data[i]:
                data[i] = units
    data = [d * per_pt * (1.06 if r else 1.0) for d, r in zip(data, right, strict=True)]  # room to grow
    full = [doc.units(c.label, "B") * per_pt for c in columns]
    word = [max(doc.units(w, "B") for w in c.label.split() or [""]) * per_pt for c in columns]
    avail = doc.epw

    def widths(size: float, header: Sequence[float]) -> list[float]:
        return [max(d, h) * size + 2 * CELL_PAD for d, h in zip(data, header, strict=True)]

    chosen: tuple[float, list[float]] | None = None
    for size in TABLE_FONT_SIZES:
        for header in (full, word):
            candidate = widths(size, header)
            if sum(candidate) <= avail:
                chosen = (size, candidate)
                break
        if chosen:
            break
    if chosen is None:
        size = TABLE_FONT_SIZES[-1]
        chosen = (size, _squeeze(widths(size, word), right, avail))
    size, result = chosen

    total = sum(result)
    grow = avail / total if total >= STRETCH * avail else min(ROOM, STRETCH * avail / total)
    result = [w * grow for w in result]
    header_lines = [
        doc.wrap(c.label, w - 2 * CELL_PAD, "B", size, MAX_HEADER_LINES)
        for c, w in zip(columns, result, strict=True)
    ]
    return _Layout(size, result, header_lines, right)


def _squeeze(natural: list[float], right: Sequence[bool], avail: float) -> list[float]:
    """Numbers keep their width; text columns share what is left, the widest giving way first."""
    fixed = sum(w for w, r in zip(natural, right, strict=True) if r)
    text = [w for w, r in zip(natural, right, strict=True) if not r]
    room = avail - fixed
    if not text or room < MIN_TEXT_WIDTH * len(text):
        scale = avail / sum(natural)  # even the numbers do not fit: shrink everything alike
        return [w * scale for w in natural]
    low, high = 0.0, max(text)  # water-fill: the cap at which capped text widths fill the room
    for _ in range(40):
        cap = (low + high) / 2
        if sum(min(w, cap) for w in text) > room:
            high = cap
        else:
            low = cap
    return [w if r else min(w, low) for w, r in zip(natural, right, strict=True)]


def _header_row(doc: _Document, layout: _Layout, y: float) -> float:
    height = layout.header_height
    doc.set_fill_color(*HEAD_FILL)
    doc.rect(MARGIN, y, sum(layout.widths), height, style="F")
    doc.set_font(FONT, "B", layout.size)
    doc.set_text_color(*HEAD_INK)
    line_h = layout.size * 0.3528 * 1.25
    x = MARGIN
    for lines, width, right in zip(layout.header, layout.widths, layout.right, strict=True):
        top = y + height - 1.1 - len(lines) * line_h  # headers sit on the bottom edge
        for n, line in enumerate(lines):
            lx = x + width - CELL_PAD - doc.width(line, "B", layout.size) if right else x + CELL_PAD
            doc.text(lx, top + (n + 0.78) * line_h, line)
        x += width
    doc.set_text_color(*INK)
    doc.set_font(FONT, "", layout.size)
    return y + height


def _draw_rows(
    doc: _Document, table: Table, layout: _Layout, batches: Iterator[list[_Row]], *, last_row: int = -1
) -> int:
    """Draw every row, starting pages as needed with the header repeated; returns the rows drawn.

    Row number `last_row` (when the table is cut) goes to a new page unless the notice fits
    under it too, so the notice never stands alone on a page.

    The hot loop: one `text` call per cell. The fill colour is kept equal to the text colour
    while text is drawn, because fpdf2 wraps every `text` in a colour save/restore otherwise.
    """
    size = layout.size
    row_h = layout.row_height
    baseline = row_h / 2 + size * 0.3528 * 0.36
    scale = size / 1000 / doc.k  # mm per width unit
    # Per column: index, x where left-aligned text starts, x where right-aligned text ends,
    # widest text in width units, right-aligned?
    geometry: list[tuple[int, float, float, int, bool]] = []
    x = MARGIN
    for i, (width, right) in enumerate(zip(layout.widths, layout.right, strict=True)):
        geometry.append((i, x + CELL_PAD, x + width - CELL_PAD, int((width - 2 * CELL_PAD) / scale), right))
        x += width
    full_width = x - MARGIN
    width_of = doc.glyph_widths[""].__getitem__
    text = doc.text
    fitted: dict[tuple[str, int], str] = {}

    def paint(rgb: tuple[int, int, int]) -> None:
        doc.set_text_color(*rgb)
        doc.set_fill_color(*rgb)

    def band(rgb: tuple[int, int, int], y: float, ink: tuple[int, int, int]) -> None:
        doc.set_fill_color(*rgb)
        doc.rect(MARGIN, y, full_width, row_h, style="F")
        doc.set_fill_color(*ink)

    y = _header_row(doc, layout, doc.get_y())
    doc.set_font(FONT, "", size)
    ink = INK
    paint(ink)
    drawn = 0
    for batch in batches:
        for cells, hit in batch:
            if y + row_h > doc.bottom - (NOTICE_HEIGHT + 1 if drawn == last_row else 0):
                doc.add_page()
                doc.set_font(FONT, "", 7.5)
                doc.set_text_color(*MUTED)
                doc.text(MARGIN, doc.get_y() + 1.5, f"{table.title} (continued)")
                y = _header_row(doc, layout, doc.get_y() + 3)
                doc.set_font(FONT, "", size)
                ink = INK
                paint(ink)
            if hit:
                band(FLAG_FILL, y, ink)
            elif drawn % 2:
                band(STRIPE, y, ink)
            top = y + baseline
            for (i, left, end, limit, right), cell in zip(geometry, cells, strict=True):
                if not cell:
                    continue
                units = sum(map(width_of, map(ord, cell)))
                if units > limit and not right:  # numbers are never cut
                    key = (cell, limit)
                    if key not in fitted:
                        fitted[key] = _fit(doc, cell, limit, "")
                    cell = fitted[key]
                    units = doc.units(cell)
                want = FLAG_INK if i in hit else INK
                if want is not ink:
                    ink = want
                    paint(ink)
                text(end - units * scale if right else left, top, cell)
            y += row_h
            drawn += 1
    paint(INK)
    doc.set_draw_color(*RULE)
    doc.set_line_width(0.2)
    doc.line(MARGIN, y, MARGIN + full_width, y)
    doc.set_y(y + 1)
    return drawn


def _notice(doc: _Document, total: int, shown: int) -> None:
    doc.need(NOTICE_HEIGHT)
    doc.set_font(FONT, "B", 8.5)
    doc.set_text_color(*FLAG_INK)
    doc.text(
        MARGIN,
        doc.get_y() + 4,
        f"{total - shown:,} more rows are not shown; the CSV and Excel exports contain all {total:,} rows.",
    )
    doc.set_text_color(*INK)
    doc.set_y(doc.get_y() + 6 + SECTION_GAP)


# --- a period without data ---------------------------------------------------------------------


def _no_data_page(doc: _Document, report: Report) -> None:
    doc.start_section("No data for this period")
    doc.set_y(50)
    doc.set_font(FONT, "B", 18)
    doc.set_text_color(*INK)
    doc.cell(0, 10, "No data for this period", align=Align.C, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    doc.set_font(FONT, "", 10)
    doc.set_text_color(*MUTED)
    doc.cell(
        0,
        7,
        f"{report.title} for {report.business_name} has no rows for {report.period_label()}.",
        align=Align.C,
        new_x=XPos.LMARGIN,
        new_y=YPos.NEXT,
    )
    doc.ln(6)
    label_w = 45.0
    x = (doc.w - 160) / 2
    doc.set_text_color(*INK)
    for label, value in parameter_lines(report):
        doc.set_x(x)
        doc.set_font(FONT, "B", 9)
        doc.cell(label_w, 5.5, label)
        doc.set_font(FONT, "", 9)
        doc.multi_cell(160 - label_w, 5.5, value, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for note in report.notes:
        doc.ln(2)
        doc.set_x(x)
        doc.set_font(FONT, "", 8)
        doc.set_text_color(*MUTED)
        doc.multi_cell(160, 4, note, align=Align.L, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
