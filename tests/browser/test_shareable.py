"""Shareable, stable views in a real browser: the period and filters live in the URL with the command
line's keys (a link opens that view, a reload keeps it, Back/Forward walk through it, "Copy link" gives
it to a colleague, a link opened before the login lands there after it); one period for the session
across the dashboards; the login keeps the username after a wrong password. Figures are checked against
the command line's JSON for the same parameters (see conftest.py for the data and users)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from analytics.formatting import format_change
from analytics.periods import PERIOD_LABELS, Period, month_end, resolve
from tests.browser import driver
from tests.browser.conftest import PASSWORD, Cli, Site
from tests.browser.driver import money
from tests.factories import tiny_rows
from ui.filters import DEFAULT_PERIOD

pytestmark = pytest.mark.browser

START, END = dt.date(2025, 1, 1), dt.date(2025, 3, 31)  # the tiny example's period
WAIT = driver.WAIT_MS
CAPTION = Period(START, END).describe()  # "1 Jan – 31 Mar 2025"


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def login(page: Any, site: Site, username: str = "admin") -> None:
    driver.login(page, site.url, username, PASSWORD)
    driver.wait_for_login_cookie(page)  # a full page load (goto, reload) logs in again from the cookie


def open_url(page: Any, site: Site, path: str) -> None:
    page.goto(f"{site.url}{path}")
    driver.settle(page, 1000)


def period_box(page: Any) -> Any:
    """The Period box's input (its value is the chosen period's label)."""
    return page.get_by_role("combobox", name="Period")


def shows_view(page: Any, caption: str, chips: list[str], revenue: str) -> None:
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text=caption).first).to_be_visible(
        timeout=WAIT
    )
    expect(driver.metric(page, "Revenue")).to_have_text(revenue, timeout=WAIT)
    deadline = time.monotonic() + WAIT / 1000  # a rerun may be redrawing the chips
    while driver.chips(page) != chips and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert driver.chips(page) == chips


def pick_filter(page: Any, label: str, option: str) -> None:
    """Open the filters panel and add `option` to the `label` filter."""
    panel = page.get_by_test_id("stExpander").filter(has_text="Filter").first
    if (
        panel.get_by_test_id("stMultiSelect").count() == 0
        or not panel.get_by_test_id("stMultiSelect").first.is_visible()
    ):
        panel.locator("summary").first.click()
        driver.settle(page)
    box = page.get_by_test_id("stMultiSelect").filter(has=page.get_by_text(label, exact=True))
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    driver.settle(page)


# --- a link opens its view; a reload keeps it ----------------------------------------------------------


def test_a_link_opens_sales_on_its_range_for_its_region(page: Any, site: Site) -> None:
    cli = Cli(site, "sales_summary", start=START.isoformat(), end=END.isoformat(), region="North")
    login(page, site)
    open_url(page, site, f"/sales?start={START}&end={END}&region=North")
    expect(page.get_by_role("heading", name="Sales", exact=True)).to_be_visible(timeout=WAIT)
    expect(period_box(page)).to_have_value("Custom range")
    revenue = money(cli.kpi("revenue"))
    shows_view(page, CAPTION, ["Region: North"], revenue)
    assert revenue != money(1585)  # North alone, not the whole business

    page.reload()
    driver.settle(page, 1000)
    shows_view(page, CAPTION, ["Region: North"], revenue)
    assert driver.query(page) == {"start": START.isoformat(), "end": END.isoformat(), "region": "North"}


def test_choices_go_into_the_url_and_a_reload_keeps_them(page: Any, site: Site) -> None:
    cli = Cli(site, "kpi_dashboard", start=START.isoformat(), end=END.isoformat(), region="North,South")
    login(page, site)
    driver.choose_custom_period(page, START, END)
    assert driver.query(page) == {"start": START.isoformat(), "end": END.isoformat()}
    pick_filter(page, "Region", "North")
    pick_filter(page, "Region", "South")
    # The panel stays open while several filters are picked.
    expect(
        page.get_by_test_id("stMultiSelect").filter(has=page.get_by_text("Region", exact=True))
    ).to_be_visible()
    assert driver.query(page)["region"] == "North,South"  # comma-separated, like --param region=North,South
    revenue = money(cli.kpi("revenue"))
    shows_view(page, CAPTION, ["Region: North", "Region: South"], revenue)
    page.reload()
    driver.settle(page, 1000)
    shows_view(page, CAPTION, ["Region: North", "Region: South"], revenue)


def test_a_wrong_value_in_a_link_is_named_and_left_out(page: Any, site: Site) -> None:
    login(page, site)
    before = page.url
    open_url(page, site, f"/sales?start={START}&end={END}&region=Atlantis&period=someday")
    expect(page.get_by_text("Region Atlantis is not in your data").first).to_be_visible(timeout=WAIT)
    shows_view(page, CAPTION, [], money(1585))
    assert "region" not in driver.query(page)
    # The link was tidied in place: Back returns to the page before it (not to the untidy link, which
    # would tidy itself again and leave the user where they were).
    page.go_back()
    driver.settle(page, 1000)
    assert page.url == before


# --- Back and Forward ------------------------------------------------------------------------------------


def test_back_and_forward_walk_through_the_views(page: Any, site: Site) -> None:
    north = Cli(site, "kpi_dashboard", start=START.isoformat(), end=END.isoformat(), region="North")
    login(page, site)
    open_url(page, site, f"/?start={START}&end={END}")
    shows_view(page, CAPTION, [], money(1585))
    pick_filter(page, "Region", "North")
    with_north = money(north.kpi("revenue"))
    shows_view(page, CAPTION, ["Region: North"], with_north)

    page.go_back()
    driver.settle(page, 1000)
    shows_view(page, CAPTION, [], money(1585))
    assert driver.query(page) == {"start": START.isoformat(), "end": END.isoformat()}

    page.go_forward()
    driver.settle(page, 1000)
    shows_view(page, CAPTION, ["Region: North"], with_north)
    assert driver.query(page)["region"] == "North"


def history_length(page: Any) -> int:
    return int(page.evaluate("() => window.history.length"))


def test_one_back_from_another_page_returns_to_the_filtered_view(page: Any, site: Site) -> None:
    """A click in the menu is one step in the browser's history: Back returns to Overview as it was
    (its filter included), Forward to Sales on the same period; no in-between entry."""
    north = Cli(site, "kpi_dashboard", start=START.isoformat(), end=END.isoformat(), region="North")
    login(page, site)
    open_url(page, site, f"/?start={START}&end={END}&region=North")
    with_north = money(north.kpi("revenue"))
    shows_view(page, CAPTION, ["Region: North"], with_north)
    overview_url, entries = page.url, history_length(page)

    driver.open_page(page, "Sales")
    assert urlsplit(page.url).path == "/sales"
    assert driver.query(page) == {"start": START.isoformat(), "end": END.isoformat()}
    assert history_length(page) == entries + 1  # one entry for the click, not two
    sales_url = page.url

    page.go_back()
    driver.settle(page, 1000)
    expect(page.get_by_role("heading", name="Overview", exact=True).first).to_be_visible(timeout=WAIT)
    assert page.url == overview_url
    shows_view(page, CAPTION, ["Region: North"], with_north)

    page.go_forward()
    driver.settle(page, 1000)
    expect(page.get_by_role("heading", name="Sales", exact=True).first).to_be_visible(timeout=WAIT)
    assert page.url == sales_url
    shows_view(page, CAPTION, [], money(1585))

    # Back, Back: Overview, then the page before it (the filtered Overview is one entry, not two).
    page.go_back()
    driver.settle(page, 1000)
    assert page.url == overview_url
    assert history_length(page) == entries + 1  # walking through history adds nothing


# --- Copy link, and a colleague opening it ---------------------------------------------------------------


def test_copy_link_gives_a_colleague_the_same_view(page: Any, site: Site) -> None:
    cli = Cli(site, "kpi_dashboard", start=START.isoformat(), end=END.isoformat(), category="Drinks")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    login(page, site)
    open_url(page, site, f"/?start={START}&end={END}&category=Drinks")
    revenue = money(cli.kpi("revenue"))
    shows_view(page, CAPTION, ["Category: Drinks"], revenue)
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("button", name="Link copied")).to_be_visible(timeout=WAIT)
    link = str(page.evaluate("() => navigator.clipboard.readText()"))
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == site.url and parts.path == "/"
    assert dict(parse_qsl(parts.query)) == {"start": "2025-01-01", "end": "2025-03-31", "category": "Drinks"}

    colleague = page.context.browser.new_context(viewport={"width": 1400, "height": 1100})
    try:
        other = colleague.new_page()
        other.set_default_timeout(WAIT)
        login(other, site, "manager")
        other.goto(link)
        driver.settle(other, 1000)
        shows_view(other, CAPTION, ["Category: Drinks"], revenue)
    finally:
        colleague.close()


def test_a_copied_link_names_the_period_even_when_it_is_the_default(page: Any, site: Site) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    login(page, site)
    open_url(page, site, f"/?period={DEFAULT_PERIOD}")
    expect(period_box(page)).to_have_value(PERIOD_LABELS[DEFAULT_PERIOD])
    assert "period" not in driver.query(page)  # the address bar leaves defaults out
    page.get_by_role("button", name="Copy link").click()
    expect(page.get_by_role("button", name="Link copied")).to_be_visible(timeout=WAIT)
    link = str(page.evaluate("() => navigator.clipboard.readText()"))
    assert dict(parse_qsl(urlsplit(link).query)) == {"period": DEFAULT_PERIOD}


# --- the login ---------------------------------------------------------------------------------------------


def test_a_link_opened_before_the_login_lands_on_its_view_after_it(page: Any, site: Site) -> None:
    cli = Cli(site, "sales_summary", start=START.isoformat(), end=END.isoformat(), region="North")
    before = f"{site.url}/_stcore/health"  # where the user was before opening the link
    page.goto(before)
    open_url(page, site, f"/sales?start={START}&end={END}&region=North")
    expect(page.get_by_role("textbox", name="Password")).to_be_visible(timeout=WAIT)
    entries = history_length(page)
    driver.login(page, None, "staff", PASSWORD)  # the form on the link's own URL
    expect(page.get_by_role("heading", name="Sales", exact=True)).to_be_visible(timeout=WAIT)
    revenue = money(cli.kpi("revenue"))
    shows_view(page, CAPTION, ["Region: North"], revenue)
    assert urlsplit(page.url).path == "/sales"
    # The login form's address gave way to the view: Back leaves for where the user was before.
    assert history_length(page) == entries
    page.go_back()
    page.wait_for_url(before, timeout=WAIT)


def test_a_wrong_password_keeps_the_username(page: Any, site: Site) -> None:
    open_url(page, site, "/")
    page.get_by_label("Username").fill("manager")
    page.get_by_role("textbox", name="Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    driver.settle(page, 1000)
    expect(page.get_by_text("Wrong username or password").first).to_be_visible(timeout=WAIT)
    expect(page.get_by_label("Username")).to_have_value("manager")
    expect(page.get_by_role("textbox", name="Password")).to_have_value("")
    page.get_by_role("textbox", name="Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(driver.nav(page)).to_be_visible(timeout=WAIT)


# --- one period for the session ---------------------------------------------------------------------------


def latest_sale_month() -> Period:
    """The calendar month of the tiny example's latest completed sale, from its CSV."""
    day = max(
        dt.date.fromisoformat(r["order_date"]) for r in tiny_rows("sales") if r["status"] == "completed"
    )
    return Period(day.replace(day=1), month_end(day))


