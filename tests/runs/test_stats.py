"""Statistics: saved reports, schedules hook, runs by outcome, storage counted once per file, by report."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from analytics.report import Scope
from runs import saved
from runs.stats import statistics
from tests.tenants import NOW, Jobs, Tenant, last_month


def test_statistics_count_what_the_business_did(jobs: Jobs, tenant: Tenant, other: Tenant) -> None:
    first = jobs.generate(tenant, "admin")
    cached = jobs.generate(tenant, "staff", now=NOW + dt.timedelta(minutes=1))
    payments = jobs.generate(tenant, "manager", slug="payments", now=NOW + dt.timedelta(minutes=2))
    failed = jobs.generate(
        tenant, "staff", params=last_month(granularity="fortnight"), now=NOW + dt.timedelta(minutes=3)
    )
    jobs.generate(other, "admin")  # another business: never counted
    assert cached.cached and not failed.ok
    with jobs.session() as s:
        saved.ensure_system_templates(s, tenant.business_id)
        saved.save(
            s, tenant.scope("staff"), tenant.user_id("staff"), "Mine", "sales_summary", last_month(), ["json"]
        )
        saved.save(
            s,
            tenant.scope("manager"),
            tenant.user_id("manager"),
            "Team",
            "payments",
            last_month(),
            ["json"],
            as_template=True,
        )
        stats = statistics(s, tenant.scope("manager"))

    assert (stats.saved_reports, stats.active_saved_reports, stats.scheduled) == (2, 2, 0)
    assert stats.templates >= 12 + 1
    assert (stats.runs, stats.successes, stats.failures, stats.cached_runs) == (4, 3, 1, 1)
    # The cached run shares the first run's file: stored once, counted once.
    assert stats.stored_files == 2
    assert stats.storage_bytes == first.bytes + payments.bytes
    assert stats.by_report.to_dict("records") == [
        {"report": "Sales summary", "slug": "sales_summary", "runs": 3, "completed": 2, "failed": 1},
        {"report": "Payments", "slug": "payments", "runs": 1, "completed": 1, "failed": 0},
    ]
    assert [r.id for r in stats.recent] == [failed.run_id, payments.run_id, cached.run_id, first.run_id]


def test_staff_statistics_cover_their_own_runs(jobs: Jobs, tenant: Tenant) -> None:
    jobs.generate(tenant, "admin")
    jobs.generate(tenant, "staff", slug="payments")
    with jobs.session() as s:
        stats = statistics(s, tenant.scope("staff"), recent=5)
    assert (stats.runs, stats.successes) == (1, 1)
    assert list(stats.by_report["slug"]) == ["payments"]


def test_the_schedule_count_comes_from_a_hook(jobs: Jobs, tenant: Tenant) -> None:
    seen: list[int] = []

    def three_schedules(session: Session, scope: Scope) -> int:
        seen.append(scope.business_id)
        return 3

    with jobs.session() as s:
        stats = statistics(s, tenant.scope("admin"), count_schedules=three_schedules)
    assert stats.scheduled == 3 and seen == [tenant.business_id]
    assert (stats.runs, stats.storage_bytes, len(stats.by_report), stats.recent) == (0, 0, 0, [])
