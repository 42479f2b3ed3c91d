"""Tallyboard web app: the headline KPIs of a business (the full pages arrive with the web-app issue)."""

from __future__ import annotations

import os

import streamlit as st

from analytics.db import business_by_code, make_sessionmaker
from analytics.periods import PERIOD_LABELS, RELATIVE_PERIODS
from analytics.registry import generate
from analytics.report import ReportParams, Scope
from ui import resources
from ui.formatting import format_value

HEADLINE = (
    "revenue",
    "gross_profit",
    "margin_pct",
    "orders",
    "avg_order_value",
    "cash_received",
    "outstanding",
)

st.set_page_config(page_title="Tallyboard", page_icon="📊", layout="wide")
st.title("📊 Tallyboard")

code = os.environ.get("TALLYBOARD_BUSINESS", "demo")
with make_sessionmaker(resources.engine())() as session:
    business = business_by_code(session, code)
    if business is None:
        st.info(f"No business {code!r} yet. Run `make run` (or `python manage.py demo`) to load demo data.")
        st.stop()
    period = st.selectbox(
        "Period",
        RELATIVE_PERIODS,
        index=RELATIVE_PERIODS.index("month_to_date"),
        format_func=PERIOD_LABELS.get,
    )
    params = ReportParams(period=period, tz=business.timezone)
    report = generate(session, resources.snapshot_store(), Scope(business.id), "kpi_dashboard", params)

st.caption(f"{business.name} · {report.period_label()}")
columns = st.columns(4)
for i, key in enumerate(HEADLINE):
    kpi = report.kpi(key)
    columns[i % 4].metric(kpi.label, format_value(kpi.value, kpi.kind, report.currency))
