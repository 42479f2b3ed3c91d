"""Sessions end server-side, in a real browser: a login cookie copied before logout logs nobody in
afterwards, and a malformed cookie (alg none, another algorithm, no expiry) shows the login form."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest

from tests.browser import driver
from tests.browser.conftest import PASSWORD, Site

pytestmark = pytest.mark.browser
WAIT = driver.WAIT_MS


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def shows_login_form(page: Any) -> None:
    expect(page.get_by_role("textbox", name="Password")).to_be_visible(timeout=WAIT)
    expect(driver.nav(page)).to_have_count(0)
    expect(page.get_by_test_id("stException")).to_have_count(0)


def fresh_page(page: Any, site: Site, cookies: list[dict[str, Any]]) -> Any:
    """A page in a new browser context (another browser) holding just these cookies."""
    context = page.context.browser.new_context(viewport={"width": 1400, "height": 1100})
    context.add_cookies(cookies)
    return context.new_page()


def test_a_cookie_copied_before_logout_no_longer_logs_in(page: Any, site: Site) -> None:
    driver.login(page, site.url, "staff", PASSWORD)
    driver.wait_for_login_cookie(page)
    copied = [c for c in page.context.cookies() if c["name"] == driver.COOKIE_NAME]
    assert copied
    # Before the logout the copy works: another browser is logged in by it.
    other = fresh_page(page, site, copied)
    try:
        other.goto(site.url)
        expect(driver.nav(other)).to_be_visible(timeout=WAIT)
    finally:
        other.context.close()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out.")).to_be_visible(timeout=WAIT)
    later = fresh_page(page, site, copied)
    try:
        later.goto(f"{site.url}/history")
        driver.settle(later, 1000)
        shows_login_form(later)
    finally:
        later.context.close()


def _token(header: dict[str, Any], claims: dict[str, Any], key: str) -> str:
    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps(header).encode()) + "." + part(json.dumps(claims).encode())
    if header["alg"] == "none":
        return head + "."
    digest = hashlib.sha512 if header["alg"] == "HS512" else hashlib.sha256
    return head + "." + part(hmac.new(key.encode(), head.encode(), digest).digest())


@pytest.mark.parametrize(
    ("alg", "expiry"),
    [("none", True), ("HS512", True), ("HS256", False)],
    ids=["alg none", "HS512", "no expiry"],
)
def test_a_malformed_cookie_shows_the_login_form(page: Any, site: Site, alg: str, expiry: bool) -> None:
    later = time.time() + 86400
    claims: dict[str, Any] = {"username": "admin", "epoch": 0}
    if expiry:
        claims.update(exp_date=later, exp=int(later))
    token = _token({"alg": alg, "typ": "JWT"}, claims, site.env["TALLYBOARD_COOKIE_KEY"])
    host = site.url.split("//", 1)[1].split(":", 1)[0]
    page.context.add_cookies([{"name": driver.COOKIE_NAME, "value": token, "domain": host, "path": "/"}])
    page.goto(site.url)
    driver.settle(page, 1000)
    shows_login_form(page)
    driver.login(page, site.url, "admin", PASSWORD)  # and the form works
    expect(driver.nav(page)).to_be_visible(timeout=WAIT)
