"""Account: my details and my password."""

import streamlit as st

from accounts.users import MIN_PASSWORD, AccountError, change_password
from core.db import session_scope
from core.errors import Forbidden
from scheduling.summary import subscriptions
from ui.auth import renew_session
from ui.context import page_context
from ui.schedule_view import subscriptions_table

ctx = page_context("account")

st.title("Account")

st.subheader("My details")
details = {
    "Name": ctx.name,
    "Username": ctx.username,
    "Role": ctx.role.capitalize(),
    "Business": ctx.business_name,
    "Email": ctx.email or "—",
}
for column, (label, value) in zip(st.columns(len(details)), details.items(), strict=True):
    column.markdown(f"**{label}**  \n{value}")
st.caption("An administrator of your business can change your role, name or email.")

st.subheader("Change password")
with st.form("account_password", clear_on_submit=True):
    current = st.text_input(
        "Current password", type="password", autocomplete="current-password", key="account_current"
    )
    new = st.text_input(
        "New password",
        type="password",
        autocomplete="new-password",
        key="account_new",
        help=f"At least {MIN_PASSWORD} characters (at most 72 bytes), no spaces at the start or end.",
    )
    repeat = st.text_input(
        "Repeat the new password", type="password", autocomplete="new-password", key="account_repeat"
    )
    submitted = st.form_submit_button("Change password", type="primary")
if submitted:
    if not current or not new:
        st.error("Fill in your current password and a new one.")
    elif new != repeat:
        st.error("The two new passwords differ; type the new password twice.")
    else:
        try:
            with session_scope(ctx.engine) as session:
                epoch = change_password(session, ctx.scope, current, new).session_epoch
        except (AccountError, Forbidden) as exc:
            st.error(str(exc))
        else:
            renew_session(epoch)  # this browser stays logged in; every other session and cookie ends
            st.success("Password changed. Your other sessions have been logged out.")

st.subheader("My subscriptions")
with ctx.session() as session:
    subscribed = subscriptions(session, ctx.business_id, ctx.email)
if not ctx.email:
    st.caption("No email address on your account: ask an administrator to add one to receive reports.")
elif not subscribed:
    st.caption(f"No scheduled reports are sent to {ctx.email}.")
else:
    subscriptions_table(subscribed)
    st.caption("Managers change schedules and their recipients on the Schedules page.")
