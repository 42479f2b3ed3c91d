"""Report builder: pick a report, period, filters, columns and formats; generate a stored run; templates."""

from dataclasses import replace

import streamlit as st

from reports.registry import definition
from ui import builder
from ui import run_views as runs
from ui.context import page_context
from ui.filters import for_report, report_params

ctx = page_context("report_builder")

st.title("Report builder")
builder.notice()
builder.template_bar(ctx, builder.templates(ctx))

choices = {r.slug: r for r in builder.reports(ctx)}
st.session_state.setdefault(builder.REPORT_KEY, next(iter(choices)))
slug = st.selectbox("Report", list(choices), format_func=lambda s: choices[s].title, key=builder.REPORT_KEY)
st.caption(definition(slug).description)

params = for_report(report_params(ctx, builder.PAGE, [slug]), slug)
columns = builder.column_choice(ctx, slug, params)
params = replace(params, columns=columns)
formats = builder.format_picker()

go, save, _ = st.columns([1, 1, 4], vertical_alignment="center")
clicked = go.button("Generate", type="primary", icon=":material/play_arrow:", disabled=not formats)
with save:
    builder.save_form(ctx, slug, params, formats)

if clicked:
    outcome = runs.generate_with_progress(ctx, slug, params, formats)
    if outcome is not None:
        st.session_state["builder_run"] = outcome.run_id

last = st.session_state.get("builder_run")
if last is not None:
    run = runs.load_run(ctx, last)
    if run is not None:
        st.subheader("Result")
        runs.run_summary(ctx, run)
builder.rate_caption(ctx)
