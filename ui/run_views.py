"""Runs on screen: generate with a progress bar, a run's summary, its stored files as download buttons, run tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

import pandas as pd
import streamlit as st
from sqlalchemy.orm import Session

from analytics.report import ReportParams
from core.errors import TallyboardError
from reports.registry import NotFound
from runs.access import sees_all_runs
from runs.files import FileInfo, FileStore, format_bytes
from runs.history import RunInfo, get_run, rerun, runs_frame
from runs.runner import Progress, RateLimited, RunOutcome, generate_run
from ui.context import PageContext
from ui.formatting import local_text, without_paths
from ui.tables import plain_widths


def files_store(ctx: PageContext) -> FileStore:
    return FileStore.from_settings(ctx.settings, ctx.engine)


def generate_with_progress(
    ctx: PageContext,
    slug: str,
    params: ReportParams,
    formats: Sequence[str],
    *,
    saved_report_id: int | None = None,
) -> RunOutcome | None:
    """Generate inside an st.status box with a progress bar; None when refused (rate limit, bad request)."""

    def call(session: Session, progress: Progress) -> RunOutcome:
        return generate_run(
            session,
            ctx.store,
            files_store(ctx),
            ctx.settings,
            ctx.scope,
            ctx.user_id,
            slug,
            params,
            formats,
            trigger="builder",
            saved_report_id=saved_report_id,
            progress=progress,
        )

    return _with_progress(ctx, call)


def rerun_with_progress(ctx: PageContext, run_id: int) -> RunOutcome | None:
    """Re-run a visible run (same report, parameters and formats) with the same progress box."""

    def call(session: Session, progress: Progress) -> RunOutcome:
        return rerun(
            session,
            ctx.store,
            files_store(ctx),
            ctx.settings,
            ctx.scope,
            ctx.user_id,
            run_id,
            progress=progress,
        )

    return _with_progress(ctx, call)


def _with_progress(ctx: PageContext, call: Callable[[Session, Progress], RunOutcome]) -> RunOutcome | None:
    with st.status("Generating the report…", expanded=True) as box:
        bar = st.progress(0.0, text="Starting")

        def progress(done: int, total: int, label: str) -> None:
            bar.progress(done / max(total, 1), text=label)

        try:
            with ctx.session() as session:
                outcome = call(session, progress)
        except RateLimited as exc:
            box.update(label="Not generated: hourly limit reached", state="error")
            st.warning(rate_limit_text(ctx, exc), icon=":material/timer:")
            return None
        except TallyboardError as exc:  # a bad request: nothing was recorded
            box.update(label="Not generated", state="error")
            st.error(without_paths(str(exc)))
            return None
        if outcome.ok:
            box.update(
                label="Reused a stored copy (cached)" if outcome.cached else "Report ready", state="complete"
            )
        else:
            box.update(label="The report failed", state="error")
    return outcome


def rate_limit_text(ctx: PageContext, exc: RateLimited) -> str:
    """The refusal with the time to try again in the business's zone, named ('Try again at 14:05 CET')."""
    counts = str(exc).split(" Try again at ")[0]
    return f"{counts} Try again at {local_text(exc.retry_at, ctx.timezone, '%H:%M')}."


def run_summary(ctx: PageContext, run: RunInfo) -> None:
    """One run: status line, numbers, error or 'cached', and download buttons for its files."""
    if run.status == "failed":
        st.error(f"Run #{run.id} failed: {without_paths(run.error)}", icon=":material/error:")
        return
    if run.status != "completed":
        st.info(f"Run #{run.id} is {run.status}. Reload the page in a moment.")
        return
    text = (
        f"**{run.title}** · run #{run.id} · {run.rows:,} rows · {format_bytes(run.bytes)} · "
        f"{run.duration_s:.1f} s · {local_text(run.created_at, ctx.timezone)}"
    )
    if run.cached:
        # Staff may not see the source run (someone else's): name it only to those who can.
        source = f" by run #{run.source_run_id}" if run.source_run_id and sees_all_runs(ctx.scope) else ""
        st.success(
            f"Cached: the data has not changed since this report was generated{source}, "
            "so its stored files were reused.",
            icon=":material/bolt:",
        )
    st.markdown(text)
    file_buttons(ctx, run.available_files, key=f"run{run.id}")
    from ui.schedule_view import run_emails  # issue 12: what happened to this run's scheduled emails

    run_emails(ctx, run.id)


