"""The generic report page: a page for reports placed on a key without a file pages/{key}.py.

The title, the period picker with the reports' filters and options, then the standard report view
(one tab per report when several share the page, in registry order).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from reports.registry import definition
from ui import detail_view
from ui import report_view as view
from ui.context import page_context
from ui.filters import report_params
from ui.navigation import page


def render(key: str) -> None:
    """Draw report page `key` (a page of ui.navigation)."""
    ctx = page_context(key)
    spec = page(key)
    st.title(spec.title)
    defns = [definition(slug) for slug in spec.reports]
    params = report_params(ctx, key, spec.reports)
    if len(defns) == 1:
        st.caption(defns[0].description)
        view.show_report(ctx, defns[0].slug, params, details=True)
        detail_view.open_requested(ctx, params)
        return
    tabs = st.tabs([d.title for d in defns], key=f"{key}_tab", on_change="rerun")
    for tab, defn in zip(tabs, defns, strict=True):
        if tab.open:
            with tab:
                st.caption(defn.description)
                view.show_report(ctx, defn.slug, params, details=True)
    detail_view.open_requested(ctx, params)


def page_function(key: str) -> Callable[[], None]:
    """The callable `st.Page` runs for report page `key`."""

    def report_page() -> None:
        render(key)

    report_page.__name__ = f"report_page_{key}"
    return report_page
