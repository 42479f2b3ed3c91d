"""process_due on a real database: claims exactly once, downtime and grace, DST, leases, failures, shutdown."""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any, cast

import pytest
from sqlalchemy import func, select, update

import mail.delivery as delivery
from core.models import AuditEvent, OutboxMessage, Run, Schedule, ScheduleRun, User
from scheduling.schedules import ScheduleSpec, create_schedule, run_now
from scheduling.tick import Outbox, Shutdown, StopSignal, TickStats, process_due
from tests.scheduling.held_snapshot import HeldSnapshot
from tests.tenants import Jobs, Tenant, park_leftover_work

# The tiny example has sales from December 2024 to April 2025: "last month" on 10 Feb 2025 is January.
DUE = dt.datetime(2025, 2, 10, 8, 0)
OWNER_EMAIL = "owner@example.com"


@pytest.fixture
def outbox() -> Outbox:
    """The real outbox (mail.delivery), passed the way a test could pass another."""
    return cast(Outbox, delivery)


@pytest.fixture(autouse=True)
def quiet_database(jobs: Jobs) -> None:
    """The daemon serves every business in the database: park what earlier tests left behind."""
    park_leftover_work(jobs, outbox=False)


@pytest.fixture
def owned(jobs: Jobs, tenant: Tenant) -> Tenant:
    """The tenant, its manager (who owns the schedules) with an e-mail address for failure notices."""
    with jobs.session() as s:
        s.execute(update(User).where(User.id == tenant.user_id("manager")).values(email=OWNER_EMAIL))
        s.commit()
    return tenant


def make_schedule(jobs: Jobs, tenant: Tenant, first_due: dt.datetime = DUE, **changes: Any) -> int:
    """A schedule whose next window is `first_due` (created a minute before it)."""
    fields: dict[str, Any] = {
        "report_slug": "sales_summary",
        "rule_kind": "daily",
        "rule": {"time": first_due.strftime("%H:%M")},
        "recipients": ("a@example.com", "b@example.com"),
        "formats": ("json",),
        "timezone": "UTC",
        "period": "last_month",
        "subject": "{report} for {period} at {business}",
        "message": "Hello from {business}.",
    }
    fields.update(changes)
    with jobs.session() as s:
        info = create_schedule(
            s, tenant.scope("manager"), ScheduleSpec(**fields), now=first_due - dt.timedelta(minutes=1)
        )
    if info.next_due_at != first_due:
        with jobs.session() as s:
            s.execute(update(Schedule).where(Schedule.id == info.id).values(next_due_at=first_due))
            s.commit()
    return info.id


def tick(
    jobs: Jobs,
    now: dt.datetime,
    outbox: Outbox,
    daemon: str = "d1",
    stop: StopSignal | None = None,
    **settings: Any,
) -> TickStats:
    cfg = jobs.settings.with_changes(**settings) if settings else jobs.settings
    return process_due(
        jobs.engine, cfg, jobs.store, jobs.files, now=now, daemon_id=daemon, stop=stop, outbox=outbox
    )


def windows(jobs: Jobs, schedule_id: int) -> list[ScheduleRun]:
    with jobs.session() as s:
        rows = list(
            s.scalars(
                select(ScheduleRun).where(ScheduleRun.schedule_id == schedule_id).order_by(ScheduleRun.due_at)
            )
        )
        s.expunge_all()
        return rows


def messages(jobs: Jobs, schedule_id: int, kind: str | None = None) -> list[OutboxMessage]:
    with jobs.session() as s:
        query = (
            select(OutboxMessage)
            .join(ScheduleRun, ScheduleRun.id == OutboxMessage.schedule_run_id)
            .where(ScheduleRun.schedule_id == schedule_id)
            .order_by(OutboxMessage.id)
        )
        if kind:
            query = query.where(OutboxMessage.kind == kind)
        rows = list(s.scalars(query))
        s.expunge_all()
        return rows


def schedule_row(jobs: Jobs, schedule_id: int) -> Schedule:
    with jobs.session() as s:
        row = s.get(Schedule, schedule_id)
        assert row is not None
        s.expunge(row)
        return row


