"""The Statistics page's numbers: saved reports, schedules, runs, successes, failures, storage, runs by report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from analytics.report import Scope
from core.models import Run, RunFile, SavedReport
from runs.access import visible_runs
from runs.history import RunInfo, list_runs, report_title

# How many active schedules a business has. The scheduler issue plugs its counter in here (or passes
# one to `statistics`); until schedules exist the count is 0.
ScheduleCounter = Callable[[Session, Scope], int]


def no_schedules(session: Session, scope: Scope) -> int:
    return 0


@dataclass(frozen=True)
class Statistics:
    """Counts for one business (runs: those the caller may see). `by_report`: one row per report type."""

    saved_reports: int
    active_saved_reports: int
    templates: int
    scheduled: int
    runs: int
    successes: int
    failures: int
    cached_runs: int
    storage_bytes: int
    stored_files: int
    by_report: pd.DataFrame
    recent: list[RunInfo]


def statistics(
    session: Session,
    scope: Scope,
    *,
    count_schedules: ScheduleCounter = no_schedules,
    recent: int = 10,
) -> Statistics:
    """Saved reports (the users' own and shared, not system templates), scheduled count, runs by outcome,
    storage used (each stored file counted once, however many cached runs share it) and runs by report."""
    saved_total, saved_active, templates = session.execute(
        select(
            func.count(SavedReport.id).filter(SavedReport.system.is_(False)),
            func.count(SavedReport.id).filter(SavedReport.system.is_(False), SavedReport.active.is_(True)),
            func.count(SavedReport.id).filter(SavedReport.is_template.is_(True)),
        ).where(SavedReport.business_id == scope.business_id)
    ).one()
    done = func.sum(case((Run.status == "completed", 1), else_=0))
    failed = func.sum(case((Run.status == "failed", 1), else_=0))
    cached = func.sum(case((Run.cached.is_(True), 1), else_=0))
    runs, successes, failures, cached_runs = session.execute(
        select(func.count(Run.id), done, failed, cached).where(visible_runs(scope))
    ).one()
    per_file = (
        select(RunFile.path, func.max(RunFile.bytes).label("size"))
        .join(Run, Run.id == RunFile.run_id)
        .where(RunFile.business_id == scope.business_id, RunFile.deleted_at.is_(None), visible_runs(scope))
        .group_by(RunFile.path)
        .subquery()
    )
    storage, stored_files = session.execute(
        select(func.coalesce(func.sum(per_file.c.size), 0), func.count(per_file.c.path))
    ).one()
    by_slug = session.execute(
        select(Run.report_slug, func.count(Run.id), done, failed)
        .where(visible_runs(scope))
        .group_by(Run.report_slug)
        .order_by(func.count(Run.id).desc(), Run.report_slug)
    ).all()
    by_report = pd.DataFrame(
        {
            "report": [report_title(r[0]) for r in by_slug],
            "slug": [r[0] for r in by_slug],
            "runs": [int(r[1]) for r in by_slug],
            "completed": [int(r[2] or 0) for r in by_slug],
            "failed": [int(r[3] or 0) for r in by_slug],
        }
    )
    return Statistics(
        saved_reports=int(saved_total),
        active_saved_reports=int(saved_active),
        templates=int(templates),
        scheduled=count_schedules(session, scope),
        runs=int(runs),
        successes=int(successes or 0),
        failures=int(failures or 0),
        cached_runs=int(cached_runs or 0),
        storage_bytes=int(storage or 0),
        stored_files=int(stored_files or 0),
        by_report=by_report,
        recent=list_runs(session, scope, limit=recent),
    )
