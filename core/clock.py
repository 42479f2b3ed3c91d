"""Time in the app and the daemon: stored times are naive UTC; people see their business's local time."""

from __future__ import annotations

import datetime as dt

from analytics.periods import zone


def utc_now() -> dt.datetime:
    """Now as an aware UTC instant."""
    return dt.datetime.now(dt.UTC)


def aware(when: dt.datetime | None) -> dt.datetime:
    """`when` (or now) as an aware instant; naive values are taken as UTC."""
    if when is None:
        return utc_now()
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def utc_naive(when: dt.datetime) -> dt.datetime:
    """How times are stored: naive UTC (aware instants converted, naive ones taken as UTC)."""
    return when.astimezone(dt.UTC).replace(tzinfo=None) if when.tzinfo else when


def local(stored: dt.datetime | None, tz: str) -> dt.datetime | None:
    """A stored naive-UTC time as naive local time in `tz` (None stays None)."""
    if stored is None:
        return None
    return stored.replace(tzinfo=dt.UTC).astimezone(zone(tz)).replace(tzinfo=None)


def named_time(when: dt.datetime, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant (naive = UTC, as stored) as people read it, in time zone `tz` and naming it:
    '2026-12-04 08:20 CET'. A zone whose short name is only an offset ('+08') is named by its IANA
    name instead; an unknown zone gives UTC, named."""
    instant = aware(when)
    try:
        local_time = instant.astimezone(zone(tz))
    except ValueError:  # analytics.periods.PeriodError: not a zone
        local_time, tz = instant.astimezone(dt.UTC), "UTC"
    name = local_time.tzname() or ""
    return f"{local_time.strftime(fmt)} {name if name[:1].isalpha() else tz}"