def file_buttons(ctx: PageContext, files: Sequence[FileInfo], key: str) -> None:
    """Download buttons for stored files; each file is read (after the scope check) only when clicked."""
    if not files:
        st.caption("No stored files (they may have been removed after the retention period).")
        return
    cols = st.columns(max(len(files), 4))
    for col, info in zip(cols, files, strict=False):
        col.download_button(
            f"{info.label} ({format_bytes(info.bytes)})",
            data=_reader(ctx, info.id),
            file_name=info.file_name,
            mime=info.mime,
            key=f"{key}_file{info.id}",
            icon=":material/download:",
            on_click="ignore",
            width="stretch",
        )


def _reader(ctx: PageContext, run_file_id: int) -> Callable[[], bytes]:
    def read() -> bytes:
        with ctx.session() as session:
            return files_store(ctx).read(session, ctx.scope, run_file_id)[1]

    return read


def load_run(ctx: PageContext, run_id: int) -> RunInfo | None:
    with ctx.session() as session:
        try:
            return get_run(session, ctx.scope, run_id)
        except NotFound:
            return None


def runs_table(
    ctx: PageContext, runs: Sequence[RunInfo], *, key: str, height: int | Literal["auto"] = "auto"
) -> None:
    """Runs as a table that fits the page at 1440 px: status (with "cached" or the error), who, when in
    the business's named time zone ("2026-12-04 08:20 CET"), the parameters, formats, rows, size and
    duration. How a run was started and its full error are in the run's details."""
    frame = runs_frame(runs, ctx.timezone)
    shown = pd.DataFrame(
        {
            "Run": [r.id for r in runs],
            "Report": frame["report"],
            "Status": [run_status(r) for r in runs],
            "By": [_by(r) for r in runs],
            "When": [local_text(r.created_at, ctx.timezone) for r in runs],
            "Period": frame["parameters"],
            "Formats": frame["formats"],
            "Rows": frame["rows"],
            "Size": frame["size"],
            "Time (s)": frame["duration_s"].round(1),
        }
    )
    widths = plain_widths(shown, cap=170, caps={"Formats": 110, "Status": 150}, fixed=("When", "Run"))
    cc = st.column_config
    config: dict[str, Any] = {
        "Run": cc.NumberColumn(format="#%d", width=widths["Run"]),
        "Rows": cc.NumberColumn(format="%,d", width=widths["Rows"]),
        "Time (s)": cc.NumberColumn(
            format="%.1f", width=widths["Time (s)"], help="How long the run took, in seconds"
        ),
        "When": cc.TextColumn(width=widths["When"], help=f"In the business's time zone ({ctx.timezone})"),
        "By": cc.TextColumn(width=widths["By"], help="Who started the run (cli: the command line)"),
    }
    for name in shown.columns:
        config.setdefault(name, cc.TextColumn(width=widths[name]))
    st.dataframe(shown, column_config=config, hide_index=True, width="stretch", height=height, key=key)


def run_status(run: RunInfo) -> str:
    """The status as people read it: 'completed', 'completed (cached)', 'failed: <error>'."""
    text = run.status
    if run.status == "completed" and run.cached:
        return f"{text} (cached)"
    if run.status == "failed" and run.error:
        return f"{text}: {without_paths(run.error)}"
    return text


def _by(run: RunInfo) -> str:
    if run.username:
        return run.username
    return "schedule" if run.trigger == "schedule" else run.via
