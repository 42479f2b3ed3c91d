"""Admin page pieces: the users table and running one audited account change."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from analytics.accounts import AccountError
from analytics.db import session_scope
from analytics.models import User
from analytics.registry import NotFound
from ui.context import PageContext

NOTICE = "admin_notice"


def users_table(users: list[User]) -> None:
    """The business's users, one row each."""
    st.dataframe(
        [
            {
                "Username": u.username,
                "Name": u.name,
                "Email": u.email,
                "Role": u.role,
                "Status": "active" if u.active else "disabled",
                "Created": u.created_at,
            }
            for u in users
        ],
        hide_index=True,
        column_config={"Created": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
    )


def user_label(user: User) -> str:
    status = "" if user.active else ", disabled"
    return f"{user.username} — {user.name} ({user.role}{status})"


def act(ctx: PageContext, action: Callable[..., object], done: str, *args: object, **kwargs: object) -> None:
    """Run one account change of the caller's business in its own transaction (audited by the action,
    with the caller as actor); on success rerun and show `done`, else show what is wrong."""
    try:
        with session_scope(ctx.engine) as session:
            action(session, ctx.business_id, *args, actor=ctx.username, **kwargs)
    except (AccountError, NotFound) as exc:
        st.error(str(exc))
        return
    st.session_state[NOTICE] = done
    st.rerun()


def notice() -> None:
    """The outcome of the change made just before this run, if any."""
    if done := st.session_state.pop(NOTICE, None):
        st.success(done)
