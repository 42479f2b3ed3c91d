"""The guard every page calls first: who is logged in (re-read from the database) and may they be here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from typing import NoReturn

import streamlit as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from streamlit.errors import StreamlitAPIException

from accounts.users import normalize_username
from analytics.report import Scope
from core.db import make_sessionmaker
from core.models import Business, User
from core.settings import Settings
from snapshots.store import Snapshot, SnapshotStore
from ui import navigation, resources


@dataclass(frozen=True)
class PageContext:
    """The caller of a page: user, role and business, plus the shared resources."""

    settings: Settings
    engine: Engine
    store: SnapshotStore
    user_id: int
    username: str
    name: str
    role: str
    business_id: int
    business_code: str
    business_name: str
    currency: str
    timezone: str
    email: str = ""
    page: str = ""  # the page's key (its URL path)

    @property
    def scope(self) -> Scope:
        return Scope(self.business_id, self.username, self.role)

    @cached_property
    def snapshot(self) -> Snapshot:
        """The report data this page run reads, looked up once per run (filters and reports share it):
        the current snapshot, or the previous one marked `refreshing` while another process builds."""
        return self.store.current(self.business_id, wait=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with make_sessionmaker(self.engine)() as session:
            yield session


CURRENT_PAGE = "nav_current_page"  # the page of the latest run
SESSION_EPOCH = "auth_session_epoch"  # the user's session epoch this browser session logged in under
SESSION_ENDED = "auth_session_ended"  # set when that epoch is over: the login form says why


def _track_page(key: str) -> None:
    """Remember the page of this run; a page opened from another one is "entered" until it settles."""
    if st.session_state.get(CURRENT_PAGE) != key:
        st.session_state[CURRENT_PAGE] = key
        st.session_state[f"nav_entered_{key}"] = True


def entered(key: str) -> bool:
    """True while page `key` was just opened from another page (or first in this session): its URL then
    names only what the link or the menu gave, and the page keeps the session's period."""
    return bool(st.session_state.get(f"nav_entered_{key}", True))


def settled(key: str) -> None:
    """Page `key` has read its URL and drawn its controls: later runs are on the page itself."""
    st.session_state[f"nav_entered_{key}"] = False


def current_user() -> tuple[User, Business] | None:
    """The logged-in user and business, re-read from the database on every run (None if absent, or
    when the session's epoch is no longer the user's: a logout elsewhere, a password, role or status
    change ended it). A disabled user is returned as such, for the caller to say so."""
    username = st.session_state.get("username")
    if not username or st.session_state.get("authentication_status") is not True:
        return None
    with make_sessionmaker(resources.engine())() as session:
        row = session.execute(
            select(User, Business)
            .join(Business, Business.id == User.business_id)
            .where(func.lower(User.username) == normalize_username(str(username)))
        ).first()
        if row is None:
            return None
        user, business = row
        session.expunge_all()
    epoch = int(user.session_epoch or 0)
    if user.active:
        # Every login records its epoch; a session without one (set up by other means) takes the current.
        started = st.session_state.setdefault(SESSION_EPOCH, epoch)
        if started != epoch:
            st.session_state[SESSION_ENDED] = True
            return None
    return user, business


NEXT_PAGE = "next"  # query parameter: the page to open after the login (see _to_login)


def _to_login(key: str) -> NoReturn:
    # Streamlit runs a file of pages/ directly (its old pages-folder mode) when the first request of a
    # fresh server process is a page URL: send such a visitor through dashboard.py, the login and the
    # navigation, keeping the link's query and naming the page, which ui/dashboard opens after the login.
    # Under dashboard.py's navigation it is no page, and the error below answers.
    with suppress(StreamlitAPIException):
        st.switch_page("dashboard.py", query_params={**st.query_params.to_dict(), NEXT_PAGE: key})
    st.error("Please log in to see this page.")
    st.stop()


def page_context(key: str) -> PageContext:
    """Call first on every page: stops the page unless an active user whose role may open `key` is logged in."""
    found = current_user()
    if found is None:
        _to_login(key)
    user, business = found
    if not user.active:
        st.error("Your account is disabled. Ask an administrator to enable it.")
        st.stop()
    spec = navigation.page(key)
    if user.role not in spec.roles:
        st.error(f"You do not have access to {spec.title}.")
        st.stop()
    _track_page(key)
    return PageContext(
        settings=resources.settings(),
        engine=resources.engine(),
        store=resources.snapshot_store(),
        user_id=user.id,
        username=user.username,
        name=user.name,
        role=user.role,
        business_id=business.id,
        business_code=business.code,
        business_name=business.name,
        currency=business.currency,
        timezone=business.timezone,
        email=user.email,
        page=key,
    )
