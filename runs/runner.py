"""Runs: every generation of a report — cache, per-user rate limit, progress, stored files, audit.

`generate_run` is the one way the builder, the history page's re-run, the CLI and the scheduler
daemon produce report files. It commits the session as it goes (pending → running → completed or
failed), so other processes see a long run while it works.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from analytics.periods import Period
from analytics.report import ParamError, Report, ReportParams, Scope
from core.clock import aware, local, utc_naive
from core.errors import Forbidden, Invalid, TallyboardError, TooManyRequests
from core.models import Business, Run, RunFile
from core.settings import Settings
from exporters import EXPORTERS, file_name
from reports.audit_log import record_event
from reports.registry import REGISTRY, NotFound, definition, generate
from runs.access import check_run_references, report_allowed
from runs.failures import explain
from runs.files import FileInfo, FileStore, file_info, format_label
from snapshots.store import SnapshotStore

log = logging.getLogger(__name__)

Trigger = Literal["builder", "page", "schedule", "cli", "api"]
TRIGGERS: tuple[str, ...] = ("builder", "page", "schedule", "cli", "api")
# How History and Statistics name what started a run.
TRIGGER_LABELS: dict[str, str] = {
    "builder": "Report builder",
    "page": "Report page",
    "schedule": "Schedule",
    "cli": "Command line",
    "api": "API",
}
# Generations a person starts (web app, API) count against their hourly limit; schedules and the CLI do not.
RATE_LIMITED_TRIGGERS: tuple[str, ...] = ("builder", "page", "api")
# The command line writes the report it builds now, whatever the cache holds, so its runs are never
# served from the cache (their stored files serve later runs like any other's).
UNCACHED_TRIGGERS: tuple[str, ...] = ("cli",)
STATUSES: tuple[str, ...] = ("pending", "running", "completed", "failed")

# progress(done_steps, total_steps, what_is_happening): one step to build the report, one per file.
Progress = Callable[[int, int, str], None]


class RateLimited(TooManyRequests):
    """The user reached the hourly generation limit; the message says when to try again
    (`retry_at`, naive UTC; `retry_after`, seconds from the refused request)."""

    def __init__(self, message: str, retry_at: dt.datetime, *, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_at = retry_at


@dataclass(frozen=True)
class RunOutcome:
    """What a generation produced. `report` is the Report object when it was built (None when cached or failed)."""

    run_id: int
    status: str
    cached: bool
    source_run_id: int | None
    rows: int
    bytes: int
    duration_s: float
    error: str
    files: tuple[FileInfo, ...]
    finished_at: dt.datetime | None
    report: Report | None = None
    passing: bool = False  # failed for a reason that may pass (disk full, database away): worth a retry
    # The kind of refusal it failed with (Invalid, NotFound, Forbidden, ...); None for any other failure.
    kind: type[TallyboardError] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "completed"


def check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    """The formats in the order given, once each; ParamError for none or an unknown one."""
    chosen = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    if not chosen:
        raise ParamError("Choose at least one file format.")
    unknown = [f for f in chosen if f not in EXPORTERS]
    if unknown:
        raise ParamError(f"Unknown format {unknown[0]!r}; available: {', '.join(EXPORTERS)}.")
    return chosen


def cache_key(
    business_id: int, slug: str, params: ReportParams, formats: Sequence[str], data_token: str
) -> str:
    """SHA-256 of what a run's files depend on: report, parameters with the period resolved to
    dates (so 'last_month' and its explicit dates share files), the set of formats and the data
    token (random per committed import: a restored backup never matches files of later data).
    A relative period whose name changes what it is compared with keeps the name (quarter to date
    1 Oct – 15 Nov compares with 1 Jul – 15 Aug, the same explicit dates with 1 Aug – 15 Sep).

    Raises Invalid for an unknown report (ParamError) or a bad period (PeriodError).
    """
    period = params.resolve_period(definition(slug).default_period)
    doc = params.to_dict()
    doc.pop("period", None)
    if period.previous() != Period(period.start, period.end).previous():
        doc["period"] = period.name
    doc["start"], doc["end"] = period.start.isoformat(), period.end.isoformat()
    if "filters" in doc:  # the order of a filter's values does not change the result
        doc["filters"] = {k: sorted(v) for k, v in doc["filters"].items()}
    payload = {
        "business": business_id,
        "report": slug,
        "parameters": doc,
        "formats": sorted(formats),
        "data_token": data_token,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def generate_run(
    session: Session,
    store: SnapshotStore,
    files: FileStore,
    settings: Settings,
    scope: Scope,
    user_id: int | None,
    slug: str,
    params: ReportParams,
    formats: Sequence[str],
    *,
    trigger: Trigger = "builder",
    saved_report_id: int | None = None,
    schedule_id: int | None = None,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> RunOutcome:
    """Generate report `slug` into one stored file per format, recorded as a run of `scope`'s business.

    Raises ParamError for no or unknown formats, RateLimited when the user is over the hourly
    limit, and NotFound (audited) for a user, saved report or schedule of another business (all
    before any run row exists). Everything else — a bad parameter, an unknown report,
    a file over the size limit, a failing exporter — ends as a failed run whose `error` says what to
    do. An identical completed run (same cache key) over unchanged data within
    `settings.cache_hours` whose files are still stored is reused: a new cached run pointing at the
    same files (never for the command line: UNCACHED_TRIGGERS). `now` (default: the clock) pins the
    run times, the windows and params.now.
    """
    chosen = check_formats(formats)
    instant = aware(now)
    stamp = utc_naive(instant)
    if params.now is None:
        params = dataclasses.replace(params, now=instant)
    notify = progress or _no_progress
    started = time.perf_counter()
    business = session.get(Business, scope.business_id)
    if business is None:
        raise NotFound("No such business.")
    check_run_references(session, scope, user_id, saved_report_id, schedule_id)
    # Read afresh (not from the session's identity map): the token decides which cached files match.
    data_version, data_token = session.execute(
        select(Business.data_version, Business.data_token).where(Business.id == scope.business_id)
    ).one()
    data_version = int(data_version or 0)
    run = Run(
        business_id=scope.business_id,
        report_slug=slug[:60],
        parameters=params.to_dict(),
        formats=",".join(chosen),
        data_version=data_version,
        status="pending",
        user_id=user_id,
        username=scope.user[:80],
        saved_report_id=saved_report_id,
        schedule_id=schedule_id,
        trigger=trigger,
        created_at=stamp,
    )
    if not report_allowed(scope, slug):
        return _fail_early(session, run, f"Your role cannot generate the {slug!r} report.", stamp, Forbidden)
    try:
        key = cache_key(scope.business_id, slug, params, chosen, data_token)
    except Invalid as exc:  # an unknown report, a bad period
        return _fail_early(session, run, str(exc), stamp, type(exc))
    run.cache_key = key
    defn = REGISTRY.get(slug)
    # A live report reads outside the data version: never cached.
    if defn is not None and not defn.live and trigger not in UNCACHED_TRIGGERS:
        source = _reusable_run(session, files, scope.business_id, key, chosen, stamp, settings.cache_hours)
        if source is not None:
            return _reuse(session, run, source, stamp, started, notify)
    if trigger in RATE_LIMITED_TRIGGERS:
        _check_rate_limit(session, settings, user_id, stamp, business.timezone)
    session.add(run)
    session.commit()
    return _produce(
        session,
        store,
        files,
        settings.max_file_bytes,
        scope,
        run,
        slug,
        params,
        chosen,
        stamp,
        started,
        notify,
    )


def _no_progress(done: int, total: int, label: str) -> None:
    return None


def _fail_early(
    session: Session, run: Run, error: str, stamp: dt.datetime, kind: type[TallyboardError]
) -> RunOutcome:
    """A request that failed before any work (unknown report, bad period): a failed run, no files."""
    run.status, run.error, run.started_at, run.finished_at = "failed", error, stamp, stamp
    session.add(run)
    session.flush()
    _audit(session, run, "report_failed")
    session.commit()
    return dataclasses.replace(_outcome(run, []), kind=kind)


def _limited_run_times(session: Session, user_id: int, stamp: dt.datetime) -> list[dt.datetime]:
    """Creation times of the user's runs in the hour up to `stamp` that count against the limit."""
    return list(
        session.scalars(
            select(Run.created_at)
            .where(
                Run.user_id == user_id,
                Run.trigger.in_(RATE_LIMITED_TRIGGERS),
                Run.cached.is_(False),
                Run.created_at > stamp - dt.timedelta(hours=1),
                Run.created_at <= stamp,
            )
            .order_by(Run.created_at)
        ).all()
    )


