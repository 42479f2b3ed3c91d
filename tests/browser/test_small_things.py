"""Issue 13's "small things" in a real browser (Debian Chromium): tables that fit the page at 1440 px and
keep their toolbar, a one-table CSV beside each report table, a filters panel that stays open, forms that
keep what was typed, KPI labels never cut, codes as labels, one named time zone, a refusal for pages the
role may not open, the phone layout (390 px), and no log noise for "Custom range"."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser import driver
from tests.browser.conftest import MAIN, OTHER, PASSWORD, Site

pytestmark = pytest.mark.browser

START, END = dt.date(2025, 1, 1), dt.date(2025, 3, 31)  # the tiny example's sales (business "main")
WAIT = driver.WAIT_MS
DESKTOP, PHONE = 1440, 390

# Every table on the page: its box, and the scroll area inside it (glide-data-grid's .dvn-scroller).
TABLES_JS = """() => [...document.querySelectorAll('[data-testid="stDataFrame"]')]
  .filter(el => el.offsetParent !== null && !el.closest('details:not([open])'))  // not in a closed expander
  .map(el => {
    const s = el.querySelector('.dvn-scroller');
    const box = el.getBoundingClientRect();
    return {heads: [...el.querySelectorAll('th')].map(t => t.innerText).join('|'),
            scroll: s ? s.scrollWidth : 0, client: s ? s.clientWidth : 0, right: box.right, width: box.width};
  })"""


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def login(page: Any, site: Site, username: str, width: int = DESKTOP) -> None:
    """Log in (at a desktop width: the sidebar shows the navigation), then take the width asked for."""
    page.set_viewport_size({"width": 1400, "height": 1100})
    driver.login(page, site.url, username, PASSWORD)
    driver.wait_for_login_cookie(page)
    page.set_viewport_size({"width": width, "height": 1100})


def goto(page: Any, site: Site, path: str) -> None:
    page.goto(f"{site.url}/{path}")
    driver.settle(page, 1000)


def cli(site: Site, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=driver.ROOT,
        env=site.env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def tables(page: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(TABLES_JS)
    return found


def cells(page: Any, nth: int = 0) -> list[str]:
    """The texts of a table's cells (glide-data-grid keeps an accessible copy of the visible ones)."""
    grid = page.get_by_test_id("stDataFrame").nth(nth)
    texts: list[str] = grid.locator("td").all_inner_texts()
    return texts


def overview_on_the_tiny_period(page: Any) -> None:
    driver.choose_custom_period(page, START, END)
    expect(page.get_by_text("Top 10 products").first).to_be_visible(timeout=WAIT)
    driver.settle(page)


def fits(table: dict[str, Any]) -> bool:
    return bool(table["client"]) and table["scroll"] <= table["client"] + 1


# --- tables at 1440 px ----------------------------------------------------------------------------


def test_tables_fit_the_page_at_1440_and_keep_search_and_download(page: Any, site: Site) -> None:
    out = str(site.data_dir / "cli-out")
    cli(site, "report", "kpi_dashboard", "--business", MAIN, "--param", "period=last_month", "--format", "pdf",
        "--out", out)  # fmt: skip
    cli(site, "report", "customer_performance", "--business", MAIN, "--param", "start=2025-01-01",
        "--param", "end=2025-03-31", "--format", "xlsx", "--out", out)  # fmt: skip
    cli(site, "schedules", "add", "--report", "payments", "--business", MAIN, "--daily", "07:30",
        "--tz", "America/New_York", "--to", "someone@example.com", "--when", "revenue < 1000")  # fmt: skip
    cli(site, "tokens", "create", "manager", "--business", MAIN, "--name", "Power BI")
    login(page, site, "manager")
    overview_on_the_tiny_period(page)
    found = tables(page)
    assert [t["heads"].split("|")[0] for t in found] == ["Customer", "Product"], found
    assert all(fits(t) for t in found), found  # Margin % is no longer cut off on the right
    # and, opened, Side by side (each KPI beside the previous period) fits too
    page.get_by_test_id("stExpander").filter(has_text="Side by side").locator("summary").click()
    expect(page.get_by_test_id("stDataFrame").filter(has_text="Key figure")).to_be_visible(timeout=WAIT)
    driver.settle(page)
    found = tables(page)
    assert [t["heads"].split("|")[0] for t in found] == ["Key figure", "Customer", "Product"], found
    assert all(fits(t) for t in found), found

    # st.dataframe's own toolbar: search and CSV download, on hover
    grids = page.locator('[data-testid="stElementContainer"]:has([data-testid="stDataFrame"])')
    products = grids.filter(has=page.locator("th", has_text="Qty"))
    products.hover()
    expect(products.get_by_role("button", name="Search")).to_be_visible(timeout=WAIT)
    expect(products.get_by_role("button", name="Download as CSV")).to_be_visible(timeout=WAIT)

    for path in ("history", "schedules", "statistics", "account"):
        goto(page, site, path)
        page.get_by_test_id("stDataFrame").first.wait_for(timeout=WAIT)
        driver.settle(page)
        found = tables(page)
        assert found and all(fits(t) for t in found), (path, found)


