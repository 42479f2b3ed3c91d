"""scheduler_daemon.py as real subprocesses on the test database: racing daemons, kill -9, SIGTERM, clock files.

The daemons get an injected clock (--now, or a clock file this test moves on) and share the
database with the test (SQLite file or the PostgreSQL schema): every window must be claimed and
queued exactly once, whatever happens to the daemons.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import delete, select, update

from accounts.users import operator
from core.models import DaemonHeartbeat, OutboxMessage, ScheduleRun, SmtpSettings, User
from mail.smtp_config import save_smtp
from scheduling.heartbeat import beat, format_age, scheduler_status
from scheduling.schedules import ScheduleSpec, create_schedule
from tests.scheduling.held_snapshot import HeldSnapshot, descendants, gone
from tests.tenants import Jobs, Tenant, park_leftover_work

ROOT = Path(__file__).resolve().parent.parent.parent
DUE = dt.datetime(2025, 2, 10, 8, 0)
RECIPIENTS = ("a@example.com", "b@example.com")
WAIT = 120.0  # seconds: the test machines can be slow


def iso(when: dt.datetime) -> str:
    return when.replace(tzinfo=dt.UTC).isoformat()


def set_clock(path: Path, when: dt.datetime) -> None:
    """Move a daemon clock file on atomically (a reader never sees it half-written)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(iso(when), encoding="utf-8")
    os.replace(tmp, path)


@pytest.fixture(autouse=True)
def quiet_database(jobs: Jobs) -> None:
    """Daemons serve every business in the database: park what earlier tests left behind."""
    park_leftover_work(jobs, outbox=True)


class Mailbox:
    """A real SMTP server's mailbox (aiosmtpd on 127.0.0.1): every message accepted, kept in order."""

    def __init__(self) -> None:
        self.messages: list[tuple[tuple[str, ...], EmailMessage]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.messages.append((tuple(envelope.rcpt_tos), message))
        return "250 OK"

    def delivered(self) -> list[tuple[str, str]]:
        """(recipient, Message-ID) of every delivery, duplicates included."""
        with self._lock:
            return [(to, str(m["Message-ID"])) for tos, m in self.messages for to in tos]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def mailbox(jobs: Jobs) -> Iterator[Mailbox]:
    """An SMTP server the daemons send to (the installation's SMTP settings point at it meanwhile)."""
    box = Mailbox()
    port = _free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    with jobs.session() as s:
        before = [
            {c.key: getattr(row, c.key) for c in SmtpSettings.__table__.columns}
            for row in s.scalars(select(SmtpSettings))
        ]
        save_smtp(
            s,
            jobs.settings,
            operator(),
            installation_default=True,
            host="127.0.0.1",
            port=port,
            security="none",
            from_address="reports@tallyboard.test",
        )
    try:
        yield box
    finally:
        controller.stop()
        with jobs.session() as s:
            s.execute(delete(SmtpSettings))
            for values in before:
                s.add(SmtpSettings(**values))
            s.commit()


def assert_one_message_per_recipient_per_window(box: Mailbox, jobs: Jobs, ids: list[int]) -> None:
    with jobs.session() as s:
        expected = s.execute(
            select(OutboxMessage.recipient, OutboxMessage.message_id)
            .join(ScheduleRun, ScheduleRun.id == OutboxMessage.schedule_run_id)
            .where(ScheduleRun.schedule_id.in_(ids), OutboxMessage.kind == "report")
        ).all()
    got = Counter(d for d in box.delivered() if ".report." in d[1])  # weekly summaries etc. aside
    assert got == Counter((str(to), str(mid)) for to, mid in expected), "missing or duplicate deliveries"


def command(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "scheduler_daemon.py"), *args]


def run_once(env: dict[str, str], now: dt.datetime, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command("--once", "--now", iso(now)),
        cwd=ROOT,
        env={**env, **extra},
        capture_output=True,
        text=True,
        timeout=WAIT,
    )


_STARTED: list[subprocess.Popen[bytes]] = []


def start(env: dict[str, str], log: Path, *args: str, **extra: str) -> subprocess.Popen[bytes]:
    """A daemon subprocess writing to `log` (a file, never an unread pipe: a daemon blocked on a full
    pipe holds its transaction, and every other daemon waits on it), killed after the test whatever
    happens (see `no_daemon_left`)."""
    with open(log, "wb") as handle:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            command(*args), cwd=ROOT, env={**env, **extra}, stdout=handle, stderr=subprocess.STDOUT
        )
    _STARTED.append(proc)
    return proc


