"""The app in a real browser: login per role, navigation, refused URLs, Overview vs the CLI, the Excel
download, a bad import, logout and tenancy (see conftest.py for the data and users)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from analytics.formatting import format_value
from analytics.periods import Period
from tests.browser import driver
from tests.browser.conftest import MAIN, OTHER, PASSWORD, Cli, Site
from tests.browser.driver import money
from ui.navigation import page as page_spec
from ui.navigation import pages, pages_for

pytestmark = pytest.mark.browser

START, END = dt.date(2025, 1, 1), dt.date(2025, 3, 31)  # the tiny example's period (shared/examples/tiny)
WAIT = driver.WAIT_MS


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def login_as(page: Any, site: Site, username: str) -> None:
    driver.login(page, site.url, username, PASSWORD)


# --- login and navigation -------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["admin", "manager", "staff"])
def test_each_role_sees_its_navigation(page: Any, site: Site, username: str) -> None:
    login_as(page, site, username)
    expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible(timeout=WAIT)
    assert driver.nav_titles(page) == [p.title for p in pages_for(username)]
    expect(page.get_by_test_id("stSidebar").get_by_text(f"Test {username} · {username}")).to_be_visible()


@pytest.mark.parametrize("username", ["staff", "manager"])
def test_forbidden_page_by_url_is_refused(page: Any, site: Site, username: str) -> None:
    keys = [p.key for p in pages() if username not in p.roles]  # the users are named by their role
    assert keys, "every role but admin misses some pages"
    login_as(page, site, username)
    driver.wait_for_login_cookie(page)  # a full page load logs in again from the cookie
    for key in keys:
        title = page_spec(key).title
        page.goto(f"{site.url}/{key}")
        # issue 13: the refusal itself, not Streamlit's "Page not found" and a jump to the first page
        expect(page.get_by_text("You do not have access to this page.").first).to_be_visible(timeout=WAIT)
        expect(page.get_by_text("Page not found")).to_have_count(0)
        driver.settle(page)
        expect(page.get_by_role("heading", name=title, exact=True)).to_have_count(0)
        assert title not in driver.nav_titles(page)


def test_logging_in_shows_the_first_page_once(page: Any, site: Site) -> None:
    """The login run writes the cookie, the next run does not: the page must not show twice meanwhile."""
    page.goto(site.url)
    driver.settle(page)
    driver.watch_most(page, "h1", "Overview")
    driver.login(page, None, "manager", PASSWORD)
    driver.wait_for_login_cookie(page)
    driver.settle(page, 1000)
    assert driver.most(page) == 1


def test_logout_shows_the_login_form_again(page: Any, site: Site) -> None:
    login_as(page, site, "staff")
    driver.wait_for_login_cookie(page)
    driver.watch_most(page, "input[type=password]")
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("textbox", name="Password")).to_be_visible(timeout=WAIT)
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    driver.settle(page, 1000)
    assert driver.most(page) == 1, "one login form at a time, through the logout run and the next"
    expect(driver.nav(page)).to_have_count(0)
    # The cookie is deleted too (by the cookie component, just after the logout run), so a fresh
    # load of a page asks for the login again.
    page.wait_for_function(f"() => !document.cookie.includes('{driver.COOKIE_NAME}=')", timeout=WAIT)
    page.goto(f"{site.url}/history")
    driver.settle(page, 1000)
    expect(page.get_by_role("textbox", name="Password")).to_be_visible(timeout=WAIT)
    expect(driver.nav(page)).to_have_count(0)


# --- reports --------------------------------------------------------------------------------------


def test_overview_revenue_equals_the_cli_json(page: Any, site: Site) -> None:
    report = Cli(site, "kpi_dashboard", start=START.isoformat(), end=END.isoformat())
    login_as(page, site, "admin")
    driver.choose_custom_period(page, START, END)
    cli = report.doc()["kpis"]
    expect(driver.metric(page, "Revenue")).to_have_text(money(cli["revenue"]), timeout=WAIT)
    assert money(cli["revenue"]) == "€1,585.00"  # the hand-checked figure of the tiny example
    expect(driver.metric(page, "Gross profit")).to_have_text(money(cli["gross_profit"]))
    expect(driver.metric(page, "Orders")).to_have_text(format_value(cli["orders"], "int"))
    expect(driver.metric(page, "Outstanding")).to_have_text(money(cli["outstanding"]))


def test_excel_download_holds_the_reports_figures(page: Any, site: Site, tmp_path: Path) -> None:
    report = Cli(site, "kpi_dashboard", start=START.isoformat(), end=END.isoformat())
    login_as(page, site, "admin")
    driver.choose_custom_period(page, START, END)
    cli = report.doc()
    expect(driver.metric(page, "Revenue")).to_have_text(money(cli["kpis"]["revenue"]), timeout=WAIT)
    with page.expect_download(timeout=WAIT) as info:
        page.get_by_test_id("stDownloadButton").get_by_role("button", name="Excel").click()
    download = info.value
    assert download.suggested_filename.endswith(".xlsx")
    path = tmp_path / download.suggested_filename
    download.save_as(path)

    book = openpyxl.load_workbook(path, read_only=True)
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True) if row and row[0]}
    assert summary["Period"] == Period(START, END).describe() == "1 Jan – 31 Mar 2025"
    for label, key in (
        ("Revenue", "revenue"),
        ("Gross profit", "gross_profit"),
        ("Orders", "orders"),
        ("Cash received", "cash_received"),
        ("Outstanding", "outstanding"),
    ):
        assert summary[label] == pytest.approx(cli["kpis"][key]), label
    rows = list(book["Top customers"].iter_rows(values_only=True))
    header = list(rows[0])
    got = [
        (r[header.index("Customer")], r[header.index("Revenue")])
        for r in rows[1:]
        if r[header.index("Customer")] is not None
    ]
    want = [(r["customer_name"], r["revenue"]) for r in cli["tables"]["top_customers"]]
    assert got == want
    assert got[0] == ("Main St. Bodega Grande", 1330)


# --- data -----------------------------------------------------------------------------------------

BAD_CUSTOMERS = (
    b"customer_code,name,customer_type,region,credit_limit,email,active\n"
    b"X1,,retail,North,abc,x1@example.com,true\n"
    b"X2,Fine Co,alien,North,100,not-an-email,true\n"
)


def test_bad_csv_import_shows_the_row_errors(page: Any, site: Site) -> None:
    login_as(page, site, "manager")
    driver.open_page(page, "Data")
    page.locator('input[type="file"]').set_input_files(
        files=[{"name": "bad_customers.csv", "mimeType": "text/csv", "buffer": BAD_CUSTOMERS}]
    )
    button = page.get_by_role("button", name="Import", exact=True)
    expect(button).to_be_enabled(timeout=WAIT)
    button.click()
    expect(page.get_by_text("bad_customers.csv: Rejected")).to_be_visible(timeout=WAIT)
    errors = page.get_by_test_id("stDataFrame").first
    expect(errors).to_be_visible()
    # The grid is drawn on a canvas; its accessible table holds the cells as text.
    cells = errors.locator('td[role="gridcell"]')
    expect(cells.filter(has_text="credit_limit")).to_have_count(1, timeout=WAIT)
    table = [c.inner_text() for c in cells.all()]
    rows = [table[i : i + 3] for i in range(0, len(table), 3)]
    assert [r[:2] for r in rows] == [
        ["2", "name"],
        ["2", "credit_limit"],
        ["3", "customer_type"],
        ["3", "email"],
    ]
    assert "is empty" in rows[0][2]


# --- tenancy --------------------------------------------------------------------------------------


def test_a_user_of_another_business_never_sees_its_customers(page: Any, site: Site) -> None:
    foreign = site.customer_names[MAIN]
    login_as(page, site, "b2admin")
    expect(page.get_by_test_id("stSidebar").get_by_text("Demo Trading Co.")).to_be_visible(timeout=WAIT)
    driver.choose_custom_period(page, START, END)  # the period of business 1's sales
    own_names = re.compile("|".join(re.escape(n) for n in site.customer_names[OTHER]))
    expect(page.locator('td[role="gridcell"]').filter(has_text=own_names).first).to_be_attached(timeout=WAIT)
    html = page.content()
    assert sum(name in html for name in site.customer_names[OTHER]) >= 3  # its own customers show
    assert not [name for name in foreign if name in html]

    driver.open_page(page, "Customers")
    driver.choose_custom_period(page, START, END)
    page.get_by_test_id("stExpander").filter(has_text="Filters").first.click()
    driver.settle(page)
    customer_filter = page.get_by_test_id("stMultiSelect").filter(
        has=page.get_by_text("Customer", exact=True)
    )
    customer_filter.click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible(timeout=WAIT)
    shown = options.all_inner_texts()
    assert shown and not [o for o in shown if any(name in o for name in foreign)]
    html = page.content()
    assert not [name for name in foreign if name in html]
