"""The report email a manager would forward (issue 12), received from a real SMTP server (aiosmtpd on
127.0.0.1): the trend ends at the period's end, KPIs carry both comparisons with their dates, the main
chart is an inline image referenced by cid: and attached once, the text part reads on its own, the
body stays under 1 MB, and in Chromium it looks right. The History link opens its run (AppTest)."""

from __future__ import annotations

import base64
import datetime as dt
import re
import socket
import threading
from collections.abc import Iterator
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session
from sqlalchemy import Engine, select

from accounts.users import operator
from analytics.formatting import format_change
from core.db import bump_data_version, session_scope
from core.models import Customer, Product, Storefront
from core.money import to_micros
from core.settings import Settings
from mail.delivery import deliver_due
from mail.smtp_config import save_smtp
from reports.registry import generate
from tests.factories import add_one_line_sale
from tests.mail.mail_fixtures import (
    UTC_NOW,
    clean_installation,  # noqa: F401 - autouse: no SMTP settings or pending mail from other tests
    mail_settings,
    make_window,
    parse,
    parts,
)
from tests.tenants import NOW, Jobs, Tenant, last_month

FROM = "reports@tallyboard.example"
PUBLIC_URL = "https://reports.example.com/"
MB = 1024 * 1024


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        with self.lock:
            self.received.append(envelope.original_content or b"")
        return "250 2.0.0 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox(jobs: Jobs, tmp_path: Path) -> Iterator[tuple[Inbox, Settings]]:
    """A running SMTP server on 127.0.0.1 set as the installation's, and the settings to send with."""
    box = Inbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    settings = mail_settings(jobs, tmp_path / "outbox", smtp_timeout_s=5).with_changes(public_url=PUBLIC_URL)
    with jobs.session() as s:
        save_smtp(
            s,
            settings,
            operator(),
            installation_default=True,
            host="127.0.0.1",
            port=port,
            security="none",
            username="",
            password=None,
            from_address=FROM,
            from_name="Tallyboard Reports",
            reply_to="",
        )
    try:
        yield box, settings
    finally:
        controller.stop()


def add_sale(engine: Engine, business_id: int, order_id: str, day: dt.date, price: str, cost: str) -> None:
    """One completed one-line sale of the business's first product to its first customer."""
    with session_scope(engine) as s:
        customer = s.scalars(select(Customer).where(Customer.business_id == business_id)).first()
        product = s.scalars(select(Product).where(Product.business_id == business_id)).first()
        front = s.scalars(select(Storefront).where(Storefront.business_id == business_id)).first()
        assert customer is not None and product is not None and front is not None
        add_one_line_sale(
            s,
            business_id,
            order_id=order_id,
            day=day,
            customer_id=customer.id,
            product_id=product.id,
            net=to_micros(Decimal(price)),
            cost=to_micros(Decimal(cost)),
            storefront_id=front.id,
        )
        bump_data_version(s, business_id)


Received = tuple[EmailMessage, str, str, dict[str, tuple[str, bytes]]]


def kpi_email(jobs: Jobs, tenant: Tenant, inbox: tuple[Inbox, Settings]) -> tuple[Received, int, bytes]:
    """The tiny example plus a sale a year before January 2025, as a KPI dashboard email for January
    2025 with a PDF and a workbook attached; (message, text, html, files), the run id, the raw bytes."""
    add_sale(jobs.engine, tenant.business_id, "YAGO-1", dt.date(2024, 1, 15), "1000.00", "600.00")
    box, settings = inbox
    window = make_window(
        jobs,
        tenant,
        ["ana@example.com"],
        slug="kpi_dashboard",
        formats=("pdf", "xlsx"),
        subject="KPI dashboard, January 2025",
    )
    stats = deliver_due(jobs.engine, settings, now=UTC_NOW)
    assert (stats.sent, stats.failed) == (1, 0), stats
    (raw,) = box.received
    message = parse(raw)
    text, html, files = parts(message)
    return (message, text, html, files), window.run_id, raw


