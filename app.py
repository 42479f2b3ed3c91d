"""Tallyboard's web server: the dashboard (dashboard.py) and the HTTP API (api/) on one port.

`streamlit run app.py` finds `app` below and serves it: Streamlit runs dashboard.py for every
browser session (login, then the role's pages), and the API's routes answer beside it.
"""

from __future__ import annotations

import streamlit as st

from api.routes import ROUTES

app = st.App("dashboard.py", routes=ROUTES)
