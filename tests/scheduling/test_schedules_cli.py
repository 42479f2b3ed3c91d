"""`python manage.py schedules add|list|pause|resume|delete`: happy paths and one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core.db import make_sessionmaker
from core.models import Business, Schedule
from core.settings import Settings
from manage import main
from tests.conftest import new_business
from tests.tenants import Tenant, make_tenant

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def shop(engine: Engine, cli_env: Settings) -> tuple[Business, Tenant]:
    tenant = make_tenant(engine, "Gamma Goods")
    with make_sessionmaker(engine)() as s:
        business = s.get(Business, tenant.business_id)
        assert business is not None
        business.timezone = "Europe/Berlin"
        s.commit()
        s.expunge(business)
    return business, tenant


def schedules(engine: Engine, business_id: int) -> list[Schedule]:
    with make_sessionmaker(engine)() as s:
        rows = list(
            s.scalars(select(Schedule).where(Schedule.business_id == business_id).order_by(Schedule.id))
        )
        s.expunge_all()
        return rows


def test_add_list_pause_resume_delete(
    engine: Engine, shop: tuple[Business, Tenant], capsys: pytest.CaptureFixture[str]
) -> None:
    business, tenant = shop
    code = business.code
    status = main(
        [
            "schedules", "add", "--report", "sales_summary", "--business", code,
            "--weekly", "MON,WED@07:30", "--format", "json", "--format", "csv",
            "--to", "ops@example.com", "--to", "cfo@example.com",
            "--param", "region=North", "--param", "granularity=week",
            "--subject", "{report} ({period})", "--owner", tenant.users["manager"][1],
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    [row] = schedules(engine, business.id)
    assert re.search(
        rf"^{row.id}\tactive\tMondays and Wednesdays at 07:30 \(Europe/Berlin\)\tnext ", out, re.M
    )
    assert (row.rule_kind, row.rule) == ("weekly", {"time": "07:30", "weekdays": [0, 2]})
    assert (row.timezone, row.formats, row.recipients) == (
        "Europe/Berlin",
        "json,csv",
        ["ops@example.com", "cfo@example.com"],
    )
    assert row.parameters == {"filters": {"region": ["North"]}, "options": {"granularity": "week"}}
    assert row.owner_id == tenant.user_id("manager") and row.next_due_at is not None

    assert main(["schedules", "list", "--business", code]) == 0
    assert "sales_summary [json,csv] last_week -> ops@example.com, cfo@example.com" in capsys.readouterr().out

    assert main(["schedules", "pause", str(row.id), "--business", code]) == 0
    assert f"Schedule {row.id} is paused." in capsys.readouterr().out
    assert schedules(engine, business.id)[0].next_due_at is None
    assert main(["schedules", "resume", str(row.id), "--business", code]) == 0
    assert schedules(engine, business.id)[0].next_due_at is not None
    assert main(["schedules", "delete", str(row.id), "--business", code]) == 0
    assert schedules(engine, business.id) == []
    capsys.readouterr()
    assert main(["schedules", "list", "--business", code]) == 0
    assert "has no schedules yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("rule", "stored"),
    [
        (["--daily", "6:05"], ("daily", {"time": "06:05"})),
        (["--monthly", "last@23:00"], ("monthly", {"time": "23:00", "day": "last"})),
        (["--cron", "0 8 * * 1-5"], ("cron", {"expr": "0 8 * * 1-5"})),
    ],
)
def test_each_rule_form(
    engine: Engine, shop: tuple[Business, Tenant], rule: list[str], stored: tuple[str, dict[str, object]]
) -> None:
    business, _ = shop
    base = ["schedules", "add", "--report", "payments", "--business", business.code, "--to", "a@example.com"]
    assert main([*base, *rule, "--format", "json", "--tz", "America/New_York"]) == 0
    [row] = schedules(engine, business.id)
    assert (row.rule_kind, row.rule) == stored
    assert row.timezone == "America/New_York" and row.owner_id is not None  # the first admin


def test_every_days_counts_from_today(engine: Engine, shop: tuple[Business, Tenant]) -> None:
    business, _ = shop
    args = ["schedules", "add", "--report", "payments", "--business", business.code, "--to", "a@example.com"]
    assert main([*args, "--every-days", "3@09:00", "--format", "json"]) == 0
    [row] = schedules(engine, business.id)
    assert row.rule["n"] == 3 and row.rule["time"] == "09:00" and len(row.rule["start"]) == 10


@pytest.mark.parametrize(
    ("extra", "message", "status"),
    [
        (["--daily", "08:00", "--to", "x@example.com\r\nBcc: evil@example.com"], "contains a line break", 1),
        (
            ["--daily", "08:00", "--to", "ops@example.com", "--subject", "Hi\nBcc: x"],
            "subject contains a line break",
            1,
        ),
        (["--daily", "08:00", "--to", "nobody"], "'nobody' is not a valid e-mail address", 1),
        (
            ["--daily", "08:00", "--to", "a@example.com", "--subject", "{report} {when}"],
            r"Unknown placeholder \{when\}",
            1,
        ),
        (["--daily", "25:00", "--to", "a@example.com"], "HH:MM", 1),
        (["--weekly", "MON", "--to", "a@example.com"], "MON,WED@08:00", 1),
        (["--monthly", "31@08:00", "--to", "a@example.com"], "1 to 28, or 'last'", 1),
        (["--cron", "* * *", "--to", "a@example.com"], "five fields", 1),
        (["--daily", "08:00", "--cron", "0 8 * * *", "--to", "a@example.com"], "exactly one time rule", 2),
        (["--to", "a@example.com"], "exactly one time rule", 2),
        (
            ["--daily", "08:00", "--to", "a@example.com", "--tz", "Moon/Base"],
            "Unknown time zone 'Moon/Base'",
            1,
        ),
        (["--daily", "08:00", "--to", "a@example.com", "--format", "docx"], "Unknown format 'docx'", 1),
        (
            ["--daily", "08:00", "--to", "a@example.com", "--param", "colour=red"],
            "has no parameter 'colour'",
            1,
        ),
        (["--daily", "08:00", "--to", "a@example.com", "--param", "oops"], "must look like KEY=VALUE", 2),
        (["--daily", "08:00", "--to", "a@example.com", "--owner", "ghost"], "No user 'ghost'", 1),
        (["--daily", "08:00", "--to", "a@example.com", "--period", "someday"], "Unknown period 'someday'", 1),
    ],
)
def test_mistakes_are_one_line_errors(
    engine: Engine,
    shop: tuple[Business, Tenant],
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
    status: int,
) -> None:
    business, _ = shop
    args = ["schedules", "add", "--report", "sales_summary", "--business", business.code, "--format", "json"]
    assert main([*args, *extra]) == status
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and re.search(message, err), err
    assert schedules(engine, business.id) == []


def test_unknown_ids_business_and_report(
    engine: Engine, shop: tuple[Business, Tenant], capsys: pytest.CaptureFixture[str]
) -> None:
    business, _ = shop
    other = new_business(engine, "Elsewhere")
    assert main(["schedules", "pause", "999999", "--business", business.code]) == 1
    assert "No such schedule" in capsys.readouterr().err
    add = ["schedules", "add", "--daily", "08:00", "--to", "a@example.com", "--format", "json"]
    assert main([*add, "--report", "nope", "--business", business.code]) == 1
    assert "Unknown report 'nope'" in capsys.readouterr().err
    assert main([*add, "--report", "payments", "--business", "no-such-shop"]) == 1
    assert "No business with code 'no-such-shop'" in capsys.readouterr().err
    # another business's schedule looks missing
    assert main([*add, "--report", "payments", "--business", business.code]) == 0
    [row] = schedules(engine, business.id)
    capsys.readouterr()
    assert main(["schedules", "delete", str(row.id), "--business", other.code]) == 1
    assert "No such schedule" in capsys.readouterr().err
    assert len(schedules(engine, business.id)) == 1


def test_as_a_subprocess_exit_status_and_no_traceback(shop: tuple[Business, Tenant]) -> None:
    business, _ = shop
    result = subprocess.run(
        [sys.executable, "manage.py", "schedules", "add", "--report", "payments", "--business", business.code,
         "--daily", "08:00", "--to", "evil@example.com\nBcc: x@example.com", "--format", "json"],
        cwd=ROOT, capture_output=True, text=True, env=os.environ.copy(), timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "line break" in result.stderr
