"""Relative periods resolved against a pinned `now` in a time zone; comparisons."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics.periods import RELATIVE_PERIODS, Period, PeriodError, resolve, same_kind_at
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
    assert named.year_before().describe() == "1–29 Feb 2024"  # the whole month a year before
    assert named.slug() == "20250201-20250228"


def test_a_relative_period_needs_the_callers_clock() -> None:
    with pytest.raises(ValueError, match="pass `now`"):
        ReportParams(period="last_month").resolve_period()
    assert ReportParams(period="last_month").resolve_period(now=NOW) == Period(D(2025, 2, 1), D(2025, 2, 28))
    pinned = ReportParams(period="last_month", now=dt.datetime(2025, 1, 10, tzinfo=dt.UTC))
    assert pinned.resolve_period(now=NOW) == Period(D(2024, 12, 1), D(2024, 12, 31))  # params.now wins
    explicit = ReportParams(start=D(2025, 1, 1), end=D(2025, 1, 31))
    assert explicit.resolve_period() == Period(D(2025, 1, 1), D(2025, 1, 31))  # no clock needed


# --- "to date" periods compare with the same days of the period before (issue 13) -------------

DEC_4 = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)  # a Friday


def test_month_to_date_compares_with_the_same_days_of_the_previous_month() -> None:
    # The example: 1–4 Dec was compared with 27–30 Nov (the preceding four days) and showed
    # "+98 %"; it compares with 1–4 Nov.
    mtd = resolve("month_to_date", DEC_4)
    assert mtd == Period(D(2026, 12, 1), D(2026, 12, 4))
    assert mtd.previous() == Period(D(2026, 11, 1), D(2026, 11, 4))
    assert mtd.previous().describe() == "1–4 Nov 2026"
    assert mtd.year_before() == Period(D(2025, 12, 1), D(2025, 12, 4))


@pytest.mark.parametrize(
    ("today", "previous"),
    [
        (D(2025, 3, 31), Period(D(2025, 2, 1), D(2025, 2, 28))),  # a whole month: the whole month before
        (D(2025, 3, 30), Period(D(2025, 2, 1), D(2025, 2, 28))),  # 30 February does not exist: clipped
        (D(2024, 3, 30), Period(D(2024, 2, 1), D(2024, 2, 29))),
        (D(2025, 3, 28), Period(D(2025, 2, 1), D(2025, 2, 28))),
        (D(2025, 3, 27), Period(D(2025, 2, 1), D(2025, 2, 27))),
        (D(2025, 1, 1), Period(D(2024, 12, 1), D(2024, 12, 1))),  # across the year
        (D(2025, 4, 30), Period(D(2025, 3, 1), D(2025, 3, 31))),  # whole April: whole March
    ],
)
def test_month_to_date_is_clipped_to_the_previous_months_length(today: dt.date, previous: Period) -> None:
    now = dt.datetime.combine(today, dt.time(12, 0), tzinfo=dt.UTC)
    assert resolve("month_to_date", now).previous() == previous


@pytest.mark.parametrize(
    ("name", "today", "previous"),
    [
        # year to date: the same days a year before
        ("year_to_date", D(2026, 12, 4), Period(D(2025, 1, 1), D(2025, 12, 4))),
        ("year_to_date", D(2028, 2, 29), Period(D(2027, 1, 1), D(2027, 2, 28))),
        ("year_to_date", D(2026, 1, 1), Period(D(2025, 1, 1), D(2025, 1, 1))),
        # quarter to date: the same days of the previous quarter
        ("quarter_to_date", D(2026, 11, 15), Period(D(2026, 7, 1), D(2026, 8, 15))),
        ("quarter_to_date", D(2026, 12, 4), Period(D(2026, 7, 1), D(2026, 9, 4))),
        ("quarter_to_date", D(2026, 11, 30), Period(D(2026, 7, 1), D(2026, 8, 31))),  # two whole months
        ("quarter_to_date", D(2026, 5, 31), Period(D(2026, 1, 1), D(2026, 2, 28))),
        ("quarter_to_date", D(2026, 1, 3), Period(D(2025, 10, 1), D(2025, 10, 3))),
        # week to date (Monday to today): the same weekdays a week before
        ("week_to_date", D(2026, 12, 4), Period(D(2026, 11, 23), D(2026, 11, 27))),
        ("week_to_date", D(2026, 11, 30), Period(D(2026, 11, 23), D(2026, 11, 23))),
        # the others are unchanged: the days just before, or the whole months before
        ("today", D(2026, 12, 1), Period(D(2026, 11, 30), D(2026, 11, 30))),
        ("yesterday", D(2026, 12, 1), Period(D(2026, 11, 29), D(2026, 11, 29))),
        ("last_7_days", D(2026, 12, 4), Period(D(2026, 11, 21), D(2026, 11, 27))),
        ("last_30_days", D(2026, 12, 4), Period(D(2026, 10, 6), D(2026, 11, 4))),
        ("last_30_days", D(2026, 4, 30), Period(D(2026, 3, 2), D(2026, 3, 31))),  # all of April, by chance
        ("last_week", D(2026, 12, 4), Period(D(2026, 11, 16), D(2026, 11, 22))),
        ("last_month", D(2026, 12, 4), Period(D(2026, 10, 1), D(2026, 10, 31))),
        ("last_quarter", D(2026, 12, 4), Period(D(2026, 4, 1), D(2026, 6, 30))),
        ("last_year", D(2026, 12, 4), Period(D(2024, 1, 1), D(2024, 12, 31))),
    ],
)
def test_previous_of_each_relative_period(name: str, today: dt.date, previous: Period) -> None:
    now = dt.datetime.combine(today, dt.time(12, 0), tzinfo=dt.UTC)
    assert resolve(name, now).previous() == previous


@pytest.mark.parametrize(
    ("period", "previous"),
    [
        # starts on the 1st, ends inside the month: like month to date
        (Period(D(2026, 12, 1), D(2026, 12, 4)), Period(D(2026, 11, 1), D(2026, 11, 4))),
        (Period(D(2025, 3, 1), D(2025, 3, 30)), Period(D(2025, 2, 1), D(2025, 2, 28))),
        # ... over several months: the same days as many months before
        (Period(D(2026, 10, 1), D(2026, 11, 15)), Period(D(2026, 8, 1), D(2026, 9, 15))),
        (Period(D(2026, 1, 1), D(2026, 12, 4)), Period(D(2025, 1, 1), D(2025, 12, 4))),
        # starts on a Monday, shorter than a week: like week to date
        (Period(D(2026, 11, 30), D(2026, 12, 2)), Period(D(2026, 11, 23), D(2026, 11, 25))),
        # one day: the day before (even the 1st, even a Monday)
        (Period(D(2026, 12, 1), D(2026, 12, 1)), Period(D(2026, 11, 30), D(2026, 11, 30))),
        (Period(D(2026, 11, 30), D(2026, 11, 30)), Period(D(2026, 11, 29), D(2026, 11, 29))),
        # anything else: the same number of days just before
        (Period(D(2026, 12, 2), D(2026, 12, 4)), Period(D(2026, 11, 29), D(2026, 12, 1))),
        (Period(D(2026, 11, 15), D(2026, 12, 14)), Period(D(2026, 10, 16), D(2026, 11, 14))),
    ],
)
def test_previous_of_explicit_dates(period: Period, previous: Period) -> None:
    assert period.previous() == previous


def test_a_whole_month_a_year_before_is_the_whole_month() -> None:
    # February 2025 against all of February 2024 (29 days), not 1–28 Feb 2024
    assert Period(D(2025, 2, 1), D(2025, 2, 28)).year_before() == Period(D(2024, 2, 1), D(2024, 2, 29))
    assert Period(D(2024, 2, 1), D(2024, 2, 29)).year_before() == Period(D(2023, 2, 1), D(2023, 2, 28))
    assert Period(D(2024, 2, 10), D(2024, 2, 29)).year_before() == Period(D(2023, 2, 10), D(2023, 2, 28))


# --- the same kind of period around another day (where to open when a period has no data) ---------


@pytest.mark.parametrize(
    ("period", "expected"),
    [
        (resolve("today", DEC_4), Period(D(2025, 6, 20), D(2025, 6, 20))),
        (resolve("yesterday", DEC_4), Period(D(2025, 6, 20), D(2025, 6, 20))),
        (resolve("last_7_days", DEC_4), Period(D(2025, 6, 14), D(2025, 6, 20))),
        (resolve("last_30_days", DEC_4), Period(D(2025, 5, 22), D(2025, 6, 20))),
        (resolve("week_to_date", DEC_4), Period(D(2025, 6, 16), D(2025, 6, 20))),  # 20 Jun 2025: a Friday
        (resolve("last_week", DEC_4), Period(D(2025, 6, 16), D(2025, 6, 22))),
        (resolve("month_to_date", DEC_4), Period(D(2025, 6, 1), D(2025, 6, 20))),
        (resolve("last_month", DEC_4), Period(D(2025, 6, 1), D(2025, 6, 30))),
        (resolve("quarter_to_date", DEC_4), Period(D(2025, 4, 1), D(2025, 6, 20))),
        (resolve("last_quarter", DEC_4), Period(D(2025, 4, 1), D(2025, 6, 30))),
        (resolve("year_to_date", DEC_4), Period(D(2025, 1, 1), D(2025, 6, 20))),
        (resolve("last_year", DEC_4), Period(D(2025, 1, 1), D(2025, 12, 31))),
        (Period(D(2026, 9, 1), D(2026, 11, 30)), Period(D(2025, 4, 1), D(2025, 6, 30))),  # 3 whole months
        (Period(D(2026, 11, 10), D(2026, 11, 19)), Period(D(2025, 6, 11), D(2025, 6, 20))),  # 10 days
        (Period(D(2026, 12, 1), D(2026, 12, 4)), Period(D(2025, 6, 17), D(2025, 6, 20))),  # 4 days
    ],
)
def test_same_kind_at(period: Period, expected: Period) -> None:
    found = same_kind_at(period, D(2025, 6, 20))
    assert found == expected and found.name == ""
