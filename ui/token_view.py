"""API tokens on the Account page (make one, shown once; list and revoke one's own) and the Admin page
(every token of the business, revoke any)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from accounts.tokens import MAX_NAME, TokenInfo, create_token, list_tokens, revoke_token
from core.clock import utc_now
from core.db import session_scope
from core.errors import TallyboardError
from ui.context import PageContext
from ui.formatting import in_zone, local_text, without_paths
from ui.tables import plain_table

EXPIRY_DAYS: dict[str, int | None] = {"Never": None, "30 days": 30, "90 days": 90, "1 year": 365}
NOTICE = "tokens_notice"  # what the revoke before this run did


def notice() -> None:
    if done := st.session_state.pop(NOTICE, None):
        st.success(done)


def create_form(ctx: PageContext) -> None:
    """Make a token for oneself; it is shown once, right here, and never again."""
    with st.form("account_token", clear_on_submit=True):
        left, right = st.columns([3, 1])
        name = left.text_input(
            "Token name",
            key="account_token_name",
            max_chars=MAX_NAME,
            placeholder="Power BI on my laptop",
            help="What the token is for, so you know which one to revoke.",
        )
        expiry = right.selectbox("Expires after", list(EXPIRY_DAYS), key="account_token_expiry")
        submitted = st.form_submit_button("Make a token", icon=":material/key:")
    if not submitted:
        return
    try:
        with session_scope(ctx.engine) as session:
            made = create_token(
                session, ctx.scope, ctx.username, now=utc_now(), name=name, expires_days=EXPIRY_DAYS[expiry]
            )
    except TallyboardError as exc:
        st.error(without_paths(str(exc)))
        return
    st.success(
        f"Your new token {made.info.name!r}: copy it now, it is shown only this once. Send it as "
        "`Authorization: Bearer TOKEN` (see the README's API section).",
        icon=":material/key:",
    )
    st.code(made.token, language=None)


def tokens_table(found: list[TokenInfo], tz: str, *, with_user: bool) -> None:
    """The tokens (never the tokens themselves): name, created, last used, expires, status."""
    if not found:
        st.caption("No API tokens yet.")
        return
    now = utc_now()
    frame = pd.DataFrame(
        [
            {
                **({"User": t.username} if with_user else {}),
                "Name": t.name,
                "Created": local_text(t.created_at, tz),
                "Last used": local_text(t.last_used_at, tz) if t.last_used_at else "never",
                "Expires": local_text(t.expires_at, tz) if t.expires_at else "never",
                "Status": t.status(now),
            }
            for t in found
        ]
    )
    plain_table(frame, key=f"tokens_{'all' if with_user else 'own'}")


def revoke_control(ctx: PageContext, found: list[TokenInfo], prefix: str) -> None:
    """Pick an active token and revoke it (it stops working at once)."""
    now = utc_now()
    active = {t.id: t for t in found if t.status(now) == "active"}
    if not active:
        return
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    chosen = left.selectbox(
        "Revoke a token",
        list(active),
        format_func=lambda i: _label(active[i], ctx.timezone),
        key=f"{prefix}_token_choice",
    )
    if right.button("Revoke", key=f"{prefix}_token_revoke", icon=":material/block:"):
        try:
            with session_scope(ctx.engine) as session:
                revoked = revoke_token(session, ctx.scope, int(chosen), now=utc_now())
        except TallyboardError as exc:
            st.error(without_paths(str(exc)))
        else:
            st.session_state[NOTICE] = f"Revoked {revoked.name!r} of {revoked.username}: it no longer works."
            st.rerun()


def own_tokens(ctx: PageContext) -> None:
    """The Account page's section: make a token, one's own tokens, revoke one."""
    notice()
    create_form(ctx)
    with ctx.session() as session:
        found = list_tokens(session, ctx.scope)
    tokens_table(found, ctx.timezone, with_user=False)
    revoke_control(ctx, found, "account")


def business_tokens(ctx: PageContext) -> None:
    """The Admin page's section: every token of the business, revoke any."""
    notice()
    with ctx.session() as session:
        found = list_tokens(session, ctx.scope, everyone=True)
    tokens_table(found, ctx.timezone, with_user=True)
    revoke_control(ctx, found, "admin")


def _label(token: TokenInfo, tz: str) -> str:
    return f"{token.name} — {token.username}, made {in_zone(token.created_at, tz):%Y-%m-%d}"
