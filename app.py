"""Tallyboard's web server: the dashboard (dashboard.py) and the HTTP API (api/) on one port.

`streamlit run app.py` finds `app` below and serves it: Streamlit runs dashboard.py for every
browser session (login, then the role's pages), and the API's routes answer beside it. The page
itself carries the browser-history guard (ui/browser_history: one history entry per user action).
"""

from __future__ import annotations

import streamlit as st
from starlette.middleware import Middleware

from api.routes import ROUTES
from ui.browser_history import HistoryGuard

app = st.App("dashboard.py", routes=ROUTES, middleware=[Middleware(HistoryGuard)])
