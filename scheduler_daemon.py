"""The scheduler daemon: each tick runs due schedules, delivers queued email, writes a heartbeat; retention hourly.

    python scheduler_daemon.py                 run until SIGTERM / Ctrl-C (exit 0)
    python scheduler_daemon.py --once          one tick, then exit (cron-style use, tests)
    --now ISO | --clock-file PATH              an injected clock (tests): --now (or the environment
                                               variable TALLYBOARD_FAKE_NOW) starts the clock at ISO
                                               and lets it run; a clock file is read at every tick
Several daemons may run against one database: each window is claimed exactly once (scheduling/tick).
Reports are generated in worker processes (scheduling/workers): the tick goes on while they work, their
leases are renewed, and one still working after the working timeout is stopped ("timed out").
On SIGTERM or SIGINT the current step finishes, generations in progress are stopped and their
windows released for another daemon, and the daemon exits 0 (also when it is still starting).
"""

# ruff: noqa: E402 - the stop handler below goes in before the slow imports
from __future__ import annotations

import signal
import sys

_STOPPED_EARLY: list[bool] = []  # a SIGTERM came while starting (in case library code swallowed the exit)


def _stop_while_starting(signum: int, frame: object) -> None:
    _STOPPED_EARLY.append(True)
    raise SystemExit(0)


if __name__ == "__main__":
    # A stop that arrives while the daemon is still starting (importing, connecting) is a clean stop.
    signal.signal(signal.SIGTERM, _stop_while_starting)

import argparse
import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

import schedule
from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError

from core.db import make_engine, make_sessionmaker
from core.models import ScheduleRun
from core.secret_key import startup_problem
from core.settings import Settings
from mail import delivery
from runs.files import FileStore
from runs.retention import expire_files, interrupt_runs, sweep_leftovers
from scheduling.heartbeat import beat
from scheduling.tick import StopSignal, end_attempt, process_due, release_window, renew_leases
from scheduling.workers import Ended, WorkerPool, configure_logging, describe_exit
from snapshots.store import SnapshotStore

log = logging.getLogger("scheduler")
Clock = Callable[[], dt.datetime]
RETENTION_EVERY = dt.timedelta(hours=1)
DELIVERY_BATCH = 100
WINDOWS_PER_STEP = 20
SWEEP_EVERY_S = 60.0  # leftovers of crashed processes are looked for at most once a minute
SUPERVISE_EVERY_S = 0.5
OUTAGE_BACKOFF_CAP_S = 300.0


