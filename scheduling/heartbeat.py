"""The scheduler's heartbeat: each daemon records when it was last alive; the app shows "Scheduler last seen 12 s ago"."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import aware, utc_naive
from core.models import DaemonHeartbeat

# A daemon ticks every 15-30 s; three missed ticks and it counts as not running.
STALE_AFTER = dt.timedelta(seconds=90)
# Heartbeats of daemons gone this long are removed (every restart has a new daemon id).
FORGET_AFTER = dt.timedelta(days=7)


@dataclass(frozen=True)
class SchedulerStatus:
    """What the app shows: `text` ("Scheduler last seen 12 s ago" / "Scheduler not running"),
    whether a daemon looks alive, the newest heartbeat's age in seconds, and how many are alive."""

    running: bool
    text: str
    age_s: float | None
    daemons: int


def beat(
    engine: Engine,
    daemon_id: str,
    *,
    now: dt.datetime,
    started_at: dt.datetime,
    hostname: str = "",
    pid: int = 0,
    status: str = "running",
) -> None:
    """Record that daemon `daemon_id` is alive at `now` (or has `status` 'stopped'); an upsert."""
    stamp = utc_naive(aware(now))
    values = {"last_seen_at": stamp, "status": status}
    with engine.begin() as conn:
        result = conn.execute(
            update(DaemonHeartbeat).where(DaemonHeartbeat.daemon_id == daemon_id).values(**values)
        )
        if result.rowcount == 0:
            try:
                with conn.begin_nested():
                    conn.execute(
                        insert(DaemonHeartbeat).values(
                            daemon_id=daemon_id[:120],
                            hostname=hostname[:200],
                            pid=pid,
                            started_at=utc_naive(aware(started_at)),
                            **values,
                        )
                    )
            except IntegrityError:  # a twin inserted first: update it instead
                conn.execute(
                    update(DaemonHeartbeat).where(DaemonHeartbeat.daemon_id == daemon_id).values(**values)
                )
        conn.execute(delete(DaemonHeartbeat).where(DaemonHeartbeat.last_seen_at < stamp - FORGET_AFTER))


def format_age(seconds: float) -> str:
    """12 -> '12 s', 300 -> '5 min', 7200 -> '2 h', 172800 -> '2 days'."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h"
    days = s // 86400
    return f"{days} day" + ("" if days == 1 else "s")


def scheduler_status(
    session: Session, *, now: dt.datetime, stale_after: dt.timedelta = STALE_AFTER
) -> SchedulerStatus:
    """Is a scheduler daemon alive, judged by the newest heartbeat of a running daemon?"""
    stamp = utc_naive(aware(now))
    newest = session.scalar(select(func.max(DaemonHeartbeat.last_seen_at)))
    alive = int(
        session.scalar(
            select(func.count())
            .select_from(DaemonHeartbeat)
            .where(DaemonHeartbeat.status == "running", DaemonHeartbeat.last_seen_at >= stamp - stale_after)
        )
        or 0
    )
    if newest is None:
        return SchedulerStatus(False, "Scheduler not running (never seen)", None, 0)
    age = max(0.0, (stamp - newest).total_seconds())
    if alive:
        newest_alive = session.scalar(
            select(func.max(DaemonHeartbeat.last_seen_at)).where(DaemonHeartbeat.status == "running")
        )
        age = max(0.0, (stamp - (newest_alive or newest)).total_seconds())
        return SchedulerStatus(True, f"Scheduler last seen {format_age(age)} ago", age, alive)
    return SchedulerStatus(False, f"Scheduler not running (last seen {format_age(age)} ago)", age, 0)
