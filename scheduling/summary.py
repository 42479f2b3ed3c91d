"""Small schedule and admin queries the pages need beside scheduling/schedules: the active-schedule count for
Statistics, a user's subscriptions for Account, and a business's retention setting (its Admin page)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.users import acting_user
from analytics.report import Scope
from core.clock import aware, utc_naive
from core.errors import Invalid, NotFound
from core.models import Business, Schedule
from core.settings import Settings
from reports.audit_log import record_event
from reports.registry import REGISTRY
from runs.retention import retention_days
from scheduling.timerules import describe_rule

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


def get_retention_days(session: Session, settings: Settings, actor: Scope) -> tuple[int, bool]:
    """The actor's business's retention period in days (admins), and whether it is its own setting
    (False: the installation default applies)."""
    acting_user(session, actor, ("admin",), "view_retention")
    own = session.scalar(select(Business.retention_days).where(Business.id == actor.business_id))
    return retention_days(session, settings, actor.business_id), own is not None


def set_retention_days(
    session: Session, actor: Scope, days: int | None, *, now: dt.datetime | None = None
) -> int | None:
    """Store the actor's business's retention period (admins; None: back to the installation
    default), read by the daemon's retention pass; audited, commits."""
    acting_user(session, actor, ("admin",), "change_retention")
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS
    ):
        raise Invalid(f"Keep files between 1 and {MAX_RETENTION_DAYS} days, not {days!r}.")
    stamp = utc_naive(aware(now))
    business = session.get(Business, actor.business_id)
    if business is None:
        raise NotFound("No such business.")
    business.retention_days = days
    record_event(
        session,
        actor.business_id,
        "retention_changed",
        user=actor.user,
        entity="business",
        entity_id=str(actor.business_id),
        detail={"days": days},
        at=stamp,
    )
    session.commit()
    return days
