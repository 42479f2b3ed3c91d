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


def in_zone(when: dt.datetime, tz: str) -> dt.datetime:
    """An instant (naive = UTC, as stored) as an aware time in zone `tz`; an unknown zone gives UTC."""
    try:
        return aware(when).astimezone(zone(tz))
    except ValueError:  # analytics.periods.PeriodError: not a zone
        return aware(when).astimezone(dt.UTC)


def zone_name(tz: str, when: dt.datetime) -> str:
    """The zone's short name at instant `when`: 'CET', 'CEST', 'UTC'; its IANA name when the short name
    is only an offset ('+08' says less than 'Asia/Manila'); 'UTC' for an unknown zone."""
    return _name(in_zone(when, tz), tz)


def named_time(when: dt.datetime, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant (naive = UTC, as stored) as people read it, in time zone `tz` and naming it:
    '2026-12-04 08:20 CET' (see `zone_name`)."""
    local_time = in_zone(when, tz)  # converted once, for the time and its zone name
    return f"{local_time.strftime(fmt)} {_name(local_time, tz)}"


def _name(local_time: dt.datetime, tz: str) -> str:
    name = local_time.tzname() or ""
    return name if name[:1].isalpha() else tz
