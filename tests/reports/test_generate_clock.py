"""`generate` takes the clock from its caller: generated_at is `now` (or the `now` the parameters
pin), the period is resolved once against that same clock, and carried typed on the Report."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine

from analytics.periods import Period
from analytics.report import ReportParams
from core.models import Business
from core.settings import Settings
from tests.conftest import new_business
from tests.factories import insert_tiny
from tests.reports.reporting import run_report

D = dt.date


@pytest.fixture(scope="module")
def tiny(engine: Engine) -> Business:
    business = new_business(engine, "Clock Traders")
    insert_tiny(engine, business.id)
    return business


@pytest.mark.parametrize(
    "now",
    [dt.datetime(2025, 2, 10, 8, 0, 59, 999_999, tzinfo=dt.UTC), dt.datetime(2025, 2, 10, 9, 0, 59)],
)
def test_generated_at_is_the_callers_now(
    engine: Engine, settings: Settings, tiny: Business, now: dt.datetime
) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny.id, "sales_summary", "period=last_month", now=now)
    expected = (now if now.tzinfo else now.replace(tzinfo=dt.UTC)).replace(microsecond=0)
    assert report.generated_at == expected and report.generated_at.tzinfo == dt.UTC
    assert report.period == Period(D(2025, 1, 1), D(2025, 1, 31)) and report.period.name == "last_month"
    assert report.params == ReportParams(period="last_month", now=now.replace(tzinfo=dt.UTC))
    assert report.period_label() == "1–31 Jan 2025 (last month)"


def test_a_pinned_now_in_the_parameters_is_the_clock_for_the_period_and_generated_at(
    engine: Engine, settings: Settings, tiny: Business
) -> None:
    now = dt.datetime(2025, 4, 2, 8, 30, tzinfo=dt.UTC)
    report = run_report(
        engine,
        settings.snapshot_dir,
        tiny.id,
        "credit_aging",
        "now=2025-02-10T00:00:00+00:00",  # the CLI's now=: what relative periods resolve against
        now=now,
    )
    assert report.generated_at == dt.datetime(2025, 2, 10, tzinfo=dt.UTC)  # the pinned clock, not `now`
    assert report.period == Period(D(2025, 2, 1), D(2025, 2, 10))  # credit_aging: month to date
    # The JSON document's parameters: the request as given plus the resolved dates.
    assert report.parameters == {"tz": "UTC", "start": "2025-02-01", "end": "2025-02-10"}
