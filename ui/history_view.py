"""The History page's widgets: filters, picking runs, and deleting one or many with a confirmation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import streamlit as st

from reports.registry import NotFound
from runs.access import allowed_reports, sees_all_runs
from runs.files import format_bytes
from runs.history import DeleteResult, RunInfo, delete_runs, run_users
from runs.runner import STATUSES
from ui.context import PageContext
from ui.formatting import local_text, without_paths
from ui.run_views import files_store, load_run

NOTICE_KEY = "history_notice"
PAGE_SIZE = 50


@dataclass(frozen=True)
class RunFilters:
    slug: str | None
    status: str | None
    user: str | None


def filters(ctx: PageContext) -> RunFilters:
    """Report, status and (for admins and managers) user filters on one row."""
    reports = {r.slug: r.title for r in allowed_reports(ctx.scope)}
    everyone = sees_all_runs(ctx.scope)
    cols = st.columns(3 if everyone else 2)
    slug = cols[0].selectbox(
        "Report",
        list(reports),
        format_func=reports.__getitem__,
        index=None,
        placeholder="All reports",
        key="history_report",
    )
    status = cols[1].selectbox(
        "Status",
        STATUSES,
        format_func=str.capitalize,
        index=None,
        placeholder="Any status",
        key="history_status",
    )
    user = None
    if everyone:
        with ctx.session() as session:
            users = run_users(session, ctx.scope)
        user = cols[2].selectbox("User", users, index=None, placeholder="Everyone", key="history_user")
    return RunFilters(slug, status, user)


def linked_run(ctx: PageContext) -> RunInfo | None:
    """The run a link names (/history?run=ID, as report emails link to it), if the user may see it;
    otherwise a warning says it cannot be shown."""
    raw = st.query_params.get("run")
    if not raw:
        return None
    run = load_run(ctx, int(raw)) if raw.strip().isdigit() else None
    if run is None:
        st.warning(
            f"Run #{raw.strip()[:20]} from the link is not available: it was deleted, expired, or is "
            "not one you can see."
        )
    return run


def run_label(ctx: PageContext, run: RunInfo) -> str:
    when = local_text(run.created_at, ctx.timezone)
    return f"#{run.id} · {run.title} · {when} · {run.status}{' (cached)' if run.cached else ''}"


def notice() -> None:
    message = st.session_state.pop(NOTICE_KEY, None)
    if message:
        st.success(message)


def delete_one(ctx: PageContext, run: RunInfo) -> None:
    """A 'Delete' popover with a confirmation button."""
    with st.popover("Delete", icon=":material/delete:"):
        st.write(f"Delete run #{run.id} and its stored files? Files another run still uses are kept.")
        st.button(
            "Yes, delete",
            key=f"history_delete_{run.id}",
            on_click=_delete,
            args=(ctx, [run.id]),
            type="primary",
        )


def bulk_delete(ctx: PageContext, runs: Sequence[RunInfo]) -> None:
    """Pick several runs, confirm, delete."""
    labels = {r.id: run_label(ctx, r) for r in runs}
    with st.expander("Delete several runs", icon=":material/delete_sweep:"):
        picked = st.multiselect(
            "Runs to delete", list(labels), format_func=labels.__getitem__, key="history_bulk"
        )
        sure = st.checkbox(
            f"Yes, delete {len(picked)} run{'s' if len(picked) != 1 else ''} and their files",
            key="history_bulk_sure",
            disabled=not picked,
        )
        st.button(
            "Delete selected runs",
            key="history_bulk_delete",
            disabled=not (picked and sure),
            on_click=_delete,
            args=(ctx, list(picked)),
            type="primary",
        )


def _delete(ctx: PageContext, ids: list[int]) -> None:
    try:
        with ctx.session() as session:
            result = delete_runs(session, files_store(ctx), ctx.scope, ids)
    except NotFound as exc:
        st.session_state[NOTICE_KEY] = f"Nothing was deleted: {without_paths(str(exc))}"
        return
    for key in ("history_bulk", "history_bulk_sure", "history_run"):
        st.session_state.pop(key, None)
    st.session_state[NOTICE_KEY] = _deleted_text(result)


def _deleted_text(result: DeleteResult) -> str:
    runs = f"{result.runs} run{'s' if result.runs != 1 else ''}"
    if result.files_removed:
        return f"Deleted {runs}; {result.files_removed} file(s) removed, {format_bytes(result.bytes_freed)} freed."
    return f"Deleted {runs}."
