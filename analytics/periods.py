"""Reporting periods: inclusive date ranges, relative names resolved against `now` in a time zone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from core.errors import Invalid

RELATIVE_PERIODS = (
    "today",
    "yesterday",
    "last_7_days",
    "last_30_days",
    "week_to_date",
    "last_week",
    "month_to_date",
    "last_month",
    "quarter_to_date",
    "last_quarter",
    "year_to_date",
    "last_year",
)

PERIOD_LABELS = {
    "today": "Today",
    "yesterday": "Yesterday",
    "last_7_days": "Last 7 days",
    "last_30_days": "Last 30 days",
    "week_to_date": "Week to date",
    "last_week": "Last week",
    "month_to_date": "Month to date",
    "last_month": "Last month",
    "quarter_to_date": "Quarter to date",
    "last_quarter": "Last quarter",
    "year_to_date": "Year to date",
    "last_year": "Last year",
    "custom": "Custom range",
}


class PeriodError(Invalid):
    """A period that cannot be understood; the message is meant for the user."""


# Month names as every period text writes them (not the locale's: files and emails must not vary).
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Period:
    """An inclusive range of calendar days [start, end].

    `name` is the relative period it was resolved from ("last_month"; see `resolve`), "" for
    explicit dates and for the periods derived from it (previous, year before); it only changes
    the text, never equality.
    """

    start: dt.date
    end: dt.date
    name: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise PeriodError(f"The period ends ({self.end}) before it starts ({self.start}).")

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period this one is compared with ("previous period"), so that like meets like.

        A "to date" period compares with the same days of the period before: week to date (Monday
        to today) with the same weekdays a week earlier, month to date with the same days of the
        previous month (1–4 Nov for 1–4 Dec), quarter to date with the same days of the previous
        quarter, year to date with the same days a year before. Days past the end of a shorter month
        are clipped (1–30 Mar → 1–28 Feb), and a period ending on a month's last day ends on the last
        day of that earlier month. Explicit dates (no relative name) follow the same rules by their
        shape: whole months compare with as many whole months before; a period of two or more
        days that starts on a month's 1st and ends inside a month, with the same days as many
        months earlier as it touches (1–4 Dec like month to date, 1 Oct – 15 Nov with 1 Aug –
        15 Sep); one that starts on a Monday and is shorter than a week, with the same weekdays a
        week earlier. Any other period (today, yesterday, last 7 or 30 days, one day, any other
        dates) compares with the same number of days just before.
        """
        shifted = _TO_DATE_MONTHS.get(self.name)
        if shifted is not None:
            return self._months_earlier(shifted)
        if self.name == "week_to_date":
            return self._days_earlier(7)
        if self.name in _ROLLING_NAMES:
            return self._days_earlier(self.days)
        if self.days > 1 and self.start.day == 1:  # whole months, or from a 1st to inside a month
            return self._months_earlier(_month_index(self.end) - _month_index(self.start) + 1)
        if 1 < self.days < 7 and self.start.weekday() == 0:
            return self._days_earlier(7)
        return self._days_earlier(self.days)

    def year_before(self) -> Period:
        """The same days one year earlier: 29 February maps to 28 February, and a period from a
        month's 1st to a month's last day to the whole months a year earlier (all of February
        2024 for February 2025)."""
        if self.start.day == 1:
            return self._months_earlier(12)
        return Period(_minus_year(self.start), _minus_year(self.end))

    def _months_earlier(self, months: int) -> Period:
        """Start and end `months` earlier (the start is a month's 1st): the end is clipped to the
        earlier month's length, and a month's last day stays its last day."""
        if self.end == month_end(self.end):
            end = month_end(_add_months(self.end.replace(day=1), -months))
        else:
            end = _add_months(self.end, -months)
        return Period(_add_months(self.start, -months), end)

    def _days_earlier(self, days: int) -> Period:
        step = dt.timedelta(days=days)
        return Period(self.start - step, self.end - step)

    def year_to_date(self) -> Period:
        """From 1 January of the end's year to the end."""
        return Period(dt.date(self.end.year, 1, 1), self.end)

    def describe(self) -> str:
        """The period for people, the one text the page, CSV, Excel, PDF, emails and History show:
        '1–31 Oct 2026 (last month)' when resolved from a relative name, else the dates alone:
        '5 Nov 2026', '1–31 Oct 2026', '1 Oct – 15 Nov 2026', '15 Dec 2025 – 10 Jan 2026'."""
        start, end = self.start, self.end
        if start == end:
            dates = _day(end)
        elif (start.year, start.month) == (end.year, end.month):
            dates = f"{start.day}–{_day(end)}"
        elif start.year == end.year:
            dates = f"{start.day} {MONTHS[start.month - 1]} – {_day(end)}"
        else:
            dates = f"{_day(start)} – {_day(end)}"
        if self.name in RELATIVE_PERIODS:
            return f"{dates} ({PERIOD_LABELS[self.name].lower()})"
        return dates

    def slug(self) -> str:
        """The file-name form of the same period: 20250101-20250331."""
        return f"{self.start:%Y%m%d}-{self.end:%Y%m%d}"


