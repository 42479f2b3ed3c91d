"""Saved reports and templates: system templates, who sees what, apply, delete."""

from __future__ import annotations

import pytest

from analytics.report import ReportParams
from reports.registry import REPORTS, NotFound
from runs import saved
from runs.saved import SavedError
from tests.tenants import Jobs, Tenant, last_month


def _save(
    jobs: Jobs, tenant: Tenant, who: str, name: str, *, template: bool = False, slug: str = "sales_summary"
) -> int:
    with jobs.session() as s:
        info = saved.save(
            s,
            tenant.scope(who),
            tenant.user_id(who),
            name,
            slug,
            last_month(region="North", granularity="week"),
            ["json"],
            as_template=template,
        )
        return info.id


def test_system_templates_one_per_report_and_idempotent(jobs: Jobs, tenant: Tenant, other: Tenant) -> None:
    with jobs.session() as s:
        assert saved.ensure_system_templates(s, tenant.business_id) == len(REPORTS)
        assert saved.ensure_system_templates(s, tenant.business_id) == 0
        assert saved.ensure_system_templates(s, other.business_id) == len(REPORTS)
        admin = saved.list_saved(s, tenant.scope("admin"), tenant.user_id("admin"))
    assert [t.slug for t in admin] == [r.slug for r in REPORTS]
    assert all(t.system and t.is_template and t.kind == "System template" for t in admin)
    by_slug = {t.slug: t for t in admin}
    assert by_slug["kpi_dashboard"].parameters == {"period": "last_month"}
    assert by_slug["sales_summary"].parameters == {"period": "last_month", "options": {"granularity": "day"}}
    assert by_slug["credit_aging"].parameters == {"period": "month_to_date"}
    assert by_slug["audit_log"].parameters == {"period": "last_7_days"}
    assert by_slug["sales_summary"].name == "Sales summary"


def test_what_each_user_sees(jobs: Jobs, tenant: Tenant, other: Tenant) -> None:
    with jobs.session() as s:
        saved.ensure_system_templates(s, tenant.business_id)
    mine = _save(jobs, tenant, "staff", "My North weekly")
    shared = _save(jobs, tenant, "manager", "Team template", template=True)
    theirs = _save(jobs, tenant, "staff2", "Staff2 private")
    foreign = _save(jobs, other, "admin", "Other business template", template=True)
    with jobs.session() as s:
        staff = saved.list_saved(s, tenant.scope("staff"), tenant.user_id("staff"))
        admin = saved.list_saved(s, tenant.scope("admin"), tenant.user_id("admin"))
    staff_ids = [i.id for i in staff]
    assert mine in staff_ids and shared in staff_ids
    assert theirs not in staff_ids and foreign not in staff_ids
    assert "audit_log" not in {i.slug for i in staff}  # an admin-only report
    assert "audit_log" in {i.slug for i in admin}
    assert [i.kind for i in staff[-2:]] == ["Template", "Saved report"]  # system first, then shared, then own
    assert staff[-1].owner == tenant.users["staff"][1]
    with jobs.session() as s:
        for scope, uid, sid in (
            (tenant.scope("staff"), tenant.user_id("staff"), theirs),
            (tenant.scope("admin"), tenant.user_id("admin"), foreign),
            (tenant.scope("admin"), tenant.user_id("admin"), foreign + 10_000),
        ):
            with pytest.raises(NotFound, match="No such saved report"):
                saved.get_saved(s, scope, uid, sid)


def test_apply_gives_back_the_setup(jobs: Jobs, tenant: Tenant) -> None:
    sid = _save(jobs, tenant, "staff", "North weekly")
    with jobs.session() as s:
        setup = saved.apply(s, tenant.scope("staff"), tenant.user_id("staff"), sid)
        assert (setup.slug, setup.formats, setup.name) == ("sales_summary", ("json",), "North weekly")
        assert setup.params == ReportParams.from_mapping(
            {"period": "last_month", "region": "North", "granularity": "week"}
        )
        saved.ensure_system_templates(s, tenant.business_id)
        template = next(
            t for t in saved.list_saved(s, tenant.scope("staff"), None) if t.slug == "credit_aging"
        )
        applied = saved.apply(s, tenant.scope("staff"), None, template.id, tz="Asia/Manila")
    assert applied.params.period == "month_to_date" and applied.params.tz == "Asia/Manila"
    assert applied.formats == saved.template_setup("credit_aging")[1]


def test_names_are_checked(jobs: Jobs, tenant: Tenant) -> None:
    _save(jobs, tenant, "staff", "Weekly")
    for name, message in (
        ("  ", "Give the saved report a name"),
        ("Weekly", "already a saved report"),
        ("x" * 121, "too long"),
    ):
        with pytest.raises(SavedError, match=message):
            _save(jobs, tenant, "staff", name)
    _save(jobs, tenant, "staff2", "Weekly")  # another user's private names do not clash
    with pytest.raises(SavedError, match="Your role cannot use"):
        _save(jobs, tenant, "staff", "Audit", slug="audit_log")


def test_delete_by_owner_or_admin(jobs: Jobs, tenant: Tenant) -> None:
    own = _save(jobs, tenant, "staff", "Mine")
    team = _save(jobs, tenant, "manager", "Team", template=True)
    with jobs.session() as s:
        saved.ensure_system_templates(s, tenant.business_id)
        system = saved.list_saved(s, tenant.scope("admin"), None)[0].id
        with pytest.raises(SavedError, match="Only its owner or an administrator"):
            saved.delete(s, tenant.scope("staff"), tenant.user_id("staff"), team)
        with pytest.raises(SavedError, match="System templates cannot be deleted"):
            saved.delete(s, tenant.scope("admin"), tenant.user_id("admin"), system)
        with pytest.raises(NotFound):
            saved.delete(s, tenant.scope("staff2"), tenant.user_id("staff2"), own)
        saved.delete(s, tenant.scope("staff"), tenant.user_id("staff"), own)
        saved.delete(s, tenant.scope("admin"), tenant.user_id("admin"), team)
        names = {i.name for i in saved.list_saved(s, tenant.scope("admin"), tenant.user_id("admin"))}
    assert "Mine" not in names and "Team" not in names
