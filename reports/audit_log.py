"""Audit events: `record_event` (who did what, written by the CLI, app and importer) and the audit_log report.

Audit events are not part of the snapshot (they arrive without a data version change), so the
report reads the audit_events table live through the ORM session with SQLAlchemy Core; every
aggregation is a portable GROUP BY that runs the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, and_, case, distinct, extract, func, literal_column, select
from sqlalchemy.orm import Session

from analytics import columns as col
from analytics.definition import OptionSpec, Placement, ReportDefinition
from analytics.periods import Period, zone
from analytics.query import ReportContext, make_report
from analytics.report import ChartSpec, Column, Kpi, ParamError, Report, ReportParams, Table
from core.models import AuditEvent

DEFAULT_LIMIT = 1000
_UTC = dt.UTC


def record_event(
    session: Session,
    business_id: int,
    event_type: str,
    *,
    user: str = "",
    entity: str = "",
    entity_id: str = "",
    detail: dict[str, Any] | None = None,
    ip: str = "",
    at: dt.datetime | None = None,
) -> AuditEvent:
    """Add one audit event to `session` (flushed, not committed: it joins the caller's transaction).

    `at` defaults to now; aware instants are stored as naive UTC. Text longer than its column is
    cut to fit; `detail` must be JSON-serialisable (values that are not become their str()).
    """
    if not event_type.strip():
        raise ValueError("An audit event needs an event_type.")
    when = at or dt.datetime.now(_UTC)
    if when.tzinfo is not None:
        when = when.astimezone(_UTC).replace(tzinfo=None)
    event = AuditEvent(
        business_id=business_id,
        at=when,
        user=user[:80],
        event_type=event_type.strip()[:60],
        entity=entity[:60],
        entity_id=str(entity_id)[:100],
        detail=json.loads(json.dumps(detail or {}, default=str)),
        ip=ip[:64],
    )
    session.add(event)
    session.flush()
    return event


def _choices(params: ReportParams, name: str) -> list[str]:
    return [v.strip() for v in params.option(name, "").split(",") if v.strip()]


def _limit(params: ReportParams) -> int:
    raw = params.option("limit", str(DEFAULT_LIMIT))
    try:
        value = int(raw)
    except ValueError:
        raise ParamError(f"limit must be a whole number of events, not {raw!r}.") from None
    if value < 1:
        raise ParamError(f"limit must be at least 1, not {value}.")
    return value


def _utc_bounds(period: Period, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) as naive UTC instants: midnight starting the period's first local day to
    midnight after its last local day, in time zone `tz`."""
    z = zone(tz)

    def utc(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tzinfo=z).astimezone(_UTC).replace(tzinfo=None)

    return utc(period.start), utc(period.end + dt.timedelta(days=1))


def _local(value: Any, tz: str) -> dt.datetime | None:
    """A stored naive-UTC instant as naive local time in `tz` (None stays None)."""
    if value is None:
        return None
    instant = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return instant.replace(tzinfo=_UTC).astimezone(zone(tz)).replace(tzinfo=None)


def _conditions(
    business_id: int, bounds: tuple[dt.datetime, dt.datetime], params: ReportParams
) -> ColumnElement[bool]:
    e = AuditEvent
    conds = [e.business_id == business_id, e.at >= bounds[0], e.at < bounds[1]]
    for option, column in (("event_type", e.event_type), ("user", e.user), ("entity", e.entity)):
        values = _choices(params, option)
        if values:
            conds.append(column.in_(values))
    return and_(*conds)


def _compact(detail: Any) -> str:
    if detail in (None, {}, ""):
        return ""
    if isinstance(detail, str):
        return detail
    return json.dumps(detail, separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str)


def events_frame(session: Session, where: ColumnElement[bool], limit: int, tz: str) -> pd.DataFrame:
    """The newest `limit` matching events (ties by id, newest first); `at` in local time of `tz`."""
    e = AuditEvent
    rows = session.execute(
        select(e.at, e.user, e.event_type, e.entity, e.entity_id, e.detail, e.ip)
        .where(where)
        .order_by(e.at.desc(), e.id.desc())
        .limit(limit)
    ).all()
    columns = ["at", "user", "event_type", "entity", "entity_id", "detail", "ip"]
    records = [(_local(r[0], tz), r[1], r[2], r[3], r[4], _compact(r[5]), r[6]) for r in rows]
    return pd.DataFrame.from_records(records, columns=columns)


def count_by(session: Session, where: ColumnElement[bool], column: Any, key: str) -> pd.DataFrame:
    """Events (and the latest event time) grouped by one column, most events first, ties by value."""
    e = AuditEvent
    n = func.count(e.id)
    rows = session.execute(
        select(column, n, func.max(e.at)).where(where).group_by(column).order_by(n.desc(), column)
    ).all()
    return pd.DataFrame.from_records(
        [(r[0], int(r[1]), r[2]) for r in rows], columns=[key, "events", "last_at"]
    )


def events_by_day(session: Session, where: ColumnElement[bool], period: Period, tz: str) -> pd.DataFrame:
    """Events per local day of `tz`: every day of the period, or no rows when there are none.

    The database groups by UTC date, hour and quarter hour (portable SQL); those few aggregated rows
    are moved to local days in Python, exact for every zone whose offset is a multiple of 15 minutes.
    """
    e = AuditEvent
    hour = extract("hour", e.at)
    minute = extract("minute", e.at)
    # Literal SQL numbers, not bound parameters: PostgreSQL must see the same expression in SELECT
    # and GROUP BY.
    lit: list[ColumnElement[int]] = [literal_column(str(i)) for i in (0, 1, 2, 3, 15, 30, 45)]
    quarter = case(
        (minute < lit[4], lit[0]), (minute < lit[5], lit[1]), (minute < lit[6], lit[2]), else_=lit[3]
    )
    day = func.date(e.at)
    rows = session.execute(
        select(day, hour, quarter, func.count(e.id)).where(where).group_by(day, hour, quarter)
    ).all()
    if not rows:
        return pd.DataFrame({"day": pd.Series([], dtype=object), "events": pd.Series([], dtype="int64")})
    z = zone(tz)
    counts: Counter[dt.date] = Counter()
    for d, h, q, n in rows:
        utc_day = d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d))
        start = dt.datetime.combine(utc_day, dt.time(int(h), 15 * int(q)), tzinfo=_UTC)
        counts[start.astimezone(z).date()] += int(n)
    days = [period.start + dt.timedelta(days=i) for i in range(period.days)]
    return pd.DataFrame({"day": days, "events": [counts.get(d, 0) for d in days]})


