"""The app's table of contents: every page file is listed, the report pages come from the report
definitions (keys, order and roles), each role gets exactly its pages, a page outside the role's
navigation cannot be reached, and a demoted user loses pages on the next run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from accounts.users import add_user, operator
from analytics.definition import Placement, ReportDefinition
from core.db import session_scope
from core.models import Business, User
from core.settings import Settings
from reports.registry import REGISTRY, REPORTS, registered
from reports.sales import build_kpi_dashboard
from ui import resources
from ui.navigation import page, pages, pages_for, report_pages

ROOT = Path(__file__).resolve().parent.parent.parent
PASSWORD = "correct-horse-1"
ROLES = ("admin", "manager", "staff")
# The URLs of today's pages in menu order: public (bookmarks, links in emails), so they stay.
KNOWN_PAGES = (
    "overview",
    "sales",
    "forecast",
    "customers",
    "products",
    "profit",
    "payments",
    "report_builder",
    "history",
    "schedules",
    "statistics",
    "data",
    "audit_log",
    "admin",
    "account",
)


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


def _generic_page(key: str) -> None:  # run by AppTest.from_function as a script of its own
    from ui.report_page import render

    render(key)


def app_test(key: str) -> AppTest:
    """An AppTest of page `key`: its file, or the generic report page for a report page without one."""
    spec = page(key)
    if spec.generic:
        return AppTest.from_function(_generic_page, args=(key,), default_timeout=60)
    return AppTest.from_file(str(ROOT / spec.path), default_timeout=60)


def open_page(key: str, username: str) -> AppTest:
    """Page `key` run once, logged in as `username`."""
    at = app_test(key)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = username
    return at.run()


def missing_pages() -> list[str]:
    return [p.path for p in pages() if not p.generic and not (ROOT / p.path).is_file()]


needs_every_page = pytest.mark.skipif(
    bool(missing_pages()), reason=f"page files not written yet: {', '.join(missing_pages())}"
)


def reachable(at: AppTest) -> set[str]:
    """The page keys that switch_page accepts (it raises ValueError outside the navigation)."""
    keys = set()
    for spec in pages():
        if spec.generic:
            continue
        try:
            at.switch_page(spec.path)
        except ValueError:
            continue
        keys.add(spec.key)
    return keys


def test_every_page_file_is_in_the_table_of_contents_and_back() -> None:
    files = {p.stem for p in (ROOT / "pages").glob("*.py")}
    keys = {p.key for p in pages()}
    assert files - keys == set(), "page files missing from ui/navigation (MENU or a report's page)"
    assert {p.key for p in pages() if not p.generic} - files == set(), "app pages without a file"
    assert all(p.reports for p in pages() if p.generic), "only report pages may go without a file"
    for spec in pages():
        if spec.generic:
            continue
        source = (ROOT / spec.path).read_text(encoding="utf-8")
        assert f'page_context("{spec.key}")' in source, f"{spec.path} must call page_context first"
        for slug in spec.reports:  # a page file draws its reports itself: it must name each one
            assert f'"{slug}"' in source, f"{spec.path} does not show {slug}, placed on it"


def test_the_known_urls_stay_in_menu_order() -> None:
    keys = [p.key for p in pages()]
    assert len(keys) == len(set(keys))
    assert [k for k in keys if k in KNOWN_PAGES] == list(KNOWN_PAGES)
    sections = [p.section for p in pages() if p.key in KNOWN_PAGES]
    assert sections == ["Dashboards"] * 7 + ["Reports"] * 4 + ["Manage"] * 4


def test_report_pages_come_from_the_definitions() -> None:
    placed = {d.page.key for d in REPORTS if d.page is not None}
    assert {p.key for p in report_pages()} == placed
    for spec in report_pages():
        defns = [REGISTRY[slug] for slug in spec.reports]
        assert [d.page.key for d in defns if d.page] == [spec.key] * len(defns)
        # a page is open to the roles that may generate every report on it
        assert set(spec.roles) == set.intersection(*(set(d.roles) for d in defns))
    assert page("audit_log").roles == REGISTRY["audit_log"].roles == ("admin",)
    assert page("forecast").reports == (
        "forecast_vs_actual",
        "forecast_accuracy",
        "submission_status",
        "trend_forecast",
    )
    assert "sales_lines" not in {s for p in pages() for s in p.reports}  # a download, no page


OWN_PAGE = Placement()


def _toy(slug: str, page_at: Placement | None = OWN_PAGE, roles: tuple[str, ...] = ROLES) -> ReportDefinition:
    return ReportDefinition(slug, slug.title(), "A toy.", build_kpi_dashboard, roles=roles, page=page_at)


@pytest.mark.parametrize(
    ("first", "second", "error"),
    [
        (Placement("toy_page"), Placement("toy_page"), "exactly one title"),  # nobody titles it
        (Placement("toy_page", "Toys"), Placement("toy_page", "Other"), "exactly one title"),
        (Placement("toy_page", "Toys"), Placement("history", "History"), "the app's own page 'history'"),
    ],
)
def test_a_page_needs_one_title_from_its_reports_and_a_key_of_its_own(
    first: Placement, second: Placement, error: str
) -> None:
    with registered(_toy("toy_a", first), _toy("toy_b", second)), pytest.raises(ValueError, match=error):
        pages()


def test_a_report_names_known_roles() -> None:
    with pytest.raises(ValueError, match="roles must be some of"):
        _toy("toy_a", roles=("owner",))


def test_a_new_report_gets_a_generic_page_at_the_end_of_its_section() -> None:
    with registered(
        _toy("toy_a", roles=("admin", "manager")),
        _toy("toy_b", Placement("toy_a")),
        _toy("toy_c", Placement(section="Manage")),
    ):
        toy = page("toy_a")
        assert (toy.title, toy.reports, toy.roles, toy.generic) == (
            "Toy_A",
            ("toy_a", "toy_b"),
            ("admin", "manager"),
            True,
        )
        keys = [p.key for p in pages()]
        assert keys.index("toy_a") == keys.index("payments") + 1  # last of the Dashboards
        assert keys.index("toy_c") == keys.index("audit_log") + 1  # last of Manage's report pages
        assert "toy_a" in {p.key for p in pages_for("manager")} - {p.key for p in pages_for("staff")}
    assert "toy_a" not in {p.key for p in pages()}


def test_the_generic_page_shows_the_reports_of_its_page_in_tabs(engine: Engine, business: Business) -> None:
    with registered(_toy("toy_a"), _toy("toy_b", Placement("toy_a"))):
        at = open_page("toy_a", make_user(engine, business, "staff"))
        assert not at.exception, at.exception
        assert [t.value for t in at.title] == ["Toy_A"]
        assert {"Toy_A", "Toy_B"} <= {t.label for t in at.tabs}
        assert "A toy." in [c.value for c in at.caption]
        assert at.metric, "the first tab's report is shown"
        at.session_state["toy_a_tab"] = "Toy_B"
        at.run()
        assert not at.exception, at.exception


def test_roles_see_nested_page_sets() -> None:
    staff, manager, admin = ({p.key for p in pages_for(r)} for r in ("staff", "manager", "admin"))
    assert staff < manager < admin
    assert admin == {p.key for p in pages()}
    assert {"admin", "audit_log"} & manager == set()
    assert {"statistics", "data"} & staff == set()


@needs_every_page
@pytest.mark.parametrize("role", ROLES)
def test_each_role_sees_exactly_its_pages(engine: Engine, business: Business, role: str) -> None:
    username = make_user(engine, business, role)
    at = logged_in(ROOT / "dashboard.py", username)
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
    at = logged_in(ROOT / "dashboard.py", username)
    at.switch_page("pages/admin.py").run()
    assert [t.value for t in at.title] == ["Admin"]
    with session_scope(engine) as session:
        session.query(User).filter_by(username=username).one().role = "manager"
    at.run()  # the same URL again: refused (AppTest runs the page file itself, so its guard answers)
    assert [e.value for e in at.error] == ["You do not have access to Admin."]
    assert "Users" not in [s.value for s in at.subheader]
    at.switch_page("dashboard.py").run()  # through dashboard.py: the navigation no longer lists Admin
    assert reachable(at) == {p.key for p in pages_for("manager")}


@pytest.mark.parametrize(
    ("key", "role"),
    [(p.key, role) for p in pages() for role in ROLES if role not in p.roles],
)
def test_a_page_opened_outside_the_navigation_refuses_by_its_guard(
    engine: Engine, business: Business, key: str, role: str
) -> None:
    at = open_page(key, make_user(engine, business, role))
    assert [e.value for e in at.error] == [f"You do not have access to {page(key).title}."]
    assert not at.dataframe and not at.metric and not at.exception


@pytest.mark.parametrize("key", ["account", "admin", "audit_log"])
def test_a_page_refuses_without_a_login(key: str) -> None:
    at = AppTest.from_file(str(ROOT / "pages" / f"{key}.py"), default_timeout=60).run()
    assert [e.value for e in at.error] == ["Please log in to see this page."]
