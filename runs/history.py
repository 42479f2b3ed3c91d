"""Run history: list, look up, delete and re-run runs, always through the caller's scope.

Staff see only their own runs; another business's run, or another user's for staff, answers
exactly like a missing one (NotFound).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from analytics.report import ReportParams, Scope
from core.clock import aware, local, utc_naive
from core.errors import Invalid
from core.ids import storable_id
from core.models import Run, RunFile
from core.settings import Settings
from reports.audit_log import record_event
from reports.registry import REGISTRY, NotFound
from runs.access import acting_scope, refuse_foreign, sees_all_runs, visible_runs
from runs.files import FileInfo, FileStore, file_info, format_bytes, format_label
from runs.runner import TRIGGER_LABELS, Progress, RunOutcome, Trigger, generate_run
from snapshots.store import SnapshotStore


@dataclass(frozen=True)
class RunInfo:
    """One run as the History and Statistics pages show it (times are naive UTC)."""

    id: int
    slug: str
    status: str
    username: str
    trigger: str
    cached: bool
    source_run_id: int | None
    rows: int
    bytes: int
    duration_s: float
    error: str
    formats: tuple[str, ...]
    parameters: dict[str, Any]
    created_at: dt.datetime
    finished_at: dt.datetime | None
    saved_report_id: int | None
    schedule_id: int | None
    files: tuple[FileInfo, ...] = field(default=())

    @property
    def title(self) -> str:
        return report_title(self.slug)

    @property
    def via(self) -> str:
        """What started the run, for people: 'Report builder', 'Schedule', 'Command line', 'API'."""
        return TRIGGER_LABELS.get(self.trigger, self.trigger)

    @property
    def available_files(self) -> tuple[FileInfo, ...]:
        return tuple(f for f in self.files if not f.deleted)


@dataclass(frozen=True)
class DeleteResult:
    runs: int
    files_removed: int
    bytes_freed: int


def report_title(slug: str) -> str:
    defn = REGISTRY.get(slug)
    return defn.title if defn else slug


def describe_parameters(parameters: dict[str, Any], slug: str, at: dt.datetime) -> str:
    """A run's parameters in one line for people: '1–31 Oct 2026 (last month) · region: North, South ·
    granularity: day'. The period (Period.describe) is resolved as when the run was created, `at`
    (naive UTC); parameters this version cannot read leave it out."""
    parts: list[str] = []
    defn = REGISTRY.get(slug)
    if defn is None or defn.uses_period:
        try:
            params = ReportParams.from_mapping(parameters)
            period = params.resolve_period(defn.default_period if defn else "last_month", at)
            parts.append(period.describe())
            # The default comparison (the period before) goes unsaid, as on the pages.
            compared = period.year_before() if params.compare == "last_year" else params.compared_period()
            if compared is not None:
                parts.append(f"vs {compared.describe()}")
        except Invalid:
            pass
    for dim, values in (parameters.get("filters") or {}).items():
        parts.append(f"{dim}: {', '.join(map(str, values))}")
    for name, value in (parameters.get("options") or {}).items():
        if value not in ("", None):
            parts.append(f"{name}: {value}")
    if parameters.get("columns"):
        parts.append("chosen columns")
    return " · ".join(parts) or "default period"


def _filters(
    scope: Scope,
    slug: str | None,
    status: str | None,
    user: str | None,
    since: dt.datetime | None,
) -> list[ColumnElement[bool]]:
    where = [visible_runs(scope)]
    if slug:
        where.append(Run.report_slug == slug)
    if status:
        where.append(Run.status == status)
    if user and sees_all_runs(scope):  # staff only ever see themselves
        where.append(Run.username == user)
    if since is not None:
        where.append(Run.created_at >= utc_naive(since))
    return where


def list_runs(
    session: Session,
    scope: Scope,
    *,
    slug: str | None = None,
    status: str | None = None,
    user: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[RunInfo]:
    """The caller's visible runs, newest first, with their files; `user` is a username (ignored for staff)."""
    rows = session.scalars(
        select(Run)
        .where(*_filters(scope, slug, status, user, since))
        .order_by(Run.created_at.desc(), Run.id.desc())
        .limit(max(0, limit))
        .offset(max(0, offset))
    ).all()
    return _with_files(session, rows)


def count_runs(
    session: Session,
    scope: Scope,
    *,
    slug: str | None = None,
    status: str | None = None,
    user: str | None = None,
    since: dt.datetime | None = None,
) -> int:
    """How many runs `list_runs` would page through with the same filters."""
    return int(
        session.scalar(select(func.count(Run.id)).where(*_filters(scope, slug, status, user, since))) or 0
    )


def run_users(session: Session, scope: Scope) -> list[str]:
    """Usernames that appear in the caller's visible runs (for the History page's user filter)."""
    return [
        u
        for u in session.scalars(
            select(Run.username).where(visible_runs(scope)).distinct().order_by(Run.username)
        ).all()
        if u
    ]


