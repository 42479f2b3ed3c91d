"""Email bodies: an HTML part with inline styles (readable on a phone, at most 640 px wide) and the same content as plain text.

Every email is one layout filled from a summary mapping (what delivery.email_summary returns, or a
notice built the same way): header (business, title, period), the message, KPI cards with their
changes vs the previous period and a year before, the main chart (an inline image the message
carries, referenced as cid:), a short table of top (or latest) rows, notes, a link to the run in
History, the attached files or a download link, and a footer. Every piece of text is HTML-escaped;
links are only http(s). The plain-text part says the same in words.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runs.files import format_bytes

MAX_WIDTH = 640
FONT = "-apple-system,BlinkMacSystemFont,'Segoe UI',Roboto,Helvetica,Arial,sans-serif"
INK = "#0f172a"
MUTED = "#64748b"
LINE = "#e2e8f0"
ACCENT = "#2563eb"
UP = "#15803d"
DOWN = "#b91c1c"
ARROWS = {"up": "▲", "down": "▼", "flat": "■"}
PAGE = "#f1f5f9"
CARD = "#f8fafc"
TEXT_WIDTH = 72  # plain-text lines wrap here


@dataclass(frozen=True)
class FileRef:
    """A file named in the email: attached, or too large and behind the link."""

    name: str
    bytes: int


@dataclass(frozen=True)
class Rendered:
    html: str
    text: str


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    changes: tuple[Mapping[str, str], ...] = ()  # {text, direction, against, dates}


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _safe_url(url: str | None) -> str | None:
    if url and url.lower().startswith(("http://", "https://")):
        return url
    return None


def _str_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def _kpis(summary: Mapping[str, Any]) -> list[Kpi]:
    """[label, value] or [label, value, [comparison, ...]] items as Kpi."""
    out = []
    for item in summary.get("kpis") or []:
        if isinstance(item, list | tuple) and len(item) >= 2:
            changes = item[2] if len(item) > 2 and isinstance(item[2], list | tuple) else []
            out.append(
                Kpi(
                    str(item[0]),
                    str(item[1]),
                    tuple(
                        {k: str(c.get(k) or "") for k in ("text", "direction", "against", "dates")}
                        for c in changes
                        if isinstance(c, Mapping) and c.get("text")
                    ),
                )
            )
    return out


def _change_words(change: Mapping[str, str]) -> str:
    """'▲ +10.9 % vs previous period (1–31 Oct 2026)'."""
    arrow = ARROWS.get(change["direction"], "")
    dates = f" ({change['dates']})" if change["dates"] else ""
    return f"{arrow} {change['text']} {change['against']}{dates}".strip()


def _table(summary: Mapping[str, Any]) -> Mapping[str, Any] | None:
    table = summary.get("table")
    if not isinstance(table, Mapping) or not table.get("columns"):
        return None
    return table


# --- HTML ---------------------------------------------------------------------------------------


def _html_paragraphs(text: str) -> str:
    blocks = [b.strip("\n") for b in text.replace("\r\n", "\n").split("\n\n") if b.strip()]
    return "".join(
        f'<p style="margin:0 0 12px 0;font-size:15px;line-height:22px;color:{INK};">'
        + "<br>".join(_e(line) for line in block.split("\n"))
        + "</p>"
        for block in blocks
    )


def _value_size(value: str) -> int:
    """The KPI value's font size: long amounts get smaller so a card never breaks a number."""
    n = len(value)  # widths measured in Chromium with the fallback sans-serif (DejaVu Sans, bold)
    return 19 if n <= 9 else 16 if n <= 11 else 14 if n <= 13 else 12