# --- the happy path and exactly once ---------------------------------------------------------------


def test_a_due_window_is_generated_and_one_email_per_recipient_queued(
    jobs: Jobs, owned: Tenant, outbox: Outbox
) -> None:
    sid = make_schedule(jobs, owned)
    assert tick(jobs, DUE - dt.timedelta(seconds=1), outbox).claimed == 0

    stats = tick(jobs, DUE + dt.timedelta(seconds=20), outbox)

    assert (stats.due, stats.claimed, stats.queued, stats.emails, stats.failed) == (1, 1, 1, 2, 0)
    [window] = windows(jobs, sid)
    assert (window.due_at, window.status, window.claimed_by, window.attempts) == (DUE, "queued", "d1", 1)
    assert window.lease_until is None and window.run_id is not None
    with jobs.session() as s:
        run = s.get(Run, window.run_id)
        assert run is not None
        assert (run.trigger, run.schedule_id, run.status) == ("schedule", sid, "completed")
        assert run.parameters["period"] == "last_month" and run.parameters["tz"] == "UTC"
        assert run.username == owned.users["manager"][1]
    sent = messages(jobs, sid)
    assert [(m.recipient, m.kind, m.status) for m in sent] == [
        ("a@example.com", "report", "pending"),
        ("b@example.com", "report", "pending"),
    ]
    assert sent[0].subject == "Sales summary for 1–31 Jan 2025 (last month) at Alpha Trading"
    assert (
        sent[0].payload["run_id"] == window.run_id
        and sent[0].payload["message"] == "Hello from Alpha Trading."
    )
    row = schedule_row(jobs, sid)
    assert (row.last_due_at, row.next_due_at) == (DUE, DUE + dt.timedelta(days=1))
    with jobs.session() as s:
        events = s.scalars(
            select(AuditEvent.event_type).where(
                AuditEvent.business_id == owned.business_id,
                AuditEvent.entity == "schedule",
                AuditEvent.entity_id == str(sid),
            )
        ).all()
    assert "schedule_run_queued" in events


def test_a_second_daemon_and_a_repeated_tick_find_nothing(jobs: Jobs, owned: Tenant, outbox: Outbox) -> None:
    sid = make_schedule(jobs, owned)
    tick(jobs, DUE, outbox, "d1")
    again = tick(jobs, DUE, outbox, "d2")
    assert (again.due, again.claimed) == (0, 0)
    assert len(windows(jobs, sid)) == 1 and len(messages(jobs, sid)) == 2


