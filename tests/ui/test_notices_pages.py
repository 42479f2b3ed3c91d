# ruff: noqa: F811 - the page fixtures are imported from test_schedules_page and used by name
"""Issue 12 on the pages (AppTest): each schedule's last run says what happened, a notice with no
address is named in a warning on Schedules and Admin, Admin edits a user's name and email and the
notification address, Account edits one's own, and the period follows the frequency."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select

from accounts.users import add_user, operator
from analytics.report import Scope
from core.db import make_sessionmaker
from core.models import Business, OutboxMessage, ScheduleRun, User
from core.settings import Settings
from scheduling.schedules import ScheduleSpec, create_schedule
from tests.ui.test_runs_pages import make_run, page, tiny  # noqa: F401 - tiny: a fixture
from tests.ui.test_schedules_page import (  # noqa: F401 - fixtures used by name
    PASSWORD,
    click,
    fresh_caches,
    installation,
    make_user,
    open_page,
    shop,
    texts,
)

OUTBOX = "written to the outbox folder (no SMTP server set)"


def bare_user(engine: Engine, business: Business, role: str) -> str:
    """A user without an email address, as every demo user is."""
    username = f"{role}_bare_{business.code}"
    with make_sessionmaker(engine)() as session:
        add_user(session, operator(business.id), username, PASSWORD, role, name=role.title())
        session.commit()
    return username


def make_schedule(engine: Engine, business: Business, owner: str, name: str) -> int:
    with make_sessionmaker(engine)() as session:
        info = create_schedule(
            session,
            Scope(business.id, owner, "manager"),
            ScheduleSpec(
                report_slug="payments",
                rule_kind="weekly",
                rule={"time": "09:00", "weekdays": [0]},
                recipients=["x@example.com"],
                name=name,
            ),
            now=dt.datetime.now(dt.UTC),
        )
        return info.id


def ledger(
    engine: Engine,
    business: Business,
    schedule_id: int,
    outcomes: list[tuple[str, str]],
    run_id: int | None = None,
    due_at: dt.datetime = dt.datetime(2026, 11, 30, 8, 0),
) -> None:
    """A queued window of the schedule whose report emails ended as `outcomes` (status, written_to)."""
    with make_sessionmaker(engine)() as session:
        window = ScheduleRun(
            schedule_id=schedule_id,
            business_id=business.id,
            due_at=due_at,
            status="queued",
            run_id=run_id,
        )
        session.add(window)
        session.flush()
        for i, (status, written_to) in enumerate(outcomes):
            session.add(
                OutboxMessage(
                    business_id=business.id,
                    schedule_run_id=window.id,
                    kind="report",
                    recipient=f"r{i}@example.com",
                    message_id=f"<tb.{window.id}.{i}@test>",
                    status=status,
                    written_to=written_to,
                    payload={},
                )
            )
        session.commit()


@pytest.mark.usefixtures("installation")
def test_the_last_run_says_what_happened(engine: Engine, shop: Business) -> None:
    manager = make_user(engine, shop, "manager")
    cases = {
        "All sent": ([("sent", "")] * 2, "sent", "2 of 2"),
        "Partly sent": ([("sent", "")] * 3 + [("failed", "")], "partly sent (3 of 4)", "3 of 4"),
        "All failed": ([("failed", "")] * 2, "failed", "0 of 2"),
        "No SMTP": ([("sent", "/tmp/outbox/a.eml"), ("sent", "/tmp/outbox/b.eml")], OUTBOX, "0 of 2"),
        "Waiting": ([("pending", "")] * 2, "queued", "0 of 2"),
    }
    ids = {}
    for name, (outcomes, _, _) in cases.items():
        ids[name] = make_schedule(engine, shop, manager, name)
        ledger(engine, shop, ids[name], outcomes)
    at = open_page("pages/schedules.py", manager)
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    last = dict(zip(table["Name"], table["Last run"], strict=True))
    assert last == {name: text for name, (_, text, _) in cases.items()}
    at.selectbox(key="schedules_pick").select(ids["No SMTP"]).run()
    runs = at.dataframe[1].value
    assert (runs["Status"][0], runs["Sent"][0]) == (OUTBOX, "0 of 2")
    assert list(at.dataframe[2].value["Status"]) == [OUTBOX, OUTBOX]
    at.selectbox(key="schedules_pick").select(ids["Partly sent"]).run()
    runs = at.dataframe[1].value
    assert (runs["Status"][0], runs["Sent"][0]) == ("partly sent (3 of 4)", "3 of 4")


@pytest.mark.usefixtures("installation")
def test_a_notice_with_no_address_shows_a_warning_on_schedules_and_admin(
    engine: Engine, shop: Business
) -> None:
    manager = bare_user(engine, shop, "manager")
    admin = bare_user(engine, shop, "admin")
    make_schedule(engine, shop, manager, "Weekly payments")
    expected = f"“Weekly payments” (its owner {manager} has no email address)"
    at = open_page("pages/schedules.py", manager)
    assert not at.exception, at.exception
    [warning] = [w.value for w in at.warning if "Nobody will be told" in w.value]
    assert expected in warning and "weekly summary" in warning
    assert "Ask an admin" in warning and "in Admin" not in warning  # a manager cannot open Admin

    page = open_page("pages/admin.py", admin)
    assert not page.exception, page.exception
    [on_admin] = [w.value for w in page.warning if "Nobody will be told" in w.value]
    assert expected in on_admin and on_admin.endswith("below.")  # the admin is where it is changed
    page.text_input(key="admin_notice_email").input("alerts@example.com")
    click(page, "Save notification address")
    assert not page.error, [e.value for e in page.error]
    assert "Notices without another address now go to alerts@example.com." in texts(page)
    assert not any("Nobody will be told" in w.value for w in page.warning)
    with make_sessionmaker(engine)() as session:
        assert session.get(Business, shop.id).notice_email == "alerts@example.com"  # type: ignore[union-attr]
    at = open_page("pages/schedules.py", manager)
    assert not any("Nobody will be told" in w.value for w in at.warning)

    page.text_input(key="admin_notice_email").input("not an address")
    click(page, "Save notification address")
    assert any("is not a valid e-mail address" in e.value for e in page.error)


def test_admin_edits_a_users_name_and_email(engine: Engine, shop: Business) -> None:
    admin = make_user(engine, shop, "admin")
    staff = bare_user(engine, shop, "staff")
    with make_sessionmaker(engine)() as session:
        target = session.scalars(select(User).where(User.username == staff)).one()
        target_id = target.id
    at = open_page("pages/admin.py", admin)
    at.selectbox(key="admin_user").select(target_id).run()
    at.text_input(key=f"admin_name_{target_id}").input("Sam Staff")
    at.text_input(key=f"admin_email_{target_id}").input("sam@example.com")
    click(at, "Save name and email")
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert f"Saved the name and email of {staff}." in texts(at)
    with make_sessionmaker(engine)() as session:
        saved = session.get(User, target_id)
        assert saved is not None and (saved.name, saved.email) == ("Sam Staff", "sam@example.com")
    at.selectbox(key="admin_user").select(target_id).run()
    at.text_input(key=f"admin_email_{target_id}").input("sam at example")
    click(at, "Save name and email")
    assert any("is not a valid e-mail address" in e.value for e in at.error)


def test_account_edits_my_own_name_and_email(engine: Engine, shop: Business) -> None:
    staff = bare_user(engine, shop, "staff")
    at = open_page("pages/account.py", staff)
    assert not at.exception, at.exception
    assert any("add one above" in c.value for c in at.caption)
    at.text_input(key="account_name").input("Sam")
    at.text_input(key="account_email").input("sam@example.com")
    click(at, "Save name and email")
    assert not at.exception, at.exception
    assert "Your name and email are saved." in texts(at)
    with make_sessionmaker(engine)() as session:
        me = session.scalars(select(User).where(User.username == staff)).one()
        assert (me.name, me.email) == ("Sam", "sam@example.com")
    at.text_input(key="account_email").input("sam@")
    click(at, "Save name and email")
    assert any("is not a valid e-mail address" in e.value for e in at.error)


def test_the_period_follows_the_frequency_on_the_schedules_page(
    engine: Engine, shop: Business, cli_env: Settings
) -> None:
    manager = make_user(engine, shop, "manager")
    at = open_page("pages/schedules.py", manager)
    for label, kind, period in (
        ("Weekly", "weekly", "last_week"),
        ("Daily", "daily", "yesterday"),
        ("Monthly", "monthly", "last_month"),
    ):
        at.selectbox(key="schedules_new_kind").select(label).run()
        assert at.selectbox(key=f"schedules_new_period_{kind}").value == period


def test_history_says_what_happened_to_a_runs_scheduled_emails(
    engine: Engine, settings: Settings, tiny: Business
) -> None:
    manager = make_user(engine, tiny, "manager")
    with make_sessionmaker(engine)() as session:
        manager_id = session.scalars(select(User.id).where(User.username == manager)).one()
    written = make_run(engine, settings, tiny, (manager_id, manager), "manager")
    partly = make_run(engine, settings, tiny, (manager_id, manager), "manager")
    schedule_id = make_schedule(engine, tiny, manager, "Weekly payments")
    ledger(engine, tiny, schedule_id, [("sent", "/o/a.eml"), ("sent", "/o/b.eml")], run_id=written.run_id)
    earlier = dt.datetime(2026, 11, 23, 8, 0)
    ledger(
        engine, tiny, schedule_id, [("sent", "")] * 3 + [("failed", "")], run_id=partly.run_id, due_at=earlier
    )
    at = page("history", manager)
    assert not at.exception, at.exception
    for run_id, expected in (
        (written.run_id, f"Scheduled email of this run: {OUTBOX} · 0 of 2 emails sent"),
        (partly.run_id, "Scheduled email of this run: partly sent (3 of 4) · 3 of 4 emails sent"),
    ):
        at.selectbox(key="history_run").select(run_id).run()
        assert any(expected in c.value for c in at.caption), [c.value for c in at.caption]
