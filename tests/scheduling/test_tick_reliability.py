"""process_due on a real database, issue 9: passing failures retried within the grace period, the
words for why a generation failed, missed windows that say what happened, overlapping windows."""

from __future__ import annotations

import datetime as dt
import errno
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

import mail.delivery as delivery
from core.models import ScheduleRun
from runs.failures import explain
from runs.files import FileStore
from scheduling.tick import Outbox, process_due
from tests.scheduling.test_tick import DUE, make_schedule, messages, quiet_database, windows  # noqa: F401
from tests.tenants import Jobs, Tenant

OUTBOX = cast(Outbox, delivery)


@pytest.fixture
def owned(jobs: Jobs, tenant: Tenant) -> Tenant:
    from core.models import User

    with jobs.session() as s:
        s.execute(update(User).where(User.id == tenant.user_id("manager")).values(email="owner@example.com"))
        s.commit()
    return tenant


def tick(jobs: Jobs, now: dt.datetime, **settings: Any) -> Any:
    cfg = jobs.settings.with_changes(**settings) if settings else jobs.settings
    return process_due(jobs.engine, cfg, jobs.store, jobs.files, now=now, daemon_id="d1", outbox=OUTBOX)


@pytest.fixture
def blocked_reports(jobs: Jobs, owned: Tenant) -> Iterator[Path]:
    """A file where the business's reports folder belongs: every report file write fails (OSError)."""
    files: FileStore = jobs.files
    blocker = files.absolute(files.relative_path(owned.business_id, 1, "x.json")).parent.parent
    if blocker.exists():
        shutil.rmtree(blocker)
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    yield blocker
    if blocker.is_file():
        blocker.unlink()


# --- item 5: passing failures ----------------------------------------------------------------------


def test_a_passing_failure_waits_and_is_retried_with_backoff_then_succeeds(
    jobs: Jobs, owned: Tenant, blocked_reports: Path
) -> None:
    sid = make_schedule(jobs, owned)
    first = tick(jobs, DUE, generation_retry_s=60)
    assert (first.claimed, first.retrying, first.failed) == (1, 1, 0)
    [window] = windows(jobs, sid)
    assert (window.status, window.retries, window.claimed_by) == ("retrying", 1, "")
    assert window.retry_at is not None
    assert DUE + dt.timedelta(seconds=60) <= window.retry_at < DUE + dt.timedelta(seconds=70)
    assert window.error.startswith("Attempt 1 failed: A file could not be written or read (Not a directory")
    assert messages(jobs, sid) == []  # nobody told, nothing sent
    assert tick(jobs, DUE + dt.timedelta(seconds=30), generation_retry_s=60).claimed == 0  # not yet

    second = tick(jobs, window.retry_at, generation_retry_s=60)  # still blocked: the backoff doubles
    assert (second.claimed, second.retrying) == (1, 1)
    [window] = windows(jobs, sid)
    assert window.retries == 2 and window.retry_at is not None
    assert window.retry_at >= DUE + dt.timedelta(seconds=60 + 120)

    blocked_reports.unlink()
    third = tick(jobs, window.retry_at, generation_retry_s=60)
    assert third.queued == 1
    [window] = windows(jobs, sid)
    assert (window.status, window.attempts, window.retries, window.error) == ("queued", 3, 2, "")
    assert [m.kind for m in messages(jobs, sid)] == ["report", "report"]


def test_a_passing_failure_with_no_retry_left_in_the_grace_period_fails_and_says_why(
    jobs: Jobs, owned: Tenant, blocked_reports: Path
) -> None:
    sid = make_schedule(jobs, owned)
    stats = tick(jobs, DUE, generation_retry_s=600, grace_hours=0.1)  # a retry in 10 min: beyond 6 min
    assert (stats.failed, stats.retrying) == (1, 0)
    [window] = windows(jobs, sid)
    assert window.status == "failed"
    assert window.error.startswith("A file could not be written or read (Not a directory")
    assert "Tried once; no further attempt fits in the 0.1 h grace period" in window.error
    assert [m.kind for m in messages(jobs, sid)] == ["failure_notice"]


def test_a_dead_daemons_claim_is_still_taken_over_after_retries(jobs: Jobs, owned: Tenant) -> None:
    sid = make_schedule(jobs, owned)
    with jobs.session() as s:  # two passing failures, then the daemon of the third attempt died
        s.add(
            ScheduleRun(
                schedule_id=sid,
                business_id=owned.business_id,
                due_at=DUE,
                status="generating",
                claimed_by="dead",
                lease_until=DUE + dt.timedelta(minutes=1),
                attempts=3,
                retries=2,
            )
        )
        s.commit()
    stats = tick(jobs, DUE + dt.timedelta(minutes=2))
    assert (stats.taken_over, stats.queued) == (1, 1)


def test_failures_are_explained_in_words() -> None:
    with pytest.raises(OSError) as full, open("/dev/full", "wb") as device:
        device.write(b"x" * 65536)
        device.flush()
    assert full.value.errno == errno.ENOSPC
    assert explain(full.value).passing and explain(full.value).text.startswith("The disk is full")
    down = OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))
    assert explain(down).passing
    assert explain(down).text == "The database could not be reached or was busy (connection refused)."
    changed = RuntimeError("The data changed while this export was being written; generate the report again.")
    assert explain(changed).passing and "an import finished meanwhile" in explain(changed).text
    bug = KeyError("revenue")
    assert (
        not explain(bug).passing
        and explain(bug).text == "The report could not be generated (KeyError: 'revenue')."
    )


# --- item 10: what a missed window says ------------------------------------------------------------


def test_a_missed_window_minutes_old_says_it_was_overtaken_not_six_hours(jobs: Jobs, owned: Tenant) -> None:
    sid = make_schedule(jobs, owned, rule_kind="cron", rule={"expr": "* * * * *"})
    stats = tick(jobs, DUE + dt.timedelta(minutes=3, seconds=10))  # down from 07:59 to 08:03
    assert (stats.missed, stats.queued) == (3, 1)
    missed = [w for w in windows(jobs, sid) if w.status == "missed"]
    assert [w.due_at for w in missed] == [DUE + dt.timedelta(minutes=m) for m in range(3)]
    assert missed[0].error == (
        "Missed: the scheduler was not running (or was busy) at 2025-02-10 08:00 UTC; by the time it got "
        "to this schedule the next window (2025-02-10 08:03 UTC) was already due, and only the newest "
        "window runs."
    )
    assert all("6 h" not in w.error for w in missed)


def test_a_missed_window_beyond_grace_says_so(jobs: Jobs, owned: Tenant) -> None:
    sid = make_schedule(jobs, owned, timezone="Europe/Berlin", rule={"time": "09:00"})
    tick(jobs, DUE + dt.timedelta(hours=8))
    [window] = windows(jobs, sid)
    assert window.error == (
        "Missed: the scheduler was not running at 2025-02-10 09:00 CET nor within the 6 h grace period "
        "after it, so this window was not run."
    )
