"""The daemon under slow, failing and killed work (issue 9, items 5-8 and 10), with real daemons as
subprocesses on the test database (SQLite file or PostgreSQL): a reports folder that cannot be
written, generations longer than the lease, a generation that hangs, overlapping windows, kill -9
leftovers, a database outage and a stop during start-up. Leases and timeouts are seconds here."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, select, text

from core.db import make_engine, migrate
from core.models import AuditEvent, OutboxMessage, Run, ScheduleRun
from runs.files import FileStore
from tests.scheduling.held_snapshot import HeldSnapshot, descendants, gone
from tests.scheduling.test_daemon import (
    DUE,
    RECIPIENTS,
    iso,
    make_schedules,
    no_daemon_left,  # noqa: F401 - the autouse fixture: every daemon a test starts is killed after it
    report_messages,
    run_once,
    set_clock,
    start,
    wait_for,
    windows,
)
from tests.tenants import Jobs, Tenant, park_leftover_work

WAIT = 90.0


@pytest.fixture(autouse=True)
def quiet_database(jobs: Jobs) -> None:
    """Daemons serve every business in the database: park what earlier tests left behind."""
    park_leftover_work(jobs, outbox=True)


def daemon_files(jobs: Jobs) -> FileStore:
    """The reports folder the daemons use (TALLYBOARD_DATA_DIR/reports)."""
    return FileStore(jobs.settings.data_dir / "reports", jobs.engine)


def exit_status(proc: subprocess.Popen[bytes], log: Path) -> int:
    """The daemon's exit status; one that does not exit in time is made to dump every thread's
    stack into its log (faulthandler, SIGABRT) and the test fails with that log."""
    try:
        return proc.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        proc.wait(timeout=WAIT)
        raise AssertionError(f"the daemon did not stop:\n{log.read_text()}") from None


def stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM, and the daemon must exit 0."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    assert exit_status(proc, log) == 0, log.read_text()


def window_of(jobs: Jobs, sid: int, due: dt.datetime = DUE) -> ScheduleRun | None:
    return next((w for w in windows(jobs, [sid]) if w.due_at == due), None)


def status_of(jobs: Jobs, sid: int, due: dt.datetime = DUE) -> str:
    window = window_of(jobs, sid, due)
    return window.status if window is not None else ""


def runs_of(jobs: Jobs, sid: int) -> list[Run]:
    with jobs.session() as s:
        rows = list(s.scalars(select(Run).where(Run.schedule_id == sid).order_by(Run.id)))
        s.expunge_all()
        return rows


def notices(jobs: Jobs, sid: int) -> list[OutboxMessage]:
    with jobs.session() as s:
        rows = list(
            s.scalars(
                select(OutboxMessage)
                .join(ScheduleRun, ScheduleRun.id == OutboxMessage.schedule_run_id)
                .where(ScheduleRun.schedule_id == sid, OutboxMessage.kind == "failure_notice")
            )
        )
        s.expunge_all()
        return rows


class RunningClock:
    """A clock file that runs at real speed from `start`: several daemons read one time (no skew)."""

    def __init__(self, path: Path, start: dt.datetime) -> None:
        self.path = path
        self.start = start
        self.t0 = time.monotonic()
        self.done = threading.Event()
        set_clock(path, start)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.1):
            set_clock(self.path, self.start + dt.timedelta(seconds=time.monotonic() - self.t0))

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)


# --- item 5: a passing failure is retried within the grace period ----------------------------------


def test_a_reports_folder_that_cannot_be_written_is_retried_not_final(
    jobs: Jobs, tenant: Tenant, daemon_env: dict[str, str], tmp_path: Path
) -> None:
    [sid] = make_schedules(jobs, tenant, 1)
    # A file where the business's reports folder belongs: every write fails with an OSError, as on a
    # full or broken disk, until someone fixes it.
    files = daemon_files(jobs)
    blocker = files.absolute(files.relative_path(tenant.business_id, 1, "x.json")).parent.parent
    if blocker.exists():
        shutil.rmtree(blocker)
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    log = tmp_path / "daemon.log"
    proc = start(
        daemon_env,
        log,
        "--now",
        iso(DUE + dt.timedelta(seconds=5)),
        "--tick",
        "1",
        TALLYBOARD_GENERATION_RETRY_S="1",
    )
    seen: list[str] = []
    try:

        def retrying() -> bool:
            window = window_of(jobs, sid)
            if window is not None and window.error:
                seen.append(window.error)
            return window is not None and window.status == "retrying"

        wait_for(retrying, "the window to wait for a retry", WAIT)
        assert report_messages(jobs, [sid]) == [] and notices(jobs, sid) == []
        blocker.unlink()  # the disk is fixed
        wait_for(lambda: status_of(jobs, sid) == "queued", "the retried window", WAIT)
    finally:
        if blocker.is_file():
            blocker.unlink()
        stop(proc, log)
    window = window_of(jobs, sid)
    assert window is not None and window.retries >= 1 and window.attempts == window.retries + 1
    assert any("Attempt 1 failed: A file could not be written or read (Not a directory" in e for e in seen), (
        seen
    )
    assert any("Trying again at" in e for e in seen)
    assert sorted(r for _, _, r in report_messages(jobs, [sid])) == sorted(RECIPIENTS)
    assert notices(jobs, sid) == []  # nobody was told about a failure that passed


# --- item 6: leases renewed while working; a working timeout; other schedules go on -----------------


def test_a_generation_longer_than_the_lease_is_not_taken_over(
    jobs: Jobs, tenant: Tenant, daemon_env: dict[str, str], tmp_path: Path
) -> None:
    [sid] = make_schedules(jobs, tenant, 1)
    held = HeldSnapshot(jobs.store, tenant.business_id)  # the generation waits for the data until released
    clock = RunningClock(tmp_path / "clock", DUE + dt.timedelta(seconds=5))
    # The lease is renewed every 1-1.5 s: 5 s leaves room for a loaded machine; 9 s outlasts it.
    short_lease = {"TALLYBOARD_LEASE_SECONDS": "5"}
    logs = [tmp_path / f"d{i}.log" for i in range(2)]
    procs = [
        start(daemon_env, log, "--clock-file", str(clock.path), "--tick", "1", **short_lease) for log in logs
    ]
    try:
        wait_for(lambda: status_of(jobs, sid) == "generating", "the generation to start", WAIT)
        time.sleep(9)
        held.release()
        wait_for(lambda: status_of(jobs, sid) in ("queued", "failed"), "the window", WAIT)
    finally:
        held.release()
        clock.close()
        for proc, log in zip(procs, logs, strict=True):
            stop(proc, log)
    window = window_of(jobs, sid)
    assert window is not None and (window.status, window.attempts, window.error) == ("queued", 1, "")
    assert [r.status for r in runs_of(jobs, sid)] == ["completed"]  # generated once, never lost
    assert sorted(r for _, _, r in report_messages(jobs, [sid])) == sorted(RECIPIENTS)


@pytest.fixture
def snapshot_held(jobs: Jobs, tenant: Tenant) -> Iterator[None]:
    """Another process holding the business's snapshot lock and never letting go: its reports hang."""
    with HeldSnapshot(jobs.store, tenant.business_id):
        yield


