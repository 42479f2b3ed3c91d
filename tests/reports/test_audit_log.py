"""audit_log and record_event: live audit events, filters, limit, time zones, oracle on demo data."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from analytics.report import ParamError, Report
from core.db import make_sessionmaker, session_scope
from core.models import AuditEvent, Business
from core.settings import Settings
from ingest.demo import load_demo
from reports.audit_log import record_event
from reports.registry import REGISTRY
from tests.conftest import new_business
from tests.reports.reporting import run_report

JUNE = ("start=2025-06-01", "end=2025-06-30")


def audit(engine: Engine, settings: Settings, business: Business, *pairs: str) -> Report:
    return run_report(engine, settings.snapshot_dir, business.id, "audit_log", *pairs)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# --- record_event -------------------------------------------------------------------------------


def test_record_event_writes_one_row(session: Session, business: Business) -> None:
    event = record_event(
        session,
        business.id,
        " export ",
        user="alice",
        entity="report",
        entity_id="payments",
        detail={"format": "csv", "on": dt.date(2025, 6, 1)},
        ip="10.0.0.1",
        at=dt.datetime(2025, 6, 1, 10, 0, tzinfo=ZoneInfo("Europe/Berlin")),
    )
    assert event.id is not None
    row = session.scalars(select(AuditEvent).where(AuditEvent.id == event.id)).one()
    assert (row.event_type, row.user, row.entity, row.entity_id, row.ip) == (
        "export",
        "alice",
        "report",
        "payments",
        "10.0.0.1",
    )
    assert row.at == dt.datetime(2025, 6, 1, 8, 0)  # stored as naive UTC
    assert row.detail == {"format": "csv", "on": "2025-06-01"}


def test_record_event_defaults_and_limits(session: Session, business: Business) -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    event = record_event(session, business.id, "login", user="u" * 200, entity_id="x" * 300)
    assert before <= event.at <= dt.datetime.now(dt.UTC).replace(tzinfo=None)
    assert (len(event.user), len(event.entity_id), event.detail) == (80, 100, {})
    with pytest.raises(ValueError, match="event_type"):
        record_event(session, business.id, "  ")


# --- the report on hand-worked events -----------------------------------------------------------


def add_events(
    engine: Engine, business_id: int, rows: list[tuple[str, str, str, str, dict[str, object]]]
) -> None:
    """rows: (at, user, event_type, entity, detail), committed like the app would."""
    with session_scope(engine) as s:
        for when, user, kind, entity, detail in rows:
            record_event(
                s,
                business_id,
                kind,
                user=user,
                entity=entity,
                entity_id="1",
                detail=detail,
                ip="10.0.0.9",
                at=at(when),
            )


@pytest.fixture
def june(engine: Engine, business: Business) -> Business:
    add_events(
        engine,
        business.id,
        [
            ("2025-05-31T23:59:59", "alice", "login", "session", {}),  # before the period (UTC)
            ("2025-06-01T08:00:00", "alice", "login", "session", {"method": "password"}),
            ("2025-06-01T09:00:00", "bob", "export", "report", {"rows": 5, "format": "csv", "name": "Café"}),
            ("2025-06-02T23:30:00", "bob", "login", "session", {}),
            ("2025-06-30T23:59:59", "alice", "import", "import", {"entity": "sales"}),
            ("2025-07-01T00:00:00", "alice", "login", "session", {}),  # after
        ],
    )
    return business


def test_events_counts_and_tables(engine: Engine, settings: Settings, june: Business) -> None:
    report = audit(engine, settings, june, *JUNE)
    assert {k.key: k.value for k in report.kpis} == {"events": 4, "users": 2, "event_types": 3}
    events = report.tables["events"].records()
    assert [(e["at"], e["event_type"]) for e in events] == [
        (at("2025-06-30T23:59:59"), "import"),
        (at("2025-06-02T23:30:00"), "login"),
        (at("2025-06-01T09:00:00"), "export"),
        (at("2025-06-01T08:00:00"), "login"),
    ]
    assert events[2]["detail"] == '{"format":"csv","name":"Café","rows":5}'
    assert events[1]["detail"] == ""
    assert (events[0]["user"], events[0]["entity"], events[0]["entity_id"], events[0]["ip"]) == (
        "alice",
        "import",
        "1",
        "10.0.0.9",
    )
    assert report.tables["by_event_type"].records() == [
        {"event_type": "login", "events": 2},
        {"event_type": "export", "events": 1},
        {"event_type": "import", "events": 1},
    ]
    assert report.tables["by_user"].records() == [
        {"user": "alice", "events": 2, "last_at": at("2025-06-30T23:59:59")},
        {"user": "bob", "events": 2, "last_at": at("2025-06-02T23:30:00")},
    ]
    by_day = report.tables["by_day"].frame
    assert len(by_day) == 30
    assert dict(zip(by_day["day"], by_day["events"], strict=True)) == {
        dt.date(2025, 6, d): {1: 2, 2: 1, 30: 1}.get(d, 0) for d in range(1, 31)
    }
    assert not report.notes


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("event_type=login,export",), 3),
        (("event_type=login", "user=bob"), 1),
        (("user=alice,bob",), 4),
        (("entity=report",), 1),
        (("event_type=logout",), 0),
    ],
)
def test_option_filters(
    engine: Engine, settings: Settings, june: Business, options: tuple[str, ...], expected: int
) -> None:
    report = audit(engine, settings, june, *JUNE, *options)
    assert report.kpi("events").value == expected
    assert len(report.tables["events"].frame) == expected
    assert int(report.tables["by_day"].frame["events"].sum()) == expected
    assert int(report.tables["by_user"].frame["events"].sum()) == expected
    assert report.is_empty == (expected == 0)


def test_limit_caps_the_list_with_a_note(engine: Engine, settings: Settings, june: Business) -> None:
    report = audit(engine, settings, june, *JUNE, "limit=2")
    assert [e["event_type"] for e in report.tables["events"].records()] == ["import", "login"]
    assert report.kpi("events").value == 4
    assert int(report.tables["by_event_type"].frame["events"].sum()) == 4
    assert report.notes and "newest 2 of 4" in report.notes[0]
    assert not audit(engine, settings, june, *JUNE, "limit=4").notes


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        (("limit=lots",), "limit must be a whole number"),
        (("limit=0",), "at least 1"),
        (("region=North",), "cannot be filtered by 'region'"),
        (("colour=red",), "has no parameter 'colour'"),
    ],
)
def test_bad_parameters(
    engine: Engine, settings: Settings, june: Business, pairs: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ParamError, match=message):
        audit(engine, settings, june, *JUNE, *pairs)


def test_definition_declares_options_not_filters() -> None:
    definition = REGISTRY["audit_log"]
    assert definition.filters == ()
    assert {o.name for o in definition.options} == {"event_type", "user", "entity", "limit"}


def test_period_is_local_days_of_tz(engine: Engine, settings: Settings, june: Business) -> None:
    # June in Berlin (UTC+2) runs from 2025-05-31T22:00Z to 2025-06-30T22:00Z.
    report = audit(engine, settings, june, *JUNE, "tz=Europe/Berlin")
    events = report.tables["events"].records()
    assert [e["at"] for e in events] == [
        at("2025-06-03T01:30:00"),
        at("2025-06-01T11:00:00"),
        at("2025-06-01T10:00:00"),
        at("2025-06-01T01:59:59"),
    ]
    by_day = report.tables["by_day"].frame.set_index("day")["events"]
    assert (by_day[dt.date(2025, 6, 1)], by_day[dt.date(2025, 6, 2)], by_day[dt.date(2025, 6, 3)]) == (
        3,
        0,
        1,
    )
    assert int(by_day.sum()) == 4
    assert report.tables["events"].column("at").label == "Time (Europe/Berlin)"


def test_quarter_hour_time_zone(engine: Engine, settings: Settings, business: Business) -> None:
    # Kathmandu is UTC+05:45: 18:14:59Z is 23:59:59 on the 1st, 18:15Z is midnight of the 2nd.
    add_events(
        engine,
        business.id,
        [
            ("2025-06-01T18:14:59", "a", "login", "", {}),
            ("2025-06-01T18:15:00", "a", "login", "", {}),
            ("2025-06-01T18:29:00", "a", "login", "", {}),
        ],
    )
    report = audit(engine, settings, business, "start=2025-06-01", "end=2025-06-02", "tz=Asia/Kathmandu")
    assert report.tables["by_day"].records() == [
        {"day": dt.date(2025, 6, 1), "events": 1},
        {"day": dt.date(2025, 6, 2), "events": 2},
    ]


def test_other_businesses_are_invisible(engine: Engine, settings: Settings, june: Business) -> None:
    other = new_business(engine)
    add_events(engine, other.id, [("2025-06-10T10:00:00", "mallory", "login", "session", {})])
    assert audit(engine, settings, june, *JUNE).kpi("events").value == 4
    assert audit(engine, settings, other, *JUNE).kpi("users").value == 1


def test_new_events_show_without_a_data_version_change(
    engine: Engine, settings: Settings, june: Business
) -> None:
    assert audit(engine, settings, june, *JUNE).kpi("events").value == 4
    with make_sessionmaker(engine)() as s:
        record_event(s, june.id, "logout", user="carol", at=at("2025-06-15T12:00:00"))
        s.commit()
    assert audit(engine, settings, june, *JUNE).kpi("events").value == 5


# --- oracle on generated data -------------------------------------------------------------------

TODAY = dt.date(2025, 3, 1)


@pytest.fixture(scope="module")
def demo(engine: Engine) -> Iterator[tuple[Business, list[AuditEvent]]]:
    business = new_business(engine)
    load_demo(engine, business.code, rows=300, seed=9, today=TODAY)
    with make_sessionmaker(engine)() as s:
        rows = list(s.scalars(select(AuditEvent).where(AuditEvent.business_id == business.id)))
    yield business, rows


@pytest.mark.parametrize(
    "options",
    [(), ("event_type=login,export",), ("user=ADMIN",)],  # ADMIN: the demo's admin, whatever its name
)
def test_oracle_on_demo_events(
    engine: Engine,
    settings: Settings,
    demo: tuple[Business, list[AuditEvent]],
    options: tuple[str, ...],
) -> None:
    business, rows = demo
    # The demo names its own users: "admin", or "admin-<code>" when another business has an "admin".
    admin = next(e.user for e in rows if e.user.startswith("admin"))
    options = tuple(o.replace("ADMIN", admin) for o in options)
    start, end = dt.date(2024, 12, 1), dt.date(2025, 1, 31)
    chosen = dict(o.split("=") for o in options)
    picked = [
        e
        for e in rows
        if start <= e.at.date() <= end
        and ("event_type" not in chosen or e.event_type in chosen["event_type"].split(","))
        and ("user" not in chosen or e.user in chosen["user"].split(","))
    ]
    assert len(picked) > 3
    report = audit(engine, settings, business, f"start={start}", f"end={end}", *options)
    assert report.kpi("events").value == len(picked)
    assert report.kpi("users").value == len({e.user for e in picked})
    assert report.kpi("event_types").value == len({e.event_type for e in picked})
    types = Counter(e.event_type for e in picked)
    assert report.tables["by_event_type"].records() == [
        {"event_type": k, "events": n} for k, n in sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    users = Counter(e.user for e in picked)
    got_users = {r["user"]: (r["events"], r["last_at"]) for r in report.tables["by_user"].records()}
    assert got_users == {u: (n, max(e.at for e in picked if e.user == u)) for u, n in users.items()}
    days = Counter(e.at.date() for e in picked)
    by_day = report.tables["by_day"].records()
    assert len(by_day) == (end - start).days + 1
    assert {r["day"]: r["events"] for r in by_day if r["events"]} == dict(days)
    listed = report.tables["events"].records()
    newest = sorted(picked, key=lambda e: (e.at, e.id), reverse=True)
    assert [(r["at"], r["event_type"], r["user"]) for r in listed] == [
        (e.at, e.event_type, e.user) for e in newest
    ]


# --- an empty period ----------------------------------------------------------------------------


def test_empty_period(engine: Engine, settings: Settings, june: Business) -> None:
    report = audit(engine, settings, june, "start=2020-01-01", "end=2020-01-31")
    assert report.is_empty
    assert {k.key: k.value for k in report.kpis} == {"events": 0, "users": 0, "event_types": 0}
    for table in report.tables.values():
        assert set(table.frame.columns) >= {c.key for c in table.columns}, table.name
