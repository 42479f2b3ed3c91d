"""API-test fixtures: a fresh database with two businesses, `streamlit run app.py` on a free local port
(one server per test module), a token for every user, and a client that calls the live server.

- "main": the hand-checked tiny example (sales December 2024 to April 2025), users admin, manager,
  staff and staff2;
- "other": 3,000 demo lines ending 2025-04-15, users b2admin and b2staff.

Reports are asked with `now` pinned to NOW (last month = January 2025). A module may set
RATE_LIMIT_PER_HOUR (default 40) for its server.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import Engine

from accounts.tokens import create_token
from accounts.users import add_business, add_user, operator
from core.db import make_engine, migrate, session_scope
from ingest.demo import load_demo
from tests.browser import driver
from tests.conftest import fresh_database_url
from tests.factories import insert_tiny

MAIN, OTHER = "main", "other"
NOW = "2025-02-10T12:00:00+00:00"
PASSWORD = "api-test-password-1"
USERS = {  # username -> (business code, role)
    "admin": (MAIN, "admin"),
    "manager": (MAIN, "manager"),
    "staff": (MAIN, "staff"),
    "staff2": (MAIN, "staff"),
    "b2admin": (OTHER, "admin"),
    "b2staff": (OTHER, "staff"),
}
DEFAULT_RATE_LIMIT = 40


@dataclass(frozen=True)
class Api:
    """The running server, its database, and a token for every user."""

    url: str
    env: dict[str, str]  # DATABASE_URL, TALLYBOARD_DATA_DIR, ... of the server (for manage.py)
    engine: Engine
    businesses: dict[str, int]  # code -> id
    user_ids: dict[str, int]
    tokens: dict[str, str]  # username -> token

    def get(
        self, path: str, who: str | None = "admin", token: str | None = None, **params: Any
    ) -> requests.Response:
        """GET `path` (under /api/v1) as `who` (None: without a token; `token`: that token instead)."""
        headers = {}
        if token is not None or who is not None:
            headers["Authorization"] = f"Bearer {token if token is not None else self.tokens[who or '']}"
        return requests.get(f"{self.url}/api/v1{path}", params=params, headers=headers, timeout=120)

    def report(self, slug: str, who: str = "admin", **params: Any) -> requests.Response:
        return self.get(f"/reports/{slug}", who, **{"now": NOW, **params})


def prepare(url: str) -> tuple[dict[str, int], dict[str, int], dict[str, str]]:
    """Migrate a fresh database, fill both businesses, add the users and make their tokens."""
    engine = make_engine(url)
    try:
        migrate(engine)
        with session_scope(engine) as s:
            main_id = add_business(s, MAIN, "Main Street Traders").id
        insert_tiny(engine, main_id)
        other_id = load_demo(engine, OTHER, rows=3000, today=dt.date(2025, 4, 15)).business_id
        ids = {MAIN: main_id, OTHER: other_id}
        user_ids: dict[str, int] = {}
        tokens: dict[str, str] = {}
        now = dt.datetime.now(dt.UTC)
        with session_scope(engine) as s:
            for username, (code, role) in USERS.items():
                user = add_user(s, operator(ids[code], "tests"), username, PASSWORD, role)
                user_ids[username] = user.id
                made = create_token(
                    s, operator(ids[code], "tests"), username, now=now, name=f"{username} tests"
                )
                tokens[username] = made.token
    finally:
        engine.dispose()
    return ids, user_ids, tokens


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("api")
    limit = getattr(request.module, "RATE_LIMIT_PER_HOUR", DEFAULT_RATE_LIMIT)
    with fresh_database_url(data_dir, "api") as url:
        businesses, user_ids, tokens = prepare(url)
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "TALLYBOARD_DATA_DIR": str(data_dir),
            "TALLYBOARD_COOKIE_KEY": secrets.token_urlsafe(48),
            "TALLYBOARD_RATE_LIMIT_PER_HOUR": str(limit),
        }
        env.pop("TEST_DATABASE_URL", None)
        port = driver.free_port()
        log = data_dir / "streamlit.log"
        proc = driver.start_streamlit(env, port, log)
        engine = make_engine(url)
        try:
            driver.wait_healthy(proc, f"http://127.0.0.1:{port}", log)
            yield Api(f"http://127.0.0.1:{port}", env, engine, businesses, user_ids, tokens)
        finally:
            driver.stop(proc)
            engine.dispose()


def server_log(api: Api) -> str:
    return Path(api.env["TALLYBOARD_DATA_DIR"], "streamlit.log").read_text(errors="replace")
