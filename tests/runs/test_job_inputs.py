"""Inputs that used to slip through or crash (issue 9, item 10): a 10 KB cron expression, ids beyond
what a row can have (2**70), and a report that cannot read its data snapshot - each answered with one
clear line, in the jobs functions and on the command line."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from core.models import Business
from core.settings import Settings
from manage import main
from runs.history import delete_runs, get_run
from runs.saved import get_saved
from scheduling.schedules import ScheduleSpec, create_schedule, get_schedule
from tests.factories import insert_tiny
from tests.tenants import Jobs, Tenant

HUGE = 2**70
NOW = dt.datetime(2025, 2, 10, 12, 0, tzinfo=dt.UTC)


def test_a_10_kb_cron_expression_is_refused_with_a_clear_message(jobs: Jobs, tenant: Tenant) -> None:
    expr = "0 8 * * " + ",".join(["1"] * 5000)  # 10 KB, and croniter would accept it
    spec = ScheduleSpec(
        report_slug="sales_summary", rule_kind="cron", rule={"expr": expr}, recipients=("a@example.com",)
    )
    with jobs.session() as s, pytest.raises(ValueError) as refused:
        create_schedule(s, tenant.scope("manager"), spec, now=NOW)
    assert str(refused.value).startswith(
        f"The cron expression is {len(expr):,} characters long; the limit is 200 (five fields:"
    )


# 2**70 overflows SQLite; 10**12 and 2**31 fit SQLite's 64-bit ids but not PostgreSQL's INTEGER keys
# (the API's fuzz run found /api/v1/runs/92137106213 answering 500 there).
@pytest.mark.parametrize("huge", [HUGE, 10**12, 2**31])
def test_a_run_file_schedule_or_saved_report_id_no_row_can_have_is_not_found(
    jobs: Jobs, tenant: Tenant, huge: int
) -> None:
    from reports.registry import NotFound

    scope = tenant.scope("admin")
    with jobs.session() as s:
        with pytest.raises(NotFound, match="No such run"):
            get_run(s, scope, huge)
        with pytest.raises(NotFound, match="No such run"):
            delete_runs(s, jobs.files, scope, [huge])
        with pytest.raises(NotFound, match="No such file"):
            jobs.files.find(s, scope, huge)
        with pytest.raises(NotFound, match="No such schedule"):
            get_schedule(s, scope, huge)
        with pytest.raises(NotFound, match="No such saved report"):
            get_saved(s, scope, tenant.user_id("admin"), huge)


def test_the_cli_answers_huge_ids_and_long_cron_expressions_in_one_line(
    cli_env: Settings, business: Business, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["schedules", "pause", str(HUGE), "--business", business.code]) == 1
    err = capsys.readouterr().err
    assert err == "error: No such schedule.\n"
    status = main(
        [
            "schedules", "add", "--report", "sales_summary", "--business", business.code,
            "--cron", "0 8 * * " + ",".join(["1"] * 5000), "--to", "a@example.com",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status != 0 and err.count("\n") == 1 and "the limit is 200" in err


def test_a_report_whose_snapshot_cannot_be_read_is_one_line_on_the_cli(
    cli_env: Settings, engine: Engine, business: Business, capsys: pytest.CaptureFixture[str]
) -> None:
    from snapshots.store import SnapshotStore

    insert_tiny(engine, business.id)
    snapshot = SnapshotStore(engine, cli_env.snapshot_dir).current(business.id)
    (snapshot.path / "lines.parquet").write_bytes(b"half a file: the snapshot changed under the report")
    status = main(["report", "kpi_dashboard", "--business", business.code, "--param", "period=last_month",
                   "--param", "now=2025-02-10T12:00:00", "--format", "json", "--out", "-"])  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("error: The report's data snapshot could not be read (") and err.count("\n") == 1
    assert "Traceback" not in err
