"""Columnar read snapshots: one set of Parquet files per database, business and data token, read by DuckDB.

The database (SQLite or PostgreSQL) is the system of record. Reports aggregate over a
denormalised Parquet copy of one business's rows. DuckDB builds the copy where the data is (its
sqlite and postgres extensions read the tables directly) and every aggregation runs in DuckDB's
columnar engine with one SQL dialect for both databases.

A snapshot answers for exactly one database state: its folder is named by the database's random
identity (written at `init-db`), the business id and the business's `data_token` (a random token
replaced by every committed import, never reused, so a restored backup or a second database in
the same data folder can never pick up a snapshot that was built from other rows). The token is
read before and after the copy; when an import committed in between, the copy is thrown away and
taken again, so a snapshot never mixes two versions.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
from sqlalchemy import Engine, select

from core.db import database_identity
from core.errors import NotFound, Unavailable
from core.models import Business
from core.settings import PROJECT_ROOT
from snapshots.copier import TABLE_NAMES

LAYOUT = 7  # bump when the snapshot's files or columns change
BUILD_ATTEMPTS = 3  # copies thrown away because an import committed during them, before giving up
KEEP_OLD_MINUTES = 30  # an older snapshot stays this long for readers still streaming from it
BUILD_MEMORY = "256MB"  # DuckDB spills the sort to the snapshot's temp folder past this

SNAPSHOT_TABLES = TABLE_NAMES


class SnapshotChanging(Unavailable, RuntimeError):
    """Imports kept committing while the snapshot was copied; the user should try again shortly."""


@dataclass(frozen=True)
class Snapshot:
    """A built snapshot on disk: the folder holding one Parquet file per table.

    `refreshing` is True when newer data exists and its snapshot is being built by someone else:
    this (complete, consistent) snapshot of the previous data answers meanwhile.
    """

    business_id: int
    data_version: int
    path: Path
    token: str = ""
    refreshing: bool = False

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A fresh in-memory DuckDB connection with one view per snapshot table."""
        con = duckdb.connect(":memory:", config={"threads": 2, "memory_limit": "512MB"})
        for name in SNAPSHOT_TABLES:
            file = _quote(self.path / f"{name}.parquet")
            con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{file}')")
        return con


