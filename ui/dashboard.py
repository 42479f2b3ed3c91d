"""The dashboard script's body: login, then the role's pages from ui/navigation (the table of contents).

dashboard.py (the script `st.App` runs for every browser session) calls `main()`.
"""

from __future__ import annotations

import streamlit as st

from accounts.users import AccountError
from ui import access, auth, forecast_view, report_page, styles
from ui.context import NEXT_PAGE
from ui.navigation import pages_for


def main() -> None:
    st.set_page_config(page_title="Tallyboard", page_icon="📊", layout="wide")
    # Once per server: import the forecasting libraries (≈3 s) in the background while the login shows,
    # so Overview's trend forecast does not make the first page wait for them.
    forecast_view.preload_in_background()
    styles.inject()  # KPI labels wrap; on a phone two cards a row, no chart toolbar over titles

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
    for spec in access.hidden_pages(user.role):  # its address reads "no access", not "Page not found"
        sections.setdefault(spec.section, []).append(
            st.Page(access.no_access(spec), title=spec.title, url_path=spec.key, visibility="hidden")
        )
    page = st.navigation(sections, expanded=True)
    wanted = st.query_params.get(NEXT_PAGE)
    if wanted is not None:  # a link to a page opened on a fresh server: that page, with the link's query
        query = {k: ",".join(st.query_params.get_all(k)) for k in st.query_params if k != NEXT_PAGE}
        target = next((p for group in sections.values() for p in group if p.url_path == wanted), None)
        if target is not None and target.url_path != page.url_path:
            st.switch_page(target, query_params=query)
        del st.query_params[NEXT_PAGE]

    with st.sidebar:
        st.markdown(f"**{business.name}**")
        st.caption(f"{user.name or user.username} · {user.role}")
        auth.logout_button()

    page.run()