def _html_change(change: Mapping[str, str]) -> str:
    """One change on a card, two lines: a coloured arrow and amount with what it compares with,
    then the compared period's dates."""
    color = {"up": UP, "down": DOWN}.get(change["direction"], MUTED)
    arrow = ARROWS.get(change["direction"], "")
    dates = (
        f'<div style="font-size:11px;line-height:15px;color:{MUTED};padding:0 0 0 16px;">{_e(change["dates"])}</div>'
        if change["dates"]
        else ""
    )
    return (
        f'<div style="font-size:12px;line-height:16px;color:{MUTED};margin:3px 0 0 0;white-space:nowrap;">'
        f'<span style="color:{color};font-weight:700;">{_e(arrow)} {_e(change["text"])}</span> '
        f"{_e(change['against'])}</div>{dates}"
    )


def _html_card(k: Kpi, width: int, label_height: str, changes_height: str) -> str:
    changes = "".join(_html_change(c) for c in k.changes)
    return (
        f'<div style="display:inline-block;vertical-align:top;width:{width}px;max-width:100%;'
        'box-sizing:border-box;margin:0 8px 8px 0;">'
        f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="border-collapse:separate;background:{CARD};border:1px solid {LINE};border-radius:6px;">'
        f'<tr><td style="padding:10px 10px;font-family:{FONT};height:44px;vertical-align:top;">'
        f'<div style="font-size:12px;line-height:16px;color:{MUTED};{label_height}">{_e(k.label)}</div>'
        f'<div style="font-size:{_value_size(k.value)}px;line-height:26px;font-weight:700;color:{INK};'
        f'white-space:nowrap;">{_e(k.value)}</div>'
        + (f'<div style="{changes_height}">{changes}</div>' if changes_height else "")
        + "</td></tr></table></div>"
    )


def _html_kpis(kpis: Sequence[Kpi]) -> str:
    # Fixed-width inline blocks wrap by themselves: four to a row at 640 px, two on a phone
    # (390 px leaves about 330 px inside the card). KPIs with changes come first on wider cards,
    # two to a row (one on a phone), then the others on the small cards.
    # When a label wraps (about 18 characters fill a card), every label gets two lines, so the
    # cards of a row keep one height and their values one baseline.
    compared = [k for k in kpis if k.changes]
    plain = [k for k in kpis if not k.changes]
    lines = max((len(k.changes) for k in compared), default=0)
    label_height = "min-height:32px;" if any(len(k.label) > 18 for k in plain) else ""
    cards = "".join(_html_card(k, 290, "", f"min-height:{lines * 34}px;") for k in compared) + "".join(
        _html_card(k, 140, label_height, "") for k in plain
    )
    return f'<div style="font-size:0;line-height:0;margin:4px 0 8px 0;">{cards}</div>'


def _html_chart(chart: Mapping[str, Any], cid: str) -> str:
    """The main chart: the inline image the message carries under Content-ID `cid`."""
    width = int(chart.get("width") or 600)
    height = int(chart.get("height") or 260)
    title = str(chart.get("title") or "Chart")
    return (
        '<div style="margin:8px 0 12px 0;">'
        f'<img src="cid:{_e(cid)}" width="{width}" alt="{_e(title)}" '
        f'style="display:block;width:100%;max-width:{width}px;height:auto;border:0;'
        f'aspect-ratio:{width}/{height};" /></div>'
    )


def _html_run_link(url: str) -> str:
    return (
        f'<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="margin:16px 0 0 0;">'
        f'<tr><td style="border-radius:6px;border:1px solid {ACCENT};">'
        f'<a href="{_e(url)}" style="display:inline-block;padding:9px 16px;font-family:{FONT};'
        f'font-size:14px;font-weight:600;color:{ACCENT};text-decoration:none;">Open this run in History</a>'
        "</td></tr></table>"
    )


