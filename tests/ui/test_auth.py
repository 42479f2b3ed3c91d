"""Logging in through dashboard.py under AppTest: the form, wrong passwords recorded, the lockout refusing
even the right password, a disabled user thrown out on the next run, logout, and the message for a
database without users."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from accounts.users import (
    cookie_key,
    operator,
    record_login_attempt,
    record_logout,
    session_token,
    set_role,
)
from analytics.report import Scope
from core.db import make_engine, migrate, session_scope
from core.models import AuditEvent, Business, LoginAttempt, User
from core.settings import Settings
from tests.ui.test_navigation import PASSWORD, ROOT, fresh_caches, logged_in, make_user, needs_every_page

__all__ = ["fresh_caches"]  # the autouse fixture, shared with test_navigation

APP = ROOT / "dashboard.py"


def login_form() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=60).run()


def rerun_app(at: AppTest) -> AppTest:
    """The next run, through dashboard.py as in a browser. (AppTest reruns the page file it finished on by
    itself, pages/ being a pages folder to it; that path meets the page's own guard instead.)"""
    try:
        at.switch_page("dashboard.py")
    except ValueError:  # dashboard.py is no page of its own navigation: rerun once to learn its pages
        at.run()
        at.switch_page("dashboard.py")
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


def test_a_wrong_password_keeps_the_username_and_clears_the_password(
    engine: Engine, business: Business
) -> None:
    username = make_user(engine, business, "staff")
    at = submit(login_form(), username, "not-the-password")
    assert at.error
    assert at.text_input(key="auth_username").value == username
    assert at.text_input(key="auth_password").value == ""
    # Typing the right password then logs in (the username is still there).
    at.text_input(key="auth_password").input(PASSWORD)
    next(b for b in at.button if b.label == "Log in").click()
    at.run()
    assert not at.error and [b.label for b in at.sidebar.button] == ["Log out"]


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
    rerun_app(at)  # through dashboard.py: logged out at once
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
    at.run()  # on the login page, a rerun goes through dashboard.py
    assert shows_login_form(at)  # still logged out on the next run


def place(node: Block, found: Callable[[Any], bool]) -> list[int] | None:
    """Where in `node` the first element `found` accepts is drawn: its indices, block by block."""
    for index, child in node.children.items():
        if found(child):
            return [index]
        if isinstance(child, Block):
            inner = place(child, found)
            if inner is not None:
                return [index, *inner]
    return None


def _password_box(element: Any) -> bool:
    return getattr(element, "type", "") == "text_input" and element.key == "auth_password"


@needs_every_page
def test_the_login_form_keeps_its_place_in_the_logout_run_and_after_it(
    engine: Engine, business: Business
) -> None:
    """The browser keeps an element drawn at another place in the previous run until the run ends: the
    logout run's form and the next run's form must be drawn at one place, or a slow machine shows two
    login forms at once (CI did, and a strict locator met two Password boxes)."""
    at = logged_in(APP, make_user(engine, business, "staff"))
    at.button(key="auth_logout").click()
    rerun_app(at)
    assert shows_login_form(at)
    where = place(at.main, _password_box)
    at.run()  # the cookie component's report reruns the page at once in a browser
    assert shows_login_form(at)
    assert where is not None and place(at.main, _password_box) == where


@needs_every_page
def test_the_first_page_keeps_its_place_in_the_login_run_and_after_it(
    engine: Engine, business: Business
) -> None:
    """The login run writes the cookie; the page it shows must be drawn where the next run draws it."""
    username = make_user(engine, business, "manager")
    at = submit(login_form(), username, PASSWORD)
    assert at.session_state["authentication_status"] is True

    def heading(element: Any) -> bool:
        return getattr(element, "type", "") == "title" and element.value == "Overview"

    where = place(at.main, heading)
    rerun_app(at)
    assert where is not None and place(at.main, heading) == where


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


# --- sessions end server-side: the epoch, and malformed cookies ---------------------------------------


def _epoch(engine: Engine, username: str) -> int:
    with session_scope(engine) as session:
        return int(session.scalars(select(User.session_epoch).where(User.username == username)).one())


@needs_every_page
def test_a_logout_elsewhere_ends_an_open_session_on_its_next_run(engine: Engine, business: Business) -> None:
    username = make_user(engine, business, "manager")
    elsewhere = logged_in(APP, username)  # the copied session (another browser)
    here = logged_in(APP, username)
    here.button(key="auth_logout").click()
    rerun_app(here)
    assert shows_login_form(here) and _epoch(engine, username) == 1
    elsewhere.run()  # its next click: logged out too, server-side
    assert shows_login_form(elsewhere)
    assert [i.value for i in elsewhere.info] == [
        "Your session has ended (a logout, or a change of your password or role). Please log in again."
    ]


@needs_every_page
def test_a_role_change_by_the_admin_ends_the_users_open_session(engine: Engine, business: Business) -> None:
    admin = make_user(engine, business, "admin")
    username = make_user(engine, business, "manager")
    at = logged_in(APP, username)
    with session_scope(engine) as session:
        user = session.scalars(select(User).where(User.username == username)).one()
        set_role(session, Scope(business.id, admin, "admin"), user.id, "staff")
    at.run()
    assert shows_login_form(at)


@needs_every_page
def test_changing_ones_password_keeps_this_session_and_ends_the_others(
    engine: Engine, business: Business
) -> None:
    username = make_user(engine, business, "staff")
    other_browser = logged_in(APP, username)
    at = logged_in(ROOT / "pages" / "account.py", username)
    at.text_input(key="account_current").input(PASSWORD)
    at.text_input(key="account_new").input("a-brand-new-pw-1")
    at.text_input(key="account_repeat").input("a-brand-new-pw-1")
    next(b for b in at.button if b.label == "Change password").click()
    at.run()
    assert [s.value for s in at.success] == ["Password changed. Your other sessions have been logged out."]
    assert _epoch(engine, username) == 1
    assert at.session_state["auth_session_epoch"] == 1 and at.session_state["auth_set_cookie"] is True
    at.run()  # the next click here: still logged in, under the new epoch
    assert not at.error and [h.value for h in at.title] == ["Account"]
    other_browser.run()
    assert shows_login_form(other_browser)


def _cookie_login(token: str) -> None:
    import streamlit as st

    from ui.auth import cookie_login

    st.session_state["cookie_result"] = cookie_login(token)


def _try_cookie(token: str) -> AppTest:
    return AppTest.from_function(_cookie_login, args=(token,), default_timeout=60).run()


def test_a_cookie_copied_before_logout_no_longer_logs_in(
    engine: Engine, business: Business, cli_env: Settings
) -> None:
    """The real cookie: an HS256 JWT signed with the cookie key, checked against the user's epoch."""
    username = make_user(engine, business, "staff")
    key = cookie_key(cli_env)
    copied = session_token(username, 0, key, expiry_days=7, now=dt.datetime.now(dt.UTC))
    at = _try_cookie(copied)
    assert not at.exception and at.session_state["cookie_result"] is True
    assert at.session_state["username"] == username
    with session_scope(engine) as session:
        record_logout(session, username)
    at = _try_cookie(copied)
    assert at.session_state["cookie_result"] is False
    assert "username" not in at.session_state or at.session_state["username"] != username


@pytest.mark.parametrize(
    "claims_header",
    [
        ({"alg": "none"}, {"epoch": 0}),
        ({"alg": "HS512"}, {"epoch": 0}),
        ({"alg": "HS256"}, {"epoch": 0, "no_expiry": True}),
        ({"alg": "HS256"}, {"epoch": "0"}),
    ],
    ids=["alg none", "HS512", "no expiry", "text epoch"],
)
def test_a_malformed_cookie_reads_as_logged_out_without_an_error(
    engine: Engine,
    business: Business,
    cli_env: Settings,
    claims_header: tuple[dict[str, str], dict[str, object]],
) -> None:
    import base64
    import hashlib
    import hmac
    import json

    header, extra = claims_header
    username = make_user(engine, business, "admin")
    key = cookie_key(cli_env)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).timestamp()
    claims: dict[str, object] = {"username": username, "epoch": extra["epoch"]}
    if not extra.get("no_expiry"):
        claims.update(exp_date=later, exp=int(later))

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps({**header, "typ": "JWT"}).encode()) + "." + part(json.dumps(claims).encode())
    digest = hashlib.sha512 if header["alg"] == "HS512" else hashlib.sha256
    signature = (
        "" if header["alg"] == "none" else part(hmac.new(key.encode(), head.encode(), digest).digest())
    )
    at = _try_cookie(f"{head}.{signature}")
    assert not at.exception
    assert at.session_state["cookie_result"] is False


def test_the_app_refuses_to_start_with_a_secret_key_that_does_not_match(
    engine: Engine, business: Business, cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    from mail.smtp_config import clear_smtp, save_smtp

    make_user(engine, business, "staff")
    first, second = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with session_scope(engine) as session:
        save_smtp(
            session,
            cli_env.with_changes(secret_key=first),
            operator(business.id),
            host="smtp.example.com",
            username="mailer",
            password="pw",
            from_address="r@example.com",
        )
    try:
        monkeypatch.setenv("TALLYBOARD_SECRET_KEY", second)
        st.cache_resource.clear()
        at = login_form()
        [error] = [e.value for e in at.error]
        assert error.startswith("Tallyboard cannot start: The secret key does not match")
        assert not at.text_input  # no login form: nothing runs with the wrong key
    finally:
        with session_scope(engine) as session:
            clear_smtp(session, operator(business.id))