def parse_instant(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def make_clock(now: str | None, clock_file: str | None) -> Clock:
    """The daemon's clock: a clock file read at every call, a start instant that then runs on, or real time."""
    if clock_file:
        path = Path(clock_file)
        last = [parse_instant(path.read_text(encoding="utf-8"))]

        def from_file() -> dt.datetime:
            try:  # a file caught half-written keeps the previous time
                last[0] = parse_instant(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.warning("clock file %s unreadable; keeping %s", path, last[0].isoformat())
            return last[0]

        return from_file
    if now:
        start, t0 = parse_instant(now), time.monotonic()
        return lambda: start + dt.timedelta(seconds=time.monotonic() - t0)
    return lambda: dt.datetime.now(dt.UTC)


class Daemon:
    def __init__(
        self, settings: Settings, clock: Clock, daemon_id: str | None = None, log_level: str = "INFO"
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.hostname = socket.gethostname()
        self.daemon_id = daemon_id or f"{self.hostname}:{os.getpid()}:{secrets.token_hex(3)}"
        self.engine = make_engine(settings.database_url)
        self.store = SnapshotStore(self.engine, settings.snapshot_dir)
        self.refresher: threading.Thread | None = None
        self.keep_warm = False  # set by a long-running `run`: rebuild outdated snapshots on each tick
        self.files = FileStore.from_settings(settings, self.engine)
        self.stop = StopSignal()
        self.started_at = clock()
        self.last_retention: dt.datetime | None = None
        self.pool = WorkerPool(settings, self.daemon_id, settings.workers, log_level)
        self.backlog = False  # the last claim step filled every idle worker: more may be due
        self.finished = threading.Event()  # a worker is done with a window: emails to deliver
        self.ending: deque[tuple[Ended, bool]] = deque()  # attempts to record (by the supervisor)
        self.last_sweep: float | None = None
        self.last_renewal = 0.0
        self.retry_after = 0.0  # time.monotonic(): no tick before this (the database was away)
        self.backoff = 0.0
        self.outage_since: float | None = None
        self.quiet: set[str] = set()  # threads that already logged the database as away
        self.tick_seconds = settings.tick_seconds

    def check_schema(self) -> None:
        if "schedules" not in set(inspect(self.engine).get_table_names()):
            raise SystemExit("error: the database has no schedules table: run `python manage.py init-db`.")

    def heartbeat(self, status: str = "running") -> None:
        try:
            beat(
                self.engine,
                self.daemon_id,
                now=self.clock(),
                started_at=self.started_at,
                hostname=self.hostname,
                pid=os.getpid(),
                status=status,
            )
            self.quiet.discard("heartbeat")
        except SQLAlchemyError as exc:
            self.once("heartbeat", exc)

    def once(self, where: str, exc: SQLAlchemyError) -> None:
        """Log a database problem seen by a helper thread once, not at every beat."""
        if where not in self.quiet:
            self.quiet.add(where)
            log.warning("%s: database unavailable (%s)", where, one_line(exc))

    def beat_every(self, seconds: int, done: threading.Event) -> None:
        while True:
            self.heartbeat()
            if done.wait(seconds):
                return

    # --- the tick (main thread) ---------------------------------------------------------------
    def tick(self) -> None:
        """One tick: sweep what crashed processes left, hand due windows to idle workers, deliver
        queued email, then hourly chores. When the database cannot be reached the tick ends with one
        log line and the next try waits longer each time (twice the wait, up to 5 min)."""
        self.guarded(self.work)

    def work(self) -> None:
        self.sweep()
        self.refresh_snapshots()
        self.schedule_step()
        self.deliver()
        if not self.stop.requested and (
            self.last_retention is None or self.clock() - self.last_retention >= RETENTION_EVERY
        ):
            self.hourly()

    def guarded(self, step: Callable[[], None]) -> None:
        if time.monotonic() < self.retry_after:
            return
        try:
            step()
        except SQLAlchemyError as exc:
            self.backoff = min(max(self.backoff * 2, self.tick_seconds, 1), OUTAGE_BACKOFF_CAP_S)
            self.retry_after = time.monotonic() + self.backoff
            if self.outage_since is None:
                self.outage_since = time.monotonic()
            log.error("database unavailable (%s); next try in %.0f s", one_line(exc), self.backoff)
            return
        if self.outage_since is not None:
            log.warning("database reachable again after %.0f s", time.monotonic() - self.outage_since)
        self.outage_since, self.backoff, self.retry_after = None, 0.0, 0.0

    def sweep(self) -> None:
        """Leftovers of crashed processes (runs left 'running', stray .part files), once a minute."""
        if self.last_sweep is not None and time.monotonic() - self.last_sweep < SWEEP_EVERY_S:
            return
        stats = sweep_leftovers(self.engine, self.settings, self.files, now=self.clock())
        self.last_sweep = time.monotonic()
        if stats.runs_interrupted or stats.parts_removed:
            log.info(
                "sweep: %d runs left unfinished by a stopped process marked interrupted, "
                "%d stray temporary files removed",
                stats.runs_interrupted,
                stats.parts_removed,
            )

    def refresh_snapshots(self) -> None:
        """Build, in a background thread, the reports' snapshot of any business whose data changed
        without one being built (an upload whose app process stopped, an import on another machine)."""
        if not self.keep_warm or (self.refresher is not None and self.refresher.is_alive()):
            return
        self.refresher = threading.Thread(target=self._refresh_outdated, name="snapshot-refresh", daemon=True)
        self.refresher.start()

    def _refresh_outdated(self) -> None:
        try:
            built = self.store.refresh_outdated()
        except Exception as exc:
            log.warning("refreshing report data failed: %s", one_line(exc))
            return
        if built:
            log.info("report data refreshed for businesses %s", ", ".join(map(str, built)))

    def schedule_step(self) -> None:
        """Claim due windows for the idle workers (self.backlog says whether more may be waiting)."""
        free = self.pool.free()
        if free <= 0:
            self.backlog = True
            return
        try:
            stats = process_due(
                self.engine,
                self.settings,
                self.store,
                self.files,
                now=self.clock(),
                daemon_id=self.daemon_id,
                stop=self.stop,
                limit=min(free, WINDOWS_PER_STEP),
                dispatch=self.dispatch,
            )
        except SQLAlchemyError:
            raise
        except Exception:
            log.exception("scheduling step failed")
            return
        self.backlog = stats.more
        if stats.due or stats.claimed or stats.taken_over or stats.given_up or stats.skipped:
            log.info("schedules: %s", stats.summary())
        for error in stats.errors:
            log.warning("%s", error)

    def dispatch(self, window_id: int) -> None:
        self.pool.submit(window_id, self.clock())

    def deliver(self) -> None:
        """Send what is due, a batch at a time, until a batch comes back short (or we are stopping)."""
        self.finished.clear()
        try:
            while not self.stop.requested:
                stats = delivery.deliver_due(
                    self.engine, self.settings, now=self.clock(), limit=DELIVERY_BATCH
                )
                if stats.claimed or stats.error:
                    log.info("delivery: %s", stats)
                if stats.claimed < DELIVERY_BATCH:
                    break
        except SQLAlchemyError:
            raise
        except Exception:
            log.exception("delivery step failed")

    def note(self, ended: Sequence[Ended], timed_out: bool = False) -> None:
        """Workers done with windows: emails to send for the finished, attempts to record for the rest."""
        for item in ended:
            if item.finished:
                self.finished.set()
            else:
                self.ending.append((item, timed_out))

    def between_ticks(self) -> None:
        """While workers finish: give idle workers more due windows, send the emails just queued."""
        if self.stop.requested:
            return
        self.note(self.pool.collect())
        if self.backlog and self.pool.free() > 0:
            self.guarded(self.schedule_step)
        if self.finished.is_set():
            self.guarded(self.deliver)

    def hourly(self) -> None:
        """Retention, and the admins' weekly summary (queued once per ISO week by mail.delivery)."""
        self.retention()
        try:
            queued = delivery.weekly_summary(self.engine, self.settings, self.clock())
            if queued:
                log.info("weekly summary: %d messages queued", queued)
        except SQLAlchemyError:
            raise
        except Exception:
            log.exception("weekly summary step failed")

    def retention(self) -> None:
        now = self.clock()
        try:
            stats = expire_files(self.engine, self.settings, self.files, now=now)
            self.last_retention = now
            if stats.files_removed or stats.runs_expired:
                log.info(
                    "retention: %d files removed (%d bytes), %d runs expired, %d kept for pending email",
                    stats.files_removed,
                    stats.bytes_freed,
                    stats.runs_expired,
                    stats.kept_for_outbox,
                )
        except SQLAlchemyError:
            raise
        except Exception:
            log.exception("retention step failed")

    # --- the workers (supervisor thread) ------------------------------------------------------
    def supervise(self, done: threading.Event) -> None:
        while not done.wait(SUPERVISE_EVERY_S):
            try:
                self.oversee()
                self.quiet.discard("supervisor")
            except SQLAlchemyError as exc:
                self.once("supervisor", exc)
            except Exception:
                log.exception("supervising the workers failed")

    def oversee(self) -> None:
        """Note finished and dead workers, stop those past the working timeout, renew the leases of
        the windows being worked on, and record how each stopped attempt ended."""
        self.note(self.pool.collect())
        limit = self.settings.work_timeout_minutes * 60
        for window_id, elapsed in self.pool.busy().items():
            if limit > 0 and elapsed > limit and self.pool.stop_window(window_id):
                self.note([Ended(window_id, False, None, elapsed)], timed_out=True)
        renew_every = max(min(self.settings.lease_seconds / 4, 60.0), SUPERVISE_EVERY_S)
        if time.monotonic() - self.last_renewal >= renew_every:
            renew_leases(
                self.engine,
                self.settings,
                window_ids=list(self.pool.busy()),
                daemon_id=self.daemon_id,
                now=self.clock(),
            )
            self.last_renewal = time.monotonic()
        while self.ending:
            ended, timed_out = self.ending[0]
            self.record_end(ended, timed_out)  # kept for the next round when the database is away
            self.ending.popleft()

    def record_end(self, ended: Ended, timed_out: bool) -> None:
        if timed_out:
            limit = format_minutes(self.settings.work_timeout_minutes)
            reason = (
                f"Timed out: the report was still being generated after {limit}, the working timeout "
                "(TALLYBOARD_WORK_TIMEOUT_MINUTES), so the attempt was stopped."
            )
        else:
            reason = (
                "The worker process generating this report stopped unexpectedly "
                f"({describe_exit(ended.exitcode)})."
            )
        stats = end_attempt(
            self.engine,
            self.settings,
            self.files,
            window_id=ended.window_id,
            daemon_id=self.daemon_id,
            now=self.clock(),
            reason=reason,
            passing=not timed_out,
        )
        log.warning("window %s: %s (%s)", ended.window_id, reason, stats.summary())
        self.finished.set()

    # --- start and stop -----------------------------------------------------------------------
    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: finishing the current step", signal.Signals(signum).name)
        self.stop.request()

    def release(self, windows: Sequence[int]) -> None:
        """Give the windows of stopped workers back, so another daemon takes them at once."""
        for window_id in windows:
            try:
                if release_window(
                    self.engine, window_id=window_id, daemon_id=self.daemon_id, now=self.clock()
                ):
                    with make_sessionmaker(self.engine)() as s:
                        schedule_id = s.scalar(
                            select(ScheduleRun.schedule_id).where(ScheduleRun.id == window_id)
                        )
                    if schedule_id is not None:
                        interrupt_runs(
                            self.engine,
                            self.files,
                            now=self.clock(),
                            schedule_id=schedule_id,
                            reason="Interrupted: the scheduler was stopped while generating this report; "
                            "it is generated again.",
                        )
                    log.info("generation interrupted; its window was released for another daemon")
            except SQLAlchemyError as exc:
                log.warning(
                    "window %s: could not release it (%s); its lease will run out", window_id, one_line(exc)
                )

    def run(self, *, once: bool, tick_seconds: int) -> int:
        self.tick_seconds = tick_seconds
        self.keep_warm = not once  # a --once run must not leave a snapshot build behind
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        if _STOPPED_EARLY:
            self.stop.request()
        self.check_schema()
        problem = startup_problem(self.engine, self.settings)  # a wrong secret key: refuse to start
        if problem:
            raise SystemExit(f"error: {problem}")
        if self.stop.requested:  # stopped while starting
            return 0
        log.info(
            "scheduler %s started (tick %d s, %d workers, working timeout %s)",
            self.daemon_id,
            tick_seconds,
            self.pool.size,
            format_minutes(self.settings.work_timeout_minutes),
        )
        # Heartbeats and the workers' supervision run in their own threads, so a long tick (a slow
        # mail server, say) still shows the daemon alive and keeps the leases of its windows.
        helpers = threading.Event()
        threads = [
            threading.Thread(target=self.beat_every, args=(tick_seconds, helpers), daemon=True),
            threading.Thread(target=self.supervise, args=(helpers,), daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            self.tick()
            if once:
                while not self.stop.requested and (self.pool.busy() or self.backlog or self.ending):
                    if self.retry_after and time.monotonic() < self.retry_after:
                        break  # the database is away: a --once run does not wait for it
                    self.between_ticks()
                    self.pool.wait(0.1)
                if not self.stop.requested:
                    self.guarded(self.deliver)
            else:
                ticks = schedule.Scheduler()
                ticks.every(tick_seconds).seconds.do(self.tick)
                while not self.stop.requested:
                    try:
                        ticks.run_pending()
                        self.between_ticks()
                    except Exception:  # a daemon outlives a bad tick; the next one tries again
                        log.exception("tick failed")
                    self.pool.wait(0.2)
        finally:
            helpers.set()
            for thread in threads:
                thread.join(timeout=10)
            self.release(self.pool.close())
            self.heartbeat("stopped")
            self.engine.dispose()
        log.info("scheduler %s stopped", self.daemon_id)
        return 0


def one_line(exc: BaseException) -> str:
    """'OperationalError: connection refused' - the class and the first line of the message."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    first = text.splitlines()[0][:300] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def format_minutes(minutes: float) -> str:
    seconds = minutes * 60
    return f"{minutes:g} min" if seconds >= 60 else f"{seconds:g} s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scheduler_daemon.py", description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="run one tick and exit")
    parser.add_argument(
        "--now", default=os.environ.get("TALLYBOARD_FAKE_NOW"), help="start the clock here (ISO)"
    )
    parser.add_argument("--clock-file", help="read the current time (ISO) from this file at every tick")
    parser.add_argument("--tick", type=int, help="seconds between ticks (default: settings, 20)")
    parser.add_argument("--log-level", default=os.environ.get("TALLYBOARD_LOG_LEVEL", "INFO"))
    args = parser.parse_args(argv)
    configure_logging(args.log_level.upper())  # our INFO lines; fontTools' subsetting chatter only at DEBUG
    try:
        settings = Settings.from_env()
        clock = make_clock(args.now, args.clock_file)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if _STOPPED_EARLY:
        return 0
    tick = args.tick if args.tick is not None else settings.tick_seconds
    if tick <= 0:
        print("error: --tick must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        return Daemon(settings, clock, log_level=args.log_level.upper()).run(
            once=args.once, tick_seconds=tick
        )
    except SQLAlchemyError as exc:
        print(
            f"error: database problem: {exc.__class__.__name__}: {str(exc).splitlines()[0]}", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
