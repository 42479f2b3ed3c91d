"""Schedules: reports emailed on a time rule — list, create, edit, pause, resume, run now, delete,
the next run times, each run's status and each recipient's delivery status."""

import streamlit as st

from scheduling.schedules import list_schedules
from ui import schedule_view as view
from ui.context import page_context

ctx = page_context("schedules")

st.title("Schedules")
view.heartbeat(ctx)
with ctx.session() as session:
    infos = list_schedules(session, ctx.scope)
view.email_notice(ctx)
view.notice()

if infos:
    view.schedules_table(ctx, infos, key="schedules_table")
    view.upcoming_and_overdue(ctx)
else:
    st.info("No schedules yet — create one below to email a report on a regular time.")

by_id = {i.id: i for i in infos}
options = [view.NEW, *by_id]
view.prepare_pick(options)
chosen = st.selectbox(
    "Schedule",
    options,
    format_func=lambda i: "+ New schedule" if i == view.NEW else view.label(ctx, by_id[i]),
    key=view.PICK,
)
info = by_id.get(chosen)

if info is None:
    st.subheader("New schedule")
    view.schedule_form(ctx, None)
else:
    st.subheader(info.name)
    view.details(ctx, info)
    with st.expander("Edit this schedule", icon=":material/edit:"):
        view.schedule_form(ctx, info)