def test_without_sales_in_the_default_period_every_dashboard_opens_on_the_latest_month_with_sales(
    page: Any, site: Site
) -> None:
    # Business 1's sales end in 2025: Last month (the default) is empty, so the dashboards open on the
    # month of the latest sale and say so, all on the same period.
    month = latest_sale_month()
    cli = Cli(site, "kpi_dashboard", start=month.start.isoformat(), end=month.end.isoformat())
    login(page, site, "manager")
    expect(period_box(page)).to_have_value("Custom range", timeout=WAIT)
    default = resolve(DEFAULT_PERIOD, dt.datetime.now(dt.UTC), "UTC")
    notice = (
        f"No sales in {PERIOD_LABELS[DEFAULT_PERIOD].lower()} ({Period(default.start, default.end).describe()}): "
        f"showing {month.describe()}, the latest month with sales."
    )
    expect(page.get_by_text(notice)).to_be_visible(timeout=WAIT)
    revenue = money(cli.kpi("revenue"))
    shows_view(page, month.describe(), [], revenue)
    assert revenue != money(0)
    for title in ("Sales", "Customers", "Profit", "Payments & Credit", "Products & Inventory"):
        driver.open_page(page, title)
        expect(period_box(page)).to_have_value("Custom range", timeout=WAIT)
        expect(
            page.get_by_test_id("stCaptionContainer").filter(has_text=month.describe()).first
        ).to_be_visible(timeout=WAIT)


