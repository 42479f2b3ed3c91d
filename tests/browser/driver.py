"""Driving the real app: start `streamlit run app.py`, launch Debian's Chromium, log in, pick periods.

Shared by the browser tests (tests/browser/) and the UI benchmark (bench/ui.py). Waits are explicit:
Playwright's `expect(...)` for content, and `settle()` — the app reports its script state on the
root element (data-test-script-state), so "idle for a moment" is observable rather than guessed.
"""

from __future__ import annotations

import datetime as dt
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

from analytics.formatting import format_value
from analytics.periods import Period

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
# NOTES.md: the flags that make Debian's Chromium run headless in containers.
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
STARTUP_TIMEOUT_S = 60
WAIT_MS = 60_000  # the longest explicit wait: generous, because the CPU is shared
COOKIE_NAME = "tallyboard_auth"  # ui/auth.COOKIE_NAME (not imported: that module imports Streamlit)

# True once the app has been idle (script not running) for `quiet` ms since the last reset.
_SETTLED_JS = """(quiet) => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  const state = app.getAttribute('data-test-script-state');
  const now = performance.now();
  if (window.__tbState !== state) { window.__tbState = state; window.__tbSince = now; }
  return state === 'notRunning' && now - window.__tbSince >= quiet;
}"""


# --- the server -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_streamlit(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`streamlit run app.py` from the project root, headless on 127.0.0.1:port, output to `log`."""
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(
    proc: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float = STARTUP_TIMEOUT_S
) -> None:
    """Wait until /_stcore/health answers "ok"; raise with the server's log if it dies or is late."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.read().decode().strip() == "ok":
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)  # polling a port that is not open yet: the pause is the wait itself
    raise RuntimeError(f"streamlit did not answer within {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


# --- the pages ------------------------------------------------------------------------------------


def settle(page: Any, quiet_ms: int = 750, timeout_ms: int = WAIT_MS) -> None:
    """Wait until the app's script has not been running for `quiet_ms` (counted from now).

    Streamlit reruns on its own after a page load (the cookie component reports back), and a
    widget's value reaches the server only on a rerun, so act on a settled app."""
    page.evaluate("() => { window.__tbSince = performance.now(); }")
    page.wait_for_function(_SETTLED_JS, arg=quiet_ms, polling=100, timeout=timeout_ms)


# Keeps, in window.__tbMost, the most elements `selector` matched (whose text is `text`, when given) at any
# one moment from now on: the browser keeps the previous run's elements until a run ends, so a page drawn
# at another place in the next run shows twice for a while (a slow machine sees it).
_WATCH_MOST_JS = """([selector, text]) => {
  const count = () => [...document.querySelectorAll(selector)]
    .filter((el) => text === null || el.textContent.trim() === text).length;
  window.__tbMost = count();
  new MutationObserver(() => { window.__tbMost = Math.max(window.__tbMost, count()); })
    .observe(document.body, {subtree: true, childList: true, characterData: true, attributes: true});
}"""


def watch_most(page: Any, selector: str, text: str | None = None) -> None:
    """Start counting `selector`'s elements (with this text) at every change of the page; `most` reads
    the highest count seen since."""
    page.evaluate(_WATCH_MOST_JS, [selector, text])


def most(page: Any) -> int:
    return int(page.evaluate("() => window.__tbMost"))


def nav(page: Any) -> Any:
    return page.get_by_test_id("stSidebarNav")


def nav_titles(page: Any) -> list[str]:
    """The page titles in the sidebar navigation, in order (icons left out)."""
    links = nav(page).get_by_test_id("stSidebarNavLink")
    return [link.inner_text().strip().splitlines()[-1].strip() for link in links.all()]


def login(page: Any, base_url: str | None, username: str, password: str, *, attempts: int = 3) -> None:
    """Open the app (`base_url`; None: the form already shown) and log in; returns once the
    navigation shows.

    A submit that lands while the page is still rerunning after its load (the cookie component
    reports back) can be dropped by Streamlit; then the form comes back empty and we try again."""
    from playwright.sync_api import expect

    if base_url is not None:
        page.goto(base_url)
    for _ in range(attempts):
        settle(page)
        if nav(page).is_visible():
            return
        page.get_by_label("Username").fill(username)
        page.get_by_role("textbox", name="Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        settle(page, 1000)
        if nav(page).is_visible():
            return
        alerts = page.get_by_test_id("stAlert").all_inner_texts()
        if any("Wrong username" in a or "Too many" in a for a in alerts):
            raise AssertionError(f"login of {username!r} refused: {alerts}")
    expect(nav(page)).to_be_visible(timeout=WAIT_MS)


def wait_for_login_cookie(page: Any, timeout_ms: int = WAIT_MS) -> None:
    """The login cookie is written by a component in the run after the login: wait for it before a
    full page load (which starts a new session that logs in from the cookie)."""
    page.wait_for_function(f"() => document.cookie.includes('{COOKIE_NAME}=')", timeout=timeout_ms)


def open_page(page: Any, title: str) -> None:
    """Click the page in the sidebar and wait for its title heading."""
    from playwright.sync_api import expect

    nav(page).get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", name=title, exact=True).first).to_be_visible(timeout=WAIT_MS)
    settle(page)


def metric(page: Any, label: str) -> Any:
    """The value of the KPI card labelled exactly `label`."""
    card = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    )
    return card.get_by_test_id("stMetricValue").first


