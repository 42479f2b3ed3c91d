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
        """The period just before: the previous whole month(s) when this one is whole months."""
        if _is_whole_months(self):
            months = _month_index(self.end) - _month_index(self.start) + 1
            start = _add_months(self.start, -months)
            return Period(start, self.start - dt.timedelta(days=1))
        return Period(self.start - dt.timedelta(days=self.days), self.start - dt.timedelta(days=1))

    def year_before(self) -> Period:
        """The same days one year earlier (29 February maps to 28 February)."""
        return Period(_minus_year(self.start), _minus_year(self.end))

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


def _is_whole_months(period: Period) -> bool:
    return period.start.day == 1 and period.end == month_end(period.end)


def _minus_year(day: dt.date) -> dt.date:
    if day.month == 2 and day.day == 29:
        return dt.date(day.year - 1, 2, 28)
    return day.replace(year=day.year - 1)
