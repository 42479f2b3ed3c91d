"""Inputs that used to slip through or crash (issue 9, item 10): a BOM before a quoted CSV header, and
report dates at the calendar's ends - refused naming the parameter, not "year 10000 is out of range"."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from analytics.report import ParamError, ReportParams
from core.models import Business
from core.settings import Settings
from ingest.importer import import_file


def test_a_bom_before_a_quoted_header_is_read_like_any_header(
    engine: Engine, business: Business, settings: Settings
) -> None:
    data = '\ufeff"code","name","region"\r\n"M","Main Street","North"\r\n'.encode()
    result = import_file(engine, business.id, "storefronts", "storefronts.csv", data, settings)
    assert (result.ok, result.rows, result.inserted) == (True, 1, 1), result.errors


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (
            ["start=9999-12-01", "end=9999-12-31"],
            "The start date 9999-12-01 is out of range: dates from 1900-01-01 to 2999-12-31 are supported.",
        ),
        (
            ["start=2025-01-01", "end=9999-12-31"],
            "The end date 9999-12-31 is out of range: dates from 1900-01-01 to 2999-12-31 are supported.",
        ),
        (
            ["start=0001-01-01", "end=2025-01-31"],
            "The start date 0001-01-01 is out of range: dates from 1900-01-01 to 2999-12-31 are supported.",
        ),
        (
            ["period=last_month", "now=9999-12-31T23:00:00-05:00"],
            "now=9999-12-31T23:00:00-05:00 is out of range: times from 1900-01-01 to 2999-12-31 are supported.",
        ),
    ],
    ids=["start-9999", "end-9999", "start-year-1", "now-9999"],
)
def test_dates_at_the_ends_of_the_calendar_are_refused_naming_the_parameter(
    pairs: list[str], message: str
) -> None:
    with pytest.raises(ParamError) as refused:
        ReportParams.from_pairs(pairs)
    assert str(refused.value) == message


def test_dates_within_the_range_still_work() -> None:
    params = ReportParams.from_pairs(["start=1900-01-01", "end=2999-12-31"])
    period = params.resolve_period()
    assert (period.start.isoformat(), period.end.isoformat()) == ("1900-01-01", "2999-12-31")
