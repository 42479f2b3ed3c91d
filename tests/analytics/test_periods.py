"""Relative periods resolved against a pinned `now` in a time zone; comparisons."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics.periods import RELATIVE_PERIODS, Period, PeriodError, resolve
from analytics.report import ParamError, ReportParams

# Wednesday 2025-03-05 10:00 UTC
NOW = dt.datetime(2025, 3, 5, 10, 0, tzinfo=dt.UTC)
D = dt.date


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        ("today", D(2025, 3, 5), D(2025, 3, 5)),
        ("yesterday", D(2025, 3, 4), D(2025, 3, 4)),
        ("last_7_days", D(2025, 2, 27), D(2025, 3, 5)),
        ("last_30_days", D(2025, 2, 4), D(2025, 3, 5)),
        ("week_to_date", D(2025, 3, 3), D(2025, 3, 5)),
        ("last_week", D(2025, 2, 24), D(2025, 3, 2)),
        ("month_to_date", D(2025, 3, 1), D(2025, 3, 5)),
        ("last_month", D(2025, 2, 1), D(2025, 2, 28)),
        ("quarter_to_date", D(2025, 1, 1), D(2025, 3, 5)),
        ("last_quarter", D(2024, 10, 1), D(2024, 12, 31)),
        ("year_to_date", D(2025, 1, 1), D(2025, 3, 5)),
        ("last_year", D(2024, 1, 1), D(2024, 12, 31)),
    ],
)
def test_relative_periods(name: str, start: dt.date, end: dt.date) -> None:
    assert resolve(name, NOW, "UTC") == Period(start, end)


def test_every_relative_period_is_covered() -> None:
    for name in RELATIVE_PERIODS:
        resolve(name, NOW, "UTC")


@pytest.mark.parametrize(
    ("tz", "today"),
    [("UTC", D(2025, 1, 1)), ("Pacific/Auckland", D(2025, 1, 2)), ("America/New_York", D(2025, 1, 1))],
)
def test_today_depends_on_the_time_zone(tz: str, today: dt.date) -> None:
    # 2025-01-01 23:30 UTC is already 2 January in Auckland
    now = dt.datetime(2025, 1, 1, 23, 30, tzinfo=dt.UTC)
    assert resolve("today", now, tz) == Period(today, today)


def test_last_month_across_a_year_boundary_in_a_zone() -> None:
    # 2025-01-01 00:30 in Berlin is still 31 December in UTC
    now = dt.datetime(2024, 12, 31, 23, 30, tzinfo=dt.UTC)
    assert resolve("last_month", now, "Europe/Berlin") == Period(D(2024, 12, 1), D(2024, 12, 31))
    assert resolve("last_month", now, "UTC") == Period(D(2024, 11, 1), D(2024, 11, 30))


def test_previous_and_year_before() -> None:
    q1 = Period(D(2025, 1, 1), D(2025, 3, 31))
    assert q1.previous() == Period(D(2024, 10, 1), D(2024, 12, 31))
    assert q1.year_before() == Period(D(2024, 1, 1), D(2024, 3, 31))
    feb = Period(D(2024, 2, 1), D(2024, 2, 29))
    assert feb.previous() == Period(D(2024, 1, 1), D(2024, 1, 31))
    assert feb.year_before() == Period(D(2023, 2, 1), D(2023, 2, 28))
    week = Period(D(2025, 3, 3), D(2025, 3, 9))
    assert week.previous() == Period(D(2025, 2, 24), D(2025, 3, 2))


def test_bad_periods_are_explained() -> None:
    with pytest.raises(PeriodError, match="before it starts"):
        Period(D(2025, 2, 1), D(2025, 1, 1))
    with pytest.raises(PeriodError, match="Unknown period"):
        resolve("fortnight", NOW)
    with pytest.raises(ParamError, match="Unknown time zone"):
        ReportParams.from_pairs(["tz=Mars/Olympus"])
    with pytest.raises(ParamError, match="not a date"):
        ReportParams.from_pairs(["start=2025-13-01", "end=2025-12-31"])
    with pytest.raises(ParamError, match="both start and end"):
        ReportParams.from_pairs(["start=2025-01-01"]).resolve_period()
    with pytest.raises(ParamError, match="KEY=VALUE"):
        ReportParams.from_pairs(["period"])


def test_params_parse_filters_columns_and_options() -> None:
    params = ReportParams.from_pairs(
        [
            "period=last_month",
            "region=North, South",
            "columns.by_customer=customer_code,revenue",
            "granularity=week",
        ]
    )
    assert params.filters == {"region": ("North", "South")}
    assert params.columns == {"by_customer": ("customer_code", "revenue")}
    assert params.options == {"granularity": "week"}
    assert params.to_dict()["filters"] == {"region": ["North", "South"]}


# --- one text for a period: Period.describe ---------------------------------------------------


@pytest.mark.parametrize(
    ("period", "text"),
    [
        (Period(D(2026, 11, 5), D(2026, 11, 5)), "5 Nov 2026"),
        (Period(D(2026, 10, 1), D(2026, 10, 31)), "1–31 Oct 2026"),
        (Period(D(2026, 10, 1), D(2026, 11, 15)), "1 Oct – 15 Nov 2026"),
        (Period(D(2025, 12, 15), D(2026, 1, 10)), "15 Dec 2025 – 10 Jan 2026"),
        (resolve("last_month", dt.datetime(2026, 11, 5, 9, 0), "UTC"), "1–31 Oct 2026 (last month)"),
        (resolve("today", NOW), "5 Mar 2025 (today)"),
        (resolve("last_7_days", NOW), "27 Feb – 5 Mar 2025 (last 7 days)"),
        (resolve("last_year", NOW), "1 Jan – 31 Dec 2024 (last year)"),
    ],
)
def test_describe_writes_the_one_period_text(period: Period, text: str) -> None:
    assert period.describe() == text


def test_the_name_changes_the_text_not_the_period() -> None:
    named = resolve("last_month", NOW)
    assert named == Period(D(2025, 2, 1), D(2025, 2, 28)) and named.name == "last_month"
    assert hash(named) == hash(Period(D(2025, 2, 1), D(2025, 2, 28)))
    # Derived periods are dates only: "the previous period" is not "last month".
    assert named.previous().describe() == "1–31 Jan 2025"
    assert named.year_before().describe() == "1–28 Feb 2024"
    assert named.slug() == "20250201-20250228"


def test_a_relative_period_needs_the_callers_clock() -> None:
    with pytest.raises(ValueError, match="pass `now`"):
        ReportParams(period="last_month").resolve_period()
    assert ReportParams(period="last_month").resolve_period(now=NOW) == Period(D(2025, 2, 1), D(2025, 2, 28))
    pinned = ReportParams(period="last_month", now=dt.datetime(2025, 1, 10, tzinfo=dt.UTC))
    assert pinned.resolve_period(now=NOW) == Period(D(2024, 12, 1), D(2024, 12, 31))  # params.now wins
    explicit = ReportParams(start=D(2025, 1, 1), end=D(2025, 1, 31))
    assert explicit.resolve_period() == Period(D(2025, 1, 1), D(2025, 1, 31))  # no clock needed
