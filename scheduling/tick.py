"""The scheduler's tick: each (schedule, due time) claimed exactly once, generated, and its emails queued.

Exactly once, however many daemons share the database (SQLite or PostgreSQL alike):
- A window is claimed in one transaction that moves the schedule's next_due_at on with a conditional
  UPDATE (WHERE next_due_at = the value read) and inserts the ScheduleRun row, whose UNIQUE
  (schedule_id, due_at) is the claim key. A second daemon's UPDATE matches nothing (PostgreSQL
  re-checks the row once the first commits; SQLite serialises writers), and a duplicate INSERT is an
  IntegrityError caught inside a savepoint: "someone else has it".
- A claim carries a lease, renewed while the daemon works on it (the daemon's worker pool renews
  every claim it holds, whatever the generation is doing). When a daemon dies, its lease runs out
  and another daemon takes the window over with a conditional UPDATE (lease expired, fewer than 2
  claims that died) and retries it once; a window whose second attempt also dies, or whose grace
  period is over, is failed and its owner told.
- A generation that fails for a passing reason (runs.failures: a full disk, the database away, an
  import changing the data meanwhile) waits in 'retrying' and is claimed again after a backoff, as
  long as the retry falls within the window's grace period; then it fails, saying why.
- A window that comes due while an earlier window of the same schedule is still being worked on is
  recorded 'skipped' (two generations of one schedule never run at once).
- The emails are queued (delivery.enqueue: Message-IDs fixed per window, recipient and kind) in the
  transaction that moves the window to 'queued' - only while this daemon still holds it.

Window statuses: requested (run now) -> claimed -> generating -> queued | skipped | failed, with
retrying (-> claimed) between; and missed (a window the scheduler did not get to in time: recorded,
never run). Times are naive UTC.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, cast

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from analytics.report import ParamError, Report, ReportParams, Scope
from core.clock import aware, utc_naive
from core.db import make_sessionmaker, session_scope
from core.models import SavedReport, Schedule, ScheduleRun, User
from core.settings import Settings
from mail.webhooks import (
    enqueue_hooks,
    holds,
    kpi_values,
    report_document,
    schedule_condition,
    slack_body,
    webhook_body,
)
from reports.audit_log import record_event
from reports.registry import definition, generate
from runs.failures import explain
from runs.files import FileStore
from runs.retention import interrupt_runs
from runs.runner import RunOutcome, generate_run
from scheduling.schedules import render_subject, render_text
from scheduling.timerules import RuleError, due_windows, next_due, time_zone
from snapshots.store import SnapshotStore

log = logging.getLogger(__name__)

RUN_STATUSES = ("requested", "claimed", "generating", "retrying", "queued", "skipped", "missed", "failed")
IN_PROGRESS = ("claimed", "generating")
MAX_ATTEMPTS = 2  # the first claim and one retry after a daemon died holding it (retries aside)
SKIPPED_BUSY = "Skipped: the previous run (due {due}) is still working, so this one was not run twice."
_SCHEDULER_USER = "scheduler"
_DIGESTS_KEPT = 256


class Outbox(Protocol):
    """What the tick needs from mail.delivery (the module satisfies it; tests may pass another)."""

    def email_summary(self, report: Report) -> dict[str, Any]: ...

    def enqueue(
        self,
        session: Session,
        *,
        business_id: int,
        schedule_run_id: int | None,
        kind: str,
        recipients: Sequence[str],
        subject: str,
        payload: dict[str, Any],
        now: dt.datetime,
    ) -> Sequence[Any]: ...


class Shutdown(BaseException):
    """Raised inside a generation when the daemon is told to stop (SIGTERM or SIGINT)."""


class StopSignal:
    """Set by the daemon's signal handler: the tick stops after its current step, and a generation
    in progress is interrupted (its window released for another daemon) rather than waited for."""

    def __init__(self) -> None:
        self.requested = False
        self._inside = False

    def request(self) -> None:
        self.requested = True
        if self._inside:
            self._inside = False
            raise Shutdown()

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        if self.requested:
            raise Shutdown()
        self._inside = True
        try:
            yield
        finally:
            self._inside = False


@dataclass
class TickStats:
    """What one tick did. `lost` counts windows another daemon claimed first."""

    due: int = 0
    claimed: int = 0
    lost: int = 0
    missed: int = 0
    queued: int = 0
    skipped: int = 0
    retrying: int = 0
    failed: int = 0
    taken_over: int = 0
    given_up: int = 0
    emails: int = 0
    errors: list[str] = field(default_factory=list)
    more: bool = False  # stopped at the limit: more windows may be due

    def summary(self) -> str:
        parts = [f"{k} {v}" for k, v in dataclasses.asdict(self).items() if k not in ("errors", "more") and v]
        return ", ".join(parts) or "nothing due"


@dataclass(frozen=True)
class _Job:
    """A window to work on, with what its schedule and owner said when it was loaded."""

    window_id: int
    due_at: dt.datetime
    schedule: Schedule
    owner: User | None
    saved: SavedReport | None
    attempts: int = 1
    retries: int = 0


def schedule_params(schedule: Schedule, saved: SavedReport | None, due_at: dt.datetime) -> ReportParams:
    """The report parameters for one window: the saved report's (or the schedule's own), with the
    schedule's relative period resolved at the due time in the schedule's zone."""
    base = dict(saved.parameters if saved is not None and saved.active else schedule.parameters or {})
    for key in ("period", "start", "end", "tz", "now"):
        base.pop(key, None)
    base["period"] = schedule.period
    base["tz"] = schedule.timezone
    return ReportParams.from_mapping(base, now=due_at.replace(tzinfo=dt.UTC))


@dataclass(frozen=True)
class Digest:
    """What a report email needs of a Report (small, kept per run): the outbox summary, the title,
    the period as the email shows it, the business name and whether the report is empty."""

    summary: dict[str, Any]
    title: str
    period: str
    business: str
    empty: bool
    kpis: dict[str, str | None] = field(default_factory=dict)  # exact values, for alerts
    document: dict[str, Any] | None = None  # the JSON document, when a webhook needs it


def digest_of(report: Report, outbox: Outbox, *, document: bool = False) -> Digest:
    summary = outbox.email_summary(report)
    return Digest(
        summary,
        report.title,
        report.period_label(),
        report.business_name,
        report.is_empty,
        kpi_values(report),
        report_document(report) if document else None,
    )


@dataclass(frozen=True)
class _Alert:
    """A schedule's condition evaluated for one window: the value seen, whether it held, whether to send."""

    seen: str
    held: bool
    send: bool
    note: str


