"""Small schedule and admin queries the pages need beside jobs/schedules: the active-schedule count for
Statistics, a user's subscriptions for Account, and the Admin's retention setting."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.audit import record_event
from analytics.models import AppSetting, Schedule
from analytics.registry import REGISTRY
from analytics.report import Scope
from analytics.settings import Settings
from jobs.clock import aware, utc_naive
from jobs.retention import RETENTION_KEY, retention_days
from jobs.timerules import describe_rule

MAX_RETENTION_DAYS = 3650


def count_active_schedules(session: Session, scope: Scope) -> int:
    """How many active (not paused) schedules the caller's business has."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Schedule)
            .where(Schedule.business_id == scope.business_id, Schedule.active.is_(True))
        )
        or 0
    )


@dataclass(frozen=True)
class Subscription:
    """A schedule that emails a given address: what, when, and whether it is running."""

    name: str
    report: str
    rule_text: str
    timezone: str
    active: bool
    next_due_at: dt.datetime | None


def subscriptions(session: Session, business_id: int, email: str) -> list[Subscription]:
    """The business's schedules with `email` among their recipients (case-insensitive)."""
    wanted = email.strip().lower()
    if not wanted:
        return []
    rows = session.scalars(
        select(Schedule).where(Schedule.business_id == business_id).order_by(Schedule.name, Schedule.id)
    ).all()
    out = []
    for row in rows:
        if wanted not in {str(r).strip().lower() for r in row.recipients or ()}:
            continue
        defn = REGISTRY.get(row.report_slug)
        out.append(
            Subscription(
                name=row.name,
                report=defn.title if defn else row.report_slug,
                rule_text=describe_rule(row.rule_kind, row.rule or {}),
                timezone=row.timezone,
                active=row.active,
                next_due_at=row.next_due_at,
            )
        )
    return out


def get_retention_days(session: Session, settings: Settings) -> int:
    return retention_days(session, settings)


def set_retention_days(
    session: Session, business_id: int, days: int, *, actor: str, now: dt.datetime | None = None
) -> int:
    """Store the installation's retention period (read by the daemon's retention pass); commits."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS:
        raise ValueError(f"Keep files between 1 and {MAX_RETENTION_DAYS} days, not {days!r}.")
    stamp = utc_naive(aware(now))
    row = session.get(AppSetting, RETENTION_KEY)
    if row is None:
        session.add(AppSetting(key=RETENTION_KEY, value=days, updated_at=stamp))
    else:
        row.value, row.updated_at = days, stamp
    record_event(
        session,
        business_id,
        "retention_changed",
        user=actor,
        entity="app_setting",
        entity_id=RETENTION_KEY,
        detail={"days": days},
        at=stamp,
    )
    session.commit()
    return days
