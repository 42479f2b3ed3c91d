"""Stored report files: atomic writes under the reports folder, a size limit, and reads only by id after the scope check.

Layout: `{reports_dir}/b{business_id}/{run_id}/{file_name}`. RunFile.path holds the part after
`reports_dir`, so the folder can move. A cached run gets its own RunFile rows pointing at the same
path as the run it reused: a file is removed only when no RunFile row refers to it any more.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from analytics.report import Scope
from core.db import database_identity
from core.errors import Invalid
from core.hashing import file_sha256
from core.ids import storable_id
from core.models import Run, RunFile
from core.settings import Settings
from reports.registry import NotFound
from runs.access import visible_runs

if TYPE_CHECKING:
    from typing_extensions import Buffer

FORMAT_LABELS = {"csv": "CSV", "xlsx": "Excel", "pdf": "PDF", "json": "JSON"}

# A file growing past this many times the limit is abandoned mid-write: the run fails anyway and
# the disk is spared, at the price of an approximate size in the message.
_ABANDON_FACTOR = 4
_CHUNK = 1024 * 1024


def format_label(fmt: str) -> str:
    """'xlsx' -> 'Excel': how people call a format."""
    return FORMAT_LABELS.get(fmt, fmt.upper())


def format_bytes(n: int) -> str:
    """A size for people: '532 bytes', '12.4 KB', '140 MB' (1 KB = 1024 bytes)."""
    if n < 1024:
        return f"{n:,} byte" + ("" if n == 1 else "s")
    value = float(n)
    for unit in ("KB", "MB", "GB", "TB"):
        value /= 1024
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    raise AssertionError("unreachable")


class FileTooLarge(Invalid):
    """A report file over the per-file limit; the message tells the user what to do."""


class FileGone(NotFound):
    """A file the caller may see but that is no longer stored (retention or removed by hand)."""


@dataclass(frozen=True)
class StoredFile:
    """A file just written: its path relative to the reports folder, size and SHA-256."""

    path: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class FileInfo:
    """One stored file of a run, as pages and the daemon see it (download by `id`)."""

    id: int
    run_id: int
    fmt: str
    file_name: str
    mime: str
    bytes: int
    deleted: bool = False

    @property
    def label(self) -> str:
        """'Excel', 'PDF'; 'CSV (ZIP)' for a CSV export of several tables."""
        bundled = self.fmt == "csv" and self.file_name.endswith(".zip")
        return format_label(self.fmt) + (" (ZIP)" if bundled else "")


def file_info(row: RunFile) -> FileInfo:
    return FileInfo(
        row.id, row.run_id, row.fmt, row.file_name, row.mime, int(row.bytes), row.deleted_at is not None
    )


def too_large_message(label: str, size: int, limit: int, *, at_least: bool = False) -> str:
    shown, cap = format_bytes(size), format_bytes(limit)
    if shown == cap:  # 100.2 MB against 100 MB must not read "100 MB; the limit is 100 MB"
        shown = f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"
    over = "over " if at_least else ""
    return f"The {label} file would be {over}{shown}; the limit is {cap}. Narrow the period or filters."


class _CappedFile(io.FileIO):
    """A raw file that refuses to grow past `ceiling` bytes (the exporter's write then raises)."""

    def __init__(self, fd: int, ceiling: int) -> None:
        super().__init__(fd, "wb", closefd=True)
        self.ceiling = ceiling

    def write(self, b: Buffer) -> int:
        if self.tell() + memoryview(b).nbytes > self.ceiling:
            raise _Abandoned(self.ceiling)
        return super().write(b)


class _Abandoned(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class FileStore:
    """The reports folder: writes run files atomically under a size limit, serves files by id."""

    def __init__(self, root: Path, engine: Engine | None = None) -> None:
        self.root = root
        self._engine = engine
        self._namespace: str | None = None if engine is not None else ""

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None) -> FileStore:
        """The reports folder of `settings`; with `engine`, new files go under that database's
        identity, so two databases sharing one data folder never write over each other's runs."""
        return cls(settings.reports_dir, engine)

    # -- paths -------------------------------------------------------------------------------
    @property
    def namespace(self) -> str:
        """'db-<identity>/' of the database the files belong to ('' without an engine)."""
        if self._namespace is None:
            assert self._engine is not None
            self._namespace = f"db-{database_identity(self._engine)}/"
        return self._namespace

    def relative_path(self, business_id: int, run_id: int, file_name: str) -> str:
        name = Path(file_name).name
        if name in ("", ".", "..") or name.startswith("."):
            raise ValueError(f"not a usable file name: {file_name!r}")
        return f"{self.namespace}b{int(business_id)}/{int(run_id)}/{name}"

    def absolute(self, relative: str) -> Path:
        """The file's place on disk; refuses paths that would leave the reports folder."""
        root = self.root.resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or path == root:
            raise ValueError(f"path outside the reports folder: {relative!r}")
        return path

    def exists(self, relative: str, size: int | None = None) -> bool:
        """True when the file is on disk (and has `size` bytes, when given)."""
        try:
            stat = self.absolute(relative).stat()
        except (OSError, ValueError):
            return False
        return size is None or stat.st_size == size

    # -- writing -----------------------------------------------------------------------------
    def write(
        self,
        business_id: int,
        run_id: int,
        file_name: str,
        writer: Callable[[IO[bytes]], None],
        *,
        max_bytes: int,
        label: str = "report",
    ) -> StoredFile:
        """Write one file with `writer(out)`: into a temp file beside the target, then renamed.

        Raises FileTooLarge (and leaves nothing behind) when the file passes `max_bytes`
        (settings.max_file_bytes); any error from `writer` also leaves no file, partial or temporary.
        """
        relative = self.relative_path(business_id, run_id, file_name)
        target = self.absolute(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        limit = max_bytes
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            raw = _CappedFile(fd, max(limit * _ABANDON_FACTOR, limit + 1))
            try:
                with io.BufferedWriter(raw) as out:
                    writer(out)
                    if not out.closed:
                        out.flush()
                        os.fsync(raw.fileno())
            except _Abandoned as exc:
                raise FileTooLarge(too_large_message(label, exc.size, limit, at_least=True)) from None
            size = tmp.stat().st_size
            if size > limit:
                raise FileTooLarge(too_large_message(label, size, limit))
            digest = file_sha256(tmp)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            _prune(target.parent, self.root)
            raise
        return StoredFile(relative, size, digest)

    # -- removing ----------------------------------------------------------------------------
    def remove(self, relative: str) -> bool:
        """Delete one stored file (and its run folder once empty); False when it was not there."""
        try:
            path = self.absolute(relative)
        except ValueError:
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _prune(path.parent, self.root)
        return True

    def remove_run_folder(self, business_id: int, run_id: int) -> None:
        """Delete everything a run wrote itself (used when the run fails half-way)."""
        folder = self.root / f"{self.namespace}b{int(business_id)}" / str(int(run_id))
        shutil.rmtree(folder, ignore_errors=True)

    # -- reading, only by id after the scope check ------------------------------------------
    def find(self, session: Session, scope: Scope, run_file_id: int) -> tuple[FileInfo, Path]:
        """The file `run_file_id` and where it lies, if `scope` may see its run.

        A missing id, another business's id and (for staff) another user's run all raise the same
        NotFound. A visible file no longer on disk raises FileGone (a NotFound) saying so.
        """
        if not storable_id(run_file_id):
            raise NotFound("No such file.")
        row = session.execute(
            select(RunFile)
            .join(Run, Run.id == RunFile.run_id)
            .where(RunFile.id == run_file_id, RunFile.business_id == scope.business_id, visible_runs(scope))
        ).scalar_one_or_none()
        if row is None:
            raise NotFound("No such file.")
        info = file_info(row)
        if row.deleted_at is not None or not self.exists(row.path):
            raise FileGone(
                f"{info.file_name} is no longer stored (old files are removed after a while). "
                "Re-run the report to get a fresh file."
            )
        return info, self.absolute(row.path)

    def open(self, session: Session, scope: Scope, run_file_id: int) -> tuple[FileInfo, IO[bytes]]:
        """The file's info and an open binary handle (close it when done)."""
        info, path = self.find(session, scope, run_file_id)
        return info, open(path, "rb")  # the caller closes it

    def read(self, session: Session, scope: Scope, run_file_id: int) -> tuple[FileInfo, bytes]:
        """The file's info and its bytes (for a download button)."""
        info, path = self.find(session, scope, run_file_id)
        return info, path.read_bytes()


def sweep_parts(folder: Path, *, older_than_s: float, now: float | None = None) -> int:
    """Delete temporary `.part` files (a write cut off by kill -9 or a power loss) under `folder`
    whose last change is more than `older_than_s` seconds old, and the run folders they leave empty;
    how many files went. A write in progress keeps its file's time fresh, so it is never touched."""
    if not folder.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - older_than_s
    removed = 0
    for path in folder.rglob(".*.part"):
        try:
            if not path.is_file() or path.is_symlink() or path.stat().st_mtime >= cutoff:
                continue
            path.unlink()
        except OSError:
            continue
        removed += 1
        _prune(path.parent, folder)
    return removed


def _prune(folder: Path, root: Path) -> None:
    """Remove `folder` if it is an empty run folder under `root` (never the root or business folder).

    A run folder is `b{business}/{run}`, directly under `root` (files written before the database
    identity was part of the path) or under `root/db-{identity}`."""
    try:
        resolved, top = folder.resolve(), root.resolve()
        is_run_folder = resolved.name.isdigit() and resolved.parent.name.startswith("b")
        if is_run_folder and resolved.is_relative_to(top) and not any(folder.iterdir()):
            folder.rmdir()
    except OSError:
        pass
