"""The scheduler daemon: each tick runs due schedules, delivers queued email, writes a heartbeat; retention hourly.

    python scheduler_daemon.py                 run until SIGTERM / Ctrl-C (exit 0)
    python scheduler_daemon.py --once          one tick, then exit (cron-style use, tests)
    --now ISO | --clock-file PATH              an injected clock (tests): --now (or the environment
                                               variable TALLYBOARD_FAKE_NOW) starts the clock at ISO
                                               and lets it run; a clock file is read at every tick
Several daemons may run against one database: each window is claimed exactly once (jobs/scheduling).
On SIGTERM or SIGINT the current step finishes, or a generation in progress is interrupted and its
window released for another daemon, and the daemon exits 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

import schedule
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError

from analytics.db import make_engine
from analytics.settings import Settings
from analytics.snapshot import SnapshotStore
from jobs import delivery
from jobs.files import FileStore
from jobs.heartbeat import beat
from jobs.retention import expire_files
from jobs.scheduling import Shutdown, StopSignal, process_due

log = logging.getLogger("scheduler")
Clock = Callable[[], dt.datetime]
RETENTION_EVERY = dt.timedelta(hours=1)
DELIVERY_BATCH = 100
WINDOWS_PER_STEP = 20


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
    def __init__(self, settings: Settings, clock: Clock, daemon_id: str | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.hostname = socket.gethostname()
        self.daemon_id = daemon_id or f"{self.hostname}:{os.getpid()}:{secrets.token_hex(3)}"
        self.engine = make_engine(settings.database_url)
        self.store = SnapshotStore(self.engine, settings.snapshot_dir)
        self.files = FileStore.from_settings(settings)
        self.stop = StopSignal()
        self.started_at = clock()
        self.last_retention: dt.datetime | None = None

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
        except SQLAlchemyError as exc:
            log.warning("heartbeat failed: %s", exc.__class__.__name__)

    def beat_every(self, seconds: int, done: threading.Event) -> None:
        while True:
            self.heartbeat()
            if done.wait(seconds):
                return

    def tick(self) -> None:
        """One tick: due windows in steps of WINDOWS_PER_STEP, each step's emails delivered before
        the next (so the first recipients do not wait for the whole backlog); then hourly chores.
        A failing step is logged and the next one still runs (Shutdown passes through)."""
        while not self.stop.requested:
            more = self.schedule_step()
            self.deliver()
            if not more:
                break
        if not self.stop.requested and (
            self.last_retention is None or self.clock() - self.last_retention >= RETENTION_EVERY
        ):
            self.hourly()

    def schedule_step(self) -> bool:
        """Claim and run up to WINDOWS_PER_STEP due windows; True when more may be waiting."""
        try:
            stats = process_due(
                self.engine,
                self.settings,
                self.store,
                self.files,
                now=self.clock(),
                daemon_id=self.daemon_id,
                stop=self.stop,
                limit=WINDOWS_PER_STEP,
            )
        except Exception:
            log.exception("scheduling step failed")
            return False
        if stats.due or stats.claimed or stats.taken_over or stats.given_up:
            log.info("schedules: %s", stats.summary())
        for error in stats.errors:
            log.warning("%s", error)
        return stats.more

    def deliver(self) -> None:
        """Send what is due, a batch at a time, until a batch comes back short (or we are stopping)."""
        try:
            while not self.stop.requested:
                stats = delivery.deliver_due(
                    self.engine, self.settings, now=self.clock(), limit=DELIVERY_BATCH
                )
                if stats.claimed or stats.error:
                    log.info("delivery: %s", stats)
                if stats.claimed < DELIVERY_BATCH:
                    break
        except Exception:
            log.exception("delivery step failed")

    def hourly(self) -> None:
        """Retention, and the admins' weekly summary (queued once per ISO week by jobs.delivery)."""
        self.retention()
        try:
            queued = delivery.weekly_summary(self.engine, self.settings, self.clock())
            if queued:
                log.info("weekly summary: %d messages queued", queued)
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
        except Exception:
            log.exception("retention step failed")

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        log.info("received %s: finishing the current step", signal.Signals(signum).name)
        self.stop.request()  # raises Shutdown when a generation is in progress

    def run(self, *, once: bool, tick_seconds: int) -> int:
        self.check_schema()
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        log.info("scheduler %s started (tick %d s)", self.daemon_id, tick_seconds)
        # Heartbeats come from their own thread, so a long tick (or generation) still shows the daemon alive.
        beating = threading.Event()
        beats = threading.Thread(target=self.beat_every, args=(tick_seconds, beating), daemon=True)
        beats.start()
        try:
            self.tick()
            if not once:
                ticks = schedule.Scheduler()
                ticks.every(tick_seconds).seconds.do(self.tick)
                while not self.stop.requested:
                    try:
                        ticks.run_pending()
                    except Exception:  # a daemon outlives a bad tick; the next one tries again
                        log.exception("tick failed")
                    time.sleep(0.2)
        except Shutdown:
            log.info("generation interrupted; its window was released for another daemon")
        finally:
            beating.set()
            beats.join(timeout=10)
            self.heartbeat("stopped")
            self.engine.dispose()
        log.info("scheduler %s stopped", self.daemon_id)
        return 0


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
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
        clock = make_clock(args.now, args.clock_file)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    tick = args.tick if args.tick is not None else settings.tick_seconds
    if tick <= 0:
        print("error: --tick must be a positive number of seconds", file=sys.stderr)
        return 2
    try:
        return Daemon(settings, clock).run(once=args.once, tick_seconds=tick)
    except SQLAlchemyError as exc:
        print(
            f"error: database problem: {exc.__class__.__name__}: {str(exc).splitlines()[0]}", file=sys.stderr
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