def _type_date(page: Any, label: str, day: dt.date) -> None:
    # Streamlit's date input is a segmented field (year - month - day): typing the digits fills the
    # segments in turn; the value is sent when the field loses focus (Escape closes the calendar).
    page.locator(f'[role="spinbutton"][aria-label="year, {label}"]:not([aria-disabled="true"])').click()
    page.keyboard.type(day.strftime("%Y%m%d"))
    page.keyboard.press("Escape")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    settle(page)


def choose_period(page: Any, label: str) -> None:
    """Pick a period preset (or "Custom range") in the Period box."""
    page.get_by_test_id("stSelectbox").filter(has_text="Period").first.click()
    page.get_by_role("option", name=label, exact=True).click()
    settle(page)


def choose_custom_period(page: Any, start: dt.date, end: dt.date) -> None:
    """Switch the page's Period to "Custom range" and type the dates; waits for the report caption."""
    from playwright.sync_api import expect

    choose_period(page, "Custom range")
    _type_date(page, "From", start)
    _type_date(page, "To", end)
    caption = Period(start, end).describe()
    expect(page.get_by_text(caption).first).to_be_visible(timeout=WAIT_MS)


# --- charts, chips and the URL (the shareable views and click-to-filter) --------------------------------

# The page point of a chart's bar or sunburst sector labelled `label` (sectors: just inside the ring's
# outer edge, so not in the hole), or null. Plotly's drag layer covers the bars: a real mouse click at
# that point is what a user does.
_CHART_POINT_JS = """([title, label]) => {
  const chart = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
    .find((c) => (c.querySelector('.gtitle') || {}).textContent === title);
  if (!chart) return null;
  const sectors = [...chart.querySelectorAll('g.slice')];
  if (sectors.length) {
    const sector = sectors.find((g) => (g.querySelector('text') || {}).textContent.startsWith(label));
    if (!sector) return null;
    const path = sector.querySelector('path');
    const ring = sector.closest('g.trace').getBoundingClientRect();
    const cx = ring.x + ring.width / 2, cy = ring.y + ring.height / 2;
    let best = null;
    const n = path.getTotalLength();
    for (let i = 0; i < 24; i++) {  // the point of the outline farthest from the centre: the outer arc
      const a = path.getPointAtLength((n * i) / 24);
      const p = path.ownerSVGElement.createSVGPoint(); p.x = a.x; p.y = a.y;
      const s = p.matrixTransform(path.getScreenCTM());
      const d = Math.hypot(s.x - cx, s.y - cy);
      if (!best || d > best[2]) best = [s.x, s.y, d];
    }
    return [best[0] + (cx - best[0]) * 0.12, best[1] + (cy - best[1]) * 0.12];
  }
  const ticks = [...chart.querySelectorAll('g.xtick text')].map((t) => {
    const r = t.getBoundingClientRect(); return [t.textContent, r.x + r.width / 2]; });
  const tick = ticks.find((t) => t[0] === label);
  if (!tick) return null;
  const bars = [...chart.querySelectorAll('g.point path')].map((b) => b.getBoundingClientRect());
  bars.sort((a, b) => Math.abs(a.x + a.width / 2 - tick[1]) - Math.abs(b.x + b.width / 2 - tick[1]));
  const bar = bars[0];
  return bar ? [bar.x + bar.width / 2, bar.y + bar.height / 2] : null;
}"""


def chart_point(page: Any, title: str, label: str) -> tuple[float, float]:
    """Where on the page the bar or sector labelled `label` of the chart titled `title` is (scrolled
    into view; the mouse is moved there, so the click that follows is a click at once)."""
    chart = page.get_by_test_id("stPlotlyChart").filter(has_text=title).first
    chart.scroll_into_view_if_needed()
    page.wait_for_function(_CHART_POINT_JS, arg=[title, label], timeout=WAIT_MS)
    x, y = page.evaluate(_CHART_POINT_JS, [title, label])
    page.mouse.move(x, y)
    return float(x), float(y)


def click_chart(page: Any, title: str, label: str) -> None:
    """Click the bar or sector labelled `label` of the chart titled `title`, then wait for the app."""
    x, y = chart_point(page, title, label)
    page.mouse.click(x, y)
    settle(page)


def chips(page: Any) -> list[str]:
    """The active filters' chips ('Region: North'), in order."""
    found = page.locator('[class*="st-key-"][class*="_chips"]').get_by_test_id("stButton")
    return [text.strip().splitlines()[-1].strip() for text in found.all_inner_texts()]


def query(page: Any) -> dict[str, str]:
    """The page URL's query, one value per key."""
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(page.url).query))


def money(value: float | str) -> str:
    """An amount of the JSON document as the pages show it ("€1,585.00")."""
    return format_value(Decimal(str(value)), "money", "EUR")