def _check_rate_limit(
    session: Session, settings: Settings, user_id: int | None, stamp: dt.datetime, tz: str
) -> None:
    limit = settings.rate_limit_per_hour
    if user_id is None or limit <= 0:
        return
    times = _limited_run_times(session, user_id, stamp)
    if len(times) < limit:
        return
    # A slot frees when enough of the oldest runs leave the one-hour window.
    retry_at = times[len(times) - limit] + dt.timedelta(hours=1)
    shown = local(retry_at, tz)
    assert shown is not None
    raise RateLimited(
        f"You have generated {len(times)} report{'' if len(times) == 1 else 's'} in the last hour; "
        f"the limit is {limit}. "
        f"Try again at {shown:%H:%M}.",
        retry_at,
        retry_after=(retry_at - stamp).total_seconds(),
    )


def _reusable_run(
    session: Session,
    files: FileStore,
    business_id: int,
    key: str,
    formats: Sequence[str],
    stamp: dt.datetime,
    cache_hours: int,
) -> Run | None:
    """The newest completed run with `key` whose files were written within the window and are all still stored."""
    if cache_hours <= 0:
        return None
    cutoff = stamp - dt.timedelta(hours=cache_hours)
    candidates = session.scalars(
        select(Run)
        .where(
            Run.business_id == business_id,
            Run.cache_key == key,
            Run.status == "completed",
            Run.created_at <= stamp,
        )
        .order_by(Run.id.desc())
        .limit(5)
    ).all()
    for candidate in candidates:
        stored = session.scalars(select(RunFile).where(RunFile.run_id == candidate.id)).all()
        if sorted(f.fmt for f in stored) != sorted(formats):
            continue
        if any(f.deleted_at is not None or f.created_at < cutoff or f.created_at > stamp for f in stored):
            continue
        if all(files.exists(f.path, int(f.bytes)) for f in stored):
            return candidate
    return None


