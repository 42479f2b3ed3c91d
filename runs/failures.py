"""Why a generation failed, in words, and whether trying again later can help (a passing failure).

Passing: the disk full or a file operation failing, the database away or busy, the data changed by
an import while the report was being read, memory or a time limit. Lasting: a bad parameter, an
unknown report, a file over the size limit, a report the role may not run, a programming error.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.errors import TallyboardError

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_DATA_CHANGED = "The data changed while"  # reports.lines: a newer snapshot replaced the one being read


@dataclass(frozen=True)
class Failure:
    """What went wrong (a sentence for people) and whether a later attempt may succeed."""

    text: str
    passing: bool


def first_line(exc: BaseException) -> str:
    """The exception's message, first line only and at most 300 characters ('' when it has none)."""
    lines = str(exc).strip().splitlines()
    return lines[0].strip()[:300] if lines else ""


def explain(exc: BaseException) -> Failure:
    """Sort a failure into passing or lasting and say what happened."""
    import duckdb

    from snapshots.store import SnapshotChanging

    detail = first_line(exc)
    if isinstance(exc, SnapshotChanging):
        return Failure(detail or "The data was changing while the report read it.", True)
    if isinstance(exc, TallyboardError):  # a sentence for people: a bad parameter, a file too large, ...
        return Failure(detail or type(exc).__name__, False)
    if isinstance(exc, TimeoutError):
        return Failure(f"An operation timed out ({detail or 'no answer in time'}).", True)
    if isinstance(exc, ConnectionError):
        return Failure(f"A connection failed ({detail or type(exc).__name__}).", True)
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        where = f" at {exc.filename}" if exc.filename else ""
        return Failure(f"The disk is full (no space left{where}).", True)
    if isinstance(exc, OSError):
        reason = exc.strerror or detail or type(exc).__name__
        where = f": {exc.filename}" if exc.filename else ""
        return Failure(f"A file could not be written or read ({reason}{where}).", True)
    if isinstance(exc, OperationalError | DisconnectionError | PoolTimeout) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        cause = first_line(exc.orig) if isinstance(exc, DBAPIError) and exc.orig is not None else detail
        return Failure(f"The database could not be reached or was busy ({cause}).", True)
    if isinstance(exc, RuntimeError) and detail.startswith(_DATA_CHANGED):
        return Failure(
            "The data changed while the report was being generated (an import finished meanwhile).", True
        )
    if isinstance(exc, duckdb.Error):
        passing = isinstance(
            exc, duckdb.IOException | duckdb.OutOfMemoryException | duckdb.InterruptException
        )
        if passing or ".parquet" in detail:
            return Failure(f"The report's data snapshot could not be read ({detail}).", passing)
    if isinstance(exc, MemoryError):
        return Failure("The computer ran out of memory while generating the report.", True)
    return Failure(
        f"The report could not be generated ({type(exc).__name__}{': ' + detail if detail else ''}).", False
    )
