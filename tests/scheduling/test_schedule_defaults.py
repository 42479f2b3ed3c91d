"""Issue 12, defect 5: a schedule's period follows its frequency unless one is chosen — daily →
yesterday, weekly → last week, monthly → last month — in `schedules add` and on the Schedules page."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from core.db import make_sessionmaker
from core.models import Business, Schedule
from core.settings import Settings
from manage import main
from scheduling.schedules import default_period
from tests.tenants import Tenant, make_tenant


@pytest.fixture
def shop(engine: Engine, cli_env: Settings) -> tuple[Business, Tenant]:
    tenant = make_tenant(engine, "Delta Goods")
    with make_sessionmaker(engine)() as s:
        business = s.get(Business, tenant.business_id)
        assert business is not None
        s.expunge(business)
    return business, tenant


def periods(engine: Engine, business_id: int) -> list[str]:
    with make_sessionmaker(engine)() as s:
        return list(
            s.scalars(
                select(Schedule.period).where(Schedule.business_id == business_id).order_by(Schedule.id)
            )
        )


def test_the_default_period_follows_the_frequency() -> None:
    assert default_period("daily") == "yesterday"
    assert default_period("weekly") == "last_week"
    assert default_period("monthly") == "last_month"


@pytest.mark.parametrize(
    ("rule", "period"),
    [
        (["--daily", "07:00"], "yesterday"),
        (["--weekly", "MON@07:00"], "last_week"),
        (["--monthly", "1@07:00"], "last_month"),
        (["--weekly", "MON@07:00", "--period", "last_30_days"], "last_30_days"),  # an explicit one stays
        (["--daily", "07:00", "--period", "last_month"], "last_month"),
    ],
)
def test_schedules_add_defaults_the_period_by_frequency(
    engine: Engine,
    shop: tuple[Business, Tenant],
    capsys: pytest.CaptureFixture[str],
    rule: list[str],
    period: str,
) -> None:
    business, _ = shop
    base = ["schedules", "add", "--report", "payments", "--business", business.code, "--to", "a@example.com"]
    assert main([*base, *rule, "--format", "json"]) == 0
    assert f"[json] {period} -> a@example.com" in capsys.readouterr().out
    assert periods(engine, business.id) == [period]