def _table_note(table: Mapping[str, Any], shown_rows: int) -> str:
    """'Top 10 of 42 rows · 3 more columns in the attached file' ('Last 10 of 12 rows' for a time
    series, which shows its latest rows), or ''."""
    total = int(table.get("total_rows") or shown_rows)
    more = int(table.get("more_columns") or 0)
    parts = []
    if total > shown_rows:
        which = "Last" if table.get("order") == "last" else "Top"
        parts.append(f"{which} {shown_rows} of {total:,} rows")
    if more:
        parts.append(f"{more} more column{'s' if more > 1 else ''} in the files")
    return " · ".join(parts)


def _nowrap(i: int, align: Sequence[str], cell: str) -> bool:
    """Numbers and short texts (dates, months, codes) stay on one line; long names may wrap."""
    return (i < len(align) and align[i] == "right") or len(cell) <= 10


def _html_table(table: Mapping[str, Any]) -> str:
    columns = _str_list(table.get("columns"))
    align = _str_list(table.get("align")) or ["left"] * len(columns)
    rows = [r for r in table.get("rows") or [] if isinstance(r, list | tuple)]
    title = str(table.get("title") or "")
    shown = _table_note(table, len(rows))
    head = "".join(
        f'<th align="{_e(align[i] if i < len(align) else "left")}" style="padding:6px 5px;font-size:12px;'
        f"line-height:16px;color:{MUTED};font-weight:600;border-bottom:2px solid {LINE};"
        f'vertical-align:bottom;">{_e(col)}</th>'
        for i, col in enumerate(columns)
    )
    body = ""
    for n, row in enumerate(rows):
        shade = f"background:{CARD};" if n % 2 else ""
        cells = "".join(
            f'<td align="{_e(align[i] if i < len(align) else "left")}" style="padding:6px 5px;'
            f"font-size:13px;line-height:18px;color:{INK};border-bottom:1px solid {LINE};{shade}"
            f'{"white-space:nowrap;" if _nowrap(i, align, str(cell)) else ""}">{_e(cell)}</td>'
            for i, cell in enumerate(row)
        )
        body += f"<tr>{cells}</tr>"
    caption = (
        f'<div style="font-size:15px;line-height:22px;font-weight:700;color:{INK};margin:8px 0 4px 0;">'
        f"{_e(title)}</div>"
        if title
        else ""
    )
    note = (
        f'<div style="font-size:12px;line-height:16px;color:{MUTED};margin:4px 0 0 0;">{_e(shown)}</div>'
        if shown
        else ""
    )
    return (
        f"{caption}"
        '<div style="overflow-x:auto;-webkit-overflow-scrolling:touch;">'
        f'<table role="presentation" cellpadding="0" cellspacing="0" border="0" width="100%" '
        f'style="border-collapse:collapse;font-family:{FONT};">'
        f"<tr>{head}</tr>{body}</table></div>{note}"
    )


def _file_list(files: Sequence[FileRef]) -> str:
    items = "".join(
        f'<li style="margin:0 0 2px 0;word-break:break-all;">{_e(f.name)} <span style="color:{MUTED};">'
        f"({_e(format_bytes(f.bytes))})</span></li>"
        for f in files
    )
    return f'<ul style="margin:4px 0 0 0;padding:0 0 0 20px;font-size:13px;line-height:19px;">{items}</ul>'


def _html_files(files: Sequence[FileRef], link: str | None, link_note: str) -> str:
    safe = _safe_url(link)
    if safe:
        note = link_note or "The files are too large to attach."
        return (
            f'<div style="margin:16px 0 0 0;font-size:14px;line-height:20px;color:{INK};">{_e(note)}</div>'
            f"{_file_list(files) if files else ''}"
            f'<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="margin:12px 0 0 0;">'
            f'<tr><td style="border-radius:6px;background:{ACCENT};">'
            f'<a href="{_e(safe)}" style="display:inline-block;padding:10px 18px;font-family:{FONT};'
            f'font-size:14px;font-weight:600;color:#ffffff;text-decoration:none;">Download from History</a>'
            "</td></tr></table>"
            f'<div style="font-size:12px;line-height:16px;color:{MUTED};margin:6px 0 0 0;'
            f'word-break:break-all;">{_e(safe)}</div>'
        )
    if not files:
        return ""
    return (
        f'<div style="margin:16px 0 0 0;font-size:14px;line-height:20px;color:{INK};">'
        f'<div style="font-weight:600;">Attached</div>{_file_list(files)}</div>'
    )