def test_a_hung_generation_times_out_while_other_schedules_run(
    jobs: Jobs,
    tenant: Tenant,
    other: Tenant,
    daemon_env: dict[str, str],
    tmp_path: Path,
    snapshot_held: None,
) -> None:
    [hung] = make_schedules(jobs, tenant, 1)
    [fine] = make_schedules(jobs, other, 1)
    log = tmp_path / "daemon.log"
    proc = start(
        daemon_env,
        log,
        "--now",
        iso(DUE + dt.timedelta(seconds=5)),
        "--tick",
        "1",
        TALLYBOARD_WORK_TIMEOUT_MINUTES="0.1",  # 6 s
        TALLYBOARD_LOG_LEVEL="INFO",
    )
    try:
        wait_for(lambda: status_of(jobs, fine) == "queued", "the other schedule's window", WAIT)
        assert status_of(jobs, hung) == "generating"  # still stuck, and it held nothing else up
        wait_for(lambda: status_of(jobs, hung) == "failed", "the working timeout", WAIT)
    finally:
        stop(proc, log)
    window = window_of(jobs, hung)
    assert window is not None and window.error.startswith(
        "Timed out: the report was still being generated after 6 s, the working timeout"
    )
    [run] = runs_of(jobs, hung)
    assert run.status == "failed" and run.error.startswith("Interrupted: Timed out:")
    assert [n.recipient for n in notices(jobs, hung)] == ["owner@example.com"]
    assert sorted(r for _, _, r in report_messages(jobs, [fine])) == sorted(RECIPIENTS)
    assert "Timed out" in log.read_text()


# --- item 7: a window whose previous one is still working is skipped ----------------------------------


