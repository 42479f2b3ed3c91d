"""Benchmark: the HTTP API under 8 concurrent clients, optionally while a browser session uses Overview.

Starts `streamlit run app.py` (dashboard and API on one port) on a copy, in a temporary folder, of
the database bench/reports.py made (bench/out/reports_1000000.db, business "demo"), or with
`--demo-rows N` on a fresh demo database of N lines (a quick check of the script). A manager `bench-api` and an API
token are added for the run (the token is revoked at the end). Then:

1. uncached: the clients ask kpi_dashboard for calendar months nobody asked before (each a new run
   that builds the report), `--uncached` requests in all;
2. cached: after one request of each (not counted) builds them, for `--seconds` (60) each client
   asks in turn kpi_dashboard for last month and the by_region table of sales_summary for last
   month, answered from the run cache (each answer is still a run of its own, a "cached" one).

Every request is a run of trigger "api" (History sees them); the server's hourly generation limit
is switched off for the run (TALLYBOARD_RATE_LIMIT_PER_HOUR=0). Prints requests per second, p50 and
p99 latency and errors (any answer but 200, or no answer) per phase and request, and writes them
as the "API" section of bench/RESULTS.md (not with --no-write or --demo-rows).

    .venv/bin/python bench/api.py [--db bench/out/reports_1000000.db] [--clients 8] [--seconds 60]
        [--uncached 24] [--browser] [--no-write]
    .venv/bin/python bench/api.py --demo-rows 20000 --seconds 10
"""

from __future__ import annotations

import argparse
import datetime as dt
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import driver  # noqa: E402  (after the path tweak, like bench/ui.py)

OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "RESULTS.md"
BUSINESS = "demo"
USER, PASSWORD = "bench-api", "bench-api-password-1"
TARGET_CACHED_S, TARGET_UNCACHED_S = 1.0, 3.0
SOLO = 5  # uncached requests by one client alone: the same run's baseline
KPI = ("kpi_dashboard", "/reports/kpi_dashboard", {"period": "last_month"})
TABLE = ("sales_summary by_region", "/reports/sales_summary/tables/by_region", {"period": "last_month"})


@dataclass
class Sample:
    name: str
    seconds: float
    status: int  # 0: no answer (a connection error or a timeout)


@dataclass
class Phase:
    label: str
    seconds: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)


# --- setup ------------------------------------------------------------------------------------------


def run_manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def demo_database(rows: int, folder: Path) -> dict[str, str]:
    """A fresh SQLite database in `folder` with `rows` demo lines (business "demo"), as `make setup` does."""
    env = {**os.environ, "TALLYBOARD_DATA_DIR": str(folder), "DATABASE_URL": f"sqlite:///{folder / 'api.db'}"}
    run_manage(env, "init-db")
    run_manage(env, "demo", "--business", BUSINESS, "--rows", str(rows))
    return env


def ensure_user(env: dict[str, str]) -> str:
    """The bench manager (added when missing) and a new API token for this run."""
    from accounts.users import add_user, operator, user_by_username
    from core.db import business_by_code, make_engine, session_scope

    engine = make_engine(env["DATABASE_URL"])
    try:
        with session_scope(engine) as session:
            business = business_by_code(session, BUSINESS)
            if business is None:
                raise SystemExit(
                    f"No business {BUSINESS!r} in {env['DATABASE_URL']}: run bench/reports.py first."
                )
            if user_by_username(session, USER) is None:
                add_user(session, operator(business.id, "bench"), USER, PASSWORD, "manager", name="Bench API")
    finally:
        engine.dispose()
    return run_manage(env, "tokens", "create", USER, "--business", BUSINESS, "--name", "bench/api.py").strip()


def revoke(env: dict[str, str]) -> None:
    for line in run_manage(env, "tokens", "list", "--business", BUSINESS).splitlines():
        fields = line.split("\t")
        if len(fields) == 7 and fields[1] == USER and fields[2] == "bench/api.py" and fields[6] == "active":
            run_manage(env, "tokens", "revoke", fields[0], "--business", BUSINESS)


