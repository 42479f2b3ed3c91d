"""Retention: old run files deleted in batches, run rows kept and marked expired, files pending email kept."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from analytics.report import ReportParams
from core.models import OutboxMessage, Run, RunFile, Schedule, ScheduleRun
from runs.files import FileGone
from runs.retention import expire_files
from runs.runner import RunOutcome
from scheduling.summary import set_retention_days
from tests.tenants import Jobs, Tenant

# Runs written in early 2020 (far before every other test's runs, which the pass also sees).
OLD = dt.datetime(2020, 1, 1, 9, 0, tzinfo=dt.UTC)
NEW = dt.datetime(2020, 2, 14, 9, 0, tzinfo=dt.UTC)
NOW = dt.datetime(2020, 2, 15, 9, 0, tzinfo=dt.UTC)  # 30 days back: 16 January
JANUARY = ReportParams.from_mapping({"start": "2025-01-01", "end": "2025-01-31"})


def run_at(jobs: Jobs, tenant: Tenant, when: dt.datetime, **kwargs: object) -> RunOutcome:
    out = jobs.generate(tenant, params=kwargs.pop("params", JANUARY), now=when, **kwargs)  # type: ignore[arg-type]
    assert out.ok
    return out


def state(jobs: Jobs, run_id: int) -> tuple[str, dt.datetime | None, list[dt.datetime | None]]:
    with jobs.session() as s:
        run = s.get(Run, run_id)
        assert run is not None
        marks = list(s.scalars(select(RunFile.deleted_at).where(RunFile.run_id == run_id)))
        return run.status, run.expired_at, marks


def on_disk(jobs: Jobs, run_id: int) -> list[bool]:
    with jobs.session() as s:
        paths = s.scalars(select(RunFile.path).where(RunFile.run_id == run_id)).all()
    return [jobs.files.exists(p) for p in paths]


def test_old_files_go_and_their_runs_are_marked_expired(jobs: Jobs, tenant: Tenant) -> None:
    old = run_at(jobs, tenant, OLD, formats=("json", "csv"))
    new = run_at(
        jobs, tenant, NEW, params=ReportParams.from_mapping({"start": "2025-02-01", "end": "2025-02-28"})
    )
    assert on_disk(jobs, old.run_id) == [True, True]

    stats = expire_files(jobs.engine, jobs.settings, jobs.files, now=NOW)

    assert stats.files_removed >= 2 and stats.runs_expired >= 1 and stats.bytes_freed >= old.bytes
    status, expired_at, marks = state(jobs, old.run_id)
    assert status == "completed" and expired_at == NOW.replace(tzinfo=None)
    assert marks == [NOW.replace(tzinfo=None)] * 2
    assert on_disk(jobs, old.run_id) == [False, False]
    assert state(jobs, new.run_id) == ("completed", None, [None])
    assert on_disk(jobs, new.run_id) == [True]
    # the download path says the file is gone, not "no such file"
    with jobs.session() as s:
        file_id = s.scalars(select(RunFile.id).where(RunFile.run_id == old.run_id)).first()
        assert file_id is not None
        with pytest.raises(FileGone, match="no longer stored"):
            jobs.files.find(s, tenant.scope("admin"), file_id)
    # a second pass finds nothing more of these
    again = expire_files(jobs.engine, jobs.settings, jobs.files, now=NOW)
    assert again.files_removed == 0 and state(jobs, old.run_id)[1] == NOW.replace(tzinfo=None)


def test_a_cached_copy_and_its_source_expire_together(jobs: Jobs, tenant: Tenant) -> None:
    source = run_at(jobs, tenant, OLD)
    copy = run_at(jobs, tenant, OLD + dt.timedelta(hours=1))
    assert copy.cached and copy.source_run_id == source.run_id
    expire_files(jobs.engine, jobs.settings, jobs.files, now=NOW)
    for run_id in (source.run_id, copy.run_id):
        status, expired_at, marks = state(jobs, run_id)
        assert status == "completed" and expired_at is not None and None not in marks
    assert on_disk(jobs, source.run_id) == [False]


def _pending_email(jobs: Jobs, tenant: Tenant, run_id: int, *, via: str, status: str = "pending") -> int:
    with jobs.session() as s:
        schedule = Schedule(
            business_id=tenant.business_id, name="r", report_slug="sales_summary", rule_kind="daily", rule={}
        )
        s.add(schedule)
        s.flush()
        window = ScheduleRun(
            schedule_id=schedule.id,
            business_id=tenant.business_id,
            due_at=OLD.replace(tzinfo=None),
            status="queued",
            run_id=run_id if via == "window" else None,
        )
        s.add(window)
        s.flush()
        message = OutboxMessage(
            business_id=tenant.business_id,
            schedule_run_id=window.id,
            recipient="a@example.com",
            message_id=f"<keep.{window.id}.{via}@test>",
            status=status,
            payload={"run_id": run_id} if via == "payload" else {},
        )
        s.add(message)
        s.commit()
        return message.id


@pytest.mark.parametrize("via", ["window", "payload"])
def test_a_file_a_pending_email_needs_is_kept_until_it_is_sent(jobs: Jobs, tenant: Tenant, via: str) -> None:
    out = run_at(jobs, tenant, OLD, formats=("csv",))
    message_id = _pending_email(jobs, tenant, out.run_id, via=via)

    stats = expire_files(jobs.engine, jobs.settings, jobs.files, now=NOW)
    assert stats.kept_for_outbox >= 1
    assert state(jobs, out.run_id) == ("completed", None, [None]) and on_disk(jobs, out.run_id) == [True]

    with jobs.session() as s:
        message = s.get(OutboxMessage, message_id)
        assert message is not None
        message.status = "sent"
        s.commit()
    expire_files(jobs.engine, jobs.settings, jobs.files, now=NOW)
    assert state(jobs, out.run_id)[1] is not None and on_disk(jobs, out.run_id) == [False]


def test_the_business_setting_overrides_the_retention_period(
    jobs: Jobs, tenant: Tenant, other: Tenant
) -> None:
    recent = run_at(jobs, tenant, NOW - dt.timedelta(days=10))
    theirs = run_at(jobs, other, NOW - dt.timedelta(days=10))
    expire_files(jobs.engine, jobs.settings, jobs.files, now=NOW)
    assert on_disk(jobs, recent.run_id) == [True]
    with jobs.session() as s:
        set_retention_days(s, tenant.scope("admin"), 7)
    expire_files(jobs.engine, jobs.settings, jobs.files, now=NOW)
    assert on_disk(jobs, recent.run_id) == [False]
    assert on_disk(jobs, theirs.run_id) == [True]  # another business keeps the default


def test_small_batches_get_through_everything(jobs: Jobs, tenant: Tenant) -> None:
    months = [("2025-01-01", "2025-01-31"), ("2025-02-01", "2025-02-28"), ("2025-03-01", "2025-03-31")]
    outs = [
        run_at(jobs, tenant, OLD, params=ReportParams.from_mapping({"start": a, "end": b})) for a, b in months
    ]
    expire_files(jobs.engine, jobs.settings, jobs.files, now=NOW, batch_size=1)
    for out in outs:
        assert state(jobs, out.run_id)[1] is not None and on_disk(jobs, out.run_id) == [False]
