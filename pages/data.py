"""Data: import a CSV or Excel file per entity (all rows or none), data freshness, import history."""

import streamlit as st

from ingest.freshness import data_freshness, import_history
from ui import data_view as view
from ui.context import page_context

ctx = page_context("data")

st.title("Data")
st.subheader("Import a file")
st.caption(
    "One file per kind of data. A file is imported whole or not at all; importing the same file "
    "again changes nothing, and a changed row updates the existing one."
)
view.import_form(ctx)
view.show_result()

with ctx.session() as session:
    fresh = data_freshness(session, ctx.business_id)
    imports = import_history(session, ctx.business_id, limit=50)

st.subheader("Data freshness")
view.freshness(ctx, fresh)
st.subheader("Import history")
view.history(ctx, imports)
