"""Account: my details (name and email editable), my password and my API tokens."""

import streamlit as st

from accounts.users import MIN_PASSWORD, change_password, set_own_details
from core.db import session_scope
from core.errors import TallyboardError
from scheduling.summary import subscriptions
from ui.auth import renew_session
from ui.context import page_context
from ui.formatting import without_paths
from ui.schedule_view import subscriptions_table
from ui.token_view import own_tokens

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
if done := st.session_state.pop("account_notice", None):
    st.success(done)
with st.form("account_details"):
    left, right = st.columns(2)
    new_name = left.text_input("Name", value=ctx.name, key="account_name")
    new_email = right.text_input(
        "Email",
        value=ctx.email,
        key="account_email",
        help="Where your scheduled reports and the notices about your schedules go. Leave blank for none.",
    )
    save_details = st.form_submit_button("Save name and email")
if save_details:
    try:
        with session_scope(ctx.engine) as session:
            set_own_details(session, ctx.scope, name=new_name, email=new_email)
    except TallyboardError as exc:
        st.error(without_paths(str(exc)))
    else:
        st.session_state["account_notice"] = "Your name and email are saved."
        st.rerun()
st.caption("An administrator of your business can change your role.")

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
        except TallyboardError as exc:
            st.error(without_paths(str(exc)))
        else:
            renew_session(epoch)  # this browser stays logged in; every other session and cookie ends
            st.success("Password changed. Your other sessions have been logged out.")

st.subheader("API tokens")
st.caption("A token lets scripts, Power BI and Excel read your reports and History through the API, as you.")
own_tokens(ctx)

st.subheader("My subscriptions")
with ctx.session() as session:
    subscribed = subscriptions(session, ctx.business_id, ctx.email)
if not ctx.email:
    st.caption("No email address on your account: add one above to receive reports and notices.")
elif not subscribed:
    st.caption(f"No scheduled reports are sent to {ctx.email}.")
else:
    subscriptions_table(ctx, subscribed)
    st.caption("Managers change schedules and their recipients on the Schedules page.")
