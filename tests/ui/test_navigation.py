"""The app's table of contents: every page file is listed, each role gets exactly its pages, a page
outside the role's navigation cannot be reached, and a demoted user loses pages on the next run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from accounts.users import add_user, operator
from core.db import session_scope
from core.models import Business, User
from core.settings import Settings
from ui import resources
from ui.navigation import PAGE_BY_KEY, PAGES, pages_for

ROOT = Path(__file__).resolve().parent.parent.parent
PASSWORD = "correct-horse-1"
ROLES = ("admin", "manager", "staff")


def _clear_caches() -> None:
    # Close the cached engine's pooled connections first: dropped unclosed, psycopg warns (an error here).
    resources.engine().dispose()
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(autouse=True)
def fresh_caches(cli_env: Settings) -> Iterator[None]:
    # ui.resources caches the engine and settings per process: start each test from the env.
    _clear_caches()
    yield
    _clear_caches()


def make_user(engine: Engine, business: Business, role: str) -> str:
    username = f"{role}_{business.code}"
    with session_scope(engine) as session:
        add_user(session, operator(business.id), username, PASSWORD, role, name=f"Test {role}")
    return username


def logged_in(path: Path, username: str) -> AppTest:
    """An AppTest of `path` whose session is already logged in as `username` (skips the form)."""
    at = AppTest.from_file(str(path), default_timeout=60)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = username
    return at.run()


def missing_pages() -> list[str]:
    return [p.path for p in PAGES if not (ROOT / p.path).is_file()]


needs_every_page = pytest.mark.skipif(
    bool(missing_pages()), reason=f"page files not written yet: {', '.join(missing_pages())}"
)


def reachable(at: AppTest) -> set[str]:
    """The page keys that switch_page accepts (it raises ValueError outside the navigation)."""
    keys = set()
    for spec in PAGES:
        try:
            at.switch_page(spec.path)
        except ValueError:
            continue
        keys.add(spec.key)
    return keys


def test_every_page_file_is_in_the_table_of_contents_and_back() -> None:
    files = {p.stem for p in (ROOT / "pages").glob("*.py")}
    assert files - set(PAGE_BY_KEY) == set(), "page files missing from ui/navigation.PAGES"
    assert set(PAGE_BY_KEY) - files == set(), "ui/navigation.PAGES lists pages without a file"
    for spec in PAGES:
        source = (ROOT / spec.path).read_text(encoding="utf-8")
        assert f'page_context("{spec.key}")' in source, f"{spec.path} must call page_context first"


def test_roles_see_nested_page_sets() -> None:
    staff, manager, admin = ({p.key for p in pages_for(r)} for r in ("staff", "manager", "admin"))
    assert staff < manager < admin
    assert admin == set(PAGE_BY_KEY)
    assert {"admin", "audit_log"} & manager == set()
    assert {"statistics", "data"} & staff == set()


@needs_every_page
@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_exactly_its_pages(engine: Engine, business: Business, role: str) -> None:
    username = make_user(engine, business, role)
    at = logged_in(ROOT / "app.py", username)
    assert not at.exception, at.exception
    assert reachable(at) == {p.key for p in pages_for(role)}
    sidebar = [m.value for m in at.sidebar.markdown] + [c.value for c in at.sidebar.caption]
    assert f"**{business.name}**" in sidebar
    assert f"Test {role} · {role}" in sidebar
    assert [b.label for b in at.sidebar.button] == ["Log out"]


@needs_every_page
def test_a_demoted_admin_loses_the_admin_pages_on_the_next_run(engine: Engine, business: Business) -> None:
    make_user(engine, business, "admin")  # another admin: the demoted one is not the last
    username = make_user(engine, business, "manager")
    with session_scope(engine) as session:
        user = session.query(User).filter_by(username=username).one()
        user.role = "admin"
    at = logged_in(ROOT / "app.py", username)
    at.switch_page("pages/admin.py").run()
    assert [t.value for t in at.title] == ["Admin"]
    with session_scope(engine) as session:
        session.query(User).filter_by(username=username).one().role = "manager"
    at.run()  # the same URL again: refused (AppTest runs the page file itself, so its guard answers)
    assert [e.value for e in at.error] == ["You do not have access to Admin."]
    assert "Users" not in [s.value for s in at.subheader]
    at.switch_page("app.py").run()  # through app.py: the navigation no longer lists Admin
    assert reachable(at) == {p.key for p in pages_for("manager")}


@pytest.mark.parametrize(
    ("key", "role"),
    [(p.key, role) for p in PAGES for role in ROLES if role not in p.roles],
)
def test_a_page_opened_outside_the_navigation_refuses_by_its_guard(
    engine: Engine, business: Business, key: str, role: str
) -> None:
    at = logged_in(ROOT / "pages" / f"{key}.py", make_user(engine, business, role))
    assert [e.value for e in at.error] == [f"You do not have access to {PAGE_BY_KEY[key].title}."]
    assert not at.dataframe and not at.metric and not at.exception


@pytest.mark.parametrize("key", ["account", "admin", "audit_log"])
def test_a_page_refuses_without_a_login(key: str) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / f"{key}.py"), default_timeout=60).run()
    assert [e.value for e in at.error] == ["Please log in to see this page."]
