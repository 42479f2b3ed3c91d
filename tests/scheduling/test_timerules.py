"""Time rules: due times in UTC from local rules, daylight saving in both directions, validation, downtime windows."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduling.timerules import (
    RuleError,
    describe_rule,
    due_windows,
    iter_due,
    next_due,
    rule_from_text,
    upcoming,
    validate_rule,
    wall_to_utc,
)

BERLIN, NEW_YORK = "Europe/Berlin", "America/New_York"
HOUR = dt.timedelta(hours=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second)  # naive UTC, as stored


def local_walls(kind: str, rule: dict[str, Any], tz: str, after: dt.datetime, n: int) -> list[str]:
    return [o.local.strftime("%Y-%m-%d %H:%M %Z") for o in upcoming(kind, rule, tz, after, n)]


# --- daylight saving: never skipped, never doubled ------------------------------------------------

DST_CASES = [
    # zone, rule kind, rule, search from, (expected UTC instants of the next three runs)
    pytest.param(
        BERLIN,
        "daily",
        {"time": "02:30"},
        utc(2026, 3, 28, 12),
        [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30)],
        id="berlin-spring-daily-0230-runs-at-0300",
    ),
    pytest.param(
        BERLIN,
        "cron",
        {"expr": "30 2 * * *"},
        utc(2026, 3, 28, 12),
        [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30)],
        id="berlin-spring-cron-0230-runs-at-0300",
    ),
    pytest.param(
        BERLIN,
        "daily",
        {"time": "02:30"},
        utc(2026, 10, 24, 12),
        [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30)],
        id="berlin-fall-daily-0230-once-at-first",
    ),
    pytest.param(
        BERLIN,
        "cron",
        {"expr": "30 2 * * *"},
        utc(2026, 10, 24, 12),
        [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30), utc(2026, 10, 27, 1, 30)],
        id="berlin-fall-cron-0230-once-at-first",
    ),
    pytest.param(
        NEW_YORK,
        "daily",
        {"time": "02:30"},
        utc(2026, 3, 7, 12),
        [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30)],
        id="new-york-spring-daily-0230-runs-at-0300",
    ),
    pytest.param(
        NEW_YORK,
        "cron",
        {"expr": "30 2 * * *"},
        utc(2026, 3, 7, 12),
        [utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30)],
        id="new-york-spring-cron-0230-runs-at-0300",
    ),
    pytest.param(
        NEW_YORK,
        "daily",
        {"time": "01:30"},
        utc(2026, 10, 31, 12),
        [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30)],
        id="new-york-fall-daily-0130-once-at-first",
    ),
    pytest.param(
        NEW_YORK,
        "cron",
        {"expr": "30 1 * * *"},
        utc(2026, 10, 31, 12),
        [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30)],
        id="new-york-fall-cron-0130-once-at-first",
    ),
]


@pytest.mark.parametrize(("tz", "kind", "rule", "after", "expected"), DST_CASES)
def test_dst_transitions_neither_skip_nor_double(
    tz: str, kind: str, rule: dict[str, Any], after: dt.datetime, expected: list[dt.datetime]
) -> None:
    got = [o.utc for o in upcoming(kind, rule, tz, after, 3)]
    assert got == expected
    # one run per local calendar day across the transition
    days = Counter(o.local.date() for o in upcoming(kind, rule, tz, after, 10))
    assert set(days.values()) == {1}
    assert len(days) == 10


def test_spring_forward_local_times_read_naturally() -> None:
    walls = local_walls("daily", {"time": "02:30"}, BERLIN, utc(2026, 3, 28, 12), 2)
    assert walls == ["2026-03-29 03:00 CEST", "2026-03-30 02:30 CEST"]
    walls = local_walls("daily", {"time": "02:30"}, NEW_YORK, utc(2026, 3, 7, 12), 2)
    assert walls == ["2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT"]


def test_fall_back_runs_at_the_first_of_the_two_wall_times() -> None:
    walls = local_walls("daily", {"time": "02:30"}, BERLIN, utc(2026, 10, 24, 12), 2)
    assert walls == ["2026-10-25 02:30 CEST", "2026-10-26 02:30 CET"]
    walls = local_walls("daily", {"time": "01:30"}, NEW_YORK, utc(2026, 10, 31, 12), 2)
    assert walls == ["2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"]


def test_after_the_first_occurrence_the_second_does_not_run_again() -> None:
    # 01:15 UTC on 25 October 2026 is 02:15 CET, inside the repeated hour, after 02:30 CEST ran
    assert next_due("daily", {"time": "02:30"}, BERLIN, utc(2026, 10, 25, 1, 15)) == utc(2026, 10, 26, 1, 30)
    assert next_due("cron", {"expr": "30 2 * * *"}, BERLIN, utc(2026, 10, 25, 0, 30)) == utc(
        2026, 10, 26, 1, 30
    )


@pytest.mark.parametrize(
    ("tz", "after", "hours"),
    [
        (BERLIN, utc(2026, 10, 24, 20), 10),
        (NEW_YORK, utc(2026, 11, 1, 2), 10),
        (BERLIN, utc(2026, 3, 28, 20), 10),
        (NEW_YORK, utc(2026, 3, 8, 2), 10),
    ],
)
def test_hourly_cron_across_transitions_has_each_wall_time_once(
    tz: str, after: dt.datetime, hours: int
) -> None:
    runs = upcoming("cron", {"expr": "30 * * * *"}, tz, after, hours)
    instants = [o.utc for o in runs]
    assert instants == sorted(set(instants))
    walls = [o.local.replace(tzinfo=None) for o in runs]
    assert len(walls) == len(set(walls)), "a repeated wall time ran twice"


def test_every_fifteen_minutes_through_the_gap_collapses_to_one_run_at_the_transition() -> None:
    runs = upcoming("cron", {"expr": "*/15 * * * *"}, BERLIN, utc(2026, 3, 29, 0, 40), 4)
    assert [o.local.strftime("%H:%M %Z") for o in runs] == [
        "01:45 CET",
        "03:00 CEST",
        "03:15 CEST",
        "03:30 CEST",
    ]


def test_wall_to_utc_gap_and_fold() -> None:
    z = ZoneInfo(BERLIN)
    assert wall_to_utc(dt.datetime(2026, 3, 29, 2, 0), z) == utc(2026, 3, 29, 1, 0)
    assert wall_to_utc(dt.datetime(2026, 3, 29, 2, 59), z) == utc(2026, 3, 29, 1, 0)
    assert wall_to_utc(dt.datetime(2026, 10, 25, 2, 0), z) == utc(2026, 10, 25, 0, 0)
    # Samoa skipped 30 December 2011 entirely: midnight that day runs at the first instant after
    assert wall_to_utc(dt.datetime(2011, 12, 30, 0, 0), ZoneInfo("Pacific/Apia")) == utc(2011, 12, 30, 10, 0)


# --- the rule kinds ---------------------------------------------------------------------------


def test_weekly_monthly_every_n_days() -> None:
    weekly = upcoming("weekly", {"time": "08:00", "weekdays": [0, 2]}, "UTC", utc(2026, 1, 1), 4)
    assert [o.utc for o in weekly] == [
        utc(2026, 1, 5, 8),
        utc(2026, 1, 7, 8),
        utc(2026, 1, 12, 8),
        utc(2026, 1, 14, 8),
    ]
    last = upcoming("monthly", {"time": "08:00", "day": "last"}, "Asia/Tokyo", utc(2028, 1, 1), 3)
    assert [o.local.date() for o in last] == [
        dt.date(2028, 1, 31),
        dt.date(2028, 2, 29),
        dt.date(2028, 3, 31),
    ]
    assert [o.utc for o in last][:1] == [utc(2028, 1, 30, 23)]
    first = upcoming("monthly", {"time": "00:15", "day": 1}, BERLIN, utc(2026, 1, 15), 2)
    assert [o.utc for o in first] == [utc(2026, 1, 31, 23, 15), utc(2026, 2, 28, 23, 15)]
    every3 = upcoming(
        "every_n_days", {"time": "08:00", "n": 3, "start": "2026-01-02"}, "UTC", utc(2025, 12, 1), 3
    )
    assert [o.utc for o in every3] == [utc(2026, 1, 2, 8), utc(2026, 1, 5, 8), utc(2026, 1, 8, 8)]


def test_next_due_is_strictly_after() -> None:
    assert next_due("daily", {"time": "08:00"}, "UTC", utc(2026, 1, 1, 8)) == utc(2026, 1, 2, 8)
    assert next_due("daily", {"time": "08:00"}, "UTC", utc(2026, 1, 1, 7, 59, 59)) == utc(2026, 1, 1, 8)
    aware = dt.datetime(2026, 1, 1, 9, tzinfo=ZoneInfo(BERLIN))  # 08:00 UTC, aware input
    assert next_due("daily", {"time": "08:00"}, "UTC", aware) == utc(2026, 1, 2, 8)


def test_iter_due_is_strictly_increasing_across_a_year_in_many_zones() -> None:
    for tz in (BERLIN, NEW_YORK, "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago"):
        for kind, rule in (("daily", {"time": "02:30"}), ("cron", {"expr": "0,30 1-3 * * *"})):
            seen: list[dt.datetime] = []
            for instant in iter_due(kind, rule, tz, utc(2026, 1, 1)):
                if instant > utc(2027, 1, 1):
                    break
                seen.append(instant)
            assert seen == sorted(set(seen))


@pytest.mark.parametrize(
    ("kind", "rule", "message"),
    [
        ("hourly", {}, "Unknown rule kind"),
        ("daily", {"time": "25:00"}, "HH:MM"),
        ("daily", {"time": "8"}, "HH:MM"),
        ("daily", {}, "HH:MM"),
        ("weekly", {"time": "08:00", "weekdays": []}, "at least one weekday"),
        ("weekly", {"time": "08:00", "weekdays": [7]}, r"0 \(Monday\) to 6"),
        ("monthly", {"time": "08:00", "day": 29}, "1 to 28, or 'last'"),
        ("monthly", {"time": "08:00", "day": 0}, "1 to 28"),
        ("every_n_days", {"time": "08:00", "n": 0, "start": "2026-01-01"}, "at least 1"),
        ("every_n_days", {"time": "08:00", "n": 2, "start": "soon"}, "YYYY-MM-DD"),
        ("cron", {"expr": "0 8 * *"}, "five fields"),
        ("cron", {"expr": "0 8 * * * *"}, "five fields"),
        ("cron", {"expr": "61 8 * * *"}, "cannot be read"),
        ("cron", {"expr": "0 0 30 2 *"}, "never matches"),
    ],
)
def test_invalid_rules_say_what_to_fix(kind: str, rule: dict[str, Any], message: str) -> None:
    with pytest.raises(RuleError, match=message):
        validate_rule(kind, rule)


def test_rule_texts_from_the_command_line() -> None:
    today = dt.date(2026, 5, 4)
    assert rule_from_text("daily", "8:05", today=today) == {"time": "08:05"}
    assert rule_from_text("weekly", "mon,WED@07:30", today=today) == {"time": "07:30", "weekdays": [0, 2]}
    assert rule_from_text("monthly", "last@06:00", today=today) == {"time": "06:00", "day": "last"}
    assert rule_from_text("monthly", "15@06:00", today=today) == {"time": "06:00", "day": 15}
    assert rule_from_text("every_n_days", "3@06:00", today=today) == {
        "time": "06:00",
        "n": 3,
        "start": "2026-05-04",
    }
    assert rule_from_text("cron", " 0  8 * * 1-5 ", today=today) == {"expr": "0 8 * * 1-5"}
    with pytest.raises(RuleError, match="MON,WED@08:00"):
        rule_from_text("weekly", "MON", today=today)
    with pytest.raises(RuleError, match="Unknown weekday 'MUN'"):
        rule_from_text("weekly", "MUN@08:00", today=today)


def test_descriptions() -> None:
    assert describe_rule("daily", {"time": "08:00"}) == "Daily at 08:00"
    assert describe_rule("weekly", {"time": "08:00", "weekdays": [0, 4]}) == "Mondays and Fridays at 08:00"
    assert describe_rule("monthly", {"time": "08:00", "day": "last"}) == "Monthly on the last day at 08:00"
    assert describe_rule("cron", {"expr": "0 8 * * 1-5"}) == "Cron 0 8 * * 1-5"


# --- windows after downtime ---------------------------------------------------------------------


def test_downtime_over_three_windows_runs_the_newest_within_grace() -> None:
    w = due_windows(
        "daily", {"time": "08:00"}, "UTC", first=utc(2026, 1, 1, 8), now=utc(2026, 1, 3, 9), grace=6 * HOUR
    )
    assert w.run == utc(2026, 1, 3, 8)
    assert w.missed == (utc(2026, 1, 1, 8), utc(2026, 1, 2, 8))
    assert w.missed_count == 2 and w.latest == utc(2026, 1, 3, 8)


def test_downtime_beyond_grace_misses_every_window() -> None:
    w = due_windows(
        "daily", {"time": "08:00"}, "UTC", first=utc(2026, 1, 1, 8), now=utc(2026, 1, 3, 15), grace=6 * HOUR
    )
    assert w.run is None and w.missed_count == 3 and w.latest == utc(2026, 1, 3, 8)


def test_a_window_exactly_due_runs_and_nothing_before_first_counts() -> None:
    w = due_windows(
        "daily", {"time": "08:00"}, "UTC", first=utc(2026, 1, 1, 8), now=utc(2026, 1, 1, 8), grace=HOUR
    )
    assert (w.run, w.missed_count) == (utc(2026, 1, 1, 8), 0)
    w = due_windows(
        "daily", {"time": "08:00"}, "UTC", first=utc(2026, 1, 1, 8), now=utc(2026, 1, 1, 7), grace=HOUR
    )
    assert (w.run, w.latest, w.missed_count) == (None, None, 0)


def test_a_frequent_rule_after_a_long_downtime_is_walked_with_a_cap() -> None:
    w = due_windows(
        "cron",
        {"expr": "* * * * *"},
        "UTC",
        first=utc(2026, 1, 1),
        now=utc(2026, 1, 20),
        grace=HOUR,
        keep_missed=10,
        walk_limit=500,
    )
    assert w.run == utc(2026, 1, 20)
    assert len(w.missed) == 10 and w.missed[-1] == utc(2026, 1, 19, 23, 59)
    assert w.missed_count >= 500 + 60
