"""Which runs a caller may see: the tenant and role check every run and file look-up goes through."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, select

from analytics.definition import ReportDefinition
from analytics.models import Run, User
from analytics.registry import REPORTS
from analytics.report import Scope

# Roles that see every run of their business; everyone else (staff) sees only their own.
SEES_ALL_RUNS = frozenset({"admin", "manager"})
# Reports only some roles may generate (the audit log is the Admin section's data). This belongs on
# ReportDefinition once the registry carries roles; until then it lives here, beside the run rules.
REPORT_ROLES: dict[str, frozenset[str]] = {"audit_log": frozenset({"admin"})}


def report_allowed(scope: Scope, slug: str) -> bool:
    """May `scope`'s role generate report `slug`?"""
    roles = REPORT_ROLES.get(slug)
    return roles is None or scope.role in roles


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