def test_a_report_table_downloads_alone_as_csv(page: Any, site: Site, tmp_path: Path) -> None:
    login(page, site, "manager")
    overview_on_the_tiny_period(page)
    foot = page.locator('[class*="st-key-table_kpi_dashboard_top_products"][class*="_foot"]')
    with page.expect_download(timeout=WAIT) as info:
        foot.get_by_role("button", name="CSV").click()
    path = tmp_path / "top_products.csv"
    info.value.save_as(path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte-order mark, as the CSV export writes
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert list(rows[0]) == ["product_name", "quantity", "revenue", "share_pct", "margin_pct"]  # shown ones

    # the same rows and figures as the command line's JSON document of the report (computed apart)
    doc = json.loads(
        cli(
            site,
            "report",
            "kpi_dashboard",
            "--business",
            MAIN,
            "--param",
            f"start={START}",
            "--param",
            f"end={END}",
            "--out",
            "-",
        )
    )
    expected = doc["tables"]["top_products"]
    assert [r["product_name"] for r in rows] == [r["product_name"] for r in expected]
    assert [Decimal(r["revenue"]) for r in rows] == [Decimal(str(r["revenue"])) for r in expected]


# --- codes, time zones, messages ------------------------------------------------------------------


def test_history_times_are_in_the_business_zone_named(page: Any, site: Site) -> None:
    out = str(site.data_dir / "cli-out")
    cli(site, "report", "payments", "--business", OTHER, "--param", "period=last_month", "--format", "csv",
        "--out", out)  # fmt: skip
    login(page, site, "b2admin")
    goto(page, site, "history")
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=WAIT)
    driver.settle(page)
    name = dt.datetime.now(ZoneInfo(business_zone(site, OTHER))).tzname()
    shown = cells(page)
    times = [c for c in shown if c[:2] == "20" and c[4:5] == "-" and ":" in c]
    assert times and all(t.endswith(f" {name}") for t in times), shown
    summary = page.get_by_text(re.compile(rf"· run #\d+ · .*\d\d:\d\d {name}$"))  # the run's details
    expect(summary.first).to_be_visible(timeout=WAIT)


def business_zone(site: Site, code: str) -> str:
    """The time zone of business `code`, read from the database the app uses."""
    from sqlalchemy import select

    from core.db import make_engine, session_scope
    from core.models import Business

    engine = make_engine(site.env["DATABASE_URL"])
    try:
        with session_scope(engine) as session:
            return str(session.scalar(select(Business.timezone).where(Business.code == code)))
    finally:
        engine.dispose()


def test_payment_methods_read_as_labels_not_codes(page: Any, site: Site) -> None:
    login(page, site, "manager")
    goto(page, site, "payments")
    driver.choose_custom_period(page, START, END)
    page.get_by_test_id("stDataFrame").first.wait_for(timeout=WAIT)
    driver.settle(page)
    shown = cells(page)
    assert "Bank transfer" in shown and "bank_transfer" not in shown, shown


def test_the_schedules_page_tells_a_manager_who_sets_up_email(page: Any, site: Site) -> None:
    login(page, site, "manager")
    goto(page, site, "schedules")
    expect(page.get_by_text("Ask an administrator to set up email (Admin → Email).")).to_be_visible(
        timeout=WAIT
    )
    body = page.get_by_test_id("stMain").inner_text()
    assert str(site.data_dir) not in body and "outbox" not in body.lower()


