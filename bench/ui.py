"""Benchmark: the web app in a real browser (Playwright + Debian's Chromium) on 1M demo lines.

Starts `streamlit run app.py` on a copy of the database bench/reports.py made
(bench/out/reports_1000000.db, demo data ending 2026-11-21; never written to: the copy, its snapshots and
the bench user live in a temporary folder, deleted afterwards), logs in and measures:

- first view: from opening Overview to its KPI cards showing, cold (fresh server, nothing cached:
  from the click on "Log in", which lands on Overview) and warm (a new browser session, i.e. a
  full page load logged in by cookie, and a click on Overview from another page);
- a period change: from clicking another period in the open Period list to the KPI cards showing
  its figures, for periods not computed yet (uncached) and for one computed before (cached);
- a filter change: from picking a region in the Filters panel to the KPI cards showing its figures;
- a click-to-filter: from a click on a bar of "Revenue by region" to the KPI cards of that region;
- server memory per page: the streamlit process's resident memory (VmRSS from /proc, sampled every
  50 ms while the page renders; VmHWM is the process's peak so far) while visiting every page.

Times run from the browser action to the moment the DOM shows the new, non-stale KPI values
(checked on every animation frame); "done" is when the page's script run has finished too.
Prints a Markdown table and writes it as the "UI" section of bench/RESULTS.md.

    .venv/bin/python bench/ui.py [--db bench/out/reports_1000000.db] [--repeat 3] [--cold 2]
        [--screenshots docs/pages] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import driver  # noqa: E402  (after the path tweak, like bench/reports.py)

OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "RESULTS.md"
BUSINESS = "demo"
USER, PASSWORD = "bench-ui", "bench-ui-password-1"
TARGET_FIRST_S, TARGET_CHANGE_S, TARGET_MB = 2.0, 1.0, 500
# The periods a manager switches to from the default (Last month), in turn: each is computed for the
# first time (uncached).
PERIOD_CHANGES = ("Last quarter", "Year to date", "Last 30 days", "Month to date")
FILTER_REGIONS = ("North", "South")  # picked in the Filters panel, then clicked on "Revenue by region"

# Truthy (the Revenue card's text) once the Revenue KPI shows a non-stale value that differs from
# `old` and a caption contains `caption` (the report header names the period).
_KPIS_JS = """([caption, old]) => {
  const fresh = (el) => { const c = el.closest('[data-testid="stElementContainer"]');
                          return !c || c.getAttribute('data-stale') !== 'true'; };
  const card = [...document.querySelectorAll('[data-testid="stMetric"]')].find((m) => {
    const label = m.querySelector('[data-testid="stMetricLabel"]');
    return label && label.innerText.trim() === 'Revenue' && fresh(m);
  });
  if (!card) return false;
  const value = card.querySelector('[data-testid="stMetricValue"]');
  const text = value ? value.innerText.trim() : '';
  if (!text || (old && text === old)) return false;
  if (caption && ![...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
        .some((c) => fresh(c) && c.innerText.includes(caption))) return false;
  return text;
}"""
_DONE_JS = """() => { const a = document.querySelector('[data-testid="stApp"]');
  return a && a.getAttribute('data-test-script-state') === 'notRunning'; }"""


# --- the server's memory -------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process in MB (psutil is not installed: /proc/<pid>/status)."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return out


class RssSampler(threading.Thread):
    """Samples a process's VmRSS every 50 ms; `window()` returns the peak since the last call."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.lock = threading.Lock()
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            try:
                rss = proc_status(self.pid)["VmRSS"]
            except (OSError, KeyError):
                return
            with self.lock:
                self.peak = max(self.peak, rss)

    def window(self) -> float:
        with self.lock:
            peak, self.peak = self.peak, proc_status(self.pid)["VmRSS"]
        return peak


# --- setup ---------------------------------------------------------------------------------------


def ensure_user(url: str) -> None:
    from accounts.users import add_user, operator, user_by_username
    from core.db import business_by_code, make_engine, session_scope

    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            business = business_by_code(session, BUSINESS)
            if business is None:
                raise SystemExit(f"No business {BUSINESS!r} in {url}: run bench/reports.py first.")
            if user_by_username(session, USER) is None:
                add_user(session, operator(business.id, "bench"), USER, PASSWORD, "admin", name="Bench UI")
    finally:
        engine.dispose()


def build_snapshot(env: dict[str, str]) -> float:
    """Build the business's snapshot of the copied database in a child process, as the first report
    after an import would; seconds."""
    code = (
        "import time; from core.settings import Settings; from core.db import make_engine,"
        " business_by_code, session_scope; from snapshots.store import SnapshotStore\n"
        "s = Settings.from_env(); e = make_engine(s.database_url)\n"
        f"with session_scope(e) as db: bid = business_by_code(db, {BUSINESS!r}).id\n"
        "t = time.perf_counter(); SnapshotStore(e, s.snapshot_dir).current(bid)\n"
        "print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


GENERATE_CODE = """
import json, sys, time
from core.clock import utc_now
from core.db import business_by_code, make_engine, make_sessionmaker
from reports.registry import generate
from analytics.report import ReportParams, Scope
from core.settings import Settings
from snapshots.store import SnapshotStore
s = Settings.from_env(); e = make_engine(s.database_url); store = SnapshotStore(e, s.snapshot_dir)
out = {}
with make_sessionmaker(e)() as db:
    b = business_by_code(db, sys.argv[1])
    for period in ["last_month", *sys.argv[2:]]:  # the first one also warms imports and DuckDB
        t = time.perf_counter()
        params = ReportParams(period=period, tz=b.timezone)
        generate(db, store, Scope(b.id, user="bench"), "kpi_dashboard", params, now=utc_now())
        out[period] = time.perf_counter() - t
print(json.dumps(out))
"""
PERIOD_KEYS = {
    "Month to date": "month_to_date",
    "Last quarter": "last_quarter",
    "Year to date": "year_to_date",
    "Last 30 days": "last_30_days",
}


def generation_times(env: dict[str, str]) -> dict[str, float]:
    """Seconds to generate the KPI dashboard per period in a plain process: the server's share of a
    period change, without Streamlit and the browser."""
    out = subprocess.run(
        [sys.executable, "-c", GENERATE_CODE, BUSINESS, *(PERIOD_KEYS[p] for p in PERIOD_CHANGES)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@dataclass
class Server:
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    url: str = ""

    def start(self) -> None:
        port = driver.free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.proc = driver.start_streamlit(self.env, port, self.log)
        driver.wait_healthy(self.proc, self.url, self.log, timeout_s=120)

    def stop(self) -> None:
        if self.proc is not None:
            driver.stop(self.proc)
            self.proc = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


# --- measurements --------------------------------------------------------------------------------


@dataclass
class Timing:
    kpis: float  # action -> KPI cards with the new figures
    done: float  # action -> the page's script run finished


@dataclass
class Results:
    first_cold: list[Timing] = field(default_factory=list)
    first_reload: list[Timing] = field(default_factory=list)
    first_click: list[Timing] = field(default_factory=list)
    change_uncached: list[tuple[str, Timing]] = field(default_factory=list)
    change_cached: list[Timing] = field(default_factory=list)
    filter_change: list[tuple[str, Timing]] = field(default_factory=list)
    click_filter: list[tuple[str, Timing]] = field(default_factory=list)
    pages: list[tuple[str, float, float, float, float]] = field(
        default_factory=list
    )  # title, s, rss, peak, hwm
    login_s: float = 0.0


def timed(page: Any, action: Callable[[], None], caption: str = "", old: str = "") -> Timing:
    """Run `action`, then wait (checking every frame) for fresh KPI cards, then for the run's end."""
    started = time.perf_counter()
    action()
    page.wait_for_function(_KPIS_JS, arg=[caption, old], polling="raf", timeout=120_000)
    kpis = time.perf_counter() - started
    page.wait_for_function(_DONE_JS, polling="raf", timeout=120_000)
    return Timing(kpis, time.perf_counter() - started)


def revenue(page: Any) -> str:
    return str(driver.metric(page, "Revenue").inner_text()).strip()


def cold_first_view(browser: Any, server: Server) -> Timing:
    """Fresh server: from the click on "Log in" to Overview's KPI cards (nothing cached yet)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    try:
        page = context.new_page()
        page.goto(server.url)
        driver.settle(page, 1500)  # past the reruns after a page load (they can drop a submit)
        page.get_by_label("Username").fill(USER)
        page.get_by_role("textbox", name="Password").fill(PASSWORD)
        timing = timed(page, lambda: page.get_by_role("button", name="Log in").click())
        driver.wait_for_login_cookie(page)
        return timing
    finally:
        context.close()


def measure(browser: Any, server: Server, repeat: int, shots: Path | None, results: Results) -> None:
    context = browser.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()
    page.set_default_timeout(120_000)
    started = time.perf_counter()
    driver.login(page, server.url, USER, PASSWORD)
    results.login_s = time.perf_counter() - started
    driver.wait_for_login_cookie(page)
    driver.settle(page)

    # Warm first views: a full page load (a new session, logged in by cookie), and a click on
    # Overview from another page.
    for _ in range(repeat):
        results.first_reload.append(timed(page, lambda: page.goto(server.url)))
        driver.settle(page)
    for _ in range(repeat):
        driver.open_page(page, "Account")
        link = driver.nav(page).get_by_role("link", name="Overview", exact=True)
        results.first_click.append(timed(page, link.click))
        driver.settle(page)

    # Period changes: periods not computed yet, then back to one computed before.
    def change(label: str) -> Timing:
        old = revenue(page)
        page.get_by_test_id("stSelectbox").filter(has_text="Period").first.click()
        option = page.get_by_role("option", name=label, exact=True)
        option.wait_for()  # the list is open: the clock starts with the choice
        timing = timed(page, option.click, f"({label.lower()})", old)
        driver.settle(page)
        return timing

    for label in PERIOD_CHANGES:
        results.change_uncached.append((label, change(label)))
    for i in range(repeat):
        results.change_cached.append(change(PERIOD_CHANGES[i % 2]))
    change("Last month")  # back to the default, computed before

    # A click on a region's bar (click-to-filter), then a second region picked in the Filters panel.
    first, second = FILTER_REGIONS
    old = revenue(page)
    x, y = driver.chart_point(page, "Revenue by region", first)
    results.click_filter.append((first, timed(page, lambda: page.mouse.click(x, y), "", old)))
    driver.settle(page)
    old = revenue(page)
    page.get_by_test_id("stExpander").filter(has_text="Filter").first.locator("summary").first.click()
    driver.settle(page)
    page.get_by_test_id("stMultiSelect").filter(has=page.get_by_text("Region", exact=True)).click()
    option = page.get_by_role("option", name=second, exact=True)
    option.wait_for()
    results.filter_change.append((second, timed(page, option.click, "", old)))
    driver.settle(page)
    page.close()

    # Every page, in a new session (a new tab: the same login cookie, a new Streamlit session; the
    # report cache is process-wide, so Overview is warm by now).
    page = context.new_page()
    page.set_viewport_size({"width": 1400, "height": 2400 if shots else 1100})
    page.set_default_timeout(120_000)
    sampler = RssSampler(server.pid)
    sampler.start()
    sampler.window()
    t0 = time.perf_counter()
    page.goto(server.url)  # opens the first page of the menu (Overview)
    driver.nav(page).wait_for()
    for i, title in enumerate(driver.nav_titles(page)):
        if i > 0:
            t0 = time.perf_counter()
            driver.nav(page).get_by_role("link", name=title, exact=True).click()
        page.get_by_role("heading", name=title, exact=True).first.wait_for()  # the page's run began
        page.wait_for_function(_DONE_JS, polling="raf", timeout=300_000)
        seconds = time.perf_counter() - t0
        driver.settle(page, 500, timeout_ms=300_000)
        peak = sampler.window()
        status = proc_status(server.pid)
        results.pages.append((title, seconds, status["VmRSS"], peak, status["VmHWM"]))
        if shots is not None:
            key = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
            page.screenshot(path=str(shots / f"{key}.png"))
    sampler.stopped.set()
    context.close()


def overview_shots(browser: Any, server: Server, folder: Path) -> None:
    """Overview as a manager opens it, at 1440 px and at 390 px (a phone) wide: overview_1440.png and
    overview_390.png in `folder` (the README shows them, from docs/)."""
    context = browser.new_context(viewport={"width": 1440, "height": 2300}, device_scale_factor=1)
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        driver.login(page, server.url, USER, PASSWORD)  # wide: the menu shows once logged in
        driver.wait_for_login_cookie(page)
        for width, height in ((1440, 2300), (390, 5200)):
            page.set_viewport_size({"width": width, "height": height})
            page.goto(server.url)  # a new session, logged in by the cookie
            page.wait_for_function(_KPIS_JS, arg=["", ""], polling="raf", timeout=120_000)
            page.wait_for_function(_DONE_JS, polling="raf", timeout=120_000)
            driver.settle(page, 1500, timeout_ms=120_000)
            page.screenshot(path=str(folder / f"overview_{width}.png"))
    finally:
        context.close()


# --- report --------------------------------------------------------------------------------------


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(seconds: float, target: float) -> str:
    return "yes" if seconds <= target else "**no**"


def report(
    results: Results,
    snapshot_s: float,
    lines: int,
    load: str,
    repeat: int,
    generate_s: dict[str, float],
) -> str:
    rows = [
        ("First view, cold: log in → Overview KPIs (fresh server)", results.first_cold, TARGET_FIRST_S),
        (
            "First view, warm: page load (new session, cookie login) → KPIs",
            results.first_reload,
            TARGET_FIRST_S,
        ),
        ("First view, warm: click Overview in the menu → KPIs", results.first_click, TARGET_FIRST_S),
        ("Period change, cached period → KPIs", results.change_cached, TARGET_CHANGE_S),
    ]
    out = [
        f"Run {dt.datetime.now():%Y-%m-%d %H:%M}, `bench/ui.py`: {lines:,} demo sale lines (SQLite, "
        f"a copy of bench/out/reports_1000000.db), `streamlit run app.py` + Chromium on {os.cpu_count()} cores "
        f"— **{load}**.",
        "",
        "- snapshot build (once per data version, i.e. the first report after an import waits for it): "
        + f"{snapshot_s:.1f} s",
        f"- log in to the menu (bcrypt + first run): {results.login_s:.1f} s",
        "",
        f"Median of {repeat} (cold: of {len(results.first_cold)} fresh servers); KPIs = the Revenue "
        "card shows the new, non-stale figure; done = the page's script run has finished (charts, "
        "tables); report alone = `generate()` of the KPI dashboard for that period in a plain process "
        "(no Streamlit, no browser; the cold row's figure is its first, import-warming call for Last "
        "month, the default period).",
        "",
        "| measurement | KPIs s | done s | report alone s | target | met |",
        "| --- | ---: | ---: | ---: | ---: | :---: |",
    ]
    for label, timings, target in rows:
        k, d = med([t.kpis for t in timings]), med([t.done for t in timings])
        alone = f"{generate_s['last_month']:.2f}" if "cold" in label else ""
        out.append(f"| {label} | {k:.2f} | {d:.2f} | {alone} | ≤ {target:.0f} s | {verdict(k, target)} |")
    for label, t in results.change_uncached:
        seconds = generate_s.get(PERIOD_KEYS[label], float("nan"))
        out.append(
            f"| Period change → {label} (not cached) → KPIs | {t.kpis:.2f} | {t.done:.2f} | {seconds:.2f} | "
            f"≤ {TARGET_CHANGE_S:.0f} s | {verdict(t.kpis, TARGET_CHANGE_S)} |"
        )
    for what, rows_ in (
        ("Filter change: pick region", results.filter_change),
        ("Click-to-filter: region bar", results.click_filter),
    ):
        for label, t in rows_:
            out.append(
                f"| {what} {label} → KPIs | {t.kpis:.2f} | {t.done:.2f} | | "
                f"≤ {TARGET_CHANGE_S:.0f} s | {verdict(t.kpis, TARGET_CHANGE_S)} |"
            )
    out += [
        "",
        "Server memory per page (the streamlit process, visiting every page as admin in menu order with "
        "default periods: Overview by a full page load, the others by a click in the menu; the pages "
        "after Overview compute their reports for the first time; s to done = click → the page's run "
        "finished):",
        "",
        "| page | s to done | RSS after MB | peak RSS while rendering MB | process peak so far (VmHWM) MB | under 500 MB |",
        "| --- | ---: | ---: | ---: | ---: | :---: |",
    ]
    for title, seconds, rss, peak, hwm in results.pages:
        ok = "yes" if peak < TARGET_MB else "**no**"
        out.append(f"| {title} | {seconds:.1f} | {rss:.0f} | {peak:.0f} | {hwm:.0f} | {ok} |")
    return "\n".join(out)


def write_section(text: str) -> None:
    """Put `text` under "## UI" in bench/RESULTS.md, replacing an earlier UI section only."""
    body = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    section = f"## UI\n\n{text}\n"
    match = re.search(r"^## UI\n.*?(?=^## |\Z)", body, flags=re.S | re.M)
    if match:
        body = body[: match.start()] + section + ("\n" if body[match.end() :] else "") + body[match.end() :]
    else:
        body = body.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(body, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", type=Path, default=OUT / "reports_1000000.db")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cold", type=int, default=2, help="fresh servers for the cold first view")
    parser.add_argument(
        "--screenshots",
        type=Path,
        help="save a screenshot of every page here, and of Overview at 1440 and 390 px wide",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if not driver.CHROMIUM.exists():
        raise SystemExit(f"{driver.CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium")
    if not args.db.exists():
        raise SystemExit(f"{args.db} is missing: run bench/reports.py first.")
    from playwright.sync_api import sync_playwright
    from sqlalchemy import create_engine, text

    with tempfile.TemporaryDirectory(prefix="tallyboard-bench-ui-") as tmp:
        # The bench's own copy: the user, the snapshots and Streamlit's log never touch the original.
        work = Path(tmp)
        copy = work / "reports.db"
        shutil.copyfile(args.db, copy)
        url = f"sqlite:///{copy}"
        ensure_user(url)
        engine = create_engine(url)
        with engine.connect() as conn:
            lines = int(conn.execute(text("SELECT count(*) FROM sale_lines")).scalar_one())
        engine.dispose()
        data_dir = work / "data"
        data_dir.mkdir()
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "TALLYBOARD_DATA_DIR": str(data_dir),
            "TALLYBOARD_COOKIE_KEY": secrets.token_urlsafe(48),
        }
        before = os.getloadavg()[0]  # what other work on the machine adds
        snapshot_s = build_snapshot(env)
        generate_s = generation_times(env)
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
        results = Results()
        loads: list[float] = []
        server = Server(env, work / "streamlit.log")
        with sync_playwright() as p:
            browser = driver.launch(p)
            try:
                for i in range(args.cold):
                    server.start()
                    try:
                        loads.append(os.getloadavg()[0])
                        results.first_cold.append(cold_first_view(browser, server))
                        if i == args.cold - 1:
                            measure(browser, server, args.repeat, args.screenshots, results)
                            loads.append(os.getloadavg()[0])
                            if args.screenshots:
                                try:
                                    overview_shots(browser, server, args.screenshots)
                                except Exception as exc:  # the figures matter more than the pictures
                                    print(f"Overview screenshots failed: {exc}", file=sys.stderr)
                    finally:
                        server.stop()
            finally:
                browser.close()
    load = (
        f"1-minute load average {before:.1f} before the run, {min(loads):.1f}–{max(loads):.1f} during it "
        "(the bench's own server and browser included)"
        + (
            ""
            if before < 2
            else "; the machine was busy before the run, so these numbers are pessimistic and must be "
            "re-measured on a quiet machine"
        )
    )
    text_ = report(results, snapshot_s, lines, load, args.repeat, generate_s)
    print(text_)
    if not args.no_write:
        write_section(text_)
        print(f"\nWrote the UI section of {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