# Digests by (database, source run id): schedules sharing a cached run share its email numbers, so
# a burst of identical schedules builds the Report once per process. Bounded; a run never changes.
_DIGESTS: OrderedDict[tuple[str, int], Digest] = OrderedDict()
_DIGESTS_LOCK = threading.Lock()


def _remember(key: tuple[str, int], digest: Digest) -> Digest:
    with _DIGESTS_LOCK:
        _DIGESTS[key] = digest
        _DIGESTS.move_to_end(key)
        while len(_DIGESTS) > _DIGESTS_KEPT:
            _DIGESTS.popitem(last=False)
    return digest


def _recall(key: tuple[str, int]) -> Digest | None:
    with _DIGESTS_LOCK:
        return _DIGESTS.get(key)


def _default_outbox() -> Outbox:
    return cast(Outbox, importlib.import_module("mail.delivery"))


def process_due(
    engine: Engine,
    settings: Settings,
    store: SnapshotStore,
    files: FileStore,
    *,
    now: dt.datetime,
    daemon_id: str,
    stop: StopSignal | None = None,
    outbox: Outbox | None = None,
    limit: int | None = None,
    dispatch: Callable[[int], None] | None = None,
) -> TickStats:
    """One tick: take over windows whose daemon died, retry windows whose backoff is over, run 'run
    now' requests, then claim and run every due window - at most `limit` of them (stats.more says
    some may be left, so the daemon can deliver what is queued before it goes on). `now` is the
    tick's clock (injectable); raises Shutdown when `stop` interrupts a generation (the window is
    released first). With `dispatch`, a claimed window is handed to dispatch(window_id) (the daemon's
    worker pool, which runs `run_window`) instead of being generated here."""
    tick = _Tick(
        engine, settings, store, files, utc_naive(aware(now)), daemon_id, stop or StopSignal(), outbox, limit
    )
    tick.dispatch = dispatch
    tick.take_over_expired()
    tick.run_retries()
    tick.run_requested()
    tick.run_due()
    return tick.stats


def run_window(
    engine: Engine,
    settings: Settings,
    store: SnapshotStore,
    files: FileStore,
    *,
    window_id: int,
    daemon_id: str,
    now: dt.datetime,
    outbox: Outbox | None = None,
) -> TickStats:
    """Generate one window this daemon has claimed and queue its emails (or retry, skip or fail it):
    what a worker process does with a window the daemon dispatched to it."""
    tick = _Tick(engine, settings, store, files, utc_naive(aware(now)), daemon_id, StopSignal(), outbox)
    tick.run_claimed(window_id)
    return tick.stats


