"""The page a user reads on opening the address of a page their role may not see: "You do not have
access to this page" (instead of Streamlit's "Page not found" and a jump to the first page)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui.navigation import PageSpec, pages

NO_ACCESS = "You do not have access to this page."


def hidden_pages(role: str) -> list[PageSpec]:
    """The pages `role` may not open: registered hidden, so their addresses say "no access"."""
    return [p for p in pages() if role not in p.roles]


def no_access(spec: PageSpec) -> Callable[[], None]:
    """The body of page `spec` for a user without access to it."""

    def page() -> None:
        # No heading with the page's title: nothing of the page shows, only the refusal.
        st.error(NO_ACCESS, icon=":material/lock:")
        st.caption("Ask an administrator of your business if you need it, or pick a page on the left.")

    page.__name__ = f"no_access_{spec.key}"  # Streamlit names a function page after its function
    return page
