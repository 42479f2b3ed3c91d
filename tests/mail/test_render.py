"""Email bodies: everything escaped, the same content as plain text, a safe link; and in a real browser,
readable at phone width (390 px) and on a desktop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mail.render import FileRef, render

ROOT = Path(__file__).resolve().parent.parent.parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

SUMMARY: dict[str, Any] = {
    "title": "Customer performance",
    "business": "Alpha Trading Café & Co",
    "period": "1–31 Jan 2025 (last month)",
    "kpis": [
        ["Active customers", "3"],
        ["New customers", "2"],
        ["Reactivated customers", "0"],
        ["Customers, previous period", "1"],
        ["Retained customers", "1"],
        ["Lost customers", "0"],
        ["Retention", "100.0 %"],
        ["Revenue", "€12,345,678.90"],
    ],
    "table": {
        "title": "Customers by revenue",
        "columns": ["Rank", "Customer code", "Customer", "Revenue", "Gross profit"],
        "align": ["right", "left", "left", "right", "right"],
        "rows": [
            ["1", "B2", "Bodega Grande Wholesale Distribution", "€1,330.00", "€330.00"],
            ["2", "A1", "Alma Café", "€195.00", "€75.00"],
            ["3", "D4", "Dulce Deli", "€30.00", "€10.00"],
        ],
        "total_rows": 42,
        "more_columns": 14,
    },
    "notes": ["Returns are counted in the month they were made."],
}
FILES = [FileRef("customer_performance_20250101-20250131_20250210-080000.pdf", 48_213)]


def test_all_text_is_escaped_and_the_plain_text_says_the_same() -> None:
    evil = dict(SUMMARY, title="<script>alert(1)</script>", business='Tom & "Jerry"')
    rendered = render(
        evil,
        message="Hi <b>all</b>,\n\nsee below.",
        files=FILES,
        footer="Generated 2025-02-10 09:00 CET · sent by Tallyboard to ana@example.com.",
        subject="Report <x>",
    )
    html, text = rendered.html, rendered.text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Tom &amp; &quot;Jerry&quot;" in html and "<b>all</b>" not in html
    assert "<title>Report &lt;x&gt;</title>" in html
    assert "stylesheet" not in html and "<link" not in html  # inline styles only
    assert "max-width:640px" in html
    for needle in (
        "€12,345,678.90",
        "Bodega Grande",
        "Top 3 of 42 rows",
        "14 more columns in the files",
        "Returns are counted",
        "customer_performance_20250101-20250131_20250210-080000.pdf",
        "(47 KB)",
        "Generated 2025-02-10 09:00 CET",
    ):
        assert needle in html, needle
        assert needle.lower() in text.lower(), needle
    assert '<script>alert(1)</script> - Tom & "Jerry"' in text
    assert "  Revenue:                    €12,345,678.90" in text
    assert "Hi <b>all</b>," in text


def test_the_text_table_lines_up_its_columns() -> None:
    text = render(SUMMARY).text
    lines = text.splitlines()
    head = lines.index("Customers by revenue (top 3 of 42 rows · 14 more columns in the files)")
    assert lines[head + 2] == "  Rank  Customer code  Customer                        Revenue  Gross profit"
    assert lines[head + 4] == "     1  B2             Bodega Grande Wholesale Dis…  €1,330.00       €330.00"


def test_a_link_replaces_the_attachment_list_and_must_be_http() -> None:
    link = "https://reports.example.com/history?run=42&x=<y>"
    rendered = render(SUMMARY, files=FILES, link=link, link_note="The files are 23 MB together.")
    assert 'href="https://reports.example.com/history?run=42&amp;x=&lt;y&gt;"' in rendered.html
    assert "Download from History" in rendered.html and "Attached" not in rendered.html
    assert f"Download them from History: {link}" in rendered.text
    sneaky = render(SUMMARY, files=FILES, link="javascript:alert(1)")
    assert "javascript:" not in sneaky.html and "javascript:" not in sneaky.text
    assert "Attached" in sneaky.html


@pytest.fixture(scope="module")
def browser(chromium: Any) -> Any:
    return chromium  # the process's one Playwright (tests/conftest.py)


@pytest.mark.browser
@pytest.mark.parametrize("width", [390, 1024])
def test_the_email_reads_well_on_a_phone_and_a_desktop(browser: Any, width: int, tmp_path: Path) -> None:
    rendered = render(
        SUMMARY,
        message="Good morning,\n\nhere are last month's numbers.",
        files=FILES,
        footer="Generated 2025-02-10 09:00 CET · sent by Tallyboard to ana@example.com.",
    )
    page = browser.new_page(viewport={"width": width, "height": 300})
    try:
        page.set_content(rendered.html)
        # Nothing wider than the screen: no sideways scrolling on a phone.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        card = page.evaluate(
            "(() => { const t = document.querySelector('body > table table'); return t.getBoundingClientRect().width; })()"
        )
        assert card <= 640
        # KPI cards: two to a row on a phone, four on a desktop.
        tops = page.evaluate(
            "Array.from(document.querySelectorAll('div[style*=\"width:140px\"]')).map(e => e.getBoundingClientRect().top)"
        )
        assert len(tops) == 8
        per_row = tops.count(tops[0])
        assert per_row == (2 if width < 500 else 4)
        # Long amounts stay on one line inside their card.
        for box in page.evaluate(
            "Array.from(document.querySelectorAll('div[style*=\"width:140px\"]')).map(e => "
            "[e.getBoundingClientRect().width, e.scrollWidth])"
        ):
            assert box[1] <= box[0] + 1
        height = page.evaluate("document.body.scrollHeight")
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(tmp_path / f"email-{width}.png"), full_page=True)
    finally:
        page.close()


def test_codes_in_a_report_email_read_as_words() -> None:
    """The email's table shows a payment method or customer type as people say it (the JSON keeps codes)."""
    import datetime as dt
    from decimal import Decimal

    import pandas as pd

    from analytics.periods import Period
    from analytics.report import Column, Report, ReportParams, Table
    from mail.delivery import email_summary

    frame = pd.DataFrame(
        {
            "method": ["bank_transfer", "credit_note", "cash"],
            "customer_type": ["wholesale", "retail", "retail"],
            "cash_received": [Decimal("1000.00"), Decimal("20.00"), Decimal("200.00")],
        }
    )
    columns = [
        Column("method", "Method"),
        Column("customer_type", "Customer type"),
        Column("cash_received", "Cash received", "money"),
    ]
    report = Report(
        "payments",
        "Payments",
        "demo",
        "Demo Trading",
        "EUR",
        ReportParams(start=dt.date(2025, 1, 1), end=dt.date(2025, 1, 31)),
        dt.datetime(2025, 2, 1, 7, 0, tzinfo=dt.UTC),
        Period(dt.date(2025, 1, 1), dt.date(2025, 1, 31)),
        [],
        {"by_method": Table("by_method", "Cash received by method", columns, frame)},
    )
    summary = email_summary(report)
    assert summary["table"]["rows"] == [
        ["Bank transfer", "Wholesale", "€1,000.00"],
        ["Credit note", "Retail", "€20.00"],
        ["Cash", "Retail", "€200.00"],
    ]
    rendered = render(summary)
    for text in (rendered.html, rendered.text):
        assert "Bank transfer" in text and "Wholesale" in text
        assert "bank_transfer" not in text and "wholesale" not in text