def end_attempt(
    engine: Engine,
    settings: Settings,
    files: FileStore,
    *,
    window_id: int,
    daemon_id: str,
    now: dt.datetime,
    reason: str,
    passing: bool,
    outbox: Outbox | None = None,
) -> TickStats:
    """The worker generating `window_id` stopped without finishing it (it died, or was stopped past
    the working timeout): end the attempt as the worker would have - a retry for a `passing` reason
    within the grace period, else failed with `reason` and the owner told - and mark the run it left
    behind interrupted. Only while this daemon still holds the window."""
    tick = _Tick(engine, settings, None, files, utc_naive(aware(now)), daemon_id, StopSignal(), outbox)
    with make_sessionmaker(engine)() as s:
        job = tick._load(s, window_id)
    if job is not None:
        tick._attempt_failed(job, reason, None, passing=passing)
        interrupt_runs(
            engine,
            files,
            now=tick.clock(),
            schedule_id=job.schedule.id,
            reason=f"Interrupted: {reason}",
        )
    return tick.stats


def release_window(engine: Engine, *, window_id: int, daemon_id: str, now: dt.datetime) -> bool:
    """Give a window this daemon holds back (its lease ends now, the attempt does not count), so
    another daemon takes it at once: the daemon is stopping. True when it was still ours."""
    stamp = utc_naive(aware(now))
    with engine.begin() as conn:
        result = conn.execute(
            update(ScheduleRun)
            .where(
                ScheduleRun.id == window_id,
                ScheduleRun.claimed_by == daemon_id[:120],
                ScheduleRun.status.in_(IN_PROGRESS),
            )
            .values(
                status="claimed",
                claimed_by="",
                lease_until=stamp - dt.timedelta(seconds=1),
                attempts=ScheduleRun.attempts - 1,
            )
        )
        return bool(result.rowcount == 1)


def renew_leases(
    engine: Engine, settings: Settings, *, window_ids: Sequence[int], daemon_id: str, now: dt.datetime
) -> int:
    """Extend the lease of every window in `window_ids` this daemon still holds; how many it did."""
    if not window_ids:
        return 0
    until = utc_naive(aware(now)) + dt.timedelta(seconds=settings.lease_seconds)
    with engine.begin() as conn:
        result = conn.execute(
            update(ScheduleRun)
            .where(
                ScheduleRun.id.in_(list(window_ids)),
                ScheduleRun.claimed_by == daemon_id[:120],
                ScheduleRun.status.in_(IN_PROGRESS),
            )
            .values(lease_until=until)
        )
        return int(result.rowcount or 0)