def _day(day: dt.date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    # A folder of the zone database ("America") or a name too long for a file is no zone either.
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise PeriodError(f"Unknown time zone {name!r}; use an IANA name such as Europe/Berlin.") from exc


def local_today(now: dt.datetime, tz: str) -> dt.date:
    """The calendar date of instant `now` (naive = UTC) in time zone `tz`."""
    aware = now if now.tzinfo else now.replace(tzinfo=dt.UTC)
    return aware.astimezone(zone(tz)).date()


def resolve(name: str, now: dt.datetime, tz: str = "UTC") -> Period:
    """Resolve a relative period name against `now` in `tz` (the Period keeps the name). Weeks start
    on Monday."""
    dates = _dates(name, local_today(now, tz))
    return Period(dates.start, dates.end, name)


def _dates(name: str, today: dt.date) -> Period:
    if name == "today":
        return Period(today, today)
    if name == "yesterday":
        day = today - dt.timedelta(days=1)
        return Period(day, day)
    if name == "last_7_days":
        return Period(today - dt.timedelta(days=6), today)
    if name == "last_30_days":
        return Period(today - dt.timedelta(days=29), today)
    if name == "week_to_date":
        return Period(today - dt.timedelta(days=today.weekday()), today)
    if name == "last_week":
        monday = today - dt.timedelta(days=today.weekday() + 7)
        return Period(monday, monday + dt.timedelta(days=6))
    if name == "month_to_date":
        return Period(today.replace(day=1), today)
    if name == "last_month":
        first = _add_months(today.replace(day=1), -1)
        return Period(first, today.replace(day=1) - dt.timedelta(days=1))
    if name == "quarter_to_date":
        return Period(_quarter_start(today), today)
    if name == "last_quarter":
        start = _add_months(_quarter_start(today), -3)
        return Period(start, _quarter_start(today) - dt.timedelta(days=1))
    if name == "year_to_date":
        return Period(dt.date(today.year, 1, 1), today)
    if name == "last_year":
        return Period(dt.date(today.year - 1, 1, 1), dt.date(today.year - 1, 12, 31))
    raise PeriodError(f"Unknown period {name!r}; choose one of: {', '.join(RELATIVE_PERIODS)}.")


def same_kind_at(period: Period, day: dt.date) -> Period:
    """The period of the same kind as `period` whose data ends on `day` (explicit dates: no name).

    Relative periods keep their shape around `day`: "to date" periods and today/yesterday end on
    it (month to date: from the 1st of day's month to day), the last week, month, quarter or year
    become the whole calendar week, month, quarter or year holding it (last month with data ending
    20 Jun 2025: 1–30 Jun 2025), the last 7 or 30 days the days up to it. Explicit whole months
    become as many whole months up to day's month; other explicit dates as many days up to day.
    """
    name = period.name
    monday = day - dt.timedelta(days=day.weekday())
    if name in ("today", "yesterday"):
        return Period(day, day)
    if name == "week_to_date":
        return Period(monday, day)
    if name == "month_to_date":
        return Period(day.replace(day=1), day)
    if name == "quarter_to_date":
        return Period(_quarter_start(day), day)
    if name == "year_to_date":
        return Period(dt.date(day.year, 1, 1), day)
    if name == "last_week":
        return Period(monday, monday + dt.timedelta(days=6))
    if name == "last_month":
        return Period(day.replace(day=1), month_end(day))
    if name == "last_quarter":
        quarter = _quarter_start(day)
        return Period(quarter, month_end(_add_months(quarter, 2)))
    if name == "last_year":
        return Period(dt.date(day.year, 1, 1), dt.date(day.year, 12, 31))
    if name not in RELATIVE_PERIODS and period.start.day == 1 and period.end == month_end(period.end):
        months = _month_index(period.end) - _month_index(period.start) + 1
        return Period(_add_months(day.replace(day=1), 1 - months), month_end(day))
    return Period(day - dt.timedelta(days=period.days - 1), day)


def parse_date(text: str, what: str = "date") -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError as exc:
        raise PeriodError(f"The {what} {text!r} is not a date in the form YYYY-MM-DD.") from exc


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_end(day: dt.date) -> dt.date:
    return _add_months(day.replace(day=1), 1) - dt.timedelta(days=1)


def _quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _month_index(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def _add_months(day: dt.date, months: int) -> dt.date:
    """Add months to a date that is the first of a month (or clamp the day)."""
    index = _month_index(day) + months
    year, month0 = divmod(index, 12)
    last = month_end(dt.date(year, month0 + 1, 1)) if day.day > 28 else None
    return dt.date(year, month0 + 1, min(day.day, last.day) if last else day.day)


# The "to date" periods: compared with the same days of the period before (see Period.previous);
# those counted in months shift by this many months.
_TO_DATE_MONTHS = {"month_to_date": 1, "quarter_to_date": 3, "year_to_date": 12}
# Relative periods of a number of days: compared with as many days just before, whatever their dates
# (the last 30 days may happen to be all of April).
_ROLLING_NAMES = frozenset({"today", "yesterday", "last_7_days", "last_30_days", "last_week"})


def _minus_year(day: dt.date) -> dt.date:
    if day.month == 2 and day.day == 29:
        return dt.date(day.year - 1, 2, 28)
    return day.replace(year=day.year - 1)