@pytest.fixture(autouse=True)
def no_daemon_left() -> Iterator[None]:
    """A test that fails half-way must not leave daemons behind to hold locks in the next tests."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=WAIT)


def finish(proc: subprocess.Popen[bytes], log: Path) -> str:
    """Wait for a daemon started with `start`: it must exit 0; returns its log."""
    try:
        code = proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: every thread's stack goes into the log
        proc.wait(timeout=WAIT)
        raise AssertionError(f"the daemon did not finish:\n{log.read_text()}") from None
    text = log.read_text()
    assert code == 0, text
    return text


def wait_for(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def make_schedules(jobs: Jobs, tenant: Tenant, n: int, **changes: Any) -> list[int]:
    fields: dict[str, Any] = {
        "report_slug": "sales_summary",
        "rule_kind": "daily",
        "rule": {"time": DUE.strftime("%H:%M")},
        "recipients": RECIPIENTS,
        "formats": ("json",),
        "timezone": "UTC",
    }
    fields.update(changes)
    ids = []
    with jobs.session() as s:
        s.execute(update(User).where(User.id == tenant.user_id("manager")).values(email="owner@example.com"))
        s.commit()
        for _ in range(n):
            info = create_schedule(
                s, tenant.scope("manager"), ScheduleSpec(**fields), now=DUE - dt.timedelta(minutes=1)
            )
            ids.append(info.id)
    return ids


def windows(jobs: Jobs, ids: list[int]) -> list[ScheduleRun]:
    with jobs.session() as s:
        rows = list(
            s.scalars(
                select(ScheduleRun)
                .where(ScheduleRun.schedule_id.in_(ids))
                .order_by(ScheduleRun.schedule_id, ScheduleRun.due_at)
            )
        )
        s.expunge_all()
        return rows


def report_messages(jobs: Jobs, ids: list[int]) -> list[tuple[int, dt.datetime, str]]:
    """(schedule, due time, recipient) of every report email queued for these schedules."""
    with jobs.session() as s:
        rows = s.execute(
            select(ScheduleRun.schedule_id, ScheduleRun.due_at, OutboxMessage.recipient)
            .join(OutboxMessage, OutboxMessage.schedule_run_id == ScheduleRun.id)
            .where(ScheduleRun.schedule_id.in_(ids), OutboxMessage.kind == "report")
        ).all()
    return [(int(a), b, str(c)) for a, b, c in rows]


def assert_exactly_once(jobs: Jobs, ids: list[int], dues: list[dt.datetime]) -> None:
    rows = windows(jobs, ids)
    keys = [(w.schedule_id, w.due_at) for w in rows]
    assert sorted(keys) == sorted((sid, due) for sid in ids for due in dues)
    assert {w.status for w in rows} == {"queued"}, [(w.schedule_id, w.status, w.error) for w in rows]
    sent = report_messages(jobs, ids)
    expected = sorted((sid, due, r) for sid in ids for due in dues for r in RECIPIENTS)
    assert sorted(sent) == expected  # one message per recipient per window, no duplicates


# --- racing daemons ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("daemons", [2, 4])
def test_racing_daemons_deliver_each_window_exactly_once(
    jobs: Jobs, tenant: Tenant, daemon_env: dict[str, str], mailbox: Mailbox, daemons: int, tmp_path: Path
) -> None:
    ids = make_schedules(jobs, tenant, 12)
    logs = [tmp_path / f"d{i}.log" for i in range(daemons)]
    procs = [
        start(daemon_env, log, "--once", "--now", iso(DUE + dt.timedelta(seconds=10 + i)))
        for i, log in enumerate(logs)
    ]
    for proc, log in zip(procs, logs, strict=True):
        finish(proc, log)
    assert_exactly_once(jobs, ids, [DUE])
    # another round changes nothing (and delivers anything a daemon left queued)
    assert run_once(daemon_env, DUE + dt.timedelta(minutes=1)).returncode == 0
    assert_exactly_once(jobs, ids, [DUE])
    assert_one_message_per_recipient_per_window(mailbox, jobs, ids)


@pytest.mark.slow
def test_two_long_running_daemons_follow_a_clock_file_minute_by_minute(
    jobs: Jobs, tenant: Tenant, daemon_env: dict[str, str], mailbox: Mailbox, tmp_path: Path
) -> None:
    ids = make_schedules(jobs, tenant, 3, rule_kind="cron", rule={"expr": "* * * * *"})
    clock = tmp_path / "clock"
    set_clock(clock, DUE)
    procs = [
        start(daemon_env, tmp_path / f"d{i}.log", "--clock-file", str(clock), "--tick", "1") for i in range(2)
    ]
    dues = [DUE + dt.timedelta(minutes=m) for m in range(3)]
    try:
        for due in dues:
            set_clock(clock, due + dt.timedelta(seconds=5))
            wait_for(
                lambda due=due: (
                    sum(1 for w in windows(jobs, ids) if w.due_at == due and w.status == "queued")  # type: ignore[misc]
                    == len(ids)
                ),
                f"the {due:%H:%M} windows",
            )
        expected = len(ids) * len(dues) * len(RECIPIENTS)
        wait_for(lambda: sum(".report." in m for _, m in mailbox.delivered()) >= expected, "the emails")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=WAIT) for p in procs]
    assert codes == [0, 0], [(tmp_path / f"d{i}.log").read_text() for i in range(2)]
    assert_exactly_once(jobs, ids, dues)
    assert_one_message_per_recipient_per_window(mailbox, jobs, ids)
    with jobs.session() as s:
        stopped = s.scalars(select(DaemonHeartbeat.status).where(DaemonHeartbeat.status == "stopped")).all()
    assert len(stopped) >= 2


# --- crashes and stops ------------------------------------------------------------------------


def _generating(jobs: Jobs, ids: list[int]) -> Callable[[], bool]:
    return lambda: any(w.status == "generating" for w in windows(jobs, ids))


@pytest.mark.slow
def test_kill_9_during_generation_is_retried_once_after_the_lease(
    jobs: Jobs, tenant: Tenant, daemon_env: dict[str, str], mailbox: Mailbox, tmp_path: Path
) -> None:
    [sid] = make_schedules(jobs, tenant, 1)
    with HeldSnapshot(jobs.store, tenant.business_id) as held:  # the generation waits for the data
        victim = start(
            daemon_env,
            tmp_path / "victim.log",
            "--once",
            "--now",
            iso(DUE + dt.timedelta(seconds=5)),
            TALLYBOARD_LEASE_SECONDS="30",
        )
        try:
            wait_for(_generating(jobs, [sid]), "the generation to start")
            workers = descendants(victim.pid)  # its forkserver and worker processes
            assert workers
        finally:
            victim.kill()  # SIGKILL: no clean-up at all
            victim.wait(timeout=WAIT)
        [window] = windows(jobs, [sid])
        assert (window.status, window.attempts) == ("generating", 1)

        early = run_once(daemon_env, DUE + dt.timedelta(seconds=20))  # lease still running: hands off
        assert early.returncode == 0, early.stderr
        [window] = windows(jobs, [sid])
        assert window.status == "generating" and report_messages(jobs, [sid]) == []
        # The victim's worker, waiting for the data, exits by itself once its daemon is gone.
        wait_for(lambda: all(gone(pid) for pid in workers), "the victim's workers to exit")
        held.release()

    late = run_once(daemon_env, DUE + dt.timedelta(minutes=5))
    assert late.returncode == 0, late.stderr
    [window] = windows(jobs, [sid])
    assert (window.status, window.attempts) == ("queued", 2)
    assert_exactly_once(jobs, [sid], [DUE])
    assert_one_message_per_recipient_per_window(mailbox, jobs, [sid])
    assert sorted(to for to, m in mailbox.delivered() if ".report." in m) == sorted(RECIPIENTS)


@pytest.mark.slow
def test_sigterm_during_generation_releases_the_window_and_exits_0(
    jobs: Jobs, tenant: Tenant, daemon_env: dict[str, str], mailbox: Mailbox, tmp_path: Path
) -> None:
    [sid] = make_schedules(jobs, tenant, 1)
    log = tmp_path / "stopped.log"
    with HeldSnapshot(jobs.store, tenant.business_id):  # the generation waits for the data until released
        proc = start(
            daemon_env, log, "--now", iso(DUE + dt.timedelta(seconds=5)), TALLYBOARD_LOG_LEVEL="INFO"
        )
        wait_for(_generating(jobs, [sid]), "the generation to start")
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT) == 0, log.read_text()
        assert time.monotonic() - began < 30  # did not wait for the generation to end
    assert "released for another daemon" in log.read_text()
    [window] = windows(jobs, [sid])
    assert (window.status, window.claimed_by, window.attempts) == ("claimed", "", 0)

    other = run_once(daemon_env, DUE + dt.timedelta(seconds=10))  # no need to wait out a lease
    assert other.returncode == 0, other.stderr
    [window] = windows(jobs, [sid])
    assert (window.status, window.attempts) == ("queued", 1)
    assert_exactly_once(jobs, [sid], [DUE])
    assert_one_message_per_recipient_per_window(mailbox, jobs, [sid])


def test_sigterm_while_idle_exits_0_and_the_heartbeat_says_stopped(
    jobs: Jobs, daemon_env: dict[str, str], tmp_path: Path, no_heartbeats: None
) -> None:
    clock = tmp_path / "clock"
    set_clock(clock, DUE)
    proc = start(daemon_env, tmp_path / "idle.log", "--clock-file", str(clock), "--tick", "1")

    def seen() -> bool:
        with jobs.session() as s:
            return scheduler_status(s, now=DUE + dt.timedelta(seconds=12)).running

    wait_for(seen, "the first heartbeat")
    with jobs.session() as s:
        assert scheduler_status(s, now=DUE + dt.timedelta(seconds=12)).text == "Scheduler last seen 12 s ago"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=WAIT) == 0
    with jobs.session() as s:
        status = scheduler_status(s, now=DUE + dt.timedelta(seconds=12))
    assert not status.running and status.text.startswith("Scheduler not running")


# --- downtime ---------------------------------------------------------------------------------


def test_a_daemon_back_after_three_windows_runs_one_and_records_the_rest_missed(
    jobs: Jobs, tenant: Tenant, daemon_env: dict[str, str]
) -> None:
    [sid] = make_schedules(jobs, tenant, 1)
    result = run_once(daemon_env, DUE + dt.timedelta(days=2, hours=2))
    assert result.returncode == 0, result.stderr
    assert [(w.due_at, w.status) for w in windows(jobs, [sid])] == [
        (DUE, "missed"),
        (DUE + dt.timedelta(days=1), "missed"),
        (DUE + dt.timedelta(days=2), "queued"),
    ]
    assert len(report_messages(jobs, [sid])) == len(RECIPIENTS)


def test_bad_arguments_are_one_line_errors(daemon_env: dict[str, str]) -> None:
    result = subprocess.run(
        command("--once", "--now", "yesterday"),
        cwd=ROOT,
        env=daemon_env,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr


# --- heartbeat --------------------------------------------------------------------------------


@pytest.fixture
def no_heartbeats(jobs: Jobs) -> Iterator[None]:
    def clear() -> None:
        with jobs.session() as s:
            s.execute(delete(DaemonHeartbeat))
            s.commit()

    clear()
    yield
    clear()


def test_heartbeat_texts(jobs: Jobs, no_heartbeats: None) -> None:
    t0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    with jobs.session() as s:
        assert scheduler_status(s, now=t0).text == "Scheduler not running (never seen)"
    beat(jobs.engine, "host:1:aa", now=t0, started_at=t0, hostname="host", pid=1)
    beat(jobs.engine, "host:1:aa", now=t0 + dt.timedelta(seconds=20), started_at=t0)
    with jobs.session() as s:
        status = scheduler_status(s, now=t0 + dt.timedelta(seconds=32))
        assert (status.running, status.text, status.age_s, status.daemons) == (
            True,
            "Scheduler last seen 12 s ago",
            12.0,
            1,
        )
        late = scheduler_status(s, now=t0 + dt.timedelta(hours=3))
        assert (late.running, late.text) == (False, "Scheduler not running (last seen 2 h ago)")
    beat(jobs.engine, "host:1:aa", now=t0 + dt.timedelta(seconds=40), started_at=t0, status="stopped")
    with jobs.session() as s:
        assert not scheduler_status(s, now=t0 + dt.timedelta(seconds=41)).running
    assert [format_age(x) for x in (0, 59, 60, 3599, 7200, 86400, 200000)] == [
        "0 s",
        "59 s",
        "1 min",
        "59 min",
        "2 h",
        "1 day",
        "2 days",
    ]
