"""Saved reports and templates: a named builder setup (report, parameters, formats) to apply in one click.

Three kinds, all per business: system templates (one per report, no owner, created by
`ensure_system_templates`), templates users share with their business, and a user's own saved
reports. A user sees the system templates, the business's templates and their own saved reports;
anything else answers NotFound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from analytics.report import ParamError, ReportParams, Scope
from core.clock import aware, utc_naive
from core.errors import Conflict, Forbidden, Invalid
from core.ids import storable_id
from core.models import Business, SavedReport, User
from exporters import EXPORTERS
from reports.audit_log import record_event
from reports.registry import REGISTRY, REPORTS, NotFound, definition
from runs.access import acting_scope, refuse_foreign, report_allowed
from runs.runner import check_formats

MAX_NAME = 120


class SavedError(Invalid):
    """A saved-report request that cannot be carried out; the message says why."""


class SavedConflict(Conflict, SavedError):
    """The name is taken by another saved report or template the caller can see."""


class SavedForbidden(Forbidden, SavedError):
    """The caller's role may not use the report, or may not delete this template."""


@dataclass(frozen=True)
class SavedInfo:
    """A saved report or template as the builder shows it."""

    id: int
    name: str
    description: str
    slug: str
    parameters: dict[str, Any]
    formats: tuple[str, ...]
    is_template: bool
    system: bool
    owner_id: int | None
    owner: str
    active: bool
    created_at: dt.datetime

    @property
    def kind(self) -> str:
        if self.system:
            return "System template"
        return "Template" if self.is_template else "Saved report"

    @property
    def title(self) -> str:
        defn = REGISTRY.get(self.slug)
        return defn.title if defn else self.slug


@dataclass(frozen=True)
class SavedSetup:
    """What applying a saved report gives the builder: report, parameters and formats."""

    saved_id: int
    name: str
    slug: str
    params: ReportParams
    formats: tuple[str, ...]


def _visible(scope: Scope, user_id: int | None) -> ColumnElement[bool]:
    own = SavedReport.owner_id == user_id if user_id is not None else SavedReport.id.is_(None)
    return and_(
        SavedReport.business_id == scope.business_id,
        or_(SavedReport.system.is_(True), SavedReport.is_template.is_(True), own),
    )


def save(
    session: Session,
    scope: Scope,
    user_id: int,
    name: str,
    slug: str,
    params: ReportParams,
    formats: Sequence[str],
    *,
    as_template: bool = False,
    description: str = "",
    now: dt.datetime | None = None,
) -> SavedInfo:
    """Save a builder setup under `name` for its owner (or as a template for the business); commits.

    Relative periods are kept as names, so 'last_month' moves on with the calendar.
    """
    scope = acting_scope(session, scope, "save_reports", user_id)
    clean = " ".join(name.split())
    if not clean:
        raise SavedError("Give the saved report a name.")
    if len(clean) > MAX_NAME:
        raise SavedError(f"The name is too long ({len(clean)} characters); keep it under {MAX_NAME}.")
    definition(slug)
    if not report_allowed(scope, slug):
        raise SavedForbidden(f"Your role cannot use the {slug!r} report.")
    chosen = check_formats(formats)
    taken = session.scalar(
        select(SavedReport.id).where(_visible(scope, user_id), SavedReport.name == clean).limit(1)
    )
    if taken is not None:
        raise SavedConflict(
            f"There is already a saved report or template named {clean!r}; choose another name."
        )
    owner = session.get(User, user_id)
    if owner is None or owner.business_id != scope.business_id:
        raise NotFound("No such user.")
    stamp = utc_naive(aware(now))
    row = SavedReport(
        business_id=scope.business_id,
        owner_id=user_id,
        name=clean,
        description=description.strip(),
        report_slug=slug,
        parameters=params.to_dict(),
        formats=",".join(chosen),
        is_template=as_template,
        system=False,
        active=True,
        created_at=stamp,
        updated_at=stamp,
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        scope.business_id,
        "saved_report_created",
        user=scope.user,
        entity="saved_report",
        entity_id=str(row.id),
        detail={"name": clean, "report": slug, "template": as_template},
        at=stamp,
    )
    session.commit()
    return _info(row, owner.username)


def list_saved(
    session: Session, scope: Scope, user_id: int | None, *, slug: str | None = None
) -> list[SavedInfo]:
    """System templates (registry order), then the business's templates, then the user's own, by name."""
    where = [_visible(scope, user_id)]
    if slug:
        where.append(SavedReport.report_slug == slug)
    rows = session.execute(
        select(SavedReport, User.username).outerjoin(User, User.id == SavedReport.owner_id).where(*where)
    ).all()
    order = {r.slug: i for i, r in enumerate(REPORTS)}
    infos: list[SavedInfo] = []
    seen_system: set[str] = set()
    for row, username in sorted(rows, key=lambda r: r[0].id):
        if not report_allowed(scope, row.report_slug):
            continue
        if row.system:  # two processes may have raced to create the same template: show one
            if row.report_slug in seen_system:
                continue
            seen_system.add(row.report_slug)
        infos.append(_info(row, username or ""))

    def key(info: SavedInfo) -> tuple[int, int, str]:
        group = 0 if info.system else (1 if info.is_template else 2)
        return group, order.get(info.slug, len(order)) if info.system else 0, info.name.lower()

    return sorted(infos, key=key)