def png_bytes(part: Any) -> bytes:
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    return data


def _cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", html, flags=re.S)]


def test_the_trend_in_a_kpi_email_ends_at_the_period_end(
    jobs: Jobs, tenant: Tenant, inbox: tuple[Inbox, Settings]
) -> None:
    (_message, text, html, _files), _run, _raw = kpi_email(jobs, tenant, inbox)
    # Feb 2024 - Jan 2025 is twelve months: the email shows the last ten, ending with January 2025.
    months = [c for c in _cells(html) if re.fullmatch(r"[A-Z][a-z]{2} 20\d\d", c)]
    expected = [f"{dt.date(2024, m, 1):%b %Y}" for m in range(4, 13)] + ["Jan 2025"]
    assert months == expected
    assert "Last 10 of 12 rows" in html and "Top 10" not in html
    assert "Revenue trend, last 12 months (last 10 of 12 rows" in text
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("Apr 2024"))
    assert [line.split()[:2] for line in lines[first : first + 10]][-1] == ["Jan", "2025"]
    assert "Feb 2024" not in text and "Mar 2024" not in text


def test_kpis_carry_both_changes_with_arrows_and_the_compared_dates(
    jobs: Jobs, tenant: Tenant, inbox: tuple[Inbox, Settings]
) -> None:
    (_message, text, html, _files), _run, _raw = kpi_email(jobs, tenant, inbox)
    with jobs.session() as s:
        report = generate(s, jobs.store, tenant.scope("admin"), "kpi_dashboard", last_month(now=NOW), now=NOW)
    previous = format_change(float(report.kpi("revenue_change_pct").value or 0))
    year_ago = format_change(float(report.kpi("revenue_yoy_pct").value or 0))
    assert year_ago == "+55.5 %"  # €1,555.00 in January 2025 against €1,000.00 in January 2024
    arrow = "▲" if previous and previous.startswith("+") else "▼"
    # The text part: each change under its KPI, in words, with the compared period.
    assert f"{arrow} {previous} vs previous period (1–31 Dec 2024)" in text
    assert f"▲ {year_ago} vs a year before (1–31 Jan 2024)" in text
    revenue = text.index("  Revenue:")
    assert text.index("vs previous period", revenue) < text.index("  Gross profit:", revenue)
    # The HTML card: the same changes, coloured arrows, the dates.
    shown = re.sub(r"<[^>]+>", "|", html)
    assert f"{arrow} {previous}| vs previous period||1–31 Dec 2024|" in shown
    assert f"▲ {year_ago}| vs a year before||1–31 Jan 2024|" in shown
    assert f'<span style="color:#15803d;font-weight:700;">▲ {year_ago}</span>' in html
    # Margin is a rate: it compares in percentage points.
    assert re.search(r"[▲▼■] [+-]\d+\.\d pp\| vs a year before\|\|1–31 Jan 2024", shown)
    # The comparisons are not KPIs of their own.
    assert "Revenue, previous period" not in html and "change vs" not in html


def test_the_chart_is_inline_referenced_by_cid_and_attached_once(
    jobs: Jobs, tenant: Tenant, inbox: tuple[Inbox, Settings]
) -> None:
    (message, _text, html, files), run_id, raw = kpi_email(jobs, tenant, inbox)
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1
    (image,) = images
    cid = str(image["Content-ID"]).strip("<>")
    assert image.get_content_disposition() == "inline"
    assert png_bytes(image)[:8] == b"\x89PNG\r\n\x1a\n"
    assert html.count(f'src="cid:{cid}"') == 1 and html.count("cid:") == 1
    # It travels with the HTML (multipart/related) and is no file of the report.
    related = next(p for p in message.walk() if p.get_content_type() == "multipart/related")
    assert [p.get_content_type() for p in related.iter_parts()] == ["text/html", "image/png"]
    assert sorted(files) == sorted(f for f in files if f.endswith((".pdf", ".xlsx"))) and len(files) == 2
    assert raw.count(b"Content-ID:") == 1
    # The rest of what stands alone: title, period (dates and name), the link that opens the run.
    assert "<h1" in html and "KPI dashboard</h1>" in html
    assert "1–31 Jan 2025 (last month)" in html
    link = f"https://reports.example.com/history?run={run_id}"
    assert f'href="{link}"' in html and "Open this run in History" in html
    assert "Attached" in html


