"""generate_run: stored files, run rows, progress, cache hits and misses, the rate limit, failures."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from analytics.report import ParamError, ReportParams
from core.db import bump_data_version, session_scope
from core.models import AuditEvent, Run, RunFile
from exporters import EXPORTERS
from ingest.importer import import_file
from runs.files import format_label
from runs.runner import RateLimited, cache_key, generations_used
from tests.tenants import NOW, Jobs, Tenant, last_month


def _run(jobs: Jobs, run_id: int) -> Run:
    with jobs.session() as s:
        run = s.get(Run, run_id)
        assert run is not None
        s.expunge(run)
        return run


def _files(jobs: Jobs, run_id: int) -> list[RunFile]:
    with jobs.session() as s:
        rows = list(s.scalars(select(RunFile).where(RunFile.run_id == run_id).order_by(RunFile.id)))
        s.expunge_all()
        return rows


def test_a_run_stores_its_file_and_records_everything(jobs: Jobs, tenant: Tenant) -> None:
    steps: list[tuple[int, int, str]] = []
    out = jobs.generate(tenant, "manager", progress=lambda d, t, label: steps.append((d, t, label)))

    assert out.ok and not out.cached and out.error == ""
    assert out.report is not None
    assert out.rows == sum(t.row_count for t in out.report.tables.values()) > 0
    run = _run(jobs, out.run_id)
    assert (run.status, run.trigger, run.formats, run.rows) == ("completed", "builder", "json", out.rows)
    assert run.username == tenant.users["manager"][1] and run.user_id == tenant.user_id("manager")
    assert run.created_at == run.started_at == NOW.replace(tzinfo=None)
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.parameters == {"period": "last_month", "tz": "UTC"}
    assert len(run.cache_key) == 64 and run.data_version >= 1

    [stored] = _files(jobs, out.run_id)
    assert stored.path == f"b{tenant.business_id}/{out.run_id}/{stored.file_name}"
    assert stored.file_name.startswith("sales_summary_20250101-20250131_") and stored.file_name.endswith(
        ".json"
    )
    path = jobs.files.absolute(stored.path)
    assert path.stat().st_size == stored.bytes == run.bytes == out.bytes
    assert json.loads(path.read_bytes())["report"] == "sales_summary"
    assert [f.id for f in out.files] == [stored.id]

    assert [(d, t) for d, t, _ in steps] == [(0, 2), (1, 2), (2, 2)]
    assert steps[1][2] == "Writing the JSON file" and steps[-1][2] == "Done"
    with jobs.session() as s:
        event = s.scalars(
            select(AuditEvent).where(
                AuditEvent.business_id == tenant.business_id,
                AuditEvent.entity == "run",
                AuditEvent.entity_id == str(out.run_id),
            )
        ).one()
    assert event.event_type == "report_generated" and event.business_id == tenant.business_id
    assert event.detail["cached"] is False and event.detail["rows"] == out.rows


def test_the_same_request_again_is_cached_and_shares_the_files(jobs: Jobs, tenant: Tenant) -> None:
    first = jobs.generate(tenant, "admin")
    steps: list[str] = []
    second = jobs.generate(
        tenant, "staff", now=NOW + dt.timedelta(hours=2), progress=lambda d, t, label: steps.append(label)
    )

    assert second.ok and second.cached and second.source_run_id == first.run_id
    assert second.report is None and (second.rows, second.bytes) == (first.rows, first.bytes)
    assert [f.path for f in _files(jobs, second.run_id)] == [f.path for f in _files(jobs, first.run_id)]
    assert {f.id for f in second.files}.isdisjoint({f.id for f in first.files})
    run = _run(jobs, second.run_id)
    assert run.cached and run.status == "completed" and run.username == tenant.users["staff"][1]
    assert steps[-1] == "Reused the stored files (cached)"

    third = jobs.generate(tenant, "manager", now=NOW + dt.timedelta(hours=3))
    assert third.cached and third.source_run_id == first.run_id  # points at the original, not the copy


def test_a_relative_period_and_its_explicit_dates_share_the_cache(jobs: Jobs, tenant: Tenant) -> None:
    first = jobs.generate(tenant, params=last_month())
    explicit = ReportParams.from_mapping({"start": "2025-01-01", "end": "2025-01-31"})
    assert jobs.generate(tenant, params=explicit).cached
    # Filter value order does not matter either; a different filter does.
    a = jobs.generate(tenant, params=last_month(region="North,South"))
    assert jobs.generate(tenant, params=last_month(region="South,North")).source_run_id == a.run_id
    assert not jobs.generate(tenant, params=last_month(region="North")).cached
    assert first.run_id != a.run_id


@pytest.mark.parametrize(
    "change",
    ["other formats", "other option", "other report", "other business"],
)
def test_a_different_request_is_not_cached(jobs: Jobs, tenant: Tenant, other: Tenant, change: str) -> None:
    jobs.generate(tenant)
    kwargs: dict[str, object] = {}
    who = tenant
    if change == "other formats":
        kwargs["formats"] = ("json", next(f for f in EXPORTERS if f != "json")) if len(EXPORTERS) > 1 else ()
        if not kwargs["formats"]:
            pytest.skip("only one export format is registered")
    elif change == "other option":
        kwargs["params"] = last_month(granularity="week")
    elif change == "other report":
        kwargs["slug"] = "payments"
    else:
        who = other
    out = jobs.generate(who, **kwargs)  # type: ignore[arg-type]
    assert out.ok and not out.cached


def test_new_data_misses_the_cache(jobs: Jobs, tenant: Tenant) -> None:
    first = jobs.generate(tenant)
    with session_scope(jobs.engine) as s:
        bump_data_version(s, tenant.business_id)
    second = jobs.generate(tenant)
    assert second.ok and not second.cached
    assert _run(jobs, second.run_id).data_version == _run(jobs, first.run_id).data_version + 1


def test_an_import_misses_the_cache(jobs: Jobs, tenant: Tenant) -> None:
    jobs.generate(tenant)
    data = b"customer_code,name,customer_type,region\nZ9,Zeta Shop,retail,North\n"
    result = import_file(jobs.engine, tenant.business_id, "customers", "customers.csv", data, jobs.settings)
    assert result.ok, result.errors
    assert not jobs.generate(tenant).cached


def test_the_cache_lasts_cache_hours(jobs: Jobs, tenant: Tenant) -> None:
    first = jobs.generate(tenant)
    assert jobs.generate(tenant, now=NOW + dt.timedelta(hours=23, minutes=59)).source_run_id == first.run_id
    late = jobs.generate(tenant, now=NOW + dt.timedelta(hours=24, minutes=1))
    assert late.ok and not late.cached
    short = jobs.settings.with_changes(cache_hours=1)
    assert not jobs.generate(tenant, now=NOW + dt.timedelta(hours=25, minutes=30), settings=short).cached
    off = jobs.settings.with_changes(cache_hours=0)
    assert not jobs.generate(tenant, now=NOW + dt.timedelta(hours=25, minutes=31), settings=off).cached


def test_a_missing_file_is_generated_again(jobs: Jobs, tenant: Tenant) -> None:
    first = jobs.generate(tenant)
    [stored] = _files(jobs, first.run_id)
    jobs.files.absolute(stored.path).unlink()
    again = jobs.generate(tenant)
    assert again.ok and not again.cached


def test_the_audit_log_is_never_cached(jobs: Jobs, tenant: Tenant) -> None:
    params = ReportParams.from_mapping({"period": "last_7_days"})
    assert jobs.generate(tenant, slug="audit_log", params=params).ok
    again = jobs.generate(tenant, slug="audit_log", params=params)
    assert again.ok and not again.cached


def test_staff_cannot_generate_the_audit_log(jobs: Jobs, tenant: Tenant) -> None:
    out = jobs.generate(tenant, "staff", slug="audit_log")
    assert out.status == "failed" and "cannot generate" in out.error and out.files == ()


def test_the_rate_limit_counts_generations_per_user_and_hour(jobs: Jobs, tenant: Tenant) -> None:
    limited = jobs.settings.with_changes(rate_limit_per_hour=3)
    periods = ("last_month", "last_7_days", "last_30_days", "year_to_date", "last_week")
    for i, period in enumerate(periods[:3]):
        out = jobs.generate(
            tenant,
            "staff",
            params=last_month(period=period),
            now=NOW + dt.timedelta(minutes=i),
            settings=limited,
        )
        assert out.ok and not out.cached
    with jobs.session() as s:
        assert generations_used(s, tenant.user_id("staff"), now=NOW + dt.timedelta(minutes=10)) == 3

    with pytest.raises(RateLimited) as refused:
        jobs.generate(
            tenant,
            "staff",
            params=last_month(period=periods[3]),
            now=NOW + dt.timedelta(minutes=10),
            settings=limited,
        )
    assert str(refused.value) == (
        "You have generated 3 reports in the last hour; the limit is 3. Try again at 13:00."
    )
    assert refused.value.retry_at == dt.datetime(2025, 2, 10, 13, 0)
    assert refused.value.retry_after == 50 * 60  # from 12:10 (an HTTP Retry-After header)
    assert (refused.value.code, refused.value.http_status) == ("rate_limited", 429)

    # A cached answer costs nothing and is still given; other users and schedules are not limited.
    assert jobs.generate(tenant, "staff", now=NOW + dt.timedelta(minutes=11), settings=limited).cached
    assert jobs.generate(
        tenant,
        "manager",
        params=last_month(period=periods[3]),
        now=NOW + dt.timedelta(minutes=12),
        settings=limited,
    ).ok
    assert jobs.generate(
        tenant,
        "staff",
        params=last_month(period=periods[4]),
        now=NOW + dt.timedelta(minutes=13),
        settings=limited,
        trigger="schedule",
    ).ok
    # One hour after the first generation a slot is free again.
    later = jobs.generate(
        tenant,
        "staff",
        params=last_month(period=periods[3]),
        now=NOW + dt.timedelta(minutes=61),
        settings=limited,
    )
    assert later.ok
    with jobs.session() as s:
        refused_runs = s.scalar(
            select(Run.id).where(Run.user_id == tenant.user_id("staff"), Run.status != "completed")
        )
    assert refused_runs is None  # a refused request leaves no run behind


def test_the_rate_limit_message_uses_the_business_time_zone(jobs: Jobs, engine: object) -> None:
    from tests.tenants import make_tenant

    manila = make_tenant(jobs.engine, "Manila Traders")
    with session_scope(jobs.engine) as s:
        from core.models import Business

        business = s.get(Business, manila.business_id)
        assert business is not None
        business.timezone = "Asia/Manila"
    limited = jobs.settings.with_changes(rate_limit_per_hour=1)
    jobs.generate(manila, "staff", settings=limited)
    with pytest.raises(RateLimited, match=r"Try again at 21:00\.$"):
        jobs.generate(manila, "staff", params=last_month(period="last_7_days"), settings=limited)


def test_a_file_over_the_size_limit_fails_the_run_and_leaves_nothing(jobs: Jobs, tenant: Tenant) -> None:
    tiny = jobs.settings.with_changes(max_file_bytes=200)
    out = jobs.generate(tenant, settings=tiny)
    assert out.status == "failed" and not out.files
    assert out.error.startswith("The JSON file would be ")
    assert out.error.endswith("; the limit is 200 bytes. Narrow the period or filters.")
    run = _run(jobs, out.run_id)
    assert (run.status, run.error, run.rows, run.bytes) == ("failed", out.error, 0, 0)
    assert run.finished_at is not None
    assert _files(jobs, out.run_id) == []
    assert not (jobs.files.root / f"b{tenant.business_id}" / str(out.run_id)).exists()
    with jobs.session() as s:
        types = s.scalars(
            select(AuditEvent.event_type).where(
                AuditEvent.business_id == tenant.business_id,
                AuditEvent.entity == "run",
                AuditEvent.entity_id == str(out.run_id),
            )
        ).all()
    assert types == ["report_failed"]


def test_a_later_format_failing_removes_the_files_already_written(jobs: Jobs, tenant: Tenant) -> None:
    if len(EXPORTERS) < 2:
        pytest.skip("only one export format is registered")
    params = last_month(region="North")
    sizes = sorted((jobs.generate(tenant, formats=(fmt,), params=params).bytes, fmt) for fmt in EXPORTERS)
    (small, first), (big, last) = sizes[0], sizes[-1]
    assert small < big
    limit = jobs.settings.with_changes(max_file_bytes=small)
    out = jobs.generate(tenant, formats=(first, last), params=params, settings=limit)
    assert out.status == "failed" and f"The {format_label(last)} file would be" in out.error
    assert not (jobs.files.root / f"b{tenant.business_id}" / str(out.run_id)).exists()
    assert _files(jobs, out.run_id) == []


def test_a_bad_parameter_fails_the_run_with_its_message(jobs: Jobs, tenant: Tenant) -> None:
    out = jobs.generate(tenant, params=last_month(granularity="fortnight"))
    assert out.status == "failed"
    assert out.error == "granularity must be one of auto, day, week, month, not 'fortnight'."
    unknown = jobs.generate(tenant, slug="no_such_report")
    assert unknown.status == "failed" and unknown.error.startswith("Unknown report 'no_such_report'")


def test_formats_are_checked_before_any_run(jobs: Jobs, tenant: Tenant) -> None:
    with pytest.raises(ParamError, match="Choose at least one file format"):
        jobs.generate(tenant, formats=())
    with pytest.raises(ParamError, match="Unknown format 'docx'"):
        jobs.generate(tenant, formats=("docx",))
    with jobs.session() as s:
        assert s.scalar(select(Run.id).where(Run.business_id == tenant.business_id)) is None


def test_the_cache_key_ignores_format_order_and_now(tenant: Tenant) -> None:
    a = cache_key(1, "sales_summary", last_month(now=NOW.isoformat()), ["xlsx", "json"], "t3")
    b = cache_key(
        1, "sales_summary", last_month(now=(NOW + dt.timedelta(days=1)).isoformat()), ["json", "xlsx"], "t3"
    )
    c = cache_key(
        1, "sales_summary", last_month(now=(NOW + dt.timedelta(days=40)).isoformat()), ["json", "xlsx"], "t3"
    )
    assert a == b != c  # forty days later "last month" is another month
    assert a != cache_key(1, "sales_summary", last_month(now=NOW.isoformat()), ["xlsx", "json"], "t4")


@pytest.mark.parametrize("fmt", sorted(EXPORTERS))
def test_every_registered_format_is_stored_through_the_file_store(
    jobs: Jobs, tenant: Tenant, fmt: str
) -> None:
    out = jobs.generate(tenant, slug="sales_summary", formats=(fmt,))
    assert out.ok, out.error
    [stored] = _files(jobs, out.run_id)
    path = jobs.files.absolute(stored.path)
    assert path.stat().st_size == stored.bytes > 0
    assert stored.file_name.endswith("." + EXPORTERS[fmt].extension_for(out.report))  # type: ignore[arg-type]
    assert stored.mime == EXPORTERS[fmt].mime_for(out.report)  # type: ignore[arg-type]
    assert [p.name for p in path.parent.iterdir()] == [stored.file_name]  # no temporary file left