def test_four_daemons_racing_claim_each_window_exactly_once(
    jobs: Jobs, owned: Tenant, outbox: Outbox
) -> None:
    ids = [make_schedule(jobs, owned) for _ in range(12)]
    barrier = threading.Barrier(4)
    results: list[TickStats] = []
    errors: list[BaseException] = []

    def daemon(name: str) -> None:
        try:
            barrier.wait()
            results.append(tick(jobs, DUE + dt.timedelta(seconds=5), outbox, name))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=daemon, args=(f"d{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(r.claimed for r in results) == 12 and sum(r.queued for r in results) == 12
    for sid in ids:
        [window] = windows(jobs, sid)
        assert window.status == "queued"
        assert sorted(m.recipient for m in messages(jobs, sid)) == ["a@example.com", "b@example.com"]


def test_a_clock_stepping_back_reruns_nothing(jobs: Jobs, owned: Tenant, outbox: Outbox) -> None:
    sid = make_schedule(jobs, owned)
    tick(jobs, DUE + dt.timedelta(minutes=1), outbox)
    # the clock steps back an hour, then forward again over the same window
    assert tick(jobs, DUE - dt.timedelta(hours=1), outbox).claimed == 0
    assert tick(jobs, DUE + dt.timedelta(minutes=2), outbox).claimed == 0
    # even when next_due_at is pointed back at the handled window, its claim key stops a second run
    with jobs.session() as s:
        s.execute(update(Schedule).where(Schedule.id == sid).values(next_due_at=DUE))
        s.commit()
    stats = tick(jobs, DUE + dt.timedelta(minutes=3), outbox, "d2")
    assert (stats.claimed, stats.lost) == (0, 1)
    assert len(windows(jobs, sid)) == 1 and len(messages(jobs, sid)) == 2
    assert schedule_row(jobs, sid).next_due_at == DUE + dt.timedelta(days=1)


# --- downtime and grace ------------------------------------------------------------------------


def test_downtime_over_three_windows_runs_one_within_grace_and_records_the_rest_missed(
    jobs: Jobs, owned: Tenant, outbox: Outbox
) -> None:
    sid = make_schedule(jobs, owned)
    stats = tick(jobs, DUE + dt.timedelta(days=2, hours=3), outbox)  # 3 windows passed; the newest 3 h ago
    assert (stats.claimed, stats.missed, stats.queued) == (1, 2, 1)
    rows = windows(jobs, sid)
    assert [(w.due_at, w.status) for w in rows] == [
        (DUE, "missed"),
        (DUE + dt.timedelta(days=1), "missed"),
        (DUE + dt.timedelta(days=2), "queued"),
    ]
    assert "6 h" in rows[0].error
    assert len(messages(jobs, sid)) == 2  # one window's emails only
    assert schedule_row(jobs, sid).next_due_at == DUE + dt.timedelta(days=3)


def test_downtime_beyond_grace_sends_nothing(jobs: Jobs, owned: Tenant, outbox: Outbox) -> None:
    sid = make_schedule(jobs, owned)
    stats = tick(jobs, DUE + dt.timedelta(days=2, hours=7), outbox)
    assert (stats.claimed, stats.missed) == (0, 3)
    assert {w.status for w in windows(jobs, sid)} == {"missed"} and messages(jobs, sid) == []
    assert schedule_row(jobs, sid).last_due_at == DUE + dt.timedelta(days=2)


def test_the_grace_period_is_a_setting(jobs: Jobs, owned: Tenant, outbox: Outbox) -> None:
    sid = make_schedule(jobs, owned)
    stats = tick(jobs, DUE + dt.timedelta(hours=2), outbox, grace_hours=1)
    assert (stats.claimed, stats.missed) == (0, 1)
    assert [w.status for w in windows(jobs, sid)] == ["missed"]


# --- daylight saving, through the daemon's ticks ---------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "kind", "rule", "night_utc", "expected_utc"),
    [
        (
            "Europe/Berlin",
            "daily",
            {"time": "02:30"},
            dt.datetime(2026, 3, 28, 22),
            dt.datetime(2026, 3, 29, 1, 0),
        ),
        (
            "Europe/Berlin",
            "cron",
            {"expr": "30 2 * * *"},
            dt.datetime(2026, 10, 24, 22),
            dt.datetime(2026, 10, 25, 0, 30),
        ),
        (
            "America/New_York",
            "cron",
            {"expr": "30 2 * * *"},
            dt.datetime(2026, 3, 8, 4),
            dt.datetime(2026, 3, 8, 7, 0),
        ),
        (
            "America/New_York",
            "daily",
            {"time": "01:30"},
            dt.datetime(2026, 11, 1, 3),
            dt.datetime(2026, 11, 1, 5, 30),
        ),
    ],
    ids=["berlin-spring-daily", "berlin-fall-cron", "new-york-spring-cron", "new-york-fall-daily"],
)
def test_ticking_through_a_dst_night_runs_exactly_once(
    jobs: Jobs,
    owned: Tenant,
    outbox: Outbox,
    tz: str,
    kind: str,
    rule: dict[str, Any],
    night_utc: dt.datetime,
    expected_utc: dt.datetime,
) -> None:
    with jobs.session() as s:
        sid = create_schedule(
            s,
            owned.scope("manager"),
            ScheduleSpec(
                report_slug="sales_summary",
                rule_kind=kind,
                rule=rule,
                recipients=("a@example.com",),
                formats=("json",),
                timezone=tz,
            ),
            now=night_utc,
        ).id
    now = night_utc
    while now <= night_utc + dt.timedelta(hours=8):  # a tick every 10 minutes all night
        tick(jobs, now, outbox)
        now += dt.timedelta(minutes=10)
    assert [(w.due_at, w.status) for w in windows(jobs, sid)] == [(expected_utc, "queued")]
    assert len(messages(jobs, sid)) == 1


