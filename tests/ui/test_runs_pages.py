"""Report builder, History, Statistics and Data under AppTest, for every role the navigation allows."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import streamlit as st
from sqlalchemy import Engine, func, select
from streamlit.testing.v1 import AppTest

from accounts.users import add_user, operator
from analytics.report import ReportParams, Scope
from core.db import make_sessionmaker
from core.models import Business, Customer, Run, SavedReport
from core.settings import Settings
from runs.files import FileStore
from runs.runner import RunOutcome, generate_run
from snapshots.store import SnapshotStore
from tests.conftest import new_business
from tests.factories import insert_tiny
from ui import resources
from ui.navigation import page as page_spec

ROOT = Path(__file__).resolve().parent.parent.parent
PAGES = ("report_builder", "history", "statistics", "data")
ROLES = ("admin", "manager", "staff")
PASSWORD = "correct-horse-1"


def _clear_caches() -> None:
    # ui.resources caches the engine per process: close its pooled connections (PostgreSQL would
    # warn about unclosed ones) and start each test from the environment.
    resources.engine().dispose()
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(autouse=True)
def fresh_caches(cli_env: Settings) -> Iterator[None]:
    _clear_caches()
    yield
    _clear_caches()


@pytest.fixture
def tiny(engine: Engine) -> Business:
    business = new_business(engine, "Tiny Traders")
    insert_tiny(engine, business.id)
    return business


def make_user(engine: Engine, business: Business, role: str, suffix: str = "") -> tuple[int, str]:
    username = f"{role}{suffix}_{business.code}"
    with make_sessionmaker(engine)() as session:
        user = add_user(session, operator(business.id), username, PASSWORD, role, name=role.title())
        session.commit()
        return user.id, username


def page(name: str, username: str, **state: object) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / f"{name}.py"), default_timeout=60)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = username
    for key, value in state.items():
        at.session_state[key] = value
    return at.run()


def texts(at: AppTest) -> list[str]:
    return [str(e.value) for e in (*at.markdown, *at.caption, *at.info, *at.error, *at.warning, *at.success)]


def button(at: AppTest, label: str) -> object:
    return next(b for b in at.button if b.label == label)


def make_run(
    engine: Engine, settings: Settings, business: Business, user: tuple[int, str], role: str
) -> RunOutcome:
    with make_sessionmaker(engine)() as session:
        return generate_run(
            session,
            SnapshotStore(engine, settings.snapshot_dir),
            FileStore.from_settings(settings),
            settings,
            Scope(business.id, user[1], role),
            user[0],
            "payments",
            ReportParams.from_mapping({"start": "2025-01-01", "end": "2025-01-31"}),
            ["json"],
        )


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", PAGES)
def test_each_page_renders_or_refuses_by_role(engine: Engine, tiny: Business, name: str, role: str) -> None:
    _, username = make_user(engine, tiny, role)
    at = page(name, username)
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    if role in page_spec(name).roles:
        assert not errors, errors
        assert at.title[0].value == page_spec(name).title
    else:
        assert errors == [f"You do not have access to {page_spec(name).title}."]
        assert not at.title


BUILDER_STATE = {
    "builder_period": "custom",
    "builder_start": dt.date(2025, 1, 1),
    "builder_end": dt.date(2025, 1, 31),
}


def test_the_builder_generates_and_a_second_identical_generation_is_cached(
    engine: Engine, tiny: Business
) -> None:
    uid, username = make_user(engine, tiny, "staff")
    at = page("report_builder", username, builder_report="payments", **BUILDER_STATE)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert [t.label for t in at.multiselect][-1] == "File formats"
    button(at, "Generate").click().run()  # type: ignore[attr-defined]
    assert not at.exception, at.exception
    assert at.status[0].label == "Report ready" and at.status[0].state == "complete"
    assert any("run #" in t and "rows" in t for t in texts(at)), texts(at)
    assert at.download_button, "a download button per stored file"
    assert not any(t.startswith("Cached") for t in texts(at))

    button(at, "Generate").click().run()  # type: ignore[attr-defined]
    assert at.status[0].label == "Reused a stored copy (cached)"
    assert any(t.startswith("Cached") for t in texts(at)), texts(at)
    with make_sessionmaker(engine)() as session:
        runs = session.scalars(select(Run).where(Run.user_id == uid).order_by(Run.id)).all()
    assert [(r.status, r.cached, r.report_slug) for r in runs] == [
        ("completed", False, "payments"),
        ("completed", True, "payments"),
    ]
    assert runs[0].parameters["start"] == "2025-01-01" and runs[0].parameters["end"] == "2025-01-31"


def test_the_hourly_limit_is_explained(
    engine: Engine, tiny: Business, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLYBOARD_RATE_LIMIT_PER_HOUR", "1")
    _, username = make_user(engine, tiny, "staff")
    at = page("report_builder", username, builder_report="payments", **BUILDER_STATE)
    button(at, "Generate").click().run()  # type: ignore[attr-defined]
    assert at.status[0].state == "complete"
    at.selectbox(key="builder_period").set_value("last_month").run()
    button(at, "Generate").click().run()  # type: ignore[attr-defined]
    assert not at.exception, at.exception
    assert at.status[0].label == "Not generated: hourly limit reached"
    assert at.warning[0].value.startswith(
        "You have generated 1 report in the last hour; the limit is 1. Try again at "
    )
    # the time to try again is in the business's zone, named (issue 13)
    zone_name = dt.datetime.now(ZoneInfo(tiny.timezone)).tzname()
    assert re.search(rf"Try again at \d\d:\d\d {zone_name}\.$", at.warning[0].value), at.warning[0].value
    assert any(c.value.startswith("1 of 1 generations used") for c in at.caption)


def test_a_template_applies_in_one_click_and_a_setup_can_be_saved(engine: Engine, tiny: Business) -> None:
    _, username = make_user(engine, tiny, "manager")
    at = page("report_builder", username)
    with make_sessionmaker(engine)() as session:  # the page created the system templates
        credit = session.scalar(
            select(SavedReport.id).where(
                SavedReport.business_id == tiny.id,
                SavedReport.system.is_(True),
                SavedReport.report_slug == "credit_aging",
            )
        )
    at.selectbox(key="builder_template").set_value(credit).run()
    button(at, "Apply").click().run()  # type: ignore[attr-defined]
    assert not at.exception, at.exception
    assert at.selectbox(key="builder_report").value == "credit_aging"
    assert at.selectbox(key="builder_period").value == "month_to_date"
    assert any(s.value.startswith("Applied “Credit aging”") for s in at.success)

    at.text_input(key="builder_save_name").set_value("Monthly credit check")
    at.toggle(key="builder_save_template").set_value(True)
    button(at, "Save").click().run()  # type: ignore[attr-defined]
    assert any("Saved “Monthly credit check” as a template" in s.value for s in at.success), texts(at)
    assert any(
        o.startswith("Monthly credit check — Template") for o in at.selectbox(key="builder_template").options
    )


def test_staff_history_shows_only_their_own_runs(engine: Engine, settings: Settings, tiny: Business) -> None:
    staff = make_user(engine, tiny, "staff")
    other_staff = make_user(engine, tiny, "staff", "2")
    manager = make_user(engine, tiny, "manager")
    mine = make_run(engine, settings, tiny, staff, "staff")
    theirs = make_run(engine, settings, tiny, other_staff, "staff")
    managers = make_run(engine, settings, tiny, manager, "manager")

    at = page("history", staff[1])
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["Run"]) == [mine.run_id]
    assert [s.label for s in at.selectbox] == ["Report", "Status", "Run"]  # no user filter for staff

    at = page("history", manager[1])
    assert sorted(at.dataframe[0].value["Run"]) == sorted([mine.run_id, theirs.run_id, managers.run_id])
    assert "User" in [s.label for s in at.selectbox]
    assert theirs.cached and managers.cached  # the same request over the same data reuses the files


def test_history_deletes_in_bulk_after_a_confirmation(
    engine: Engine, settings: Settings, tiny: Business
) -> None:
    manager = make_user(engine, tiny, "manager")
    first = make_run(engine, settings, tiny, manager, "manager")
    second = make_run(engine, settings, tiny, manager, "manager")
    at = page("history", manager[1])
    at.multiselect(key="history_bulk").set_value([first.run_id, second.run_id]).run()
    assert button(at, "Delete selected runs").disabled  # type: ignore[attr-defined]
    at.checkbox(key="history_bulk_sure").check().run()
    button(at, "Delete selected runs").click().run()  # type: ignore[attr-defined]
    assert not at.exception, at.exception
    assert any(s.value.startswith("Deleted 2 runs; 1 file(s) removed") for s in at.success), texts(at)
    assert at.info[0].value == "No runs yet — generate a report in the Report builder."


def test_statistics_show_the_numbers(engine: Engine, settings: Settings, tiny: Business) -> None:
    admin = make_user(engine, tiny, "admin")
    make_run(engine, settings, tiny, admin, "admin")
    make_run(engine, settings, tiny, admin, "admin")
    at = page("statistics", admin[1])
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Runs"], metrics["Successful"], metrics["Failed"], metrics["Served from cache"]) == (
        "2",
        "2",
        "0",
        "1",
    )
    assert metrics["Scheduled"] == "0"
    assert len(at.dataframe[0].value) == 2


def customers(engine: Engine, business: Business) -> int:
    with make_sessionmaker(engine)() as session:
        return int(
            session.scalar(select(func.count(Customer.id)).where(Customer.business_id == business.id)) or 0
        )


def test_a_bad_import_shows_every_row_error_and_imports_nothing(engine: Engine, tiny: Business) -> None:
    _, username = make_user(engine, tiny, "manager")
    before = customers(engine, tiny)
    at = page("data", username)
    assert not at.exception, at.exception
    at.selectbox(key="data_entity").set_value("customers")
    bad = (
        b"customer_code,name,customer_type,region\n"
        b"N1,New One,retail,North\n"
        b"N2,New Two,wholesome,North\n"
        b",No Code,retail,South\n"
    )
    at.file_uploader(key="data_file").upload("customers.csv", bad, "text/csv")
    at.run()
    button(at, "Import").click().run()  # type: ignore[attr-defined]
    assert not at.exception, at.exception
    assert any("nothing was imported" in e.value.lower() for e in at.error), [e.value for e in at.error]
    errors = at.dataframe[0].value
    assert list(errors.columns) == ["Row", "Column", "Problem"]
    assert list(errors["Row"]) == [3, 4] and list(errors["Column"]) == ["customer_type", "customer_code"]
    assert customers(engine, tiny) == before  # not even the good row N1
    history = at.dataframe[-1].value
    assert history.iloc[0]["Status"] == "rejected" and history.iloc[0]["Errors"] == 2


def test_a_good_import_says_what_changed(engine: Engine, tiny: Business) -> None:
    _, username = make_user(engine, tiny, "admin")
    at = page("data", username)
    before = at.metric[1].value
    at.selectbox(key="data_entity").set_value("customers")
    at.file_uploader(key="data_file").upload(
        "customers.csv", b"customer_code,name,customer_type,region\nN1,New One,retail,North\n", "text/csv"
    )
    at.run()
    button(at, "Import").click().run()  # type: ignore[attr-defined]
    assert not at.exception, at.exception
    assert at.success and at.success[0].value.startswith("customers.csv:")
    assert int(at.metric[1].value) == int(before) + 1


def _history_link(username: str, run: object, **state: object) -> AppTest:
    """The History page opened from a report email's link: /history?run=ID."""
    at = AppTest.from_file(str(ROOT / "pages" / "history.py"), default_timeout=60)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = username
    for key, value in state.items():
        at.session_state[key] = value
    at.query_params["run"] = str(run)
    return at.run()


def test_history_opens_the_run_a_link_names(engine: Engine, settings: Settings, tiny: Business) -> None:
    manager = make_user(engine, tiny, "manager")
    staff = make_user(engine, tiny, "staff")
    first = make_run(engine, settings, tiny, manager, "manager")
    second = make_run(engine, settings, tiny, manager, "manager")  # the newest: shown by default

    at = _history_link(manager[1], first.run_id)
    assert not at.exception, at.exception
    assert at.selectbox(key="history_run").value == first.run_id
    assert not at.warning, texts(at)

    # Older than the page's list (one run shown): the linked run is still the one opened.
    at = _history_link(manager[1], first.run_id, history_limit=1)
    assert list(at.dataframe[0].value["Run"]) == [second.run_id]
    assert at.selectbox(key="history_run").value == first.run_id

    # A run the user may not see, an unknown one, or nonsense: a warning, no error, nothing leaked.
    for run in (first.run_id, 10**9, "abc"):
        at = _history_link(staff[1], run)
        assert not at.exception, at.exception
        assert any("from the link is not available" in w.value for w in at.warning), texts(at)
        assert not any(str(first.run_id) in o for s in at.selectbox for o in s.options)