def test_a_staff_user_opening_admin_reads_no_access(page: Any, site: Site) -> None:
    login(page, site, "staff")
    goto(page, site, "admin")
    expect(page.get_by_text("You do not have access to this page.")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(page.get_by_role("heading", name="Users")).to_have_count(0)  # nothing of the page shows


# --- KPI labels, forms, filters ---------------------------------------------------------------------


def test_kpi_labels_are_never_cut(page: Any, site: Site) -> None:
    login(page, site, "manager")
    goto(page, site, "profit")
    driver.choose_custom_period(page, START, END)
    label = page.get_by_test_id("stMetricLabel").filter(has_text="Products with negative gross profit")
    expect(label).to_be_visible(timeout=WAIT)
    # no part of a label (the ellipsis box around its text included) is wider or taller than it shows
    cut = page.evaluate(
        """() => [...document.querySelectorAll('[data-testid="stMetricLabel"]')]
             .filter(l => [l, ...l.querySelectorAll('*')]
               .some(e => e.scrollWidth > e.clientWidth + 1 || e.scrollHeight > e.clientHeight + 1))
             .map(l => l.innerText)"""
    )
    assert cut == []


def test_forms_keep_what_was_typed_when_refused(page: Any, site: Site) -> None:
    login(page, site, "admin")
    goto(page, site, "admin")
    page.get_by_text("Add a user").click()
    typed = {"Username": "newcomer", "Name": "New Comer", "Email": "new@example.com"}
    form = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Add user"))
    for label, value in typed.items():
        form.get_by_role("textbox", name=label, exact=True).fill(value)
    form.get_by_role("textbox", name="Password", exact=True).fill("a-long-password-1")
    form.get_by_role("textbox", name="Repeat the password").fill("a-different-one-2")
    form.get_by_role("button", name="Add user").click()
    expect(page.get_by_text("The two passwords differ.")).to_be_visible(timeout=WAIT)
    driver.settle(page)
    for label, value in typed.items():
        assert form.get_by_role("textbox", name=label, exact=True).input_value() == value
    assert form.get_by_role("textbox", name="Password", exact=True).input_value() == "a-long-password-1"

    smtp = page.get_by_test_id("stForm").filter(has=page.get_by_role("button", name="Save SMTP settings"))
    smtp.get_by_role("textbox", name="SMTP host").fill("smtp.example.com")
    smtp.get_by_role("textbox", name="User name").fill("mailer")
    smtp.get_by_role("textbox", name="From address").fill("not an address")
    smtp.get_by_role("button", name="Save SMTP settings").click()
    driver.settle(page)
    expect(page.get_by_test_id("stAlert").filter(has_text="not an address").first).to_be_visible(timeout=WAIT)
    assert smtp.get_by_role("textbox", name="SMTP host").input_value() == "smtp.example.com"
    assert smtp.get_by_role("textbox", name="User name").input_value() == "mailer"
    assert smtp.get_by_role("textbox", name="From address").input_value() == "not an address"


def test_the_filters_panel_stays_open_while_several_filters_are_picked(page: Any, site: Site) -> None:
    login(page, site, "manager")
    goto(page, site, "sales")
    driver.choose_custom_period(page, START, END)
    page.get_by_test_id("stExpander").filter(has_text="Filters").get_by_text("Filters").first.click()
    driver.settle(page)
    boxes = page.get_by_test_id("stMultiSelect")
    for nth in (0, 1, 2):
        boxes.nth(nth).click()
        page.get_by_role("option").first.click()
        page.keyboard.press("Escape")
        driver.settle(page, 1000)
        expect(boxes.nth(nth + 1)).to_be_visible(timeout=WAIT)  # the panel is still open
    for nth in (0, 1, 2):  # each pick stuck, and the panel is still open to show them
        expect(boxes.nth(nth).get_by_role("button", name=re.compile("^Remove ")).first).to_be_visible()


def test_custom_range_leaves_no_stack_trace_in_the_log(page: Any, site: Site) -> None:
    server_log = site.data_dir / "streamlit.log"
    login(page, site, "manager")
    goto(page, site, "customers")
    before = server_log.stat().st_size  # the server is shared: what this test's steps write
    driver.choose_custom_period(page, START, END)
    driver.choose_period(page, "Last month")
    driver.choose_period(page, "Custom range")
    driver.settle(page, 1500)
    # Streamlit logs this warning, with a stack, once per server process: the whole log must lack it.
    log = server_log.read_text(encoding="utf-8", errors="replace")
    assert "created with a default value but also had its value set" not in log, log[-3000:]
    with server_log.open("rb") as handle:
        handle.seek(before)
        ours = handle.read().decode("utf-8", errors="replace")
    assert "Stack (most recent call last)" not in ours and "Traceback" not in ours, ours[-3000:]


# --- a phone: 390 px --------------------------------------------------------------------------------


def test_on_a_phone_kpis_pair_up_tables_scroll_inside_and_no_toolbar_covers_a_title(
    page: Any, site: Site
) -> None:
    login(page, site, "manager")
    page.set_viewport_size({"width": 1400, "height": 1100})
    overview_on_the_tiny_period(page)
    page.set_viewport_size({"width": PHONE, "height": 900})
    driver.settle(page)
    cards = page.get_by_test_id("stMetric").filter(visible=True)
    boxes = [cards.nth(i).bounding_box() for i in range(4)]
    assert boxes[0]["y"] == pytest.approx(boxes[1]["y"], abs=2)  # two per row
    assert boxes[2]["y"] > boxes[0]["y"] + boxes[0]["height"] - 2
    assert all(b["width"] < PHONE / 2 for b in boxes)
    # the page never scrolls sideways: wide tables scroll inside their box
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE
    found = tables(page)
    assert found and all(t["right"] <= PHONE for t in found), found
    assert any(t["scroll"] > t["client"] for t in found)  # the Top 10 tables do scroll, inside
    # a chart's toolbar never covers its title
    chart = page.get_by_test_id("stPlotlyChart").nth(1)
    chart.scroll_into_view_if_needed()
    chart.hover()
    page.wait_for_timeout(500)  # the toolbar fades in on hover
    title = chart.locator(".gtitle").bounding_box()
    bar = chart.locator(".modebar")
    if bar.count() and bar.first.is_visible():
        b = bar.first.bounding_box()
        overlap = not (b["x"] >= title["x"] + title["width"] or b["x"] + b["width"] <= title["x"]
                       or b["y"] >= title["y"] + title["height"] or b["y"] + b["height"] <= title["y"])  # fmt: skip
        assert not overlap, (b, title)