def _html(
    summary: Mapping[str, Any],
    message: str,
    files: Sequence[FileRef],
    link: str | None,
    link_note: str,
    footer: str,
    subject: str,
    chart_cid: str | None,
    run_link: str | None,
) -> str:
    title = str(summary.get("title") or "")
    business = str(summary.get("business") or "")
    period = str(summary.get("period") or "")
    kpis = _kpis(summary)
    table = _table(summary)
    notes = _str_list(summary.get("notes"))
    chart = summary.get("chart")
    preheader = " · ".join(x for x in [period, *(f"{k.label}: {k.value}" for k in kpis[:2])] if x)
    parts = [
        f'<div style="font-size:12px;line-height:16px;letter-spacing:0.06em;text-transform:uppercase;'
        f'color:{MUTED};">{_e(business)}</div>'
        if business
        else "",
        f'<h1 style="margin:4px 0 2px 0;font-size:22px;line-height:28px;font-weight:700;color:{INK};">'
        f"{_e(title)}</h1>",
        f'<div style="font-size:14px;line-height:20px;color:{MUTED};margin:0 0 16px 0;">{_e(period)}</div>'
        if period
        else '<div style="height:12px;line-height:12px;">&nbsp;</div>',
        _html_paragraphs(message) if message.strip() else "",
        _html_kpis(kpis) if kpis else "",
        _html_chart(chart, chart_cid) if chart_cid and isinstance(chart, Mapping) else "",
        _html_table(table) if table else "",
        "".join(
            f'<p style="margin:10px 0 0 0;font-size:13px;line-height:18px;color:{MUTED};">{_e(n)}</p>'
            for n in notes
        ),
        _html_run_link(safe_run) if (safe_run := _safe_url(run_link)) and safe_run != _safe_url(link) else "",
        _html_files(files, link, link_note),
    ]
    content = "".join(p for p in parts if p)
    return (
        "<!DOCTYPE html>"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="x-apple-disable-message-reformatting">'
        f"<title>{_e(subject or title)}</title></head>"
        f'<body style="margin:0;padding:0;background:{PAGE};-webkit-text-size-adjust:100%;">'
        f'<div style="display:none;max-height:0;overflow:hidden;opacity:0;">{_e(preheader)}</div>'
        f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="background:{PAGE};"><tr><td align="center" style="padding:16px 8px;">'
        f'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="max-width:{MAX_WIDTH}px;table-layout:fixed;background:#ffffff;border:1px solid {LINE};border-radius:8px;">'
        f'<tr><td style="height:4px;line-height:4px;font-size:0;background:{ACCENT};'
        'border-radius:8px 8px 0 0;">&nbsp;</td></tr>'
        f'<tr><td style="padding:20px 20px 20px 20px;font-family:{FONT};color:{INK};">{content}</td></tr>'
        f'<tr><td style="padding:12px 20px 16px 20px;border-top:1px solid {LINE};font-family:{FONT};'
        f'font-size:12px;line-height:17px;color:{MUTED};">{_e(footer)}</td></tr>'
        "</table></td></tr></table></body></html>"
    )


# --- plain text ---------------------------------------------------------------------------------


def _wrap(text: str, indent: str = "") -> list[str]:
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        wrapped = textwrap.wrap(line, TEXT_WIDTH, initial_indent=indent, subsequent_indent=indent)
        lines.extend(wrapped or [""])
    return lines


