"""The Schedules page and Admin's email and scheduler section under AppTest: a manager creates, pauses
and resumes a schedule, a CR/LF subject is refused, staff cannot reach the page, the heartbeat line,
and the SMTP settings saved with the password encrypted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import streamlit as st
from sqlalchemy import Engine, delete, select
from streamlit.testing.v1 import AppTest

from accounts.users import add_user, operator
from analytics.report import Scope
from core.db import make_sessionmaker
from core.models import AppSetting, Business, DaemonHeartbeat, Schedule, SmtpSettings
from core.settings import Settings
from scheduling.heartbeat import beat
from scheduling.schedules import ScheduleSpec, create_schedule
from tests.conftest import new_business
from ui import resources

ROOT = Path(__file__).resolve().parent.parent.parent
PASSWORD = "correct-horse-1"


def _clear_caches() -> None:
    # Close the cached engine's pooled connections before clearing (PostgreSQL warns otherwise).
    resources.engine().dispose()
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture(autouse=True)
def fresh_caches(cli_env: Settings) -> Iterator[None]:
    _clear_caches()
    yield
    _clear_caches()


@pytest.fixture
def installation(engine: Engine) -> None:
    """Heartbeats, SMTP settings and app settings are installation-wide: start these tests without any."""
    with make_sessionmaker(engine)() as session:
        for table in (DaemonHeartbeat, SmtpSettings, AppSetting):
            session.execute(delete(table))
        session.commit()


@pytest.fixture
def shop(engine: Engine) -> Business:
    return new_business(engine, "Sched Shop", timezone="Europe/Berlin")


def make_user(engine: Engine, business: Business, role: str) -> str:
    username = f"{role}_{business.code}"
    with make_sessionmaker(engine)() as session:
        add_user(
            session,
            operator(business.id),
            username,
            PASSWORD,
            role,
            name=role.title(),
            email=f"{role}@example.com",
        )
        session.commit()
    return username


def open_page(path: str, username: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / path), default_timeout=60)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = username
    return at.run()


def texts(at: AppTest) -> list[str]:
    return [str(e.value) for e in (*at.markdown, *at.caption, *at.info, *at.error, *at.warning, *at.success)]


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def fill_new(at: AppTest, *, subject: str = "{report} for {period}") -> AppTest:
    at.selectbox(key="schedules_new_kind").select("Daily")
    at.run()
    at.time_input(key="schedules_new_time").set_value(dt.time(7, 30))
    at.selectbox(key="schedules_new_tz").select("America/New_York")
    at.selectbox(key="schedules_new_source").select("Sales summary")
    at.text_area(key="schedules_new_recipients").input("a@example.com, b@example.com\nc@example.com")
    at.text_input(key="schedules_new_subject").input(subject)
    at.text_input(key="schedules_new_name").input("Morning sales")
    return click(at, "Create schedule")


def next_new_york_0730(now: dt.datetime, skip: int = 0) -> dt.datetime:
    """The next 07:30 in New York after `now` (`skip` days later), as an aware instant."""
    new_york = ZoneInfo("America/New_York")
    local = now.astimezone(new_york)
    day = local.date() if local.time() < dt.time(7, 30) else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day + dt.timedelta(days=skip), dt.time(7, 30), new_york)


def berlin_text(moment: dt.datetime) -> str:
    here = moment.astimezone(ZoneInfo("Europe/Berlin"))
    return f"{here:%a %Y-%m-%d %H:%M} {here.tzname()}"


def schedules(engine: Engine, business: Business) -> list[Schedule]:
    with make_sessionmaker(engine)() as session:
        rows = list(session.scalars(select(Schedule).where(Schedule.business_id == business.id)).all())
        session.expunge_all()
        return rows


def test_a_manager_creates_a_daily_schedule_and_sees_its_next_runs(engine: Engine, shop: Business) -> None:
    manager = make_user(engine, shop, "manager")
    at = open_page("pages/schedules.py", manager)
    assert not at.exception, at.exception
    assert at.title[0].value == "Schedules"
    assert at.selectbox(key="schedules_new_tz").value == "Europe/Berlin"  # the business's zone
    fill_new(at)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert "Saved the schedule “Morning sales”." in texts(at)
    [row] = schedules(engine, shop)
    assert (row.rule_kind, row.rule, row.timezone, row.recipients) == (
        "daily",
        {"time": "07:30"},
        "America/New_York",
        ["a@example.com", "b@example.com", "c@example.com"],
    )
    table = at.dataframe[0].value
    assert list(table["Name"]) == ["Morning sales"]
    # The rule keeps its own zone; the times are in the business's, named (issue 13: one time zone).
    assert list(table["When"]) == ["Daily at 07:30 (New York)"]
    assert "Time zone" not in table.columns
    first = berlin_text(next_new_york_0730(dt.datetime.now(dt.UTC)))
    assert table["Next run"][0] in (first, berlin_text(next_new_york_0730(dt.datetime.now(dt.UTC), 1)))
    assert at.selectbox(key="schedules_pick").value == row.id  # the new schedule is selected
    bullets = next(t for t in texts(at) if t.startswith("- ") and " — " not in t)  # not "Next 24 hours"
    times = bullets.splitlines()
    assert len(times) == 5 and all(t.endswith((" CET", " CEST")) for t in times), times
    assert times[0] == "- " + table["Next run"][0]


def test_a_line_break_in_the_subject_is_refused(engine: Engine, shop: Business) -> None:
    manager = make_user(engine, shop, "manager")
    at = fill_new(open_page("pages/schedules.py", manager), subject="Sales\r\nBcc: evil@example.com")
    assert not at.exception, at.exception
    assert at.error and "line break" in at.error[0].value.lower(), [e.value for e in at.error]
    assert schedules(engine, shop) == []


def test_pause_and_resume(engine: Engine, shop: Business) -> None:
    manager = make_user(engine, shop, "manager")
    at = fill_new(open_page("pages/schedules.py", manager))
    click(at, "Pause")
    assert not at.exception, at.exception
    assert any(t.startswith("Paused “Morning sales”") for t in texts(at)), texts(at)
    assert list(at.dataframe[0].value["Status"]) == ["paused"]
    [row] = schedules(engine, shop)
    assert (row.active, row.next_due_at) == (False, None)
    click(at, "Resume")
    assert list(at.dataframe[0].value["Status"]) == ["active"]
    [row] = schedules(engine, shop)
    assert row.active and row.next_due_at is not None


def test_run_now_and_delete_with_confirmation(engine: Engine, shop: Business) -> None:
    manager = make_user(engine, shop, "manager")
    at = fill_new(open_page("pages/schedules.py", manager))
    click(at, "Run now")
    assert any("next tick" in t for t in texts(at)), texts(at)
    assert "requested" in list(at.dataframe[1].value["Status"])
    delete = next(b for b in at.button if b.label == "Delete")
    assert delete.disabled
    at.checkbox(key=f"schedules_sure_{schedules(engine, shop)[0].id}").check()
    click(at.run(), "Delete")
    assert not at.exception, at.exception
    assert schedules(engine, shop) == []
    assert at.selectbox(key="schedules_pick").value == 0


def test_staff_cannot_reach_the_schedules_page(engine: Engine, shop: Business) -> None:
    staff = make_user(engine, shop, "staff")
    at = open_page("dashboard.py", staff)
    with pytest.raises(ValueError):
        at.switch_page("pages/schedules.py")
    direct = open_page("pages/schedules.py", staff)
    assert [e.value for e in direct.error] == ["You do not have access to Schedules."]
    assert not direct.dataframe


@pytest.mark.usefixtures("installation")
def test_the_heartbeat_line(engine: Engine, shop: Business) -> None:
    manager = make_user(engine, shop, "manager")
    at = open_page("pages/schedules.py", manager)
    assert any("The scheduler is not running" in w.value for w in at.warning)
    now = dt.datetime.now(dt.UTC)
    beat(engine, "test-daemon", now=now - dt.timedelta(seconds=12), started_at=now - dt.timedelta(minutes=5))
    at.run()
    assert not at.warning
    assert any("Scheduler last seen" in c.value for c in at.caption), [c.value for c in at.caption]


@pytest.mark.usefixtures("installation")
def test_admin_saves_smtp_settings_with_the_password_encrypted(engine: Engine, shop: Business) -> None:
    admin = make_user(engine, shop, "admin")
    at = open_page("pages/admin.py", admin)
    assert not at.exception, at.exception
    assert any("No mail server is set up" in t for t in texts(at)), texts(at)
    assert not [t for t in texts(at) if "outbox" in t or "/" in t.replace("://", "")], texts(at)
    assert any("not running" in t for t in texts(at)), texts(at)
    at.text_input(key="admin_smtp_host").input("smtp.example.com")
    at.number_input(key="admin_smtp_port").set_value(587)
    at.selectbox(key="admin_smtp_security").select("starttls")
    at.text_input(key="admin_smtp_user").input("mailer")
    at.text_input(key="admin_smtp_password").input("s3cret-pass")
    at.text_input(key="admin_smtp_from").input("reports@example.com")
    at.text_input(key="admin_smtp_from_name").input("Shop reports")
    at.text_input(key="admin_smtp_reply_to").input("boss@example.com")
    click(at, "Save SMTP settings")
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    with make_sessionmaker(engine)() as session:
        row = session.scalars(select(SmtpSettings)).one()
        assert (row.host, row.port, row.security, row.username) == (
            "smtp.example.com",
            587,
            "starttls",
            "mailer",
        )
        assert row.password_encrypted and row.password_encrypted != "s3cret-pass"
        assert "s3cret-pass" not in row.password_encrypted
    assert any("Emails are sent through smtp.example.com:587" in t for t in texts(at)), texts(at)

    # a blank password keeps the stored one
    at.text_input(key="admin_smtp_from_name").input("Shop")
    click(at, "Save SMTP settings")
    assert not at.error, [e.value for e in at.error]
    with make_sessionmaker(engine)() as session:
        again = session.scalars(select(SmtpSettings)).one()
        assert again.password_encrypted == row.password_encrypted and again.from_name == "Shop"

    at.number_input(key="admin_retention").set_value(45)
    click(at, "Save retention")
    with make_sessionmaker(engine)() as session:
        assert session.get(Business, shop.id).retention_days == 45  # type: ignore[union-attr]
        assert session.get(AppSetting, "retention_days") is None  # the installation default is untouched


@pytest.mark.usefixtures("installation")
def test_send_test_email_shows_the_answer(engine: Engine, shop: Business, cli_env: Settings) -> None:
    admin = make_user(engine, shop, "admin")
    at = open_page("pages/admin.py", admin)
    at.text_input(key="admin_test_to").input("me@example.com")
    click(at, "Send test email")
    assert not at.exception, at.exception
    # without SMTP the test message is written to the outbox folder: not a green "Sent", and it says so
    # without the server's folder (issue 15 item 5: no server paths for users)
    assert not at.success, [s.value for s in at.success]
    assert any(i.value.startswith("Not sent: no mail server is set up") for i in at.info), [
        i.value for i in at.info
    ]
    assert not [i.value for i in at.info if str(cli_env.outbox_dir) in i.value]


def test_account_lists_my_subscriptions(engine: Engine, shop: Business) -> None:
    manager = make_user(engine, shop, "manager")
    staff = make_user(engine, shop, "staff")
    other = new_business(engine, "Other Shop")
    other_manager = make_user(engine, other, "manager")
    for business, owner, name in ((shop, manager, "Weekly payments"), (other, other_manager, "Foreign")):
        with make_sessionmaker(engine)() as session:
            create_schedule(
                session,
                Scope(business.id, owner, "manager"),
                ScheduleSpec(
                    report_slug="payments",
                    rule_kind="weekly",
                    rule={"time": "09:00", "weekdays": [0]},
                    recipients=["STAFF@example.com", "x@example.com"],
                    timezone="Europe/Berlin",
                    name=name,
                ),
                now=dt.datetime.now(dt.UTC),
            )
    at = open_page("pages/account.py", staff)
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["Schedule"]) == ["Weekly payments"]  # not the other business's
    assert list(table["When"]) == ["Mondays at 09:00"]


@pytest.mark.usefixtures("installation")
@pytest.mark.parametrize(
    ("role", "told"),
    [
        ("manager", "Ask an administrator to set up email (Admin → Email)."),
        ("admin", "Set it up in Admin → Email."),
    ],
)
def test_without_email_the_schedules_page_says_who_sets_it_up_and_shows_no_server_path(
    engine: Engine, shop: Business, cli_env: Settings, role: str, told: str
) -> None:
    # issue 15 item 5: a manager cannot open Admin, and the outbox folder is the server's business
    at = open_page("pages/schedules.py", make_user(engine, shop, role))
    assert not at.exception, at.exception
    [notice] = [i.value for i in at.info if "Email is not set up" in i.value]
    assert notice.endswith(told), notice
    shown = " ".join(texts(at))
    assert str(cli_env.outbox_dir) not in shown and str(cli_env.data_dir) not in shown
    assert "Set the SMTP server in Admin" not in shown
