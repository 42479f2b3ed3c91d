"""A generation that keeps working for as long as a test needs, by real means: the business's snapshot
build lock held by another thread, as an import still being copied holds it.

A business without a current snapshot builds one when a report first reads it (SnapshotStore.current),
under that lock: every generation for the business, in this process or in a daemon's worker process,
waits there, after its run row says "running" and its window "generating". Tests kill, stop and race
daemons meanwhile, then `release()` the lock and the generation goes on.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from snapshots.store import SnapshotStore

HOLD_AT_MOST_S = 300.0  # a test that forgets to release does not hang past pytest's timeout


class HeldSnapshot:
    """Hold business `business_id`'s snapshot build lock from now until `release()` (or the with-block's end)."""

    def __init__(self, store: SnapshotStore, business_id: int) -> None:
        assert not store.is_current(business_id), "a current snapshot is read without taking the lock"
        self._held, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._hold, args=(store, business_id), daemon=True)
        self._thread.start()
        assert self._held.wait(10), "could not take the snapshot lock"

    def _hold(self, store: SnapshotStore, business_id: int) -> None:
        with store.building(business_id):
            self._held.set()
            self._release.wait(HOLD_AT_MOST_S)

    def release(self) -> None:
        """Let the waiting generations go on (again and again: only the first call does anything)."""
        self._release.set()
        self._thread.join(10)

    def __enter__(self) -> HeldSnapshot:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.release()


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (read from /proc): a daemon's forkserver and its worker processes."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(parent, []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def gone(pid: int) -> bool:
    """True once process `pid` has exited (a zombie nobody reaped yet counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")