# --- empty reports and failures ------------------------------------------------------------------


def test_skip_when_empty_sends_nothing(jobs: Jobs, owned: Tenant, outbox: Outbox) -> None:
    later = dt.datetime(2031, 6, 1, 8, 0)  # last month has no sales
    sid = make_schedule(jobs, owned, later, skip_if_empty=True, report_slug="payments")
    stats = tick(jobs, later, outbox)
    assert (stats.skipped, stats.queued) == (1, 0)
    [window] = windows(jobs, sid)
    assert window.status == "skipped" and window.run_id is not None and "empty" in window.error
    assert messages(jobs, sid) == []


def test_an_empty_report_is_still_sent_unless_asked(jobs: Jobs, owned: Tenant, outbox: Outbox) -> None:
    later = dt.datetime(2031, 6, 1, 8, 0)
    sid = make_schedule(jobs, owned, later, report_slug="payments")
    assert tick(jobs, later, outbox).queued == 1
    assert len(messages(jobs, sid)) == 2


def test_a_failed_generation_fails_the_window_and_tells_the_owner_once(
    jobs: Jobs, owned: Tenant, outbox: Outbox
) -> None:
    sid = make_schedule(jobs, owned)
    with jobs.session() as s:  # a parameter the report no longer accepts
        s.execute(update(Schedule).where(Schedule.id == sid).values(parameters={"options": {"retired": "1"}}))
        s.commit()
    stats = tick(jobs, DUE, outbox)
    assert (stats.failed, stats.queued) == (1, 0)
    [window] = windows(jobs, sid)
    assert window.status == "failed" and "retired" in window.error and window.run_id is not None
    notices = messages(jobs, sid)
    assert [(m.kind, m.recipient) for m in notices] == [("failure_notice", OWNER_EMAIL)]
    assert notices[0].payload["error"] == window.error
    assert tick(jobs, DUE + dt.timedelta(minutes=1), outbox).failed == 0


# --- leases: a dead daemon's window is taken over once -------------------------------------------


def _dead_claim(jobs: Jobs, sid: int, attempts: int, lease_until: dt.datetime) -> None:
    """What a daemon killed mid-generation leaves: the schedule moved on, the window claimed."""
    with jobs.session() as s:
        s.execute(update(Schedule).where(Schedule.id == sid).values(next_due_at=DUE + dt.timedelta(days=1)))
        s.add(
            ScheduleRun(
                schedule_id=sid,
                business_id=s.get(Schedule, sid).business_id,  # type: ignore[union-attr]
                due_at=DUE,
                status="generating",
                claimed_by="dead",
                lease_until=lease_until,
                attempts=attempts,
            )
        )
        s.commit()


def test_a_window_whose_daemon_died_is_retried_once_after_the_lease(
    jobs: Jobs, owned: Tenant, outbox: Outbox
) -> None:
    sid = make_schedule(jobs, owned)
    _dead_claim(jobs, sid, 1, DUE + dt.timedelta(minutes=10))
    assert tick(jobs, DUE + dt.timedelta(minutes=5), outbox, "d2").taken_over == 0  # lease still running
    stats = tick(jobs, DUE + dt.timedelta(minutes=11), outbox, "d2")
    assert (stats.taken_over, stats.queued) == (1, 1)
    [window] = windows(jobs, sid)
    assert (window.status, window.claimed_by, window.attempts) == ("queued", "d2", 2)
    assert len(messages(jobs, sid)) == 2


def test_a_window_whose_retry_also_died_is_failed_and_the_owner_told(
    jobs: Jobs, owned: Tenant, outbox: Outbox
) -> None:
    sid = make_schedule(jobs, owned)
    _dead_claim(jobs, sid, 2, DUE + dt.timedelta(minutes=10))
    stats = tick(jobs, DUE + dt.timedelta(minutes=11), outbox, "d3")
    assert (stats.given_up, stats.failed, stats.taken_over) == (1, 1, 0)
    [window] = windows(jobs, sid)
    assert window.status == "failed" and "stopped twice" in window.error
    assert [(m.kind, m.recipient) for m in messages(jobs, sid)] == [("failure_notice", OWNER_EMAIL)]


