"""The dashboard script's body: login, then the role's pages from ui/navigation (the table of contents).

dashboard.py (the script `st.App` runs for every browser session) calls `main()`.
"""

from __future__ import annotations

import streamlit as st

from accounts.users import AccountError
from ui import auth, report_page
from ui.navigation import pages_for


def main() -> None:
    st.set_page_config(page_title="Tallyboard", page_icon="📊", layout="wide")

    try:
        authenticator = auth.authenticator()
    except AccountError as exc:  # an unusable cookie key: say how to fix it
        st.error(str(exc))
        st.stop()

    problem = auth.key_problem()  # a secret key that does not open the stored passwords: refuse to run
    if problem:
        st.error(problem)
        st.stop()

    user, business = auth.require_user(authenticator)  # stops with the login form unless logged in and active

    sections: dict[str, list[st.Page]] = {}
    for spec in pages_for(user.role):
        # A report page without a file of its own runs the generic report page.
        source = report_page.page_function(spec.key) if spec.generic else spec.path
        sections.setdefault(spec.section, []).append(
            st.Page(source, title=spec.title, icon=spec.icon, url_path=spec.key)
        )
    page = st.navigation(sections, expanded=True)

    with st.sidebar:
        st.markdown(f"**{business.name}**")
        st.caption(f"{user.name or user.username} · {user.role}")
        auth.logout_button()

    page.run()