def test_overlapping_windows_of_one_schedule_are_skipped_not_run_twice(
    jobs: Jobs, tenant: Tenant, daemon_env: dict[str, str], tmp_path: Path
) -> None:
    [sid] = make_schedules(jobs, tenant, 1, rule_kind="cron", rule={"expr": "* * * * *"})
    clock = tmp_path / "clock"
    set_clock(clock, DUE + dt.timedelta(seconds=5))
    held = HeldSnapshot(jobs.store, tenant.business_id)  # the generation waits for the data until released
    logs = [tmp_path / f"d{i}.log" for i in range(2)]
    procs = [start(daemon_env, log, "--clock-file", str(clock), "--tick", "1") for log in logs]
    nxt, third = DUE + dt.timedelta(minutes=1), DUE + dt.timedelta(minutes=2)
    try:
        wait_for(lambda: status_of(jobs, sid) == "generating", "the 08:00 generation", WAIT)
        set_clock(clock, nxt + dt.timedelta(seconds=5))  # 08:01 comes due while 08:00 still works
        wait_for(lambda: status_of(jobs, sid, nxt) != "", "the 08:01 window", WAIT)
        held.release()
        wait_for(lambda: status_of(jobs, sid) == "queued", "the 08:00 window", WAIT)
        set_clock(clock, third + dt.timedelta(seconds=5))  # nothing works now: 08:02 runs
        wait_for(lambda: status_of(jobs, sid, third) == "queued", "the 08:02 window", WAIT)
    finally:
        held.release()
        for proc, log in zip(procs, logs, strict=True):
            stop(proc, log)
    skipped = window_of(jobs, sid, nxt)
    assert skipped is not None and skipped.status == "skipped"
    assert skipped.error == (
        "Skipped: the previous run (due 2025-02-10 08:00 UTC) is still working, so this one was not run twice."
    )
    assert [r.status for r in runs_of(jobs, sid)] == ["completed", "completed"]  # 08:00 and 08:02 only
    assert sorted((due, r) for _, due, r in report_messages(jobs, [sid])) == sorted(
        (due, r) for due in (DUE, third) for r in RECIPIENTS
    )


# --- item 8: what kill -9 leaves behind is swept -----------------------------------------------------


def test_kill_9_leftovers_are_swept_by_the_next_tick(
    jobs: Jobs, tenant: Tenant, daemon_env: dict[str, str], tmp_path: Path
) -> None:
    [sid] = make_schedules(jobs, tenant, 1)
    with HeldSnapshot(jobs.store, tenant.business_id):  # the generation waits for the data until released
        victim = start(
            daemon_env,
            tmp_path / "victim.log",
            "--now",
            iso(DUE + dt.timedelta(seconds=5)),
            TALLYBOARD_LEASE_SECONDS="3",
        )
        try:
            wait_for(lambda: [r.status for r in runs_of(jobs, sid)] == ["running"], "the run to start", WAIT)
            workers = descendants(victim.pid)  # its forkserver and worker processes
            assert workers
        finally:
            victim.kill()
            victim.wait(timeout=WAIT)
        # The victim's worker, waiting for the data, exits by itself once its daemon is gone.
        wait_for(lambda: all(gone(pid) for pid in workers), "the victim's workers to exit", WAIT)
    # What else dead processes leave: half-written files, and a web app's run that never finished.
    files = daemon_files(jobs)
    run_folder = files.absolute(files.relative_path(tenant.business_id, 999_999, "x")).parent
    run_folder.mkdir(parents=True, exist_ok=True)
    old_part = run_folder / ".sales_summary.json.k3j2.part"
    fresh_part = run_folder / ".sales_summary.csv.a8f1.part"
    eml_part = jobs.settings.outbox_dir / ".tb.1.report.ab@x.org.eml.q9.part"
    eml_part.parent.mkdir(parents=True, exist_ok=True)
    for path in (old_part, fresh_part, eml_part):
        path.write_bytes(b"half a file")
    an_hour_ago = time.time() - 3600
    for path in (old_part, eml_part):
        os.utime(path, (an_hour_ago, an_hour_ago))
    with jobs.session() as s:
        app_run = Run(
            business_id=tenant.business_id,
            report_slug="sales_summary",
            formats="xlsx",
            status="running",
            trigger="builder",
            username=tenant.users["manager"][1],
            created_at=DUE - dt.timedelta(hours=3),
            started_at=DUE - dt.timedelta(hours=3),
        )
        s.add(app_run)
        s.commit()
        app_run_id = app_run.id

    late = run_once(daemon_env, DUE + dt.timedelta(minutes=5))
    assert late.returncode == 0, late.stderr

    first, second = runs_of(jobs, sid)
    assert first.status == "failed" and first.error.startswith(
        "Interrupted: the scheduler generating this report stopped before it finished"
    )
    assert second.status == "completed"  # the window was taken over and generated again
    window = window_of(jobs, sid)
    assert window is not None and (window.status, window.attempts) == ("queued", 2)
    with jobs.session() as s:
        app = s.get(Run, app_run_id)
        assert app is not None and app.status == "failed"
        assert app.error.startswith("Interrupted: the program generating this report (the web app")
        assert s.scalar(
            select(AuditEvent.id).where(
                AuditEvent.business_id == tenant.business_id,
                AuditEvent.event_type == "report_interrupted",
                AuditEvent.entity_id == str(app_run_id),
            )
        )
    assert not old_part.exists() and not eml_part.exists()
    assert fresh_part.exists()  # younger than the lease: perhaps still being written
    fresh_part.unlink()


