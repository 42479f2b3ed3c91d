"""Admin: the users of this business (add, name, email, role, disable or enable, reset password),
their API tokens; email, where notices go, and scheduler."""

import streamlit as st

from accounts import users
from core.models import ROLES
from ui import admin_view as view
from ui.context import page_context
from ui.token_view import business_tokens

ctx = page_context("admin")

st.title("Admin")
view.notice()

st.subheader("Users")
with ctx.session() as session:
    members = users.list_users(session, ctx.scope)
view.users_table(members, ctx.timezone)

# Not cleared on submit: a refused user (a taken name, a short password) keeps what was typed.
ADD_KEYS = [f"admin_new_{k}" for k in ("username", "role", "name", "email", "password", "repeat")]
with st.expander("Add a user", icon=":material/person_add:"), st.form("admin_add"):
    left, right = st.columns(2)
    username = left.text_input(
        "Username", key="admin_new_username", help="2-80 letters, digits, '.', '_', '@' or '-'"
    )
    role = right.selectbox("Role", ROLES, index=ROLES.index("staff"), key="admin_new_role")
    name = left.text_input("Name", key="admin_new_name")
    email = right.text_input("Email", key="admin_new_email")
    password = left.text_input(
        "Password", type="password", autocomplete="new-password", key="admin_new_password"
    )
    repeat = right.text_input(
        "Repeat the password", type="password", autocomplete="new-password", key="admin_new_repeat"
    )
    if st.form_submit_button("Add user", type="primary"):
        if password != repeat:
            st.error("The two passwords differ.")
        else:
            done = f"Added {role} {username}."
            view.act(
                ctx, users.add_user, done, username, password, role, name=name, email=email, clear=ADD_KEYS
            )

if members:
    st.subheader("Change a user")
    by_id = {u.id: u for u in members}
    chosen = by_id[
        st.selectbox("User", list(by_id), format_func=lambda i: view.user_label(by_id[i]), key="admin_user")
    ]
    view.details_form(ctx, chosen)
    role_col, status_col, password_col = st.columns(3)
    with role_col, st.form("admin_role"):
        new_role = st.selectbox("Role", ROLES, index=ROLES.index(chosen.role), key=f"admin_role_{chosen.id}")
        if st.form_submit_button("Change role"):
            view.act(ctx, users.set_role, f"{chosen.username} is now {new_role}.", chosen.id, new_role)
    with status_col, st.container(border=True):
        st.markdown(f"**Status:** {'active' if chosen.active else 'disabled'}")
        st.caption("A disabled user is logged out at once and cannot log in.")
        verb = "Disable" if chosen.active else "Enable"
        if st.button(f"{verb} {chosen.username}", key="admin_toggle"):
            done = f"{chosen.username} is {verb.lower()}d."
            view.act(ctx, users.set_active, done, chosen.id, not chosen.active)
    with password_col, st.form("admin_reset", clear_on_submit=True):
        new_password = st.text_input(
            "New password", type="password", autocomplete="new-password", key="admin_reset_password"
        )
        if st.form_submit_button("Reset password"):
            done = f"New password set for {chosen.username}; tell them."
            view.act(ctx, users.reset_password, done, chosen.id, new_password)

st.subheader("API tokens")
st.caption("Every token of the business; a disabled user's tokens stop working at once.")
business_tokens(ctx)

st.subheader("Email")
view.smtp_form(ctx)

st.subheader("Notices")
view.notices_section(ctx)

st.subheader("Scheduler")
view.scheduler_section(ctx)
