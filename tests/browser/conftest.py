"""Browser-test fixtures: a fresh database, `streamlit run app.py` on a free local port, Debian's Chromium.

The database (SQLite in a temp dir; a fresh schema of TEST_DATABASE_URL when that is set) holds two businesses:
- "main" (business 1): the hand-checked tiny example (tests/factories.insert_tiny; customer names
  prefixed "Main St. "), with the users admin, manager and staff;
- "other" (business 2): 3,000 demo lines ending 2025-04-15, with one user, b2admin (an admin).

Every test gets its own browser context (cookies included), so logins never leak between tests.
Each pytest-xdist worker that runs browser tests starts its own server and browser.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import make_url, text

from accounts.users import add_business, add_user, operator
from core.db import make_engine, migrate, session_scope
from ingest.demo import load_demo
from tests.browser import driver
from tests.factories import TINY_DIR, insert_tiny, tiny_rows

MAIN, OTHER = "main", "other"
MAIN_PREFIX = "Main St. "  # business 1's customer names start with it (see tiny_copy)
PASSWORD = "browser-test-pw-1"  # every test user's password
USERS = {  # username -> (business code, role)
    "admin": (MAIN, "admin"),
    "manager": (MAIN, "manager"),
    "staff": (MAIN, "staff"),
    "b2admin": (OTHER, "admin"),
}


@dataclass(frozen=True)
class Site:
    """The running app, and how to reach its database from a CLI subprocess."""

    url: str
    env: dict[str, str]  # DATABASE_URL, TALLYBOARD_DATA_DIR, ... for `python manage.py`
    data_dir: Path
    customer_names: dict[str, list[str]]  # business code -> its customers' names


class Cli:
    """`manage.py report SLUG --param KEY=VALUE ...` as JSON, started at once in the background: the
    independent figures a page must show, computed while the browser works. Whatever a test leaves
    running is killed after it (`no_cli_left`)."""

    running: ClassVar[list[subprocess.Popen[bytes]]] = []

    def __init__(self, site: Site, slug: str, *, business: str = MAIN, **params: str) -> None:
        args = [a for k, v in params.items() for a in ("--param", f"{k}={v}")]
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "report", slug, "--business", business, *args, "--out", "-"],
            cwd=driver.ROOT,
            env=site.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        Cli.running.append(self.proc)
        self._doc: dict[str, Any] | None = None

    def doc(self) -> dict[str, Any]:
        if self._doc is None:
            out, err = self.proc.communicate(timeout=120)
            assert self.proc.returncode == 0, err.decode()
            self._doc = json.loads(out)
        return self._doc

    def kpi(self, key: str) -> Any:
        return self.doc()["kpis"][key]


@pytest.fixture(autouse=True)
def no_cli_left() -> Iterator[None]:
    """A test that fails before reading its CLI figures leaves no process behind."""
    yield
    while Cli.running:
        proc = Cli.running.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def require_chromium() -> None:
    """Skip without /usr/bin/chromium; in CI (CI=true) fail instead, since .ci/run installs it."""
    if driver.CHROMIUM.exists():
        return
    reason = (
        f"{driver.CHROMIUM} is missing: install it with `apt-get install -y --no-install-recommends chromium`"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (.ci/run does this before running the tests)", pytrace=False)
    pytest.skip(reason)


def tiny_copy(folder: Path) -> Path:
    """The tiny example with customer names only business 1 has ("Main St. Alma Café", ...): the
    demo data of business 2 uses some of the tiny names too, and a leak must be unmistakable."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in TINY_DIR.glob("*.csv"):
        shutil.copy(source, folder / source.name)
    rows = tiny_rows("customers")
    with open(folder / "customers.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "name": MAIN_PREFIX + r["name"]} for r in rows)
    return folder


def prepare_database(url: str, tiny: Path) -> dict[str, list[str]]:
    """Migrate a fresh database and fill both businesses; returns each business's customer names."""
    engine = make_engine(url)
    try:
        migrate(engine)
        with session_scope(engine) as s:
            main_id = add_business(s, MAIN, "Main Street Traders").id
        insert_tiny(engine, main_id, tiny)
        other_id = load_demo(engine, OTHER, rows=3000, today=dt.date(2025, 4, 15)).business_id
        ids = {MAIN: main_id, OTHER: other_id}
        with session_scope(engine) as s:
            for username, (code, role) in USERS.items():
                add_user(s, operator(ids[code], "tests"), username, PASSWORD, role, name=f"Test {username}")
        with engine.connect() as conn:
            query = text("SELECT name FROM customers WHERE business_id = :b ORDER BY name")
            other_names = [str(n) for (n,) in conn.execute(query, {"b": other_id})]
    finally:
        engine.dispose()
    main_names = [r["name"] for r in tiny_rows("customers", tiny)]
    assert not [o for o in other_names if MAIN_PREFIX.strip() in o], "business 2 must not use the prefix"
    return {MAIN: main_names, OTHER: other_names}


def database_url(data_dir: Path) -> str:
    """SQLite in `data_dir`; with TEST_DATABASE_URL (the PostgreSQL run), a fresh schema there."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        return f"sqlite:///{data_dir / 'browser.db'}"
    schema = f"tb_browser_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    admin = make_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    scoped = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    data_dir = tmp_path_factory.mktemp("browser")
    db_url = database_url(data_dir)
    names = prepare_database(db_url, tiny_copy(data_dir / "tiny"))
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "TALLYBOARD_DATA_DIR": str(data_dir),
        "TALLYBOARD_COOKIE_KEY": secrets.token_urlsafe(48),
    }
    env.pop("TEST_DATABASE_URL", None)
    port = driver.free_port()
    url = f"http://127.0.0.1:{port}"
    log = data_dir / "streamlit.log"
    proc = driver.start_streamlit(env, port, log)
    try:
        driver.wait_healthy(proc, url, log)
        yield Site(url=url, env=env, data_dir=data_dir, customer_names=names)
    finally:
        driver.stop(proc)


@pytest.fixture(scope="session")
def browser(chromium: Any) -> Any:
    require_chromium()
    return chromium


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    """A new page in its own browser context (no cookies from other tests), tall enough for the app."""
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    context.set_default_timeout(driver.WAIT_MS)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()