def get_saved(session: Session, scope: Scope, user_id: int | None, saved_id: int) -> SavedInfo:
    if not storable_id(saved_id):
        raise NotFound("No such saved report.")
    row = session.execute(
        select(SavedReport, User.username)
        .outerjoin(User, User.id == SavedReport.owner_id)
        .where(SavedReport.id == saved_id, _visible(scope, user_id))
    ).one_or_none()
    if row is None or not report_allowed(scope, row[0].report_slug):
        raise NotFound("No such saved report.")
    return _info(row[0], row[1] or "")


def apply(
    session: Session, scope: Scope, user_id: int | None, saved_id: int, *, tz: str | None = None
) -> SavedSetup:
    """The report, parameters and formats of a visible saved report or template.

    `tz` (the business's time zone) fills in templates saved without one (system templates).
    """
    info = get_saved(session, scope, user_id, saved_id)
    values = dict(info.parameters)
    if tz and "tz" not in values:
        values["tz"] = tz
    try:
        params = ReportParams.from_mapping(values)
    except ParamError as exc:
        raise SavedError(f"The saved report {info.name!r} no longer works: {exc}") from exc
    return SavedSetup(info.id, info.name, info.slug, params, info.formats)


def delete(session: Session, scope: Scope, user_id: int | None, saved_id: int) -> None:
    """Delete a saved report or template: its owner or an admin may; system templates stay. Commits."""
    scope = acting_scope(session, scope, "delete_saved_reports", user_id)
    try:
        info = get_saved(session, scope, user_id, saved_id)
    except NotFound:
        if storable_id(saved_id):
            refuse_foreign(session, scope, SavedReport, [saved_id], "delete_saved_reports")
        raise
    if info.system:
        raise SavedForbidden("System templates cannot be deleted.")
    if info.owner_id != user_id and scope.role != "admin":
        raise SavedForbidden("Only its owner or an administrator can delete this template.")
    row = session.get(SavedReport, saved_id)
    assert row is not None
    session.delete(row)
    record_event(
        session,
        scope.business_id,
        "saved_report_deleted",
        user=scope.user,
        entity="saved_report",
        entity_id=str(saved_id),
        detail={"name": info.name, "report": info.slug},
    )
    session.commit()


def template_setup(slug: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The parameters and formats of report `slug`'s system template (its definition's `template`);
    options the report does not take, values outside their choices and unknown formats are left out."""
    defn = definition(slug)
    spec = defn.template
    params: dict[str, Any] = {"period": spec.period}
    known = {o.name: o for o in defn.options}
    options = {
        k: v
        for k, v in spec.options.items()
        if k in known and (not known[k].choices or v in known[k].choices)
    }
    if options:
        params["options"] = options
    formats = tuple(f for f in spec.formats if f in EXPORTERS) or (next(iter(EXPORTERS)),)
    parameters = ReportParams.from_mapping(params).to_dict()
    parameters.pop("tz", None)  # a system template follows the business's time zone (see `apply`)
    return parameters, formats


def ensure_system_templates(session: Session, business_id: int) -> int:
    """Create the missing system templates of a business (one per report in the registry); commits.

    Idempotent; returns how many were created. The business row is locked first so two processes
    do not both create them (PostgreSQL; SQLite writers queue anyway).
    """
    existing = set(
        session.scalars(
            select(SavedReport.report_slug).where(
                SavedReport.business_id == business_id, SavedReport.system.is_(True)
            )
        ).all()
    )
    if all(r.slug in existing for r in REPORTS):
        return 0
    session.execute(select(Business.id).where(Business.id == business_id).with_for_update()).one()
    existing = set(
        session.scalars(
            select(SavedReport.report_slug).where(
                SavedReport.business_id == business_id, SavedReport.system.is_(True)
            )
        ).all()
    )
    created = 0
    for defn in REPORTS:
        if defn.slug in existing:
            continue
        parameters, formats = template_setup(defn.slug)
        session.add(
            SavedReport(
                business_id=business_id,
                owner_id=None,
                name=defn.title,
                description=defn.description,
                report_slug=defn.slug,
                parameters=parameters,
                formats=",".join(formats),
                is_template=True,
                system=True,
                active=True,
            )
        )
        created += 1
    session.commit()
    return created


def _info(row: SavedReport, owner: str) -> SavedInfo:
    return SavedInfo(
        id=row.id,
        name=row.name,
        description=row.description or "",
        slug=row.report_slug,
        parameters=dict(row.parameters or {}),
        formats=tuple(f for f in (row.formats or "").split(",") if f),
        is_template=row.is_template,
        system=row.system,
        owner_id=row.owner_id,
        owner=owner,
        active=row.active,
        created_at=row.created_at,
    )