@pytest.fixture
def alarm() -> Iterator[StopSignal]:
    """A stop signal requested by SIGALRM 0.3 s into the test (as the daemon's SIGTERM handler does)."""
    stop = StopSignal()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.request()

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        yield stop
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_stop_during_generation_releases_the_window_for_another_daemon(
    jobs: Jobs, owned: Tenant, outbox: Outbox, alarm: StopSignal
) -> None:
    sid = make_schedule(jobs, owned)
    # Another process is building the business's snapshot: the generation waits for it, and is stopped.
    with HeldSnapshot(jobs.store, owned.business_id), pytest.raises(Shutdown):
        tick(jobs, DUE, outbox, "d1", stop=alarm)
    [window] = windows(jobs, sid)
    assert (window.status, window.claimed_by, window.attempts) == ("claimed", "", 0)
    assert window.lease_until is not None and window.lease_until < DUE
    assert messages(jobs, sid) == []
    stats = tick(jobs, DUE, outbox, "d2")  # even at the same fake time
    assert (stats.taken_over, stats.queued) == (1, 1)
    [window] = windows(jobs, sid)
    assert (window.status, window.claimed_by, window.attempts) == ("queued", "d2", 1)
    assert len(messages(jobs, sid)) == 2


# --- run now ----------------------------------------------------------------------------------


def test_run_now_runs_once_for_the_period_as_of_the_request(
    jobs: Jobs, owned: Tenant, outbox: Outbox
) -> None:
    sid = make_schedule(jobs, owned, DUE + dt.timedelta(days=10))
    with jobs.session() as s:
        request = run_now(s, owned.scope("manager"), sid, now=DUE)
    results = [tick(jobs, DUE + dt.timedelta(seconds=10), outbox, d) for d in ("d1", "d2")]
    assert [r.claimed for r in results] == [1, 0]
    [window] = windows(jobs, sid)
    assert window.id == request.id and window.status == "queued"
    assert messages(jobs, sid)[0].subject == "Sales summary for 1–31 Jan 2025 (last month) at Alpha Trading"
    assert schedule_row(jobs, sid).next_due_at == DUE + dt.timedelta(days=10)  # the rule is untouched


def test_only_active_schedules_run(jobs: Jobs, owned: Tenant, outbox: Outbox) -> None:
    sid = make_schedule(jobs, owned)
    with jobs.session() as s:
        s.execute(update(Schedule).where(Schedule.id == sid).values(active=False))
        s.commit()
    assert tick(jobs, DUE, outbox).due == 0
    with jobs.session() as s:
        assert (
            s.scalar(select(func.count()).select_from(ScheduleRun).where(ScheduleRun.schedule_id == sid)) == 0
        )


def test_tick_stats_summary_reads_well() -> None:
    stats = dataclasses.replace(TickStats(), due=2, claimed=2, queued=1, failed=1)
    assert stats.summary() == "due 2, claimed 2, queued 1, failed 1"
    assert TickStats().summary() == "nothing due"


def test_a_limit_leaves_the_rest_for_the_next_call(jobs: Jobs, owned: Tenant, outbox: Outbox) -> None:
    ids = [make_schedule(jobs, owned) for _ in range(3)]
    cfg = jobs.settings
    first = process_due(
        jobs.engine, cfg, jobs.store, jobs.files, now=DUE, daemon_id="d1", outbox=outbox, limit=2
    )
    assert (first.claimed, first.more) == (2, True)
    second = process_due(
        jobs.engine, cfg, jobs.store, jobs.files, now=DUE, daemon_id="d1", outbox=outbox, limit=2
    )
    assert (second.claimed, second.more) == (1, False)
    assert [len(windows(jobs, sid)) for sid in ids] == [1, 1, 1]