def _reuse(
    session: Session, run: Run, source: Run, stamp: dt.datetime, started: float, notify: Progress
) -> RunOutcome:
    notify(0, 1, "Found an identical report generated earlier")
    original = source.source_run_id if source.cached and source.source_run_id else source.id
    run.status, run.cached, run.source_run_id = "completed", True, original
    run.rows, run.bytes = source.rows, source.bytes
    elapsed = time.perf_counter() - started
    run.duration_s = round(elapsed, 3)
    run.started_at, run.finished_at = stamp, stamp + dt.timedelta(seconds=elapsed)
    session.add(run)
    session.flush()
    copies = []
    for f in session.scalars(select(RunFile).where(RunFile.run_id == source.id).order_by(RunFile.id)).all():
        # created_at stays the file's own write time: the cache window runs from it.
        copy = RunFile(
            run_id=run.id,
            business_id=run.business_id,
            fmt=f.fmt,
            file_name=f.file_name,
            path=f.path,
            mime=f.mime,
            bytes=f.bytes,
            sha256=f.sha256,
            created_at=f.created_at,
        )
        session.add(copy)
        copies.append(copy)
    session.flush()
    _audit(session, run, "report_generated")
    session.commit()
    notify(1, 1, "Reused the stored files (cached)")
    return _outcome(run, copies)


