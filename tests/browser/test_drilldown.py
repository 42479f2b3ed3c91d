"""Click into a number, in a real browser: a click on a bar or a slice (region, category, customer type,
storefront, payment method) filters the page to it, shown as a removable chip and kept in the URL; a click on a customer's
or product's row opens its detail (its figures, trend and sales lines). Figures are checked against the
command line's JSON for the same parameters; chart drawing of partial buckets is checked on the page."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from analytics.periods import Period
from tests.browser import driver
from tests.browser.conftest import PASSWORD, Cli, Site
from tests.browser.driver import money

pytestmark = pytest.mark.browser

START, END = dt.date(2025, 1, 1), dt.date(2025, 3, 31)  # the tiny example's period
WAIT = driver.WAIT_MS
CAPTION = Period(START, END).describe()
TOTAL = "€1,585.00"  # the tiny example's revenue over the period, hand-checked


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def cli(site: Site, slug: str, **params: str) -> Cli:
    """The command line's report over the tiny example's period, unless `params` say otherwise."""
    return Cli(site, slug, **{"start": START.isoformat(), "end": END.isoformat(), **params})


def open_view(page: Any, site: Site, path: str, username: str = "admin") -> None:
    driver.login(page, site.url, username, PASSWORD)
    driver.wait_for_login_cookie(page)
    page.goto(f"{site.url}{path}")
    driver.settle(page, 1000)
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text=CAPTION).first).to_be_visible(
        timeout=WAIT
    )


@pytest.fixture
def tall(page: Any) -> Any:
    page.set_viewport_size({"width": 1400, "height": 2600})  # every chart of a page in view
    return page


def test_a_click_on_a_region_bar_filters_overview_to_it(tall: Any, site: Site) -> None:
    north = cli(site, "kpi_dashboard", region="North")
    open_view(tall, site, f"/?start={START}&end={END}")
    expect(driver.metric(tall, "Revenue")).to_have_text(TOTAL, timeout=WAIT)
    driver.click_chart(tall, "Revenue by region", "North")
    assert driver.chips(tall) == ["Region: North"]
    assert driver.query(tall)["region"] == "North"
    expect(driver.metric(tall, "Revenue")).to_have_text(money(north.doc()["kpis"]["revenue"]), timeout=WAIT)

    # The chip removes the filter again.
    tall.get_by_role("button", name="Region: North").click()
    driver.settle(tall)
    expect(driver.metric(tall, "Revenue")).to_have_text(TOTAL, timeout=WAIT)
    assert driver.chips(tall) == []
    assert "region" not in driver.query(tall)


def test_clicks_on_a_category_bar_and_a_customer_type_slice_add_up(tall: Any, site: Site) -> None:
    both = cli(site, "kpi_dashboard", category="Drinks", customer_type="wholesale")
    open_view(tall, site, f"/?start={START}&end={END}")
    driver.click_chart(tall, "Revenue by category", "Drinks")
    driver.click_chart(tall, "Revenue by customer type", "Wholesale")
    assert [c.lower() for c in driver.chips(tall)] == ["category: drinks", "customer type: wholesale"]
    assert {k: driver.query(tall)[k] for k in ("category", "customer_type")} == {
        "category": "Drinks",
        "customer_type": "wholesale",
    }
    expect(driver.metric(tall, "Revenue")).to_have_text(money(both.doc()["kpis"]["revenue"]), timeout=WAIT)


def test_a_click_on_a_storefront_bar_filters_sales_by_its_code(tall: Any, site: Site) -> None:
    open_view(tall, site, f"/sales?start={START}&end={END}")
    table = cli(site, "sales_summary").doc()["tables"]["by_storefront"]
    first = table[0]
    driver.click_chart(tall, "Revenue by storefront", str(first["storefront_name"]))
    assert driver.query(tall)["storefront"] == first["storefront_code"]
    chip = [c for c in driver.chips(tall) if c.startswith("Storefront: ")]
    assert len(chip) == 1 and first["storefront_code"] in chip[0]
    filtered = cli(site, "sales_summary", storefront=first["storefront_code"]).doc()
    expect(driver.metric(tall, "Revenue")).to_have_text(money(filtered["kpis"]["revenue"]), timeout=WAIT)


def test_a_click_on_a_payment_method_slice_filters_payments_to_it(tall: Any, site: Site) -> None:
    methods = cli(site, "payments").doc()["tables"]["by_method"]
    assert len(methods) >= 2, methods  # a slice among others
    code = str(methods[-1]["method"])  # the smallest slice
    only = cli(site, "payments", payment_method=code)
    open_view(tall, site, f"/payments?start={START}&end={END}")
    name = {"bank_transfer": "Bank transfer", "card": "Card", "cash": "Cash", "mobile": "Mobile"}[code]
    driver.click_chart(tall, "Cash received by method", name)
    assert driver.chips(tall) == [f"Payment method: {name}"]
    assert driver.query(tall)["payment_method"] == code  # the URL keeps the code, like --param
    expected = money(only.doc()["kpis"]["cash_received"])
    expect(driver.metric(tall, "Cash received")).to_have_text(expected, timeout=WAIT)


ROW_PX = 35  # the height of a header and of a row in Streamlit's data grid (drawn on a canvas)


def click_row(page: Any, text: str) -> None:
    """Click the selection box of the table row whose cells hold `text` (the grid's accessible table
    gives the row's position; the grid itself is a canvas)."""
    cell = page.locator('[data-testid="stDataFrame"] td[role="gridcell"]').filter(has_text=text).first
    expect(cell).to_be_attached(timeout=WAIT)
    index = int(cell.evaluate("(td) => td.closest('tr').rowIndex")) - 1  # row 0 is the header
    frame = cell.locator("xpath=ancestor::*[@data-testid='stDataFrame']").first
    frame.scroll_into_view_if_needed()
    grid = frame.bounding_box()
    assert grid is not None
    page.mouse.click(grid["x"] + 18, grid["y"] + ROW_PX * (index + 1) + ROW_PX / 2)
    driver.settle(page)


def test_a_click_on_a_customer_row_opens_its_detail(tall: Any, site: Site) -> None:
    top = cli(site, "kpi_dashboard").doc()["tables"]["top_customers"][0]
    code, name = top["customer_code"], top["customer_name"]
    own = cli(site, "kpi_dashboard", customer=code)
    lines = cli(site, "sales_lines", customer=code)
    open_view(tall, site, f"/?start={START}&end={END}")
    doc = own.doc()
    click_row(tall, name)
    dialog = tall.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=WAIT)
    expect(dialog.get_by_text(f"Customer: {name}")).to_be_visible()
    card = dialog.get_by_test_id("stMetric").filter(
        has=tall.get_by_test_id("stMetricLabel").get_by_text("Revenue", exact=True)
    )
    expect(card.get_by_test_id("stMetricValue")).to_have_text(money(doc["kpis"]["revenue"]))
    expect(dialog.get_by_test_id("stPlotlyChart")).to_have_count(1)  # its trend
    orders = {str(r["order_id"]) for r in lines.doc()["tables"]["lines"]}
    assert orders
    grid = dialog.get_by_test_id("stDataFrame").last
    for order in orders:
        expect(grid.locator('td[role="gridcell"]').filter(has_text=order).first).to_be_attached(timeout=WAIT)


def test_a_click_on_a_product_row_opens_its_detail(tall: Any, site: Site) -> None:
    overview = cli(site, "kpi_dashboard").doc()
    product = overview["tables"]["top_products"][0]
    own = cli(site, "kpi_dashboard", product=product["sku"]).doc()
    open_view(tall, site, f"/?start={START}&end={END}")
    click_row(tall, product["product_name"])
    dialog = tall.get_by_role("dialog")
    expect(dialog).to_be_visible(timeout=WAIT)
    expect(dialog.get_by_text(f"Product: {product['product_name']}")).to_be_visible()
    card = dialog.get_by_test_id("stMetric").filter(
        has=tall.get_by_test_id("stMetricLabel").get_by_text("Revenue", exact=True)
    )
    expect(card.get_by_test_id("stMetricValue")).to_have_text(money(own["kpis"]["revenue"]))