# --- item 10: a database outage, a stop during start-up ----------------------------------------------


class TcpProxy:
    """A TCP proxy to the database server that the test can cut (connections dropped, new ones
    refused until it is back): a real outage as the daemon sees it."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.up = threading.Event()
        self.up.set()
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up.clear()
        with self.lock:
            for sock in self.open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.open = []

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@contextlib.contextmanager
def outage_database(jobs: Jobs, tmp_path: Path) -> Iterator[tuple[str, Any, Any]]:
    """A database of the daemon's own and two callables that start and end an outage of it.

    PostgreSQL: the daemon reaches the server through a TCP proxy that is cut. SQLite (a file, no
    server to lose): a table the tick reads is renamed away, so every query of it fails.
    """
    url = make_url(jobs.settings.database_url)
    if url.get_backend_name() == "postgresql":
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        try:
            yield through, proxy.cut, proxy.restore
        finally:
            proxy.close()
        return
    path = tmp_path / "own.db"
    own = make_engine(f"sqlite:///{path}")
    migrate(own)

    def rename(a: str, b: str) -> None:
        with own.begin() as conn:
            conn.execute(text(f"ALTER TABLE {a} RENAME TO {b}"))

    try:
        yield (
            f"sqlite:///{path}",
            lambda: rename("schedule_runs", "schedule_runs_away"),
            lambda: rename("schedule_runs_away", "schedule_runs"),
        )
    finally:
        own.dispose()


def test_a_database_outage_logs_one_line_per_failed_tick_and_backs_off(
    jobs: Jobs, daemon_env: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "daemon.log"
    with outage_database(jobs, tmp_path) as (url, cut, restore):
        env = {**daemon_env, "DATABASE_URL": url, "TALLYBOARD_DATA_DIR": str(tmp_path / "data")}
        proc = start(env, log, "--tick", "1", TALLYBOARD_LOG_LEVEL="INFO")
        try:
            wait_for(lambda: "started" in log.read_text(), "the daemon to start", WAIT)
            time.sleep(1.5)
            cut()
            time.sleep(5)  # about five ticks
            restore()
            wait_for(lambda: "database reachable again" in log.read_text(), "the recovery", WAIT)
        finally:
            stop(proc, log)
    lines = log.read_text().splitlines()
    assert not any("Traceback" in line for line in lines), "\n".join(lines)
    down = [line for line in lines if "ERROR scheduler: database unavailable" in line]
    assert 2 <= len(down) <= 4, "\n".join(lines)  # ~5 ticks: tries 1, 2, 4 s apart, one line each
    assert all("next try in" in line for line in down)
    waits = [int(line.rsplit("next try in ", 1)[1].split()[0]) for line in down]
    assert waits == sorted(waits) and waits[-1] > waits[0]  # it backs off
    # No flood: the outage costs a line per tick, not one per business or per retry (the shared test
    # database may hold many businesses, whose snapshot builds log their own lines when it is up).
    outage = [line for line in lines if "OperationalError" in line]
    assert len(outage) <= 10, "\n".join(outage)


@pytest.mark.parametrize("after_s", [0.3, 0.8, 1.5])
def test_sigterm_while_starting_exits_0(daemon_env: dict[str, str], tmp_path: Path, after_s: float) -> None:
    log = tmp_path / "start.log"
    proc = start(daemon_env, log, "--tick", "1")
    time.sleep(after_s)
    proc.send_signal(signal.SIGTERM)
    assert exit_status(proc, log) == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_sigterm_during_generation_leaves_no_run_running(
    jobs: Jobs, tenant: Tenant, daemon_env: dict[str, str], tmp_path: Path
) -> None:
    [sid] = make_schedules(jobs, tenant, 1)
    log = tmp_path / "d.log"
    with HeldSnapshot(jobs.store, tenant.business_id):  # the generation waits for the data until released
        proc = start(daemon_env, log, "--now", iso(DUE + dt.timedelta(seconds=5)))
        wait_for(lambda: [r.status for r in runs_of(jobs, sid)] == ["running"], "the run to start", WAIT)
        stop(proc, log)
    [run] = runs_of(jobs, sid)
    assert run.status == "failed" and run.error.startswith("Interrupted: the scheduler was stopped")
    window = window_of(jobs, sid)
    assert window is not None and (window.status, window.claimed_by, window.attempts) == ("claimed", "", 0)
