"""Retention: stored run files older than their business's retention period are deleted in batches;
run rows stay, marked expired.

Each business's admin sets its own period (Business.retention_days); a business without one uses the
installation default, TALLYBOARD_RETENTION_DAYS (settings.retention_days), which only the operator sets.

A file that a pending or sending email still needs (the outbox row's window's run, or the run named
in its payload) is kept until that message is done. Cached runs share their source's files, which
keep the source's write time, so every row pointing at a path expires together; a path is removed
from disk through FileStore.remove once no live row refers to it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, and_, exists, select, update
from sqlalchemy.orm import Session

from core.clock import aware, utc_naive
from core.db import make_sessionmaker, session_scope
from core.models import Business, OutboxMessage, Run, RunFile, ScheduleRun
from core.settings import Settings
from reports.audit_log import record_event
from runs.files import FileStore, sweep_parts

WAITING = ("pending", "sending")


@dataclass(frozen=True)
class RetentionStats:
    """What one pass removed: files from disk, rows marked deleted, runs newly expired, bytes freed,
    and old files kept because an email still needs them."""

    files_removed: int
    rows_marked: int
    runs_expired: int
    bytes_freed: int
    kept_for_outbox: int


def retention_days(session: Session, settings: Settings, business_id: int | None = None) -> int:
    """A business's retention period in days: its own setting when set (a whole number >= 1), else the
    installation default (settings.retention_days; None asks for the default itself)."""
    if business_id is None:
        return settings.retention_days
    days = session.scalar(select(Business.retention_days).where(Business.id == business_id))
    if isinstance(days, int) and not isinstance(days, bool) and days >= 1:
        return days
    return settings.retention_days


def paths_in_use(session: Session) -> set[str]:
    """Stored paths that a pending or sending outbox message still needs."""
    runs: set[int] = set()
    for window_run, payload in session.execute(
        select(ScheduleRun.run_id, OutboxMessage.payload)
        .select_from(OutboxMessage)
        .outerjoin(ScheduleRun, ScheduleRun.id == OutboxMessage.schedule_run_id)
        .where(OutboxMessage.status.in_(WAITING))
    ).all():
        if window_run is not None:
            runs.add(int(window_run))
        named = payload.get("run_id") if isinstance(payload, dict) else None
        if isinstance(named, int) and not isinstance(named, bool):
            runs.add(named)
    if not runs:
        return set()
    found: set[str] = set()
    ids = sorted(runs)
    for i in range(0, len(ids), 500):
        found.update(session.scalars(select(RunFile.path).where(RunFile.run_id.in_(ids[i : i + 500]))).all())
    return found


def expire_files(
    engine: Engine,
    settings: Settings,
    files: FileStore,
    *,
    now: dt.datetime,
    batch_size: int | None = None,
    max_batches: int = 50,
) -> RetentionStats:
    """Delete files written before now - their business's retention days, `batch_size` paths per
    transaction (at most `max_batches` per business and pass).

    Each batch marks every RunFile row of its paths deleted and each run left without a live file
    expired (Run.expired_at; the status stays), commits, then removes the files from disk.
    """
    stamp = utc_naive(aware(now))
    size = batch_size or settings.retention_batch
    with make_sessionmaker(engine)() as s:
        cutoffs = {
            business_id: stamp - dt.timedelta(days=retention_days(s, settings, business_id))
            for business_id in s.scalars(select(Business.id).order_by(Business.id)).all()
        }
        in_use = paths_in_use(s)
    totals = [0, 0, 0, 0, 0]
    for business_id, cutoff in cutoffs.items():
        found = _expire_business(engine, files, business_id, cutoff, in_use, stamp, size, max_batches)
        totals = [a + b for a, b in zip(totals, found, strict=True)]
    return RetentionStats(*totals)


def _expire_business(
    engine: Engine,
    files: FileStore,
    business_id: int,
    cutoff: dt.datetime,
    in_use: set[str],
    stamp: dt.datetime,
    size: int,
    max_batches: int,
) -> tuple[int, int, int, int, int]:
    removed = marked = expired = freed = kept = 0
    after_id = 0
    for _ in range(max_batches):
        with session_scope(engine) as s:
            rows = s.execute(
                select(RunFile.id, RunFile.path, RunFile.bytes)
                .where(
                    RunFile.business_id == business_id,
                    RunFile.deleted_at.is_(None),
                    RunFile.created_at < cutoff,
                    RunFile.id > after_id,
                )
                .order_by(RunFile.id)
                .limit(size)
            ).all()
            if not rows:
                break
            after_id = rows[-1][0]
            sizes: dict[str, int] = {}
            for _id, path, nbytes in rows:
                if path in in_use:
                    kept += 1
                else:
                    sizes[path] = int(nbytes or 0)
            if not sizes:
                continue
            paths = list(sizes)
            run_ids = set(
                s.scalars(
                    select(RunFile.run_id).where(
                        RunFile.business_id == business_id,
                        RunFile.path.in_(paths),
                        RunFile.deleted_at.is_(None),
                    )
                ).all()
            )
            result = s.execute(
                update(RunFile)
                .where(
                    RunFile.business_id == business_id,
                    RunFile.path.in_(paths),
                    RunFile.deleted_at.is_(None),
                )
                .values(deleted_at=stamp)
                .execution_options(synchronize_session=False)
            )
            marked += int(getattr(result, "rowcount", 0) or 0)
            live = set(
                s.scalars(
                    select(RunFile.run_id).where(RunFile.run_id.in_(run_ids), RunFile.deleted_at.is_(None))
                ).all()
            )
            done = sorted(run_ids - live)
            if done:
                result = s.execute(
                    update(Run)
                    .where(Run.id.in_(done), Run.expired_at.is_(None))
                    .values(expired_at=stamp)
                    .execution_options(synchronize_session=False)
                )
                expired += int(getattr(result, "rowcount", 0) or 0)
        for path, nbytes in sizes.items():  # after the commit: a failed batch loses no file
            if files.remove(path):
                removed += 1
                freed += nbytes
    return removed, marked, expired, freed, kept


# --- leftovers of processes that died (kill -9, power loss) ---------------------------------------

UNFINISHED = ("pending", "running")
_IN_PROGRESS = ("claimed", "generating")  # scheduling.tick's window statuses of a claim at work


def interrupt_runs(
    engine: Engine,
    files: FileStore,
    *,
    now: dt.datetime,
    reason: str,
    schedule_id: int | None = None,
    scheduled: bool = True,
    started_before: dt.datetime | None = None,
    limit: int = 500,
) -> int:
    """Mark runs whose process died mid-generation failed with `reason` (starting "Interrupted:"),
    remove whatever files they wrote, and say how many. Scheduled runs count as dead when no window
    of their schedule is still being worked on under a live lease (of one schedule when
    `schedule_id` is given); other runs (builder, pages, CLI) when they started before `started_before`."""
    stamp = utc_naive(aware(now))
    live_window = exists().where(
        ScheduleRun.schedule_id == Run.schedule_id,
        ScheduleRun.status.in_(_IN_PROGRESS),
        ScheduleRun.lease_until >= stamp,
    )
    if scheduled:
        where = [Run.trigger == "schedule", ~live_window]
        if schedule_id is not None:
            where.append(Run.schedule_id == schedule_id)
    else:
        if started_before is None:
            return 0
        where = [Run.trigger != "schedule", Run.created_at < utc_naive(aware(started_before))]
    with session_scope(engine) as s:
        rows = s.execute(
            select(Run.id, Run.business_id, Run.username)
            .where(Run.status.in_(UNFINISHED), and_(*where))
            .order_by(Run.id)
            .limit(limit)
        ).all()
        done: list[tuple[int, int]] = []
        for run_id, business_id, username in rows:
            result = s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status.in_(UNFINISHED))
                .values(status="failed", error=reason[:2000], finished_at=stamp, rows=0, bytes=0)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                continue
            record_event(
                s,
                business_id,
                "report_interrupted",
                user=username or "scheduler",
                entity="run",
                entity_id=str(run_id),
                detail={"error": reason[:500]},
                at=stamp,
            )
            done.append((run_id, business_id))
    for run_id, business_id in done:  # after the commit: the files of a run marked failed
        files.remove_run_folder(business_id, run_id)
    return len(done)


@dataclass(frozen=True)
class SweepStats:
    """What one sweep of leftovers found: runs marked interrupted, stray temporary files removed."""

    runs_interrupted: int
    parts_removed: int


def sweep_leftovers(engine: Engine, settings: Settings, files: FileStore, *, now: dt.datetime) -> SweepStats:
    """The daemon's sweep after crashes: runs left 'running' by a scheduler that died (no live lease
    on their window) or by a web app or command gone for longer than twice the working timeout
    are marked failed "Interrupted: ..."; temporary `.part` files older than the lease (a write
    killed half-way) are deleted from the reports and outbox folders."""
    scheduled = interrupt_runs(
        engine,
        files,
        now=now,
        reason="Interrupted: the scheduler generating this report stopped before it finished "
        "(its lease ran out); the window is generated again or recorded as failed.",
    )
    patience = dt.timedelta(seconds=max(2 * settings.work_timeout_minutes * 60, settings.lease_seconds, 60))
    others = interrupt_runs(
        engine,
        files,
        now=now,
        scheduled=False,
        started_before=utc_naive(aware(now)) - patience,
        reason="Interrupted: the program generating this report (the web app or a command) stopped "
        "before it finished. Generate it again.",
    )
    age = max(settings.lease_seconds, 1)
    parts = sweep_parts(files.root, older_than_s=age) + sweep_parts(settings.outbox_dir, older_than_s=age)
    return SweepStats(scheduled + others, parts)