class _Tick:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        store: SnapshotStore | None,
        files: FileStore,
        now: dt.datetime,
        daemon_id: str,
        stop: StopSignal,
        outbox: Outbox | None,
        limit: int | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.store = store
        self.files = files
        self.now = now
        self.daemon_id = daemon_id[:120]
        self.stop = stop
        self._outbox = outbox
        self.limit = limit
        self.stats = TickStats()
        self._t0 = time.monotonic()
        self._renewed = 0.0
        self._current: int | None = None  # the window being generated (its lease is renewed)
        self.dispatch: Callable[[int], None] | None = None
        self.lease = dt.timedelta(seconds=settings.lease_seconds)
        self.grace = dt.timedelta(hours=settings.grace_hours)

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            self._outbox = _default_outbox()
        return self._outbox

    def clock(self) -> dt.datetime:
        """The tick's `now` moved on by the real time spent since the tick began (leases, stamps)."""
        return self.now + dt.timedelta(seconds=time.monotonic() - self._t0)

    # --- finding work -------------------------------------------------------------------------
    def take_over_expired(self) -> None:
        with make_sessionmaker(self.engine)() as s:
            expired = s.execute(
                select(ScheduleRun.id, ScheduleRun.attempts, ScheduleRun.retries, ScheduleRun.due_at)
                .where(ScheduleRun.status.in_(IN_PROGRESS), ScheduleRun.lease_until < self.now)
                .order_by(ScheduleRun.due_at, ScheduleRun.id)
            ).all()
        for window_id, attempts, retries, due_at in expired:
            if self.enough():
                return
            if due_at + self.grace < self.now:
                self._give_up(
                    window_id,
                    "Interrupted: the scheduler stopped while generating this report and was not back "
                    f"within the {self.settings.grace_hours:g} h grace period; it was not sent.",
                )
            elif attempts - (retries or 0) < MAX_ATTEMPTS:
                if self._take_over(window_id):
                    self.stats.taken_over += 1
                    self._run(window_id)
            else:
                self._give_up(
                    window_id, "The scheduler stopped twice while generating this report; it was not sent."
                )

    def run_retries(self) -> None:
        """Claim again the windows whose retry time has come (a passing failure, see _attempt_failed)."""
        with make_sessionmaker(self.engine)() as s:
            waiting = s.scalars(
                select(ScheduleRun.id)
                .where(ScheduleRun.status == "retrying", ScheduleRun.retry_at <= self.now)
                .order_by(ScheduleRun.retry_at, ScheduleRun.id)
            ).all()
        for window_id in waiting:
            if self.enough():
                return
            claimed = self._update(
                window_id,
                (ScheduleRun.status == "retrying", ScheduleRun.retry_at <= self.now),
                status="claimed",
                claimed_by=self.daemon_id,
                lease_until=self.clock() + self.lease,
                attempts=ScheduleRun.attempts + 1,
                retry_at=None,
            )
            if claimed:
                self.stats.claimed += 1
                self._run(window_id)
            else:
                self.stats.lost += 1

    def run_requested(self) -> None:
        with make_sessionmaker(self.engine)() as s:
            requested = s.scalars(
                select(ScheduleRun.id)
                .where(ScheduleRun.status == "requested")
                .order_by(ScheduleRun.due_at, ScheduleRun.id)
            ).all()
        for window_id in requested:
            if self.enough():
                return
            claimed = self._update(
                window_id,
                (ScheduleRun.status == "requested",),
                status="claimed",
                claimed_by=self.daemon_id,
                lease_until=self.clock() + self.lease,
                attempts=1,
                started_at=self.clock(),
            )
            if claimed:
                self.stats.claimed += 1
                self._run(window_id)
            else:
                self.stats.lost += 1

    def run_due(self) -> None:
        with make_sessionmaker(self.engine)() as s:
            due = s.scalars(
                select(Schedule.id)
                .where(Schedule.active.is_(True), Schedule.next_due_at <= self.now)
                .order_by(Schedule.next_due_at, Schedule.id)
            ).all()
        self.stats.due += len(due)
        for schedule_id in due:
            if self.enough():
                return
            window_id = self._claim(schedule_id)
            if window_id is not None:
                self.stats.claimed += 1
                self._run(window_id)

    def enough(self) -> bool:
        """Stop taking windows: the daemon is stopping, or this call's limit is used up."""
        if self.limit is not None and self.stats.claimed + self.stats.taken_over >= self.limit:
            self.stats.more = True
            return True
        return self.stop.requested

    # --- claiming -----------------------------------------------------------------------------
    def _claim(self, schedule_id: int) -> int | None:
        """Move the schedule past `now` and record its windows: the newest within the grace period
        claimed by this daemon, older ones missed. None when there is nothing for this daemon."""
        with session_scope(self.engine) as s:
            row = s.get(Schedule, schedule_id)
            if row is None or not row.active or row.next_due_at is None or row.next_due_at > self.now:
                return None
            first = row.next_due_at
            try:
                windows = due_windows(
                    row.rule_kind, row.rule, row.timezone, first=first, now=self.now, grace=self.grace
                )
                latest = windows.latest or first
                following: dt.datetime | None = next_due(
                    row.rule_kind, row.rule, row.timezone, max(self.now, latest)
                )
            except RuleError as exc:
                # The rule no longer works (a zone gone from tzdata, say): stop retrying every tick.
                if self._advance(s, row, first, None, row.last_due_at):
                    self._audit(s, row, "schedule_rule_error", error=str(exc))
                return None
            if not self._advance(s, row, first, following, windows.latest):
                self.stats.lost += 1
                return None
            for due in windows.missed:
                missed = self._insert_window(
                    s,
                    row,
                    due,
                    status="missed",
                    error=self._missed_reason(row, due, windows.latest),
                    finished_at=self.clock(),
                )
                if missed is not None:
                    self.stats.missed += 1
            if windows.missed_count:
                self._audit(
                    s,
                    row,
                    "schedule_missed",
                    windows=windows.missed_count,
                    first=windows.missed[0].isoformat(),
                    last=windows.missed[-1].isoformat(),
                )
            if windows.run is None:
                return None
            busy = s.scalar(
                select(ScheduleRun.due_at)
                .where(ScheduleRun.schedule_id == row.id, ScheduleRun.status.in_(IN_PROGRESS))
                .order_by(ScheduleRun.due_at)
                .limit(1)
            )
            if busy is not None:
                # Superset's rule: a window whose previous one is still working is skipped, not run twice.
                skipped = self._insert_window(
                    s,
                    row,
                    windows.run,
                    status="skipped",
                    error=SKIPPED_BUSY.format(due=self._local(row, busy)),
                    finished_at=self.clock(),
                )
                if skipped is not None:
                    self.stats.skipped += 1
                    self._audit(
                        s, row, "schedule_run_skipped", due_at=windows.run.isoformat(), busy=busy.isoformat()
                    )
                return None
            window_id = self._insert_window(
                s,
                row,
                windows.run,
                status="claimed",
                claimed_by=self.daemon_id,
                lease_until=self.clock() + self.lease,
                attempts=1,
                started_at=self.clock(),
            )
            if window_id is None:
                self.stats.lost += 1
            return window_id

    def _local(self, row: Schedule, when: dt.datetime) -> str:
        """A stored UTC time as the schedule's people read it: '2025-02-10 09:00 CET'."""
        try:
            shown = when.replace(tzinfo=dt.UTC).astimezone(time_zone(row.timezone))
        except RuleError:
            shown = when.replace(tzinfo=dt.UTC)
        return f"{shown:%Y-%m-%d %H:%M} {shown.tzname() or 'UTC'}"

    def _missed_reason(self, row: Schedule, due: dt.datetime, latest: dt.datetime | None) -> str:
        """What happened to a window that was not run: too old, or overtaken by a newer one."""
        if self.now - due > self.grace or latest is None or latest == due:
            return (
                f"Missed: the scheduler was not running at {self._local(row, due)} nor within the "
                f"{self.settings.grace_hours:g} h grace period after it, so this window was not run."
            )
        return (
            f"Missed: the scheduler was not running (or was busy) at {self._local(row, due)}; by the time "
            f"it got to this schedule the next window ({self._local(row, latest)}) was already due, and "
            "only the newest window runs."
        )

    def _advance(
        self,
        s: Session,
        row: Schedule,
        first: dt.datetime,
        following: dt.datetime | None,
        last: dt.datetime | None,
    ) -> bool:
        result = s.execute(
            update(Schedule)
            .where(Schedule.id == row.id, Schedule.next_due_at == first, Schedule.active.is_(True))
            .values(next_due_at=following, last_due_at=last)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    def _insert_window(self, s: Session, row: Schedule, due: dt.datetime, **values: Any) -> int | None:
        """Insert the window's row; None when it already exists (the UNIQUE claim key)."""
        window = ScheduleRun(
            schedule_id=row.id, business_id=row.business_id, due_at=due, created_at=self.clock(), **values
        )
        try:
            with s.begin_nested():
                s.add(window)
        except IntegrityError:
            return None
        return window.id

    def _update(self, window_id: int, conditions: Sequence[Any], **values: Any) -> bool:
        """A conditional UPDATE of one window in its own transaction: True when it matched."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(ScheduleRun).where(ScheduleRun.id == window_id, *conditions).values(**values)
            )
            return bool(result.rowcount == 1)

    def _mine(self) -> tuple[Any, ...]:
        return (ScheduleRun.claimed_by == self.daemon_id, ScheduleRun.status.in_(IN_PROGRESS))

    def _take_over(self, window_id: int) -> bool:
        return self._update(
            window_id,
            (
                ScheduleRun.status.in_(IN_PROGRESS),
                ScheduleRun.lease_until < self.now,
                ScheduleRun.attempts - ScheduleRun.retries < MAX_ATTEMPTS,
            ),
            status="claimed",
            claimed_by=self.daemon_id,
            lease_until=self.clock() + self.lease,
            attempts=ScheduleRun.attempts + 1,
        )

    def _give_up(self, window_id: int, error: str) -> None:
        with session_scope(self.engine) as s:
            result = s.execute(
                update(ScheduleRun)
                .where(
                    ScheduleRun.id == window_id,
                    ScheduleRun.status.in_(IN_PROGRESS),
                    ScheduleRun.lease_until < self.now,
                    or_(
                        ScheduleRun.attempts - ScheduleRun.retries >= MAX_ATTEMPTS,
                        ScheduleRun.due_at < self.now - self.grace,
                    ),
                )
                .values(status="failed", error=error, finished_at=self.clock(), lease_until=None)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return
            job = self._load(s, window_id)
            if job is not None:
                self._notify_failure(s, job, error, None)
        self.stats.given_up += 1
        self.stats.failed += 1

    def _progress(self, done: int, total: int, label: str) -> None:
        self._renew()

    def _renew(self) -> None:
        """Extend this daemon's lease on the window being generated (at most once a second)."""
        current = self._current
        if current is None or time.monotonic() - self._renewed < 1:
            return
        self._renewed = time.monotonic()
        try:
            self._update(current, self._mine(), lease_until=self.clock() + self.lease)
        except SQLAlchemyError:
            log.warning("could not renew the lease of window %s", current, exc_info=True)

    # --- running a claimed window ---------------------------------------------------------------
    def _load(self, s: Session, window_id: int) -> _Job | None:
        window = s.get(ScheduleRun, window_id)
        if window is None:
            return None
        schedule = s.get(Schedule, window.schedule_id)
        if schedule is None:
            return None
        owner = s.get(User, schedule.owner_id) if schedule.owner_id is not None else None
        saved = s.get(SavedReport, schedule.saved_report_id) if schedule.saved_report_id is not None else None
        return _Job(
            window.id, window.due_at, schedule, owner, saved, int(window.attempts), int(window.retries or 0)
        )

    def _run(self, window_id: int) -> None:
        if self.dispatch is not None:
            self.dispatch(window_id)  # a worker process runs it (run_window)
            return
        self.run_claimed(window_id)

    def run_claimed(self, window_id: int) -> None:
        with make_sessionmaker(self.engine)() as s:
            job = self._load(s, window_id)
        if job is None:
            return
        if not self._update(window_id, self._mine(), status="generating"):
            self.stats.lost += 1
            return
        self._current = window_id
        try:
            with self.stop.interruptible():
                outcome, digest = self._generate(job)
        except Shutdown:
            self._release(window_id)
            raise
        except Exception as exc:
            failure = explain(exc)
            if failure.passing:
                log.warning("schedule %s window %s: %s", job.schedule.id, window_id, failure.text)
            else:
                log.exception("schedule %s window %s: generation failed", job.schedule.id, window_id)
            self._attempt_failed(job, failure.text, None, passing=failure.passing)
            return
        finally:
            self._current = None
        if not outcome.ok or digest is None:
            error = outcome.error or "The report could not be generated."
            self._attempt_failed(job, error, outcome.run_id, passing=outcome.passing)
            return
        if job.schedule.skip_if_empty and digest.empty:
            if self._finish(job, "skipped", outcome.run_id, "The report was empty, so nothing was sent."):
                self.stats.skipped += 1
            return
        try:
            alert = self._alert(job, digest)
        except ValueError as exc:
            self._fail(job, str(exc), outcome.run_id)
            return
        if alert is not None and not alert.send:
            if self._finish(
                job, "skipped", outcome.run_id, alert.note, alert_seen=alert.seen, alert_held=alert.held
            ):
                self.stats.skipped += 1
            return
        try:
            self._queue(job, digest, outcome, alert)
        except Exception as exc:
            log.exception("schedule %s window %s: queueing the emails failed", job.schedule.id, window_id)
            self._fail(job, f"The emails could not be queued ({type(exc).__name__}).", outcome.run_id)

    def _scope(self, job: _Job) -> Scope:
        owner = job.owner
        if owner is None:
            return Scope(job.schedule.business_id, f"schedule-{job.schedule.id}", "manager")
        return Scope(job.schedule.business_id, owner.username, owner.role)

    def _generate(self, job: _Job) -> tuple[RunOutcome, Digest | None]:
        schedule = job.schedule
        scope = self._scope(job)
        store = self.store
        assert store is not None, "generating needs the snapshot store"
        params = schedule_params(schedule, job.saved, job.due_at)
        formats = [f for f in schedule.formats.split(",") if f]
        with make_sessionmaker(self.engine)() as s:
            outcome = generate_run(
                s,
                store,
                self.files,
                self.settings,
                scope,
                job.owner.id if job.owner else None,
                schedule.report_slug,
                params,
                formats,
                trigger="schedule",
                saved_report_id=schedule.saved_report_id,
                schedule_id=schedule.id,
                now=self.clock(),
                progress=self._progress,
            )
            if not outcome.ok:
                return outcome, None
            key = (
                self.engine.url.render_as_string(hide_password=True),
                outcome.source_run_id or outcome.run_id,
            )
            needs_document = bool(schedule.webhooks)  # a webhook posts the JSON document
            if outcome.report is not None:
                return outcome, _remember(
                    key, digest_of(outcome.report, self.outbox, document=needs_document)
                )
            # Served from the cache: the files exist; the email's numbers are the source run's,
            # remembered when it was built in this process, else rebuilt (the files are not).
            digest = _recall(key)
            if digest is None or (needs_document and digest.document is None):
                digest = _remember(
                    key,
                    digest_of(
                        generate(s, store, scope, schedule.report_slug, params, now=self.clock()),
                        self.outbox,
                        document=needs_document,
                    ),
                )
        return outcome, digest

    def _texts(self, job: _Job, digest: Digest) -> tuple[str, str]:
        """Subject and message with {report}, {period} ('1–31 Jan 2025 (last month)': Period.describe,
        as the email shows it) and {business}."""
        title = job.saved.name if job.saved is not None else digest.title
        values = {"report": title, "period": digest.period, "business": digest.business}
        return render_subject(job.schedule.subject, **values), render_text(job.schedule.message, **values)

    def _alert(self, job: _Job, digest: Digest) -> _Alert | None:
        """The schedule's condition evaluated on this window's KPIs (None: it has none). ValueError
        when the report has no such KPI."""
        condition = schedule_condition(job.schedule)
        if condition is None:
            return None
        if condition.kpi not in digest.kpis:
            known = ", ".join(sorted(digest.kpis)) or "none"
            raise ValueError(
                f"The alert's KPI {condition.kpi!r} is not one of this report's KPIs ({known}); "
                "nothing was sent. Edit the schedule's condition."
            )
        raw = digest.kpis[condition.kpi]
        seen = "none" if raw is None else raw
        held = raw is not None and holds(condition, Decimal(raw))
        previous: bool | None = None
        if condition.on_change:
            with make_sessionmaker(self.engine)() as s:
                previous = s.scalar(
                    select(ScheduleRun.alert_held)
                    .where(
                        ScheduleRun.schedule_id == job.schedule.id,
                        ScheduleRun.due_at < job.due_at,
                        ScheduleRun.alert_held.is_not(None),
                    )
                    .order_by(ScheduleRun.due_at.desc())
                    .limit(1)
                )
        send = held and not (condition.on_change and previous is True)
        words = f"Alert {condition.text}: {condition.kpi} was {seen}"
        if not held:
            note = f"{words}; the condition did not hold, so nothing was sent."
        elif not send:
            note = f"{words}; the condition still holds (it held last time too), so nothing was sent again."
        else:
            note = f"{words}; the condition held, so the report was sent."
        return _Alert(seen[:60], held, send, note)

    def _queue(self, job: _Job, digest: Digest, outcome: RunOutcome, alert: _Alert | None = None) -> None:
        """Queue one report email per recipient and one post per webhook and Slack URL, and mark
        the window queued, in one transaction."""
        schedule = job.schedule
        subject, message = self._texts(job, digest)
        with session_scope(self.engine) as s:
            result = s.execute(
                update(ScheduleRun)
                .where(ScheduleRun.id == job.window_id, *self._mine())
                .values(
                    status="queued",
                    run_id=outcome.run_id,
                    finished_at=self.clock(),
                    lease_until=None,
                    error="",
                    alert_seen=alert.seen if alert else None,
                    alert_held=alert.held if alert else None,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                s.rollback()
                self.stats.lost += 1
                return
            payload = {
                "summary": digest.summary,
                "run_id": outcome.run_id,
                "schedule_id": schedule.id,
                "schedule_name": schedule.name,
                "message": message,
                "large_file_mode": schedule.large_file_mode,
                "formats": [f.fmt for f in outcome.files],
                "due_at": job.due_at.isoformat(),
                "timezone": schedule.timezone,
            }
            self.outbox.enqueue(
                s,
                business_id=schedule.business_id,
                schedule_run_id=job.window_id,
                kind="report",
                recipients=list(schedule.recipients),
                subject=subject,
                payload=payload,
                now=self.now,  # due at once by the daemon's own clock
            )
            hooks = self._hook_targets(job, digest, outcome, alert)
            if hooks:
                enqueue_hooks(
                    s,
                    business_id=schedule.business_id,
                    schedule_run_id=job.window_id,
                    targets=hooks,
                    subject=subject,
                    now=self.now,
                )
            self._audit(
                s,
                schedule,
                "schedule_run_queued",
                due_at=job.due_at.isoformat(),
                run_id=outcome.run_id,
                recipients=len(schedule.recipients),
                **({"webhooks": len(hooks)} if hooks else {}),
                **({"alert": alert.note, "alert_seen": alert.seen} if alert else {}),
            )
        self.stats.queued += 1
        self.stats.emails += len(schedule.recipients)

    def _hook_targets(
        self, job: _Job, digest: Digest, outcome: RunOutcome, alert: _Alert | None
    ) -> list[tuple[str, str, dict[str, Any]]]:
        """(kind, url, body) for each webhook and Slack URL of the schedule: the body fixed now, so
        every retry posts (and signs) the same bytes."""
        schedule = job.schedule
        webhooks = list(schedule.webhooks or [])
        slack = list(schedule.slack_webhooks or [])
        if not webhooks and not slack:
            return []
        history = f"{self.settings.public_url.rstrip('/')}/history?run={outcome.run_id}"
        links = {"history": history}
        targets: list[tuple[str, str, dict[str, Any]]] = []
        if webhooks:
            body = webhook_body(
                digest.document or {},
                schedule={"id": schedule.id, "name": schedule.name, "period": schedule.period},
                run={
                    "id": outcome.run_id,
                    "window": job.window_id,
                    "due_at": job.due_at.replace(tzinfo=dt.UTC).isoformat(),
                    "period": digest.period,
                    **({"alert": alert.note, "alert_seen": alert.seen} if alert else {}),
                },
                links=links,
            )
            targets += [("webhook", url, body) for url in webhooks]
        if slack:
            message = slack_body(
                digest.summary,
                schedule_name=schedule.name,
                history=history,
                alert=alert.note if alert else "",
            )
            targets += [("slack", url, message) for url in slack]
        return targets

    def _finish(self, job: _Job, status: str, run_id: int | None, note: str, **extra: Any) -> bool:
        with session_scope(self.engine) as s:
            result = s.execute(
                update(ScheduleRun)
                .where(ScheduleRun.id == job.window_id, *self._mine())
                .values(
                    status=status,
                    run_id=run_id,
                    finished_at=self.clock(),
                    lease_until=None,
                    error=note,
                    **extra,
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return False
            self._audit(
                s, job.schedule, f"schedule_run_{status}", due_at=job.due_at.isoformat(), run_id=run_id
            )
        return True

    def _retry_delay(self, retries: int) -> dt.timedelta:
        base = max(self.settings.generation_retry_s, 0.0)
        return dt.timedelta(seconds=min(base * 2**retries, max(self.settings.generation_retry_cap_s, base)))

    def _attempt_failed(self, job: _Job, error: str, run_id: int | None, *, passing: bool) -> None:
        """A failed attempt: retried later when the reason may pass and the retry still falls within
        the window's grace period (no email meanwhile); otherwise the window fails, saying why."""
        if passing:
            retry_at = self.clock() + self._retry_delay(job.retries)
            if retry_at <= job.due_at + self.grace:
                note = (
                    f"Attempt {job.attempts} failed: {error} "
                    f"Trying again at {self._local(job.schedule, retry_at)}."
                )
                with session_scope(self.engine) as s:
                    result = s.execute(
                        update(ScheduleRun)
                        .where(ScheduleRun.id == job.window_id, *self._mine())
                        .values(
                            status="retrying",
                            retry_at=retry_at,
                            retries=ScheduleRun.retries + 1,
                            claimed_by="",
                            lease_until=None,
                            run_id=run_id,
                            error=note,
                        )
                        .execution_options(synchronize_session=False)
                    )
                    if getattr(result, "rowcount", 0) != 1:
                        return
                    self._audit(
                        s,
                        job.schedule,
                        "schedule_run_retrying",
                        due_at=job.due_at.isoformat(),
                        run_id=run_id,
                        error=error,
                        retry_at=retry_at.isoformat(),
                    )
                self.stats.retrying += 1
                return
            tries = "once" if job.attempts == 1 else f"{job.attempts} times"
            error = (
                f"{error} Tried {tries}; no further attempt fits in the "
                f"{self.settings.grace_hours:g} h grace period after the due time."
            )
        self._fail(job, error, run_id)

    def _fail(self, job: _Job, error: str, run_id: int | None) -> None:
        """Mark the window failed (if still ours) and queue the owner's failure notice, together."""
        with session_scope(self.engine) as s:
            result = s.execute(
                update(ScheduleRun)
                .where(ScheduleRun.id == job.window_id, *self._mine())
                .values(
                    status="failed", run_id=run_id, finished_at=self.clock(), lease_until=None, error=error
                )
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return
            self._notify_failure(s, job, error, run_id)
        self.stats.failed += 1
        self.stats.errors.append(f"schedule {job.schedule.id}: {error}")

    def _notify_failure(self, s: Session, job: _Job, error: str, run_id: int | None) -> None:
        schedule = job.schedule
        self._audit(
            s, schedule, "schedule_run_failed", due_at=job.due_at.isoformat(), run_id=run_id, error=error
        )
        email = job.owner.email.strip() if job.owner is not None else ""
        if not email:
            log.warning("schedule %s failed and its owner has no e-mail address: %s", schedule.id, error)
            return
        try:
            title = job.saved.name if job.saved is not None else definition(schedule.report_slug).title
        except ParamError:
            title = schedule.report_slug
        try:
            with s.begin_nested():
                self.outbox.enqueue(
                    s,
                    business_id=schedule.business_id,
                    schedule_run_id=job.window_id,
                    kind="failure_notice",
                    recipients=[email],
                    subject=render_subject(
                        "Scheduled report failed: {report}", report=schedule.name, period="", business=""
                    ),
                    payload={
                        "schedule_id": schedule.id,
                        "schedule_name": schedule.name,
                        "report": title,
                        "due_at": job.due_at.isoformat(),
                        "timezone": schedule.timezone,
                        "error": error,
                        "run_id": run_id,
                    },
                    now=self.now,  # due at once by the daemon's own clock
                )
        except Exception:
            # The failure itself is recorded either way; a notice that cannot be queued is logged.
            log.exception("schedule %s: the failure notice could not be queued", schedule.id)

    def _release(self, window_id: int) -> None:
        """Give the window back (shutdown): its lease ends now (a second before the tick's time, so a
        daemon ticking at the same fake time takes it), and this attempt does not count."""
        try:
            self._update(
                window_id,
                self._mine(),
                status="claimed",
                claimed_by="",
                lease_until=self.now - dt.timedelta(seconds=1),
                attempts=ScheduleRun.attempts - 1,
            )
        except SQLAlchemyError:
            log.exception("could not release window %s; its lease will expire instead", window_id)

    def _audit(self, s: Session, row: Schedule, event: str, **detail: Any) -> None:
        record_event(
            s,
            row.business_id,
            event,
            user=_SCHEDULER_USER,
            entity="schedule",
            entity_id=str(row.id),
            detail={"name": row.name, "daemon": self.daemon_id, **detail},
            at=self.clock(),
        )