class SnapshotStore:
    """Finds or builds the snapshot of a business's current data under `root`."""

    def __init__(
        self, engine: Engine, root: Path, *, keep_old: dt.timedelta = dt.timedelta(minutes=KEEP_OLD_MINUTES)
    ) -> None:
        self.engine = engine
        self.root = root
        self.keep_old = keep_old  # how long a replaced snapshot stays for readers still streaming
        self._identity: str | None = None

    # -- reading ------------------------------------------------------------------------------
    def current(self, business_id: int, *, wait: bool = True) -> Snapshot:
        """The snapshot of the business's current data, built here if missing.

        With `wait=False` (the pages) and another process already building it, the latest
        complete snapshot answers at once, marked `refreshing`; with none yet, this waits.
        """
        version, token = self._state(business_id)
        folder = self._folder(business_id, token)
        if _complete(folder):
            return Snapshot(business_id, version, folder, token)
        if not wait:
            with self.building(business_id, block=False) as got:
                if got:
                    return self._build_locked(business_id)
            previous = self.latest(business_id)
            if previous is not None:
                return replace(previous, refreshing=True)
        with self.building(business_id):
            return self._build_locked(business_id)

    def refresh(self, business_id: int) -> Snapshot:
        """Build the snapshot of the current data now unless it exists (called after an import)."""
        return self.current(business_id, wait=True)

    def latest(self, business_id: int) -> Snapshot | None:
        """The most recently built complete snapshot of the business, whatever its token."""
        best: tuple[str, Snapshot] | None = None
        for folder in self._business_dir(business_id).glob(f"*-layout{LAYOUT}"):
            info = _read_info(folder)
            if info is None:
                continue
            snap = Snapshot(business_id, int(info["data_version"]), folder, str(info["token"]))
            if best is None or str(info["built_at"]) > best[0]:
                best = (str(info["built_at"]), snap)
        return best[1] if best else None

    def is_current(self, business_id: int) -> bool:
        """True when the snapshot of the business's current data is built."""
        _, token = self._state(business_id)
        return _complete(self._folder(business_id, token))

    # -- layout -------------------------------------------------------------------------------
    def identity(self) -> str:
        if self._identity is None:
            self._identity = database_identity(self.engine)
        return self._identity

    def _business_dir(self, business_id: int) -> Path:
        return self.root / f"db-{self.identity()}" / f"b{int(business_id)}"

    def _folder(self, business_id: int, token: str) -> Path:
        # The layout version keeps a snapshot written by older code from being read by newer code.
        return self._business_dir(business_id) / f"{token}-layout{LAYOUT}"

    def _state(self, business_id: int) -> tuple[int, str]:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(Business.data_version, Business.data_token).where(Business.id == business_id)
            ).one_or_none()
        if row is None:
            raise NotFound(f"No business with id {business_id}.")
        return int(row[0] or 0), str(row[1])

    @contextmanager
    def building(self, business_id: int, *, block: bool = True) -> Iterator[bool]:
        """Hold the business's build lock (True), or with `block=False` yield False when another
        process holds it: pages then answer from the previous snapshot, marked refreshing."""
        base = self._business_dir(business_id)
        base.mkdir(parents=True, exist_ok=True)
        with open(base / ".lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if block else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- building -----------------------------------------------------------------------------
    def _build_locked(self, business_id: int) -> Snapshot:
        """Under the business's lock: the current snapshot, copied from the database if missing."""
        for _ in range(BUILD_ATTEMPTS):
            version, token = self._state(business_id)
            folder = self._folder(business_id, token)
            if _complete(folder):
                return Snapshot(business_id, version, folder, token)
            if self._copy(business_id, version, token, folder):
                self._prune(business_id, keep=folder)
                return Snapshot(business_id, version, folder, token)
        raise SnapshotChanging(
            "The data is changing right now (imports keep arriving); try again in a minute."
        )

    def _copy(self, business_id: int, version: int, token: str, folder: Path) -> bool:
        """Copy the business's rows into `folder`; False (nothing kept) when the data changed meanwhile.

        The copy runs in a child process: DuckDB's sqlite extension carries its own SQLite library,
        and two SQLite libraries in one process release each other's POSIX file locks on close,
        which corrupts a live database ("disk I/O error"). In its own process it is an ordinary
        second reader.
        """
        tmp = folder.parent / f"tmp-{os.getpid()}-{time.monotonic_ns()}"
        tmp.mkdir(parents=True)
        try:
            request = {
                "url": self.engine.url.render_as_string(hide_password=False),
                "schema": self._schema(),
                "business_id": int(business_id),
                "token": token,
                "folder": str(tmp),
                "extensions": str(self.root / ".duckdb_extensions"),
                "memory": BUILD_MEMORY,
            }
            done = subprocess.run(
                [sys.executable, "-m", "snapshots.copier"],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                cwd=PROJECT_ROOT,
                env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                check=False,
            )
            if done.returncode != 0:
                reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"Could not copy the data for reports: {reason}")
            if json.loads(done.stdout)["token"] != token:
                shutil.rmtree(tmp, ignore_errors=True)
                return False
            shutil.rmtree(tmp / ".spill", ignore_errors=True)
            _write_info(tmp, version, token)
            if _complete(folder):
                shutil.rmtree(tmp)
            else:
                os.rename(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return True

    def _schema(self) -> str:
        """PostgreSQL: the schema our tables live in (the connection's search path); SQLite: ''."""
        if self.engine.dialect.name != "postgresql":
            return ""
        with self.engine.connect() as conn:
            return str(conn.exec_driver_sql("SELECT current_schema()").scalar_one())

    def _prune(self, business_id: int, keep: Path) -> None:
        """Remove other snapshots of the business once no reader can still be streaming from them."""
        cutoff = dt.datetime.now(dt.UTC) - self.keep_old
        for old in self._business_dir(business_id).iterdir():
            if old == keep or not old.is_dir():
                continue
            if old.name.startswith("tmp-"):  # a copy in progress keeps writing into its folder
                stale = _mtime(old) < cutoff
            else:  # a replaced snapshot, or one whose built.json is unreadable
                info = _read_info(old)
                built = _parse_time(str(info["built_at"])) if info else None
                stale = built is None or built < cutoff
            if stale:
                shutil.rmtree(old, ignore_errors=True)

    def refresh_outdated(self) -> list[int]:
        """Build the snapshot of every business whose data changed since its last snapshot (the
        daemon's tick). Businesses that never had one (nobody looked at their reports) and those
        whose snapshot someone else is building are skipped; returns the ids built here."""
        with self.engine.connect() as conn:  # one query for every business's current token
            tokens = conn.execute(select(Business.id, Business.data_token).order_by(Business.id)).all()
        built: list[int] = []
        for business_id, token in tokens:
            if _complete(self._folder(business_id, str(token))) or self.latest(business_id) is None:
                continue
            with self.building(business_id, block=False) as got:
                if got:
                    self._build_locked(business_id)
                    built.append(business_id)
        return built


def _complete(folder: Path) -> bool:
    return (folder / "built.json").is_file()


def _write_info(folder: Path, version: int, token: str) -> None:
    info = {
        "data_version": version,
        "token": token,
        "built_at": dt.datetime.now(dt.UTC).isoformat(),
        "layout": LAYOUT,
    }
    with open(folder / "built.json", "w", encoding="utf-8") as handle:
        json.dump(info, handle)


def _read_info(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / "built.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _parse_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _mtime(path: Path) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except OSError:
        return dt.datetime.now(dt.UTC)


def _quote(path: Path) -> str:
    return path.as_posix().replace("'", "''")
