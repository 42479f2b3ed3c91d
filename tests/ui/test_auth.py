"""Logging in through app.py under AppTest: the form, wrong passwords recorded, the lockout refusing
even the right password, a disabled user thrown out on the next run, logout, and the message for a
database without users."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import streamlit as st
from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest

from analytics.accounts import record_login_attempt
from analytics.db import make_engine, migrate, session_scope
from analytics.models import AuditEvent, Business, LoginAttempt, User
from analytics.settings import Settings
from tests.ui.test_navigation import PASSWORD, ROOT, fresh_caches, logged_in, make_user, needs_every_page

__all__ = ["fresh_caches"]  # the autouse fixture, shared with test_navigation

APP = ROOT / "app.py"


def login_form() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=60).run()


def rerun_app(at: AppTest) -> AppTest:
    """The next run, through app.py as in a browser. (AppTest reruns the page file it finished on by
    itself, pages/ being a pages folder to it; that path meets the page's own guard instead.)"""
    try:
        at.switch_page("app.py")
    except ValueError:  # app.py is no page of its own navigation: rerun once to learn the folder's pages
        at.run()
        at.switch_page("app.py")
    return at.run()


def submit(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input(key="auth_username").input(username)
    at.text_input(key="auth_password").input(password)
    next(b for b in at.button if b.label == "Log in").click()
    return at.run()


def attempts(engine: Engine, username: str) -> list[bool]:
    with session_scope(engine) as session:
        rows = session.scalars(select(LoginAttempt.success).where(LoginAttempt.username == username))
        return list(rows)


def events(engine: Engine, business: Business) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(AuditEvent.event_type, AuditEvent.user)
            .where(AuditEvent.business_id == business.id)
            .order_by(AuditEvent.id)
        )
        return [(str(t), str(u)) for t, u in rows if t != "user_added"]


def shows_login_form(at: AppTest) -> bool:
    labels = [t.label for t in at.text_input]
    return labels == ["Username", "Password"] and at.session_state["authentication_status"] is not True


def test_the_login_form_renders_when_logged_out(engine: Engine, business: Business) -> None:
    make_user(engine, business, "staff")  # with no user at all, the app explains how to make one
    at = login_form()
    assert not at.exception
    assert shows_login_form(at)
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.sidebar.button  # no logout, no business, no pages before a login
    with pytest.raises(ValueError):
        at.switch_page("pages/overview.py")


@needs_every_page
def test_the_right_password_logs_in_and_is_recorded(engine: Engine, business: Business) -> None:
    username = make_user(engine, business, "manager")
    at = submit(login_form(), username.upper(), PASSWORD)  # usernames ignore case
    assert not at.exception
    assert at.session_state["authentication_status"] is True
    assert at.session_state["username"] == username
    assert [b.label for b in at.sidebar.button] == ["Log out"]
    assert attempts(engine, username) == [True]
    assert events(engine, business) == [("login", username)]


def test_a_wrong_password_is_refused_and_recorded(engine: Engine, business: Business) -> None:
    username = make_user(engine, business, "staff")
    at = submit(login_form(), username, "not-the-password")
    assert [e.value for e in at.error] == ["Wrong username or password (or the account is disabled)."]
    assert shows_login_form(at)
    assert attempts(engine, username) == [False]
    assert events(engine, business) == [("login_failed", username)]


def test_a_locked_username_is_refused_even_with_the_right_password(
    engine: Engine, business: Business
) -> None:
    username = make_user(engine, business, "admin")
    now = dt.datetime.now(dt.UTC)
    with session_scope(engine) as session:
        for minutes in (9, 7, 5, 3, 1):
            record_login_attempt(session, username, False, at=now - dt.timedelta(minutes=minutes))
    at = submit(login_form(), username, PASSWORD)
    [error] = [e.value for e in at.error]
    assert error.startswith("Too many failed logins for this username. Try again in 6 minutes")
    assert shows_login_form(at)
    assert attempts(engine, username) == [False] * 5  # the refused try was never checked
    assert events(engine, business)[-1] == ("locked_out", username)


def test_the_fifth_wrong_password_locks_the_username(engine: Engine, business: Business) -> None:
    username = make_user(engine, business, "staff")
    now = dt.datetime.now(dt.UTC)
    with session_scope(engine) as session:
        for minutes in (4, 3, 2, 1):
            record_login_attempt(session, username, False, at=now - dt.timedelta(minutes=minutes))
    at = submit(login_form(), username, "still-not-it")
    [error] = [e.value for e in at.error]
    assert error.startswith("Too many failed logins for this username. Try again in 11 minutes")


def test_a_disabled_user_cannot_log_in(engine: Engine, business: Business) -> None:
    username = make_user(engine, business, "staff")
    with session_scope(engine) as session:
        session.scalars(select(User).where(User.username == username)).one().active = False
    at = submit(login_form(), username, PASSWORD)
    assert shows_login_form(at)
    assert attempts(engine, username) == [False]


@needs_every_page
def test_a_disabled_user_is_logged_out_on_the_next_run(engine: Engine, business: Business) -> None:
    username = make_user(engine, business, "manager")
    at = logged_in(APP, username)
    assert at.session_state["authentication_status"] is True
    with session_scope(engine) as session:
        session.scalars(select(User).where(User.username == username)).one().active = False
    at.run()  # on the page it was on: its guard refuses
    assert [e.value for e in at.error] == ["Your account is disabled. Ask an administrator to enable it."]
    assert not at.dataframe and not at.metric
    rerun_app(at)  # through app.py: logged out at once
    assert shows_login_form(at)
    assert at.session_state["username"] is None
    assert [i.value for i in at.info] == [
        "Your account is disabled. Ask an administrator of your business to enable it."
    ]
    with pytest.raises(ValueError):
        at.switch_page("pages/account.py")


@needs_every_page
def test_logout_returns_to_the_form_and_is_audited(engine: Engine, business: Business) -> None:
    username = make_user(engine, business, "staff")
    at = logged_in(APP, username)
    at.button(key="auth_logout").click()
    rerun_app(at)
    assert shows_login_form(at)
    assert [i.value for i in at.info] == ["You are logged out."]
    assert events(engine, business) == [("logout", username)]
    at.run()  # on the login page, a rerun goes through app.py
    assert shows_login_form(at)  # still logged out on the next run


def test_without_any_user_the_app_says_how_to_create_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate(make_engine(url))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("TALLYBOARD_DATA_DIR", str(tmp_path))
    st.cache_resource.clear()
    at = login_form()
    assert not at.text_input
    [info] = [i.value for i in at.info]
    assert "No user exists yet" in info and "make run" in info and "manage.py users add" in info


def test_a_too_short_cookie_key_is_refused_with_a_fix(
    monkeypatch: pytest.MonkeyPatch, cli_env: Settings
) -> None:
    monkeypatch.setenv("TALLYBOARD_COOKIE_KEY", "too-short")
    at = login_form()
    [error] = [e.value for e in at.error]
    assert "TALLYBOARD_COOKIE_KEY must be at least 32 bytes" in error
    assert not at.text_input