def test_every_dashboard_opens_on_the_same_default_period(page: Any, site: Site) -> None:
    login(page, site, "manager")
    open_url(page, site, f"/?period={DEFAULT_PERIOD}")  # named: no fallback to the latest sales
    label = PERIOD_LABELS[DEFAULT_PERIOD]
    expect(period_box(page)).to_have_value(label, timeout=WAIT)
    for title in ("Sales", "Customers", "Profit", "Payments & Credit", "Products & Inventory"):
        driver.open_page(page, title)
        expect(period_box(page)).to_have_value(label, timeout=WAIT)


def test_the_period_chosen_on_overview_carries_to_sales(page: Any, site: Site) -> None:
    login(page, site)
    driver.choose_period(page, "Year to date")
    assert driver.query(page) == {"period": "year_to_date"}
    driver.open_page(page, "Sales")
    expect(period_box(page)).to_have_value("Year to date", timeout=WAIT)
    ytd = resolve("year_to_date", dt.datetime.now(dt.UTC), "UTC").describe()  # business 1 keeps UTC
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text=ytd).first).to_be_visible(timeout=WAIT)
    assert driver.query(page) == {"period": "year_to_date"}
    # A custom range chosen on Sales carries back to Overview.
    driver.choose_custom_period(page, START, END)
    driver.open_page(page, "Overview")
    shows_view(page, CAPTION, [], money(1585))