def build_audit_log(ctx: ReportContext, params: ReportParams) -> Report:
    """Audit events whose time falls in the period's local days (time zone `tz`), filtered by the
    options event_type, user and entity (comma lists); the list is capped at option `limit`."""
    period = ctx.period
    limit = _limit(params)
    tz = params.tz
    session = ctx.session
    where = _conditions(ctx.business.id, _utc_bounds(period, tz), params)
    e = AuditEvent
    total, users, types = session.execute(
        select(func.count(e.id), func.count(distinct(e.user)), func.count(distinct(e.event_type))).where(
            where
        )
    ).one()
    events = events_frame(session, where, limit, tz)
    by_type = count_by(session, where, e.event_type, "event_type").drop(columns=["last_at"])
    by_user = count_by(session, where, e.user, "user")
    by_user["last_at"] = pd.Series(
        [_local(v, tz) for v in by_user["last_at"]], index=by_user.index, dtype=object
    )
    kpis = [
        Kpi("events", "Events", int(total), "int"),
        Kpi("users", "Users", int(users), "int"),
        Kpi("event_types", "Event types", int(types), "int"),
    ]
    at_label = f"Time ({tz})"
    tables = [
        Table(
            "events",
            "Events, newest first",
            [
                Column("at", at_label, "datetime"),
                col.USER,
                col.EVENT_TYPE,
                Column("entity", "Entity"),
                Column("entity_id", "Entity id"),
                Column("detail", "Detail"),
                Column("ip", "IP address"),
            ],
            events,
        ),
        Table(
            "by_event_type",
            "Events by type",
            [col.EVENT_TYPE, col.EVENTS],
            by_type,
        ),
        Table(
            "by_user",
            "Events by user",
            [col.USER, col.EVENTS, Column("last_at", f"Last event ({tz})", "datetime")],
            by_user,
        ),
        Table(
            "by_day",
            "Events by day",
            [col.DAY, col.EVENTS],
            events_by_day(session, where, period, tz),
        ),
    ]
    charts = [
        ChartSpec("by_day", "Events by day", "bar", "by_day", "day", ("events",), "int"),
        ChartSpec(
            "by_event_type", "Events by type", "bar", "by_event_type", "event_type", ("events",), "int"
        ),
        ChartSpec("by_user", "Events by user", "bar", "by_user", "user", ("events",), "int"),
    ]
    notes = []
    if int(total) > limit:
        notes.append(
            f"The events table shows the newest {limit:,} of {int(total):,} events; "
            "raise the limit option or narrow the filters to see the rest."
        )
    return make_report(ctx, "audit_log", "Audit log", params, period, kpis, tables, charts, notes)


def _sequence_help(what: str) -> str:
    return f"Only these {what} (comma-separated; default: all)"


AUDIT_OPTIONS: Sequence[OptionSpec] = (
    OptionSpec("event_type", _sequence_help("event types"), ""),
    OptionSpec("user", _sequence_help("users"), ""),
    OptionSpec("entity", _sequence_help("entities"), ""),
    OptionSpec("limit", "Most events listed in the events table", str(DEFAULT_LIMIT)),
)

AUDIT_LOG = ReportDefinition(
    slug="audit_log",
    title="Audit log",
    description="Who did what and when: events filtered by type, user and entity, with counts by "
    "event type, user and day.",
    build=build_audit_log,
    filters=(),
    options=tuple(AUDIT_OPTIONS),
    default_period="last_7_days",
    roles=("admin",),  # the Admin section's data
    live=True,  # events arrive with every click, without a new data version
    page=Placement("audit_log", "Audit log", ":material/policy:", section="Manage"),
)