def test_the_email_is_under_a_megabyte_without_attachments_and_its_text_reads_alone(
    jobs: Jobs, tenant: Tenant, inbox: tuple[Inbox, Settings]
) -> None:
    (message, text, _html, files), run_id, raw = kpi_email(jobs, tenant, inbox)
    attached = sum(len(data) for _mime, data in files.values())
    encoded = attached * 4 / 3  # base64 on the wire
    assert len(raw) - encoded < 1 * MB, len(raw)
    assert len(raw) - encoded < 300 * 1024  # in fact much less: the chart is a palette PNG
    (image,) = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(png_bytes(image)) < 100 * 1024
    # Plain text: no markup, short lines, the numbers, where to look next.
    assert not re.search(r"<[a-z/][^>]*>", text)
    assert all(len(line) <= 100 for line in text.splitlines())
    for needle in (
        "KPI dashboard - Alpha Trading",
        "1–31 Jan 2025 (last month)",
        "  Revenue:",
        "€1,555.00",
        "Revenue trend, last 12 months",
        f"Open this run in History: https://reports.example.com/history?run={run_id}",
        "Attached:",
    ):
        assert needle in text, needle
    assert message["Subject"] == "KPI dashboard, January 2025"


@pytest.mark.browser
def test_the_html_body_in_chromium(
    jobs: Jobs, tenant: Tenant, inbox: tuple[Inbox, Settings], chromium: Any, tmp_path: Path
) -> None:
    """The HTML as a mail client shows it (cid: resolved to the image the message carries): nothing
    wider than the card, the chart loaded and drawn at its size, the KPI cards with both changes."""
    (message, _text, html, _files), _run, _raw = kpi_email(jobs, tenant, inbox)
    (image,) = [p for p in message.walk() if p.get_content_type() == "image/png"]
    cid = str(image["Content-ID"]).strip("<>")
    data = base64.b64encode(png_bytes(image)).decode()
    shown = html.replace(f"cid:{cid}", f"data:image/png;base64,{data}")
    for width in (390, 1024):
        page = chromium.new_page(viewport={"width": width, "height": 400})
        try:
            page.set_content(shown)
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            img = page.evaluate(
                "(() => { const i = document.querySelector('img'); "
                "return [i.complete, i.naturalWidth, i.getBoundingClientRect().width]; })()"
            )
            assert img[0] and img[1] == 1200 and 300 <= img[2] <= 600
            boxes = (
                "Array.from(document.querySelectorAll('div[style*=\"width:{w}px\"]'))"
                ".map(e => [e.getBoundingClientRect().top, e.getBoundingClientRect().width, e.scrollWidth])"
            )
            wide = page.evaluate(boxes.replace("{w}", "290"))  # KPIs with changes
            small = page.evaluate(boxes.replace("{w}", "140"))  # Cash received, Outstanding, ...
            assert len(wide) == 5 and len(wide) + len(small) == 8
            assert all(scroll <= w + 1 for _top, w, scroll in wide + small)  # nothing sticks out
            per_row = [top for top, _w, _s in wide].count(wide[0][0])
            assert per_row == (1 if width < 500 else 2)
            height = page.evaluate("document.body.scrollHeight")
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(tmp_path / f"email-{width}.png"), full_page=True)
        finally:
            page.close()
