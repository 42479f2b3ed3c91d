"""Time rules: when a schedule is due, as UTC instants, from its rule and its IANA time zone.

A rule names local wall-clock times ("daily at 02:30 in Europe/Berlin"); each wall time maps to one
UTC instant. Daylight saving makes that mapping awkward twice a year, and the rules are fixed:
- a wall time that does not exist (spring forward: 02:30 on the last Sunday of March in Berlin)
  runs once at the first valid instant after it (03:00 local) - never skipped;
- a wall time that happens twice (fall back) runs once, at its first occurrence (fold=0) - never
  doubled.
Cron expressions follow the same rules: croniter walks naive wall times and this module maps them,
because croniter's own zone handling runs "30 2 * * *" twice on the fall-back day.

Instants in and out are naive UTC (how the database stores them); aware values are accepted.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from core.errors import Invalid

RULE_KINDS = ("daily", "weekly", "monthly", "every_n_days", "cron")
MAX_CRON_CHARS = 200  # a real expression is under 100; a longer one is a mistake or an attack
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_UTC = dt.UTC
# A valid rule finds its next wall time within a few years; this stops a loop on a rule that never
# matches (e.g. a cron "0 0 30 2 *" - croniter itself gives up after a while too).
_MAX_DAYS_AHEAD = 5 * 366
_ONE_MICROSECOND = dt.timedelta(microseconds=1)


class RuleError(Invalid):
    """A time rule that cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class Occurrence:
    """One due time: `utc` (naive UTC, as stored) and `local` (aware, in the schedule's zone)."""

    utc: dt.datetime
    local: dt.datetime


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or RuleError."""
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RuleError(f"Unknown time zone {name!r}; use an IANA name such as Europe/Berlin.") from exc


# --- validation -------------------------------------------------------------------------------


def parse_time(text: Any) -> dt.time:
    """'08:30' (or '8:30') -> time(8, 30); anything else is a RuleError."""
    match = _TIME.match(str(text).strip()) if isinstance(text, str) else None
    if match is None:
        raise RuleError(f"The time {text!r} must look like HH:MM (24-hour clock), e.g. 08:30.")
    return dt.time(int(match.group(1)), int(match.group(2)))


def _weekdays(raw: Any) -> list[int]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise RuleError("A weekly rule needs at least one weekday (0 = Monday ... 6 = Sunday).")
    days: set[int] = set()
    for value in raw:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
            raise RuleError(f"Weekday {value!r} must be a whole number from 0 (Monday) to 6 (Sunday).")
        days.add(value)
    return sorted(days)


def _month_day(raw: Any) -> int | str:
    if raw == "last":
        return "last"
    if isinstance(raw, str) and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= 28:
        raise RuleError(
            f"The day of the month {raw!r} must be 1 to 28, or 'last' (days 29-31 are missing in some months)."
        )
    return raw


def _cron_expr(raw: Any) -> str:
    text = str(raw or "")
    if len(text) > MAX_CRON_CHARS:
        raise RuleError(
            f"The cron expression is {len(text):,} characters long; the limit is {MAX_CRON_CHARS} "
            "(five fields: minute hour day-of-month month day-of-week, e.g. '0 8 * * 1-5')."
        )
    expr = " ".join(text.split())
    if len(expr.split(" ")) != 5:
        raise RuleError(
            f"The cron expression {raw!r} must have five fields: minute hour day-of-month month day-of-week."
        )
    if not croniter.is_valid(expr):
        raise RuleError(f"The cron expression {expr!r} cannot be read.")
    try:
        croniter(expr, dt.datetime(2000, 1, 1)).get_next(dt.datetime)
    except (CroniterBadDateError, CroniterBadCronError, CroniterError) as exc:
        raise RuleError(f"The cron expression {expr!r} never matches a real date.") from exc
    return expr


def validate_rule(kind: str, rule: Mapping[str, Any]) -> dict[str, Any]:
    """The rule in its canonical stored form (see Schedule's docstring), or RuleError."""
    if kind not in RULE_KINDS:
        raise RuleError(f"Unknown rule kind {kind!r}; choose one of: {', '.join(RULE_KINDS)}.")
    if not isinstance(rule, Mapping):
        raise RuleError("The time rule must be a mapping of settings.")
    if kind == "cron":
        return {"expr": _cron_expr(rule.get("expr"))}
    out: dict[str, Any] = {"time": parse_time(rule.get("time")).strftime("%H:%M")}
    if kind == "weekly":
        out["weekdays"] = _weekdays(rule.get("weekdays"))
    elif kind == "monthly":
        out["day"] = _month_day(rule.get("day"))
    elif kind == "every_n_days":
        n = rule.get("n")
        if isinstance(n, str) and n.strip().isdigit():
            n = int(n)
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise RuleError(f"'Every N days' needs N to be a whole number of at least 1, not {n!r}.")
        start = rule.get("start")
        try:
            start_day = start if isinstance(start, dt.date) else dt.date.fromisoformat(str(start))
        except ValueError:
            raise RuleError(
                f"'Every N days' needs a start date in the form YYYY-MM-DD, not {start!r}."
            ) from None
        out["n"] = n
        out["start"] = start_day.isoformat()
    return out


def rule_from_text(kind: str, text: str, *, today: dt.date) -> dict[str, Any]:
    """Parse the CLI's short forms into a validated rule.

    daily '08:00'; weekly 'MON,WED@08:00'; monthly '1@08:00' or 'last@08:00'; every_n_days
    '3@08:00' (counting from `today`); cron 'm h dom mon dow'.
    """
    if kind == "cron":
        return validate_rule(kind, {"expr": text})
    if kind == "daily":
        return validate_rule(kind, {"time": text.strip()})
    what, sep, time = text.partition("@")
    if not sep:
        examples = {"weekly": "MON,WED@08:00", "monthly": "1@08:00 or last@08:00", "every_n_days": "3@08:00"}
        raise RuleError(f"{text!r} must look like {examples.get(kind, 'X@HH:MM')}.")
    if kind == "weekly":
        days = []
        for name in what.split(","):
            key = name.strip().upper()[:3]
            if key not in WEEKDAYS:
                raise RuleError(f"Unknown weekday {name.strip()!r}; use {', '.join(WEEKDAYS)}.")
            days.append(WEEKDAYS.index(key))
        return validate_rule(kind, {"time": time, "weekdays": days})
    if kind == "monthly":
        day: Any = what.strip().lower()
        return validate_rule(kind, {"time": time, "day": day})
    if kind == "every_n_days":
        raw = what.strip()
        return validate_rule(
            kind, {"time": time, "n": int(raw) if raw.isdigit() else raw, "start": today.isoformat()}
        )
    return validate_rule(kind, {})  # unknown kind: validate_rule says so


def describe_rule(kind: str, rule: Mapping[str, Any]) -> str:
    """The rule for people: 'Daily at 08:00', 'Mondays and Fridays at 07:30', 'Cron 0 8 * * 1-5'."""
    if kind == "cron":
        return f"Cron {rule.get('expr', '')}"
    time = rule.get("time", "")
    if kind == "daily":
        return f"Daily at {time}"
    if kind == "weekly":
        names = [_WEEKDAY_NAMES[d] + "s" for d in rule.get("weekdays", [])]
        joined = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"{joined} at {time}"
    if kind == "monthly":
        day = rule.get("day")
        which = "the last day" if day == "last" else f"day {day}"
        return f"Monthly on {which} at {time}"
    if kind == "every_n_days":
        n = rule.get("n")
        every = "Every day" if n == 1 else f"Every {n} days"
        return f"{every} at {time} (counting from {rule.get('start')})"
    return kind


# --- wall times -> instants ---------------------------------------------------------------------


def _exists(wall: dt.datetime, z: ZoneInfo) -> bool:
    back = wall.replace(tzinfo=z).astimezone(_UTC).astimezone(z).replace(tzinfo=None)
    return back == wall


def wall_to_utc(wall: dt.datetime, z: ZoneInfo) -> dt.datetime:
    """The naive UTC instant a naive local wall time names in zone `z`.

    Ambiguous (fall back): the first occurrence. Nonexistent (spring forward): the transition
    instant, i.e. the first valid local time after the gap (02:30 -> 03:00 in Berlin).
    """
    if _exists(wall, z):
        return wall.replace(tzinfo=z, fold=0).astimezone(_UTC).replace(tzinfo=None)
    # In a gap, fold=0 reads the wall time with the offset before the jump and fold=1 with the one
    # after; the transition lies between those two readings. Find its second by bisection.
    readings = (wall.replace(tzinfo=z, fold=1).timestamp(), wall.replace(tzinfo=z, fold=0).timestamp())
    lo, hi = int(min(readings)), int(max(readings))
    after_offset = dt.datetime.fromtimestamp(hi, _UTC).astimezone(z).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if dt.datetime.fromtimestamp(mid, _UTC).astimezone(z).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return dt.datetime.fromtimestamp(hi, _UTC).replace(tzinfo=None)


def _walls(kind: str, rule: Mapping[str, Any], start: dt.datetime) -> Iterator[dt.datetime]:
    """Naive local wall times of the rule at or after `start`, in increasing order."""
    if kind == "cron":
        it = croniter(str(rule["expr"]), start - dt.timedelta(minutes=1))
        while True:
            try:
                wall: dt.datetime = it.get_next(dt.datetime)
            except CroniterBadDateError:
                return
            if wall >= start:
                yield wall
            if wall - start > dt.timedelta(days=_MAX_DAYS_AHEAD):
                return
    at = parse_time(rule["time"])
    day = start.date()
    weekdays = set(rule.get("weekdays", ()))
    n = int(rule.get("n", 1) or 1)
    first = dt.date.fromisoformat(str(rule["start"])) if kind == "every_n_days" else day
    for _ in range(_MAX_DAYS_AHEAD):
        if kind == "daily":
            hit = True
        elif kind == "weekly":
            hit = day.weekday() in weekdays
        elif kind == "monthly":
            target = rule.get("day")
            last = calendar.monthrange(day.year, day.month)[1]
            hit = day.day == (last if target == "last" else int(target))  # type: ignore[arg-type]
        elif kind == "every_n_days":
            hit = day >= first and (day - first).days % n == 0
        else:
            raise RuleError(f"Unknown rule kind {kind!r}; choose one of: {', '.join(RULE_KINDS)}.")
        if hit:
            wall = dt.datetime.combine(day, at)
            if wall >= start:
                yield wall
        day += dt.timedelta(days=1)


def _naive_utc(when: dt.datetime) -> dt.datetime:
    return when.astimezone(_UTC).replace(tzinfo=None) if when.tzinfo else when


def iter_due(kind: str, rule: Mapping[str, Any], tz: str, after: dt.datetime) -> Iterator[dt.datetime]:
    """Due instants (naive UTC) strictly after `after`, increasing, each at most once."""
    z = time_zone(tz)
    after_utc = _naive_utc(after)
    # Every wall time before the local reading of `after` maps to an instant <= `after` (the
    # mapping is monotone), so the walk can start there and never needs to look further back.
    start = after_utc.replace(tzinfo=_UTC).astimezone(z).replace(tzinfo=None, fold=0)
    last = after_utc
    for wall in _walls(kind, rule, start.replace(second=0, microsecond=0)):
        instant = wall_to_utc(wall, z)
        if instant > last:
            last = instant
            yield instant


def next_due(kind: str, rule: Mapping[str, Any], tz: str, after: dt.datetime) -> dt.datetime:
    """The first due instant (naive UTC) strictly after `after`; RuleError when the rule never matches."""
    for instant in iter_due(kind, rule, tz, after):
        return instant
    raise RuleError(f"The rule {describe_rule(kind, rule)!r} has no run time in the next five years.")


def upcoming(kind: str, rule: Mapping[str, Any], tz: str, after: dt.datetime, n: int = 5) -> list[Occurrence]:
    """The next `n` due times after `after`, in UTC and in the schedule's own zone (for display)."""
    z = time_zone(tz)
    return [
        Occurrence(instant, instant.replace(tzinfo=_UTC).astimezone(z))
        for instant in islice(iter_due(kind, rule, tz, after), n)
    ]


@dataclass(frozen=True)
class Windows:
    """The due windows from a first one up to `now`: at most one to run, the rest missed.

    `missed` holds the newest `keep_missed` missed windows; `missed_count` counts them all
    (capped by the walk limit, see `due_windows`).
    """

    run: dt.datetime | None
    missed: tuple[dt.datetime, ...]
    missed_count: int
    latest: dt.datetime | None


def due_windows(
    kind: str,
    rule: Mapping[str, Any],
    tz: str,
    *,
    first: dt.datetime,
    now: dt.datetime,
    grace: dt.timedelta,
    keep_missed: int = 100,
    walk_limit: int = 10_000,
) -> Windows:
    """Split the windows in [first, now] into the one to run and the missed ones.

    The most recent window is run when it is at most `grace` old; every other window is missed.
    `first` counts as a window (it is the stored next_due_at). A very frequent rule after a long
    downtime is walked at most `walk_limit` windows from `first`, then again from now - grace.
    """
    first, now = _naive_utc(first), _naive_utc(now)
    missed: deque[dt.datetime] = deque(maxlen=keep_missed)
    count = 0
    latest: dt.datetime | None = None
    walked = 0
    jumped = False
    windows = iter_due(kind, rule, tz, first - _ONE_MICROSECOND)
    while True:
        instant = next(windows, None)
        if instant is None or instant > now:
            break
        if latest is not None:
            missed.append(latest)
            count += 1
        latest = instant
        walked += 1
        if not jumped and walked >= walk_limit and now - instant > grace:
            # Everything before now - grace is missed anyway: skip ahead (the count stays a floor).
            windows = iter_due(kind, rule, tz, now - grace - _ONE_MICROSECOND)
            jumped = True
    if latest is None:
        return Windows(None, (), 0, None)
    if now - latest <= grace:
        return Windows(latest, tuple(missed), count, latest)
    missed.append(latest)
    return Windows(None, tuple(missed), count + 1, latest)
