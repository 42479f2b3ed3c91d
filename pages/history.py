"""History: every report run with status, rows, size and duration; download, re-run and delete."""

import streamlit as st

from runs.history import count_runs, describe_parameters, list_runs
from ui import history_view as view
from ui import run_views as runs
from ui.context import page_context

ctx = page_context("history")

st.title("History")
st.caption(
    "Your report runs." if ctx.role == "staff" else f"Every report run in {ctx.business_name.rstrip('.')}."
)
view.notice()
linked = view.linked_run(ctx)  # /history?run=ID: the run a report email links to
chosen = view.filters(ctx)
limit = st.session_state.setdefault("history_limit", view.PAGE_SIZE)
with ctx.session() as session:
    total = count_runs(session, ctx.scope, slug=chosen.slug, status=chosen.status, user=chosen.user)
    shown = list_runs(
        session, ctx.scope, slug=chosen.slug, status=chosen.status, user=chosen.user, limit=limit
    )

if not shown and linked is None:
    filtered = chosen.slug or chosen.status or chosen.user
    st.info(
        "No runs match these filters."
        if filtered
        else "No runs yet — generate a report in the Report builder."
    )
    st.stop()

if shown:
    runs.runs_table(ctx, shown, key="history_table")
if total > len(shown):
    st.caption(f"Showing the newest {len(shown):,} of {total:,} runs.")
    if st.button("Show more", key="history_more"):
        st.session_state["history_limit"] = limit + view.PAGE_SIZE
        st.rerun()

st.subheader("Run details")
by_id = {r.id: r for r in shown}
if linked is not None and linked.id not in by_id:
    by_id = {linked.id: linked, **by_id}  # older than the list, or outside its filters
picked = st.selectbox(
    "Run",
    list(by_id),
    index=list(by_id).index(linked.id) if linked is not None else 0,
    format_func=lambda i: view.run_label(ctx, by_id[i]),
    key="history_run",
)
run = by_id[picked]
st.caption(
    f"Parameters: {describe_parameters(run.parameters, run.slug, run.created_at)} · {run.via}"
    + (f", by {run.username}" if run.username else "")
)
runs.run_summary(ctx, run)
again, remove, _ = st.columns([1, 1, 4])
if again.button(
    "Re-run", icon=":material/replay:", key="history_rerun", help="Same report, parameters and formats"
):
    outcome = runs.rerun_with_progress(ctx, run.id)
    fresh = runs.load_run(ctx, outcome.run_id) if outcome else None
    if fresh is not None:
        runs.run_summary(ctx, fresh)
with remove:
    view.delete_one(ctx, run)
view.bulk_delete(ctx, shown)