# --- what the KPIs compare with ----------------------------------------------------------------------------


def card_delta(page: Any, label: str) -> Any:
    card = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    )
    return card.get_by_test_id("stMetricDelta").first


def test_compare_with_custom_dates_round_trips_through_the_url(page: Any, site: Site) -> None:
    feb, jan = (
        Period(dt.date(2025, 2, 1), dt.date(2025, 3, 31)),
        Period(dt.date(2025, 1, 1), dt.date(2025, 1, 31)),
    )
    cli = Cli(
        site,
        "kpi_dashboard",
        start=feb.start.isoformat(),
        end=feb.end.isoformat(),
        compare="custom",
        compare_start=jan.start.isoformat(),
        compare_end=jan.end.isoformat(),
    )
    login(page, site)
    link = f"/?start={feb.start}&end={feb.end}&compare=custom&compare_start={jan.start}&compare_end={jan.end}"
    open_url(page, site, link)
    expect(page.get_by_role("combobox", name="Compare with")).to_have_value("Custom dates", timeout=WAIT)
    change = format_change(cli.kpi("revenue_compared_change_pct"))
    assert change
    expect(card_delta(page, "Revenue")).to_contain_text(change, timeout=WAIT)
    card = page.get_by_test_id("stMetric").filter(has=page.get_by_text("Revenue", exact=True)).first
    expect(card).to_contain_text(f"vs {jan.describe()}")
    # Both periods side by side with the change, open since the user chose the dates
    side = page.get_by_test_id("stExpander").filter(has_text="Side by side")
    expect(side).to_contain_text(f"Side by side: {feb.describe()} and {jan.describe()}", timeout=WAIT)
    grid = side.get_by_test_id("stDataFrame")
    expect(grid.locator("th")).to_have_text(
        ["Key figure", feb.describe(), jan.describe(), f"Change vs {jan.describe()}"], timeout=WAIT
    )
    row = [money(cli.kpi("revenue")), money(cli.kpi("revenue_compared")), change]
    orders = [str(cli.kpi("orders")), str(cli.kpi("orders_compared"))]
    texts = grid.locator("td").all_inner_texts()
    assert texts[:4] == ["Revenue", *row], texts
    assert texts[12:15] == ["Orders", *orders], texts
    page.reload()
    driver.settle(page, 1000)
    expect(page.get_by_role("combobox", name="Compare with")).to_have_value("Custom dates", timeout=WAIT)
    assert driver.query(page)["compare_start"] == jan.start.isoformat()

    # Back to the previous period: the comparison leaves the URL.
    page.get_by_test_id("stSelectbox").filter(has_text="Compare with").first.click()
    page.get_by_role("option", name="Previous period", exact=True).click()
    driver.settle(page)
    assert not {"compare", "compare_start", "compare_end"} & set(driver.query(page))
    page.go_back()
    driver.settle(page, 1000)
    expect(page.get_by_role("combobox", name="Compare with")).to_have_value("Custom dates", timeout=WAIT)


def test_same_period_last_year_goes_into_the_url(page: Any, site: Site) -> None:
    login(page, site)
    open_url(page, site, f"/?start={START}&end={END}")
    page.get_by_test_id("stSelectbox").filter(has_text="Compare with").first.click()
    page.get_by_role("option", name="Same period last year", exact=True).click()
    driver.settle(page)
    assert driver.query(page) == {"start": START.isoformat(), "end": END.isoformat(), "compare": "last_year"}


# --- a partial period ------------------------------------------------------------------------------------


def test_a_month_cut_short_by_the_period_is_dashed_and_labelled_to_date(page: Any, site: Site) -> None:
    login(page, site)
    open_url(page, site, "/?start=2025-01-01&end=2025-03-15")
    trend = page.get_by_test_id("stPlotlyChart").filter(has_text="Revenue trend").first
    expect(trend.locator(".annotation-text").filter(has_text="to date")).to_have_count(1, timeout=WAIT)
    dashed = trend.locator("g.scatterlayer path.js-line").evaluate_all(
        "(paths) => paths.filter((p) => (p.style.strokeDasharray || '') !== '').length"
    )
    assert dashed == 2  # revenue and gross profit, each dashed into March
    # A whole quarter has no running month.
    open_url(page, site, f"/?start={START}&end={END}")
    trend = page.get_by_test_id("stPlotlyChart").filter(has_text="Revenue trend").first
    expect(trend.locator(".annotation-text").filter(has_text="to date")).to_have_count(0, timeout=WAIT)
