"""Which runs a caller may see: the tenant and role check every run and file look-up goes through."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from accounts.users import acting_user, record_refusal
from analytics.definition import ReportDefinition
from analytics.report import Scope
from core.errors import Forbidden, NotFound
from core.ids import storable_id
from core.models import ROLES, Run, SavedReport, Schedule, User
from reports.registry import REGISTRY, REPORTS

# Roles that see every run of their business; everyone else (staff) sees only their own.
SEES_ALL_RUNS = frozenset({"admin", "manager"})


def report_allowed(scope: Scope, slug: str) -> bool:
    """May `scope`'s role generate report `slug`? Its definition's `roles` say. An unknown slug is
    not refused here: generating it answers "unknown report", and a saved report of a report that
    is gone stays visible so that it can be deleted."""
    defn = REGISTRY.get(slug)
    return defn is None or scope.role in defn.roles


def allowed_reports(scope: Scope) -> list[ReportDefinition]:
    """The registry's reports `scope`'s role may generate, in registry order."""
    return [r for r in REPORTS if report_allowed(scope, r.slug)]


def sees_all_runs(scope: Scope) -> bool:
    return scope.role in SEES_ALL_RUNS


def visible_runs(scope: Scope) -> ColumnElement[bool]:
    """A WHERE clause for the runs `scope` may see: its business, and for staff only their own runs.

    Staff runs are matched by user id, looked up from the scope's username inside the business, so
    an empty or foreign username sees nothing (fails closed).
    """
    clause: ColumnElement[bool] = Run.business_id == scope.business_id
    if not sees_all_runs(scope):
        own_id = (
            select(User.id)
            .where(User.business_id == scope.business_id, User.username == scope.user)
            .scalar_subquery()
        )
        clause = and_(clause, Run.user_id == own_id)
    return clause


def _in_business(
    session: Session, model: type[User | SavedReport | Schedule], row_id: int, business_id: int
) -> bool:
    if not storable_id(row_id):
        return False
    owner = session.scalar(select(model.business_id).where(model.id == row_id))
    return owner == business_id


def check_run_references(
    session: Session,
    scope: Scope,
    user_id: int | None,
    saved_report_id: int | None,
    schedule_id: int | None,
) -> None:
    """NotFound (the same answer as a missing id), audited in the caller's business, unless the user,
    saved report and schedule a run is to record all belong to the caller's business."""
    for what, model, row_id in (
        ("user", User, user_id),
        ("saved_report", SavedReport, saved_report_id),
        ("schedule", Schedule, schedule_id),
    ):
        if row_id is None or _in_business(session, model, row_id, scope.business_id):
            continue
        record_refusal(
            session,
            scope.business_id,
            user=scope.user,
            action="generate_report",
            reason=f"the {what.replace('_', ' ')} is not one of this business's",
            entity=what,
            entity_id=str(row_id),
        )
        raise NotFound(f"No such {what.replace('_', ' ')}.")


def acting_scope(session: Session, scope: Scope, action: str, user_id: int | None = None) -> Scope:
    """`scope` with the role the database gives its user now (the operator's scope as it is);
    Forbidden, audited, for a user who is not an active user of the scope's business, or when
    `user_id` (the id a caller acts under) is not that user's."""
    user = acting_user(session, scope, ROLES, action)
    if user is not None and user_id is not None and user_id != user.id:
        record_refusal(
            session,
            scope.business_id,
            user=scope.user,
            action=action,
            reason="acting under another user's id",
            entity="user",
            entity_id=str(user_id),
        )
        raise Forbidden(f"You are not allowed to {action.replace('_', ' ')}.")
    return scope if user is None else Scope(scope.business_id, user.username, user.role)


def refuse_foreign(
    session: Session, scope: Scope, model: type[Run | SavedReport], ids: list[int], action: str
) -> None:
    """Audit an attempt on ids that exist in another business (the caller then answers NotFound)."""
    foreign = session.scalars(
        select(model.id).where(model.id.in_(ids), model.business_id != scope.business_id)
    ).all()
    if foreign:
        record_refusal(
            session,
            scope.business_id,
            user=scope.user,
            action=action,
            reason="the ids belong to another business",
            entity=model.__tablename__,
            entity_id=",".join(str(i) for i in sorted(foreign))[:100],
        )