def get_run(session: Session, scope: Scope, run_id: int) -> RunInfo:
    """One visible run with its files; NotFound for a missing, foreign or (staff) someone else's run."""
    if not storable_id(run_id):
        raise NotFound("No such run.")
    row = session.scalars(select(Run).where(Run.id == run_id, visible_runs(scope))).one_or_none()
    if row is None:
        refuse_foreign(session, scope, Run, [run_id], "view_runs")
        raise NotFound("No such run.")
    return _with_files(session, [row])[0]


def delete_runs(
    session: Session, files: FileStore, scope: Scope, ids: Iterable[int], *, now: dt.datetime | None = None
) -> DeleteResult:
    """Delete visible runs (all or none: one unknown id raises NotFound) and commit.

    A stored file is removed from disk only when no remaining run refers to it (a cached run
    shares its source's files); files go after the commit, so a failed delete loses nothing.
    """
    wanted = sorted(set(ids))
    if not wanted:
        return DeleteResult(0, 0, 0)
    if not all(storable_id(i) for i in wanted):
        raise NotFound("No such run." if len(wanted) == 1 else "Some of these runs do not exist.")
    scope = acting_scope(session, scope, "delete_runs")
    found = session.scalars(select(Run.id).where(Run.id.in_(wanted), visible_runs(scope))).all()
    if len(found) != len(wanted):
        refuse_foreign(session, scope, Run, wanted, "delete_runs")
        raise NotFound("No such run." if len(wanted) == 1 else "Some of these runs do not exist.")
    paths = {
        f.path: int(f.bytes) for f in session.scalars(select(RunFile).where(RunFile.run_id.in_(wanted))).all()
    }
    session.execute(delete(RunFile).where(RunFile.run_id.in_(wanted)))
    session.execute(delete(Run).where(Run.id.in_(wanted)))
    still_used = set(
        session.scalars(select(RunFile.path).where(RunFile.path.in_(list(paths))).distinct()).all()
        if paths
        else []
    )
    record_event(
        session,
        scope.business_id,
        "runs_deleted",
        user=scope.user,
        entity="run",
        entity_id=",".join(map(str, wanted))[:100],
        detail={"runs": wanted},
        at=utc_naive(aware(now)),
    )
    session.commit()
    removed = freed = 0
    for path, size in paths.items():
        if path not in still_used and files.remove(path):
            removed += 1
            freed += size
    return DeleteResult(len(wanted), removed, freed)


def rerun(
    session: Session,
    store: SnapshotStore,
    files: FileStore,
    settings: Settings,
    scope: Scope,
    user_id: int | None,
    run_id: int,
    *,
    trigger: Trigger = "builder",
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> RunOutcome:
    """Generate a visible run's report again with its parameters and formats (relative periods move on)."""
    scope = acting_scope(session, scope, "rerun_reports", user_id)
    run = get_run(session, scope, run_id)
    params = ReportParams.from_mapping(run.parameters)
    return generate_run(
        session,
        store,
        files,
        settings,
        scope,
        user_id,
        run.slug,
        params,
        run.formats,
        trigger=trigger,
        saved_report_id=run.saved_report_id,
        now=now,
        progress=progress,
    )


def runs_frame(runs: Sequence[RunInfo], tz: str) -> pd.DataFrame:
    """Runs as a table for people: one row per run, times in the business's time zone."""
    return pd.DataFrame(
        {
            "id": [r.id for r in runs],
            "report": [r.title for r in runs],
            "status": [r.status for r in runs],
            "cached": [r.cached for r in runs],
            "user": [r.username or ("schedule" if r.trigger == "schedule" else "") for r in runs],
            "via": [r.via for r in runs],
            "created": [local(r.created_at, tz) for r in runs],
            "parameters": [describe_parameters(r.parameters, r.slug, r.created_at) for r in runs],
            "formats": [", ".join(format_label(f) for f in r.formats) for r in runs],
            "rows": [r.rows for r in runs],
            "size": [format_bytes(r.bytes) if r.status == "completed" else "" for r in runs],
            "duration_s": [r.duration_s for r in runs],
            "error": [r.error for r in runs],
        }
    )


def _with_files(session: Session, rows: Sequence[Run]) -> list[RunInfo]:
    ids = [r.id for r in rows]
    by_run: dict[int, list[FileInfo]] = {i: [] for i in ids}
    if ids:
        for f in session.scalars(select(RunFile).where(RunFile.run_id.in_(ids)).order_by(RunFile.id)).all():
            by_run[f.run_id].append(file_info(f))
    return [
        RunInfo(
            id=r.id,
            slug=r.report_slug,
            status=r.status,
            username=r.username,
            trigger=r.trigger,
            cached=r.cached,
            source_run_id=r.source_run_id,
            rows=int(r.rows or 0),
            bytes=int(r.bytes or 0),
            duration_s=float(r.duration_s or 0),
            error=r.error or "",
            formats=tuple(f for f in (r.formats or "").split(",") if f),
            parameters=dict(r.parameters or {}),
            created_at=r.created_at,
            finished_at=r.finished_at,
            saved_report_id=r.saved_report_id,
            schedule_id=r.schedule_id,
            files=tuple(by_run[r.id]),
        )
        for r in rows
    ]
