"""Run history: what each role sees, filters, NotFound for foreign ids, deletes that keep shared files, re-runs."""

from __future__ import annotations

import datetime as dt

import pytest

from core.db import bump_data_version, session_scope
from reports.registry import NotFound
from runs.history import (
    count_runs,
    delete_runs,
    describe_parameters,
    get_run,
    list_runs,
    rerun,
    run_users,
    runs_frame,
)
from tests.tenants import NOW, Jobs, Tenant, last_month


def _ids(runs: list) -> list[int]:  # type: ignore[type-arg]
    return [r.id for r in runs]


@pytest.fixture
def history(jobs: Jobs, tenant: Tenant, other: Tenant) -> dict[str, int]:
    """Runs of every kind: by admin, manager, two staff users, a failure, and another business's run."""
    made = {
        "admin": jobs.generate(tenant, "admin", now=NOW).run_id,
        "manager": jobs.generate(
            tenant, "manager", slug="payments", now=NOW + dt.timedelta(minutes=1)
        ).run_id,
        "staff": jobs.generate(
            tenant, "staff", params=last_month(period="last_7_days"), now=NOW + dt.timedelta(minutes=2)
        ).run_id,
        "staff2": jobs.generate(
            tenant, "staff2", params=last_month(granularity="week"), now=NOW + dt.timedelta(minutes=3)
        ).run_id,
        "failed": jobs.generate(
            tenant, "staff", params=last_month(granularity="fortnight"), now=NOW + dt.timedelta(minutes=4)
        ).run_id,
        "other": jobs.generate(other, "admin", now=NOW).run_id,
    }
    return made


def test_admins_and_managers_see_every_run_of_their_business(
    jobs: Jobs, tenant: Tenant, history: dict[str, int]
) -> None:
    expected = [history[k] for k in ("failed", "staff2", "staff", "manager", "admin")]  # newest first
    with jobs.session() as s:
        for who in ("admin", "manager"):
            assert _ids(list_runs(s, tenant.scope(who))) == expected
            assert count_runs(s, tenant.scope(who)) == 5
        runs = list_runs(s, tenant.scope("admin"))
    assert runs[0].status == "failed" and runs[0].files == () and "fortnight" in runs[0].error
    assert runs[-1].title == "Sales summary" and runs[-1].formats == ("json",) and len(runs[-1].files) == 1


def test_staff_see_only_their_own_runs(jobs: Jobs, tenant: Tenant, history: dict[str, int]) -> None:
    with jobs.session() as s:
        assert _ids(list_runs(s, tenant.scope("staff"))) == [history["failed"], history["staff"]]
        assert _ids(list_runs(s, tenant.scope("staff2"))) == [history["staff2"]]
        # The user filter cannot widen a staff user's view.
        assert _ids(list_runs(s, tenant.scope("staff"), user=tenant.users["admin"][1])) == [
            history["failed"],
            history["staff"],
        ]
        assert run_users(s, tenant.scope("staff")) == [tenant.users["staff"][1]]
        assert len(run_users(s, tenant.scope("manager"))) == 4


def test_filters_and_paging(jobs: Jobs, tenant: Tenant, history: dict[str, int]) -> None:
    admin = tenant.scope("admin")
    with jobs.session() as s:
        assert _ids(list_runs(s, admin, slug="payments")) == [history["manager"]]
        assert _ids(list_runs(s, admin, status="failed")) == [history["failed"]]
        assert _ids(list_runs(s, admin, user=tenant.users["staff2"][1])) == [history["staff2"]]
        assert _ids(list_runs(s, admin, since=NOW + dt.timedelta(minutes=3))) == [
            history["failed"],
            history["staff2"],
        ]
        assert _ids(list_runs(s, admin, limit=2, offset=1)) == [history["staff2"], history["staff"]]
        assert count_runs(s, admin, status="completed") == 4


def test_foreign_and_missing_runs_look_the_same(jobs: Jobs, tenant: Tenant, history: dict[str, int]) -> None:
    with jobs.session() as s:
        assert get_run(s, tenant.scope("staff"), history["staff"]).id == history["staff"]
        messages = set()
        for scope, run_id in (
            (tenant.scope("admin"), history["other"]),
            (tenant.scope("staff"), history["staff2"]),
            (tenant.scope("staff"), history["admin"]),
            (tenant.scope("admin"), history["other"] + 10_000),
        ):
            with pytest.raises(NotFound) as refused:
                get_run(s, scope, run_id)
            messages.add(str(refused.value))
        assert messages == {"No such run."}


def test_a_delete_keeps_files_another_run_still_uses(jobs: Jobs, tenant: Tenant) -> None:
    first = jobs.generate(tenant, "admin")
    cached = jobs.generate(tenant, "staff", now=NOW + dt.timedelta(minutes=5))
    assert cached.cached
    path = jobs.files.absolute(f"b{tenant.business_id}/{first.run_id}/{first.files[0].file_name}")
    with jobs.session() as s:
        result = delete_runs(s, jobs.files, tenant.scope("admin"), [first.run_id])
        assert (result.runs, result.files_removed) == (1, 0)
        assert path.exists()
        info, data = jobs.files.read(s, tenant.scope("staff"), cached.files[0].id)
        assert len(data) == info.bytes
        run = get_run(s, tenant.scope("staff"), cached.run_id)
        assert run.source_run_id is None  # the source row is gone; the copy stands on its own
    # The copy still serves as a cache source.
    assert jobs.generate(tenant, "manager", now=NOW + dt.timedelta(minutes=6)).source_run_id == cached.run_id
    with jobs.session() as s:
        runs = [r.id for r in list_runs(s, tenant.scope("admin"))]
        result = delete_runs(s, jobs.files, tenant.scope("admin"), runs)
    assert (result.runs, result.files_removed, result.bytes_freed) == (2, 1, first.bytes)
    assert not path.exists() and not path.parent.exists()


