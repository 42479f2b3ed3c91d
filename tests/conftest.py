"""Shared fixtures: a real, migrated database (SQLite file, or PostgreSQL when TEST_DATABASE_URL is set).

Every test gets its own business, so tests never see each other's rows even though they share
one database per test session (and per xdist worker).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, text
from sqlalchemy.orm import Session

from core.db import make_engine, make_sessionmaker, migrate
from core.models import Business
from core.settings import Settings

# The tenants, jobs and daemon fixtures every package's tests share.
pytest_plugins = ("tests.tenants",)


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def engine(data_dir: Path) -> Iterator[Engine]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        schema = f"tb_test_{_worker()}"
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        eng = make_engine(scoped.render_as_string(hide_password=False))
    else:
        eng = make_engine(f"sqlite:///{data_dir / 'test.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def settings(engine: Engine, data_dir: Path) -> Settings:
    return Settings(database_url=engine.url.render_as_string(hide_password=False), data_dir=data_dir)


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point manage.py (run in-process or as a subprocess) at the test database and data folder."""
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TALLYBOARD_DATA_DIR", str(settings.data_dir))
    return settings


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    s = make_sessionmaker(engine)()
    try:
        yield s
    finally:
        s.rollback()
        s.close()


def new_business(engine: Engine, name: str = "Test Business", **fields: object) -> Business:
    """A fresh business with a unique code, committed."""
    code = f"t{uuid.uuid4().hex[:10]}"
    with make_sessionmaker(engine)() as s:
        business = Business(code=code, name=name, **fields)
        s.add(business)
        s.commit()
        s.refresh(business)
        s.expunge(business)
        return business


@pytest.fixture
def business(engine: Engine) -> Business:
    return new_business(engine)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright, one per test process: Playwright's sync API cannot be
    started while another instance of it runs in the same process, so every browser test shares it."""
    from tests.browser import driver

    sync_api = pytest.importorskip("playwright.sync_api")
    if not driver.CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{driver.CHROMIUM} is missing (apt-get install -y chromium)")
        pytest.skip(f"no {driver.CHROMIUM} (apt-get install -y chromium)")
    with sync_api.sync_playwright() as p:
        browser = driver.launch(p)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def fresh_database_url(folder: Path, name: str = "fresh") -> Iterator[str]:
    """The URL of an empty database of its own: a SQLite file in `folder`, or, when
    TEST_DATABASE_URL is set, a new PostgreSQL schema (dropped afterwards)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{folder / f'{name}.db'}"
        return
    schema = f"tb_{name}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def fresh_engine(tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty, unmigrated database of its own (see fresh_database_url)."""
    with fresh_database_url(tmp_path) as url:
        eng = make_engine(url)
        try:
            yield eng
        finally:
            eng.dispose()