@contextmanager
def server(env: dict[str, str], log: Path) -> Iterator[str]:
    port = driver.free_port()
    proc = driver.start_streamlit(env, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        driver.wait_healthy(proc, url, log)
        yield url
    finally:
        driver.stop(proc)


# --- the clients ------------------------------------------------------------------------------------


def call(
    http: requests.Session, url: str, token: str, name: str, path: str, params: dict[str, str]
) -> Sample:
    started = time.perf_counter()
    try:
        response = http.get(
            f"{url}/api/v1{path}", params=params, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        response.content  # noqa: B018  (read the whole answer: the time includes the transfer)
        status = response.status_code
    except requests.RequestException:
        status = 0
    return Sample(name, time.perf_counter() - started, status)


def months(count: int, last: dt.date) -> list[dict[str, str]]:
    """`count` distinct calendar months ending with the one before `last`'s month, newest first."""
    found: list[dict[str, str]] = []
    end = last.replace(day=1) - dt.timedelta(days=1)
    for _ in range(count):
        start = end.replace(day=1)
        found.append({"start": start.isoformat(), "end": end.isoformat()})
        end = start - dt.timedelta(days=1)
    return found


def run_clients(clients: int, work: Callable[[int, requests.Session], None]) -> float:
    threads = []
    started = time.perf_counter()
    for i in range(clients):
        http = requests.Session()
        threads.append(threading.Thread(target=work, args=(i, http), daemon=True))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def uncached(
    url: str, token: str, clients: int, total: int, last: dt.date
) -> tuple[Phase, float, list[float]]:
    """The concurrent phase, after one request (not counted) that builds the data snapshot the server
    reads from (once per import; its time is returned) and `SOLO` requests by one client alone, each
    for a month of its own (the baseline of the same run: what one uncached request costs unshared)."""
    phase = Phase("uncached (new month each)")
    *windows, warm = months(total + SOLO + 1, last)
    windows, solo_windows = windows[:total], windows[total:]
    with requests.Session() as http:
        first = call(http, url, token, "kpi_dashboard", KPI[1], warm).seconds
        solo = [call(http, url, token, "kpi_dashboard", KPI[1], w).seconds for w in solo_windows]
    queue = list(enumerate(windows))
    lock = threading.Lock()

    def work(_: int, http: requests.Session) -> None:
        while True:
            with lock:
                if not queue:
                    return
                _, window = queue.pop(0)
            phase.add(call(http, url, token, "kpi_dashboard", KPI[1], window))

    phase.seconds = run_clients(clients, work)
    return phase, first, solo


def cached(url: str, token: str, clients: int, seconds: float) -> Phase:
    phase = Phase("cached (last month)")
    with requests.Session() as http:  # warm up: each request's first answer builds it (not counted)
        for name, path, params in (KPI, TABLE):
            call(http, url, token, name, path, params)
    deadline = time.perf_counter() + seconds

    def work(i: int, http: requests.Session) -> None:
        turn = i  # half the clients start with the table
        while time.perf_counter() < deadline:
            name, path, params = (KPI, TABLE)[turn % 2]
            phase.add(call(http, url, token, name, path, params))
            turn += 1

    phase.seconds = run_clients(clients, work)
    return phase


def browse_overview(url: str, stop: threading.Event, loads: list[float]) -> None:
    """A browser session on Overview: reload it again and again until `stop` (times in `loads`)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = driver.launch(p)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            driver.login(page, url, USER, PASSWORD)
            driver.wait_for_login_cookie(page)
            while not stop.is_set():
                started = time.perf_counter()
                page.reload()
                driver.metric(page, "Revenue").wait_for(timeout=driver.WAIT_MS)
                driver.settle(page)
                loads.append(time.perf_counter() - started)
        finally:
            browser.close()


# --- the report ---------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def rows(phase: Phase, target: float) -> list[str]:
    out = []
    names = sorted({s.name for s in phase.samples})
    for name in [*names, "all"] if len(names) > 1 else names:
        picked = [s for s in phase.samples if name in ("all", s.name)]
        ok = [s.seconds for s in picked if s.status == 200]
        errors = len(picked) - len(ok)
        if errors:
            statuses = sorted({s.status for s in picked if s.status != 200})
            print(f"{phase.label} {name}: {errors} errors, status {statuses}", file=sys.stderr)
        p50, p99 = percentile(ok, 50), percentile(ok, 99)
        verdict = "yes" if errors == 0 and p99 <= target else "**no**"
        out.append(
            f"| {phase.label} | {name} | {len(picked)} | {len(picked) / phase.seconds:.1f} | "
            f"{p50:.3f} | {p99:.3f} | {errors} | ≤ {target:.0f} s | {verdict} |"
        )
    return out


def report(
    phases: list[tuple[Phase, float]],
    lines: int,
    clients: int,
    load: str,
    overview: list[float],
    first: float,
    solo: list[float],
) -> str:
    out = [
        f"Run {dt.datetime.now():%Y-%m-%d %H:%M}, `bench/api.py`: {lines:,} demo sale lines, {clients} concurrent "
        f"clients (threads with keep-alive connections) against `streamlit run app.py` on one port, a manager's "
        f'token; every request a run of trigger "api". Load average {load}.',
        "",
        "| phase | request | requests | per second | p50 s | p99 s | errors | target p99 | met |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for phase, target in phases:
        out += rows(phase, target)
    concurrent = [s.seconds for s in phases[0][0].samples if s.status == 200]
    out += [
        "",
        f"Baseline in the same run: one client alone, {len(solo)} uncached kpi_dashboard requests (a month "
        f"each): median {statistics.median(solo):.3f} s; with {clients} clients sharing the 2 cores the "
        f"median is {statistics.median(concurrent) / statistics.median(solo):.1f}× that. Before them, the "
        f"first request after the server started built the data snapshot (once per import): {first:.2f} s, "
        "not counted.",
    ]
    if overview:
        out += [
            "",
            f"Meanwhile a browser session reloaded Overview {len(overview)} times: median "
            f"{statistics.median(overview):.2f} s, slowest {max(overview):.2f} s to its KPI cards.",
        ]
    return "\n".join(out)


def write_section(text: str) -> None:
    """Put `text` under "## API" in bench/RESULTS.md, replacing an earlier API section only."""
    body = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    section = f"## API\n\n{text}\n"
    match = re.search(r"^## API\n.*?(?=^## |\Z)", body, flags=re.S | re.M)
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
    parser.add_argument(
        "--demo-rows", type=int, help="a fresh demo database of this many lines instead of --db"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--uncached", type=int, default=24, help="uncached requests in all (distinct months)")
    parser.add_argument("--browser", action="store_true", help="reload Overview in a browser meanwhile")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    from sqlalchemy import text

    from core.db import make_engine

    with tempfile.TemporaryDirectory(prefix="bench-api-") as scratch:
        if args.demo_rows:
            env = demo_database(args.demo_rows, Path(scratch))
        else:
            if not args.db.exists():
                raise SystemExit(f"{args.db} is missing: run bench/reports.py first (or give --demo-rows).")
            # A copy in the scratch folder: every run starts with no cached runs and no data snapshot,
            # so "uncached" means it (earlier runs of this script would otherwise answer from cache).
            db = Path(scratch) / "reports.db"
            shutil.copyfile(args.db, db)
            env = {
                **os.environ,
                "DATABASE_URL": f"sqlite:///{db}",
                "TALLYBOARD_DATA_DIR": str(Path(scratch) / "data"),
            }
        env |= {"TALLYBOARD_COOKIE_KEY": secrets.token_urlsafe(48), "TALLYBOARD_RATE_LIMIT_PER_HOUR": "0"}
        engine = make_engine(env["DATABASE_URL"])
        with engine.connect() as conn:
            lines = int(conn.execute(text("SELECT count(*) FROM sale_lines")).scalar_one())
            last = conn.execute(text("SELECT max(order_date) FROM sales")).scalar_one()
        engine.dispose()
        last_day = last if isinstance(last, dt.date) else dt.date.fromisoformat(str(last)[:10])
        token = ensure_user(env)
        log = Path(scratch) / "bench-api-streamlit.log"
        loads = [os.getloadavg()[0]]
        overview: list[float] = []
        try:
            with server(env, log) as url:
                first, snapshot_s, solo = uncached(url, token, args.clients, args.uncached, last_day)
                loads.append(os.getloadavg()[0])
                stop = threading.Event()
                browser = None
                if args.browser:
                    browser = threading.Thread(
                        target=browse_overview, args=(url, stop, overview), daemon=True
                    )
                    browser.start()
                second = cached(url, token, args.clients, args.seconds)
                stop.set()
                if browser is not None:
                    browser.join(timeout=120)
                loads.append(os.getloadavg()[0])
        finally:
            revoke(env)
    load = (
        f"{loads[0]:.1f} before the run, up to {max(loads):.1f} during it from the benchmark's own clients "
        f"and server (1-minute, on {os.cpu_count()} cores)"
    )
    text_ = report(
        [(first, TARGET_UNCACHED_S), (second, TARGET_CACHED_S)],
        lines,
        args.clients,
        load,
        overview,
        snapshot_s,
        solo,
    )
    print(text_)
    if not (args.no_write or args.demo_rows):
        write_section(text_)
        print(f"\nWrote the API section of {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