def test_a_bulk_delete_with_a_foreign_id_deletes_nothing(
    jobs: Jobs, tenant: Tenant, history: dict[str, int]
) -> None:
    with jobs.session() as s:
        for scope, ids in (
            (tenant.scope("admin"), [history["admin"], history["other"]]),
            (tenant.scope("staff"), [history["staff"], history["staff2"]]),
        ):
            with pytest.raises(NotFound):
                delete_runs(s, jobs.files, scope, ids)
        assert count_runs(s, tenant.scope("admin")) == 5
        result = delete_runs(s, jobs.files, tenant.scope("staff"), [history["staff"], history["failed"]])
        assert result.runs == 2 and result.files_removed == 1
        assert _ids(list_runs(s, tenant.scope("staff"))) == []
        assert delete_runs(s, jobs.files, tenant.scope("staff"), []).runs == 0


def test_a_rerun_reuses_parameters_and_formats(jobs: Jobs, tenant: Tenant) -> None:
    first = jobs.generate(tenant, "staff", params=last_month(granularity="week", region="North"))
    with jobs.session() as s:
        again = rerun(
            s,
            jobs.store,
            jobs.files,
            jobs.settings,
            tenant.scope("staff"),
            tenant.user_id("staff"),
            first.run_id,
            now=NOW,
        )
        assert again.cached and again.source_run_id == first.run_id
    with session_scope(jobs.engine) as s:
        bump_data_version(s, tenant.business_id)
    with jobs.session() as s:
        fresh = rerun(
            s,
            jobs.store,
            jobs.files,
            jobs.settings,
            tenant.scope("staff"),
            tenant.user_id("staff"),
            first.run_id,
            now=NOW,
        )
        assert fresh.ok and not fresh.cached
        run = get_run(s, tenant.scope("staff"), fresh.run_id)
        assert run.parameters == {
            "period": "last_month",
            "tz": "UTC",
            "filters": {"region": ["North"]},
            "options": {"granularity": "week"},
        }
        with pytest.raises(NotFound):
            rerun(
                s, jobs.store, jobs.files, jobs.settings, tenant.scope("staff2"), None, first.run_id, now=NOW
            )


def test_runs_as_a_table_for_people(jobs: Jobs, tenant: Tenant, history: dict[str, int]) -> None:
    with jobs.session() as s:
        runs = list_runs(s, tenant.scope("admin"))
    frame = runs_frame(runs, "Europe/Berlin")
    assert list(frame.columns) == [
        "id",
        "report",
        "status",
        "cached",
        "user",
        "via",
        "created",
        "parameters",
        "formats",
        "rows",
        "size",
        "duration_s",
        "error",
    ]
    last = frame.iloc[-1]
    assert last["created"] == dt.datetime(2025, 2, 10, 13, 0)  # 12:00 UTC in Berlin
    assert last["formats"] == "JSON" and last["size"].endswith(("bytes", "KB"))
    assert frame.iloc[0]["size"] == ""  # the failed run stored nothing


def test_parameters_in_one_line() -> None:
    # A relative period as it resolved when the run was made (naive UTC), named.
    at = dt.datetime(2025, 2, 10, 12, 0)
    assert describe_parameters({"period": "last_month", "tz": "UTC"}, "sales_summary", at) == (
        "1–31 Jan 2025 (last month)"
    )
    assert describe_parameters({"tz": "UTC"}, "credit_aging", at) == "1–10 Feb 2025 (month to date)"
    assert (
        describe_parameters(
            {
                "start": "2025-01-01",
                "end": "2025-01-31",
                "filters": {"region": ["North", "South"]},
                "options": {"granularity": "day"},
            },
            "sales_summary",
            at,
        )
        == "1–31 Jan 2025 · region: North, South · granularity: day"
    )


def test_a_comparison_is_part_of_the_parameters_line() -> None:
    at = dt.datetime(2025, 2, 10, 12, 0)
    year = {"start": "2025-01-01", "end": "2025-01-31", "compare": "last_year"}
    assert describe_parameters(year, "kpi_dashboard", at) == "1–31 Jan 2025 · vs 1–31 Jan 2024"
    custom = {**year, "compare": "custom", "compare_start": "2024-11-01", "compare_end": "2024-11-30"}
    assert describe_parameters(custom, "kpi_dashboard", at) == "1–31 Jan 2025 · vs 1–30 Nov 2024"
    previous = {"start": "2025-01-01", "end": "2025-01-31"}  # the default comparison goes unsaid
    assert describe_parameters(previous, "kpi_dashboard", at) == "1–31 Jan 2025"
