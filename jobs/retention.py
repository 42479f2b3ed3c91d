"""Retention: stored run files older than the retention period are deleted in batches; run rows stay, marked expired.

A file that a pending or sending email still needs (the outbox row's window's run, or the run named
in its payload) is kept until that message is done. Cached runs share their source's files, which
keep the source's write time, so every row pointing at a path expires together; a path is removed
from disk through FileStore.remove once no live row refers to it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from analytics.db import make_sessionmaker, session_scope
from analytics.models import AppSetting, OutboxMessage, Run, RunFile, ScheduleRun
from analytics.settings import Settings
from jobs.clock import aware, utc_naive
from jobs.files import FileStore

RETENTION_KEY = "retention_days"  # the Admin AppSetting that overrides settings.retention_days
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


def retention_days(session: Session, settings: Settings) -> int:
    """The retention period in days: the Admin setting when set to a whole number >= 1, else settings."""
    value = session.scalar(select(AppSetting.value).where(AppSetting.key == RETENTION_KEY))
    if isinstance(value, bool):
        return settings.retention_days
    if isinstance(value, int | float | str):
        try:
            days = int(value)
        except ValueError:
            return settings.retention_days
        if days >= 1:
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
    """Delete files written before now - retention days, `batch_size` paths per transaction.

    Each batch marks every RunFile row of its paths deleted and each run left without a live file
    expired (Run.expired_at; the status stays), commits, then removes the files from disk.
    """
    stamp = utc_naive(aware(now))
    size = batch_size or settings.retention_batch
    with make_sessionmaker(engine)() as s:
        cutoff = stamp - dt.timedelta(days=retention_days(s, settings))
        in_use = paths_in_use(s)
    removed = marked = expired = freed = kept = 0
    after_id = 0
    for _ in range(max_batches):
        with session_scope(engine) as s:
            rows = s.execute(
                select(RunFile.id, RunFile.path, RunFile.bytes)
                .where(RunFile.deleted_at.is_(None), RunFile.created_at < cutoff, RunFile.id > after_id)
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
                    select(RunFile.run_id).where(RunFile.path.in_(paths), RunFile.deleted_at.is_(None))
                ).all()
            )
            result = s.execute(
                update(RunFile)
                .where(RunFile.path.in_(paths), RunFile.deleted_at.is_(None))
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
    return RetentionStats(removed, marked, expired, freed, kept)