def _text_table(table: Mapping[str, Any]) -> list[str]:
    columns = _str_list(table.get("columns"))
    align = _str_list(table.get("align"))
    rows = [[str(c) for c in r] for r in table.get("rows") or [] if isinstance(r, list | tuple)]
    widths = [max([len(columns[i])] + [len(r[i]) for r in rows if i < len(r)]) for i in range(len(columns))]
    widths = [min(w, 28) for w in widths]
    last = len(columns) - 1

    def cell(i: int, value: str) -> str:
        right = i < len(align) and align[i] == "right"
        if i == last and not right:
            return value  # the last text column runs on (a server's answer, a long name)
        value = value if len(value) <= widths[i] else value[: widths[i] - 1] + "…"
        return value.rjust(widths[i]) if right else value.ljust(widths[i])

    def line(values: Sequence[str]) -> str:
        return "  " + "  ".join(cell(i, v) for i, v in enumerate(values[: len(columns)])).rstrip()

    title = str(table.get("title") or "Top rows")
    note = _table_note(table, len(rows))
    heading = f"{title} ({note[0].lower() + note[1:]})" if note else title
    out = [heading, "", line(columns), "  " + "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in rows)
    return out


def _text(
    summary: Mapping[str, Any],
    message: str,
    files: Sequence[FileRef],
    link: str | None,
    link_note: str,
    footer: str,
    run_link: str | None,
) -> str:
    title = str(summary.get("title") or "")
    business = str(summary.get("business") or "")
    period = str(summary.get("period") or "")
    out = [f"{title} - {business}" if business else title]
    out.append("=" * min(len(out[0]), TEXT_WIDTH))
    if period:
        out.append(period)
    out.append("")
    if message.strip():
        out.extend(_wrap(message.strip()))
        out.append("")
    kpis = _kpis(summary)
    if kpis:
        width = min(max(len(k.label) for k in kpis), 32)
        for k in kpis:
            out.append(f"  {k.label + ':':<{width + 1}} {k.value}")
            out.extend(f"  {'':<{width + 1}}   {_change_words(c)}" for c in k.changes)
        out.append("")
    table = _table(summary)
    if table:
        out.extend(_text_table(table))
        out.append("")
    for note in _str_list(summary.get("notes")):
        out.extend(_wrap(note))
        out.append("")
    safe = _safe_url(link)
    safe_run = _safe_url(run_link)
    if safe_run and safe_run != safe:
        out.append(f"Open this run in History: {safe_run}")
        out.append("")
    if safe:
        out.extend(_wrap(link_note or "The files are too large to attach."))
        out.extend(f"  {f.name} ({format_bytes(f.bytes)})" for f in files)
        out.append(f"Download them from History: {safe}")
        out.append("")
    elif files:
        out.append("Attached:")
        out.extend(f"  {f.name} ({format_bytes(f.bytes)})" for f in files)
        out.append("")
    out.append("--")
    out.extend(_wrap(footer))
    return "\n".join(out).rstrip() + "\n"


def render(
    summary: Mapping[str, Any],
    *,
    message: str = "",
    files: Sequence[FileRef] = (),
    link: str | None = None,
    link_note: str = "",
    footer: str = "",
    subject: str = "",
    chart_cid: str | None = None,
    run_link: str | None = None,
) -> Rendered:
    """The HTML and plain-text bodies of one email.

    `summary`: title, business, period, kpis [[label, value, [{text, direction, against, dates}]]],
    table {title, columns, align, rows, total_rows, order "top" | "last"} or None, chart {title,
    width, height, ...} or None, notes [text] - all already formatted text. The chart is shown as
    the image with Content-ID `chart_cid` (the caller attaches it; no cid, no image). `files` are
    listed as attached, or, when `link` is given (http/https only), as downloadable from that link
    with `link_note`. `run_link` (http/https) opens the run in History.
    """
    return Rendered(
        _html(summary, message, files, link, link_note, footer, subject, chart_cid, run_link),
        _text(summary, message, files, link, link_note, footer, run_link),
    )