def _produce(
    session: Session,
    store: SnapshotStore,
    files: FileStore,
    max_bytes: int,
    scope: Scope,
    run: Run,
    slug: str,
    params: ReportParams,
    formats: Sequence[str],
    stamp: dt.datetime,
    started: float,
    notify: Progress,
) -> RunOutcome:
    total = 1 + len(formats)
    run_id, business_id = run.id, run.business_id
    try:
        run.status, run.started_at = "running", stamp
        session.commit()
        notify(0, total, "Building the report")
        report = generate(session, store, scope, slug, params, now=stamp)
        rows = sum(t.row_count for t in report.tables.values())
        written: list[RunFile] = []
        for step, fmt in enumerate(formats, start=1):
            exporter = EXPORTERS[fmt]
            label = format_label(fmt)
            notify(step, total, f"Writing the {label} file")
            stored = files.write(
                run.business_id,
                run_id,
                file_name(report, fmt),
                functools.partial(exporter.write, report),
                max_bytes=max_bytes,
                label=label,
            )
            written.append(
                RunFile(
                    run_id=run_id,
                    business_id=run.business_id,
                    fmt=fmt,
                    file_name=stored.path.rsplit("/", 1)[-1],
                    path=stored.path,
                    mime=exporter.mime_for(report),
                    bytes=stored.bytes,
                    sha256=stored.sha256,
                    created_at=stamp,
                )
            )
        elapsed = time.perf_counter() - started
        run.status, run.rows, run.bytes = "completed", rows, sum(int(f.bytes) for f in written)
        run.duration_s, run.finished_at = round(elapsed, 3), stamp + dt.timedelta(seconds=elapsed)
        session.add_all(written)
        session.flush()
        _audit(session, run, "report_generated")
        session.commit()
    except Exception as exc:
        message = _user_message(exc)
        if not isinstance(exc, Invalid | NotFound):  # a bad parameter or period, a file too large
            log.exception("run %s (%s) failed", run_id, slug)
        outcome = _record_failure(session, files, business_id, run_id, message, stamp, started)
        kind = type(exc) if isinstance(exc, TallyboardError) else None
        return dataclasses.replace(outcome, passing=explain(exc).passing, kind=kind)
    except BaseException:
        _record_failure(
            session, files, business_id, run_id, "The generation was interrupted. Try again.", stamp, started
        )
        raise
    notify(total, total, "Done")
    outcome = _outcome(run, written)
    return dataclasses.replace(outcome, report=report)


def _user_message(exc: Exception) -> str:
    if isinstance(exc, Invalid | NotFound):
        return str(exc)
    return f"{explain(exc).text} Try again; if it keeps failing, tell your administrator."


def _record_failure(
    session: Session,
    files: FileStore,
    business_id: int,
    run_id: int,
    message: str,
    stamp: dt.datetime,
    started: float,
) -> RunOutcome:
    session.rollback()
    files.remove_run_folder(business_id, run_id)
    run = session.get(Run, run_id)
    if run is None:  # deleted from History while it was generating
        gone = "The run was deleted while it was being generated."
        return RunOutcome(run_id, "failed", False, None, 0, 0, 0.0, gone, (), None)
    session.execute(delete(RunFile).where(RunFile.run_id == run_id))
    elapsed = time.perf_counter() - started
    run.status, run.error = "failed", message
    run.rows, run.bytes = 0, 0
    run.duration_s, run.finished_at = round(elapsed, 3), stamp + dt.timedelta(seconds=elapsed)
    run.started_at = run.started_at or stamp
    _audit(session, run, "report_failed")
    session.commit()
    return _outcome(run, [])


def _audit(session: Session, run: Run, event_type: str) -> None:
    detail: dict[str, Any] = {
        "report": run.report_slug,
        "formats": run.formats,
        "trigger": run.trigger,
        "status": run.status,
        "cached": run.cached,
        "rows": run.rows,
        "bytes": run.bytes,
    }
    if run.error:
        detail["error"] = run.error
    if run.schedule_id is not None:
        detail["schedule_id"] = run.schedule_id
    record_event(
        session,
        run.business_id,
        event_type,
        user=run.username,
        entity="run",
        entity_id=str(run.id),
        detail=detail,
        at=run.finished_at or run.created_at,
    )


def _outcome(run: Run, stored: Sequence[RunFile]) -> RunOutcome:
    return RunOutcome(
        run_id=run.id,
        status=run.status,
        cached=run.cached,
        source_run_id=run.source_run_id,
        rows=int(run.rows or 0),
        bytes=int(run.bytes or 0),
        duration_s=float(run.duration_s or 0),
        error=run.error or "",
        files=tuple(file_info(f) for f in stored),
        finished_at=run.finished_at,
    )


def generations_used(session: Session, user_id: int, *, now: dt.datetime | None = None) -> int:
    """How many of the hourly rate-limited generations the user has used in the hour before `now`."""
    return len(_limited_run_times(session, user_id, utc_naive(aware(now))))
