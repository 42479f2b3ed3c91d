"""The scheduler daemon's worker processes: each generates one claimed window at a time, so one slow or
hung report never holds up the others, and a worker past the working timeout can be stopped for real.

Workers are forked from a clean "forkserver" process (not from the daemon, which runs threads), load
nothing until their first window, and keep their engine and caches between windows. A worker whose
daemon dies exits within a second (it must not finish a window another daemon is about to take over).
The database records every outcome (scheduling.tick.run_window); the pool only tracks which worker
holds which window and for how long.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from sqlalchemy.exc import SQLAlchemyError

from core.settings import Settings

log = logging.getLogger("scheduler.workers")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log routine work at INFO: fpdf2's font subsetting writes a dozen fontTools lines per PDF.
QUIET_LOGGERS = ("fontTools",)


def configure_logging(level: int | str) -> None:
    """The daemon's and its workers' logging: `level` (a name or a number) for our messages, while
    QUIET_LOGGERS say only warnings and errors (everything at DEBUG)."""
    logging.basicConfig(level=level, format=LOG_FORMAT, force=True)
    debug = logging.getLogger().getEffectiveLevel() <= logging.DEBUG
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.WARNING)


_PRELOAD = ["scheduling.tick", "mail.delivery", "reports.registry", "exporters"]


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    window_id: int | None = None
    started: float = 0.0  # time.monotonic() when it took its window


@dataclass(frozen=True)
class Ended:
    """A window whose worker is done with it: `finished` when the worker said so, else it died
    (`exitcode`: negative = killed by that signal)."""

    window_id: int
    finished: bool
    exitcode: int | None
    elapsed_s: float


def describe_exit(code: int | None) -> str:
    """'exit code 3', 'killed by signal 9 (SIGKILL: out of memory, or killed by hand)'."""
    if code is None:
        return "no exit code"
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    hint = " - out of memory, or killed by hand" if -code == signal.SIGKILL else ""
    return f"killed by {name}{hint}"


class WorkerPool:
    """`size` worker processes for one daemon (`daemon_id`: the claims they work under)."""

    def __init__(self, settings: Settings, daemon_id: str, size: int, log_level: int | str = "INFO") -> None:
        self.settings = settings
        self.daemon_id = daemon_id
        self.size = max(1, size)
        self.log_level = log_level
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(_PRELOAD)

    # -- starting ----------------------------------------------------------------------------
    def _spawn(self) -> _Worker:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main,
            args=(child, self.settings, self.daemon_id, os.getpid(), self.log_level),
            name="tallyboard-worker",
            daemon=True,
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def _fill(self) -> None:
        while len(self._workers) < self.size:
            self._workers.append(self._spawn())

    # -- state -------------------------------------------------------------------------------
    def free(self) -> int:
        """How many more windows the pool can take now."""
        with self._lock:
            return self.size - sum(1 for w in self._workers if w.window_id is not None)

    def busy(self) -> dict[int, float]:
        """Window id -> seconds its worker has been at it."""
        now = time.monotonic()
        with self._lock:
            return {w.window_id: now - w.started for w in self._workers if w.window_id is not None}

    # -- work --------------------------------------------------------------------------------
    def submit(self, window_id: int, now: dt.datetime) -> None:
        """Hand a claimed window to an idle worker (RuntimeError when none is free)."""
        with self._lock:
            self._fill()
            idle = next((w for w in self._workers if w.window_id is None), None)
            if idle is None:
                raise RuntimeError("no idle worker")
            idle.window_id, idle.started = window_id, time.monotonic()
            idle.conn.send((window_id, now))

    def collect(self) -> list[Ended]:
        """Windows whose workers finished or died since the last call; dead workers are replaced."""
        ended: list[Ended] = []
        now = time.monotonic()
        with self._lock:
            for i, worker in enumerate(list(self._workers)):
                finished = self._poll(worker)
                if finished is not None and worker.window_id == finished:
                    ended.append(Ended(finished, True, None, now - worker.started))
                    worker.window_id = None
                if not worker.process.is_alive():
                    worker.process.join(0)
                    if worker.window_id is not None:
                        ended.append(
                            Ended(worker.window_id, False, worker.process.exitcode, now - worker.started)
                        )
                    worker.conn.close()
                    self._workers[i] = self._spawn()
        return ended

    def wait(self, timeout: float) -> None:
        """Sleep until a busy worker reports back (or `timeout` seconds), so a free worker gets the
        next window at once."""
        with self._lock:
            conns = [w.conn for w in self._workers if w.window_id is not None]
        if not conns:
            time.sleep(timeout)
            return
        try:
            wait(conns, timeout)
        except (OSError, ValueError):  # a connection closed meanwhile (its worker was replaced)
            time.sleep(min(timeout, 0.05))

    @staticmethod
    def _poll(worker: _Worker) -> int | None:
        try:
            if worker.conn.poll():
                done = worker.conn.recv()
                return int(done)
        except (EOFError, OSError):
            pass
        return None

    def stop_window(self, window_id: int) -> bool:
        """Kill the worker holding `window_id` (past the working timeout) and start a fresh one."""
        with self._lock:
            for i, worker in enumerate(self._workers):
                if worker.window_id == window_id:
                    _kill(worker.process)
                    worker.conn.close()
                    self._workers[i] = self._spawn()
                    return True
        return False

    def close(self) -> list[int]:
        """Stop every worker (busy ones killed at once, idle ones told to leave); the windows that were
        cut short, for the daemon to release."""
        with self._lock:
            cut = [w.window_id for w in self._workers if w.window_id is not None]
            for worker in self._workers:
                if worker.window_id is not None:
                    _kill(worker.process)
                else:
                    try:
                        worker.conn.send(None)
                    except OSError:
                        _kill(worker.process)
            for worker in self._workers:
                worker.process.join(5)
                if worker.process.is_alive():
                    _kill(worker.process)
                worker.conn.close()
            self._workers = []
        return cut


def _kill(process: BaseProcess) -> None:
    if process.is_alive():
        process.kill()
        process.join(5)


# --- inside a worker process ----------------------------------------------------------------------


def _watch(daemon_pid: int, parent_pid: int) -> None:
    """Exit at once when the daemon is gone (its forkserver then exits too): a window of a dead daemon
    belongs to whichever daemon takes it over when the lease runs out."""
    while True:
        time.sleep(0.5)
        try:
            os.kill(daemon_pid, 0)
        except ProcessLookupError:
            os._exit(0)
        except PermissionError:
            pass
        if os.getppid() != parent_pid:
            os._exit(0)


def _worker_main(
    conn: Connection, settings: Settings, daemon_id: str, daemon_pid: int, log_level: int | str
) -> None:
    # The daemon decides about signals: Ctrl-C in a terminal reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    configure_logging(log_level)
    threading.Thread(target=_watch, args=(daemon_pid, os.getppid()), daemon=True).start()
    from core.db import make_engine
    from runs.files import FileStore
    from scheduling.tick import run_window
    from snapshots.store import SnapshotStore

    engine = make_engine(settings.database_url)
    store = SnapshotStore(engine, settings.snapshot_dir)
    files = FileStore.from_settings(settings, engine)
    try:
        while True:
            try:
                order = conn.recv()
            except (EOFError, OSError):
                return
            if order is None:
                return
            window_id, now = order
            try:
                run_window(engine, settings, store, files, window_id=window_id, daemon_id=daemon_id, now=now)
            except SQLAlchemyError as exc:
                detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
                log.warning("window %s: database problem (%s: %s)", window_id, type(exc).__name__, detail)
            except Exception:
                log.exception("window %s: the worker failed", window_id)
            try:
                conn.send(window_id)
            except OSError:
                return
    finally:
        engine.dispose()
