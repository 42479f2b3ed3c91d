"""Login, logout and the login cookie: streamlit-authenticator over the users kept in the database,
guarded by our own time-windowed lockout (the library's attempt counter has no window).

The login form is ours so that every attempt can be checked against the lock *before* the library
checks the password, and recorded with its username and IP address afterwards; the library checks
the bcrypt hash and sets the session state. The cookie is ours too (an HS256 JWT signed with the
cookie key, written through the library's cookie component): it carries the user's session epoch,
and a cookie whose epoch is no longer the user's (after a logout, a password, role or status change)
logs nobody in. A malformed cookie of any kind reads as "logged out", so the form stays reachable.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, NoReturn

import streamlit as st
import streamlit_authenticator as stauth
from streamlit.delta_generator import DeltaGenerator
from streamlit_authenticator.utilities import LoginError

from accounts import users
from core.db import session_scope
from core.models import Business, User
from core.secret_key import startup_problem
from ui import resources
from ui.context import SESSION_ENDED, SESSION_EPOCH, current_user
from ui.navigation import pages

COOKIE_NAME = "tallyboard_auth"
AUTH_KEYS = ("name", "username", "authentication_status", "email", "roles")
_LOGOUT_REQUESTED = "auth_logout_requested"
_NOTICE = "auth_notice"
_SET_COOKIE = "auth_set_cookie"
_PROBLEM = "auth_problem"  # why the last login attempt was refused


@st.cache_resource
def _cookie_key() -> str:
    return users.cookie_key(resources.settings())


@st.cache_resource
@st.cache_resource(show_spinner=False)
def key_problem() -> str | None:
    """Checked once per app process (the key comes from the process's environment or key file), not
    on every rerun: why the app must not run with this secret key (None: it may)."""
    return startup_problem(resources.engine(), resources.settings())


def credentials(people: list[User]) -> dict[str, Any]:
    """The library's credentials dict for these users: bcrypt hashes, one role each."""
    return {
        "usernames": {
            users.normalize_username(u.username): {
                "name": u.name or u.username,
                "email": u.email,
                "password": u.password_hash,
                "roles": [u.role],
            }
            for u in people
        }
    }


def logged_in() -> bool:
    return st.session_state.get("authentication_status") is True


def authenticator() -> Any:
    """The authenticator, built on every run (its cookie component renders each run). Credentials are
    the database's active users, read only while nobody is logged in (logins and cookie re-logins)."""
    creds: dict[str, Any] = {"usernames": {}}
    if not logged_in():
        with session_scope(resources.engine()) as session:
            creds = credentials(users.active_users(session))
    settings = resources.settings()
    return stauth.Authenticate(
        creds,  # built afresh each run: the library mutates what it is given
        COOKIE_NAME,
        _cookie_key(),
        settings.cookie_expiry_days,
        auto_hash=False,
        login_sleep_time=0,  # cookies come from st.context, no component round trip to wait for
    )


def client_ip() -> str:
    """The browser's IP address ("" on localhost, where Streamlit does not tell)."""
    ip = st.context.ip_address
    return ip if isinstance(ip, str) else ""


def _clear_auth_state() -> None:
    for key in AUTH_KEYS:
        st.session_state[key] = None
    st.session_state.pop(SESSION_EPOCH, None)


def _sign_in(user: User) -> None:
    """Log `user` in for this browser session, under their current session epoch."""
    st.session_state.update(
        {
            "name": user.name or user.username,
            "username": user.username,
            "email": user.email,
            "roles": [user.role],
            "authentication_status": True,
            "logout": None,
            SESSION_EPOCH: int(user.session_epoch or 0),
        }
    )


def cookie_login(token: object) -> bool:
    """Log in from the login cookie's value: True when it is a valid token of an active user whose
    session epoch it still carries; anything else (malformed, forged, expired, ended) is False."""
    claim = users.read_session_token(token, _cookie_key(), now=dt.datetime.now(dt.UTC))
    if claim is None:
        return False
    with session_scope(resources.engine()) as session:
        user = users.session_user(session, claim)
        if user is None:
            return False
        _sign_in(user)
    return True


def _set_cookie(auth: Any, writes: DeltaGenerator) -> None:
    """Write this session's login cookie (username + session epoch, signed with the cookie key)."""
    settings = resources.settings()
    now = dt.datetime.now(dt.UTC)
    token = users.session_token(
        str(st.session_state.get("username") or ""),
        int(st.session_state.get(SESSION_EPOCH) or 0),
        _cookie_key(),
        expiry_days=settings.cookie_expiry_days,
        now=now,
    )
    expires = dt.datetime.now() + dt.timedelta(days=settings.cookie_expiry_days)
    with writes:
        auth.cookie_controller.cookie_model.cookie_manager.set(COOKIE_NAME, token, expires_at=expires)


def renew_session(epoch: int) -> None:
    """After the user's own password change: this session goes on under the new epoch, and the next
    run writes a new cookie (every other session and cookie has ended)."""
    st.session_state[SESSION_EPOCH] = epoch
    st.session_state[_SET_COOKIE] = True


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _locked_message(until: dt.datetime, now: dt.datetime) -> str:
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return (
        f"Too many failed logins for this username. Try again in {minutes} minute"
        f"{'s' if minutes != 1 else ''}."
    )


def attempt_login(auth: Any, username: str, password: str, ip: str = "") -> str | None:
    """Check the lock, let the library check the password, record the attempt; None when logged in,
    else the message to show. A locked username is refused even with the right password."""
    name = users.normalize_username(username)
    if not name or not password:
        return "Enter your username and password."
    settings = resources.settings()
    engine = resources.engine()
    now = _now()
    with session_scope(engine) as session:
        until = users.locked_until(session, name, now, settings)
        if until is not None:
            users.record_locked_out(session, name, until, ip=ip, at=now)
            return _locked_message(until, now)
    try:
        ok = bool(auth.authentication_controller.login(name, password))
    except LoginError:
        ok = False
    with session_scope(engine) as session:
        # Checked again: failures from another browser may have locked the name while bcrypt ran.
        until = users.locked_until(session, name, _now(), settings)
        if ok and until is not None:
            _clear_auth_state()
            users.record_locked_out(session, name, until, ip=ip, at=now)
            return _locked_message(until, now)
        users.record_login_attempt(session, name, ok, ip=ip, at=now)
        user = users.user_by_username(session, name) if ok else None
        if user is not None and user.active:
            st.session_state[SESSION_EPOCH] = int(user.session_epoch or 0)
            return None
        _clear_auth_state()
        until = users.locked_until(session, name, now, settings)
    if until is not None:
        return _locked_message(until, now)
    return "Wrong username or password (or the account is disabled)."


def _no_users_yet() -> bool:
    with session_scope(resources.engine()) as session:
        return users.user_count(session) == 0


def _login_form(auth: Any) -> None:
    """The login form; a successful login goes on, in the same run, to the page the URL names (with its
    query: a link opened before the login lands on its view)."""
    if _no_users_yet():
        st.title("Welcome to Tallyboard")
        st.info(
            "No user exists yet. Run `make run` (it loads the demo business and prints logins for an "
            "admin, a manager and a staff user), or create one yourself (it asks for the password):\n\n"
            "`python manage.py users add alice --business demo --role admin`"
        )
        return
    _, middle, _ = st.columns([1, 1.3, 1])
    with middle, st.form("auth_login", clear_on_submit=False, enter_to_submit=True):
        st.subheader("Log in to Tallyboard")
        # Kept until the next attempt: the cookie component's first report reruns the page at once.
        notice = st.session_state.get(_NOTICE, "")
        if notice:
            st.info(notice)
        st.text_input("Username", key="auth_username", autocomplete="username")
        st.text_input("Password", type="password", key="auth_password", autocomplete="current-password")
        st.form_submit_button("Log in", type="primary", on_click=_submit, args=(auth,))
    problem = st.session_state.get(_PROBLEM)
    if problem:
        middle.error(problem)


def _submit(auth: Any) -> None:
    """The form's callback (it runs before the page): try the login; a refusal keeps the username and
    clears the password, and the next run shows why; a success logs in for that run."""
    username = str(st.session_state.get("auth_username") or "")
    password = str(st.session_state.get("auth_password") or "")
    st.session_state["auth_password"] = ""
    st.session_state.pop(_NOTICE, None)
    st.session_state[_PROBLEM] = attempt_login(auth, username, password, client_ip())
    if st.session_state[_PROBLEM] is None:
        st.session_state[_SET_COOKIE] = True  # written by this run's page (see require_user)


def _show_login(auth: Any) -> NoReturn:
    """The login form as the only page (no page list for anonymous visitors), then stop.

    Every page's URL shows the form too, so a link to a page leads to the login and then, when the
    role may open it, to that page (instead of a "page not found" dialog)."""

    def login_page() -> None:
        _login_form(auth)

    login = [st.Page(login_page, title="Log in", icon=":material/login:", default=True)]
    login += [st.Page(login_page, title="Log in", icon=":material/login:", url_path=p.key) for p in pages()]
    st.navigation(login, position="hidden").run()
    st.stop()


def _forget(auth: Any, writes: DeltaGenerator, notice: str = "") -> None:
    """Clear this browser's login: session state and cookie."""
    st.session_state.pop(SESSION_EPOCH, None)
    with writes:
        if logged_in():
            auth.logout(location="unrendered")  # clears the state and deletes the cookie
        else:
            _clear_auth_state()
            st.session_state["logout"] = True  # the library then ignores the cookie until the next login
            auth.cookie_controller.delete_cookie()
    if notice:
        st.session_state[_NOTICE] = notice


def _request_logout() -> None:
    st.session_state[_LOGOUT_REQUESTED] = True


def logout_button() -> None:
    st.button("Log out", key="auth_logout", icon=":material/logout:", on_click=_request_logout)


def require_user(auth: Any) -> tuple[User, Business]:
    """The logged-in, active user and their business; otherwise shows the login page and stops.

    Runs first on every run: handles a requested logout, a cookie re-login, the login form, and
    logs out at once a user who was disabled or deleted since logging in.

    Writing or deleting the cookie draws elements of the cookie component (a login run and a logout
    run do, the runs after them do not); they draw in a container made here on every run, so that
    everything after it stays at one place in both runs. Drawn in line, they pushed the login form
    (after a logout) or the page (after a login) one or two places down in that run, and the browser,
    which keeps the previous run's elements until a run ends, showed two forms or two pages meanwhile.
    """
    writes = st.container()
    if st.session_state.pop(_LOGOUT_REQUESTED, False) and logged_in():
        username = str(st.session_state.get("username") or "")
        with session_scope(resources.engine()) as session:
            users.record_logout(session, username, ip=client_ip())  # ends its cookies everywhere
        _forget(auth, writes, "You are logged out.")
    if not logged_in():
        token = st.context.cookies.get(COOKIE_NAME)
        if token is not None and not cookie_login(token):
            _clear_auth_state()  # a malformed, forged, expired or ended cookie: logged out
    if not logged_in():
        _show_login(auth)
    found = current_user()
    if found is None or not found[0].active:
        ended = st.session_state.pop(SESSION_ENDED, False) and found is None
        _forget(
            auth,
            writes,
            "Your session has ended (a logout, or a change of your password or role). Please log in again."
            if ended
            else "Your account is disabled. Ask an administrator of your business to enable it.",
        )
        _show_login(auth)
    if st.session_state.pop(_SET_COOKIE, False):
        _set_cookie(auth, writes)
    return found
