"""Schedules: validation (header injection, placeholders, rules), tenant and role checks, next runs, statuses."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from core.errors import Forbidden
from core.models import AuditEvent, OutboxMessage, Schedule, ScheduleRun
from reports.registry import NotFound
from scheduling.schedules import (
    ScheduleError,
    ScheduleSpec,
    check_template,
    create_schedule,
    delete_schedule,
    get_schedule,
    list_schedules,
    next_run_times,
    overdue_schedules,
    pause_schedule,
    render_subject,
    resume_schedule,
    run_now,
    schedule_runs,
    upcoming_schedules,
    update_schedule,
)
from tests.tenants import Jobs, Tenant

NOW = dt.datetime(2026, 3, 20, 10, 0, tzinfo=dt.UTC)


def spec(**changes: Any) -> ScheduleSpec:
    base = ScheduleSpec(
        report_slug="sales_summary",
        rule_kind="daily",
        rule={"time": "08:00"},
        recipients=("ops@example.com",),
        formats=("json",),
        timezone="Europe/Berlin",
        period="last_month",
    )
    return dataclasses.replace(base, **changes)


def create(jobs: Jobs, tenant: Tenant, who: str = "manager", **changes: Any) -> int:
    with jobs.session() as s:
        return create_schedule(s, tenant.scope(who), spec(**changes), now=NOW).id


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subject": "Sales\r\nBcc: victim@example.com"}, "subject contains a line break"),
        ({"subject": "Sales\nreport"}, "subject contains a line break"),
        ({"subject": "Sales\u2028report"}, "subject contains a line break"),
        ({"subject": "Sales\x00"}, "subject contains a control character"),
        ({"recipients": ("ops@example.com\r\nBcc: x@evil.test",)}, "recipient .* contains a line break"),
        ({"recipients": ("ops@example.com\n",)}, "contains a line break"),
        ({"name": "Weekly\r\nX-Evil: 1"}, "schedule name contains a line break"),
        ({"recipients": ("not-an-address",)}, "'not-an-address' is not a valid e-mail address"),
        ({"recipients": ("Ops <ops@example.com>",)}, "not a valid e-mail address"),
        ({"recipients": ("ops@localhost",)}, "not a valid e-mail address"),
        ({"recipients": ("a b@example.com",)}, "not a valid e-mail address"),
        ({"recipients": ()}, "at least one recipient"),
        ({"subject": "{report} for {month}"}, r"Unknown placeholder \{month\} in the subject"),
        (
            {"message": "Hello {business.__class__}"},
            r"Unknown placeholder \{business.__class__\} in the message",
        ),
        ({"subject": "{report!r}"}, r"Unknown placeholder \{report!r\}"),
        ({"subject": "{report"}, "unmatched brace"),
        ({"subject": "   "}, "needs? a subject|Give the e-mail a subject"),
        ({"formats": ("docx",)}, "Unknown format 'docx'"),
        ({"formats": ()}, "at least one file format"),
        ({"report_slug": "nope"}, "Unknown report 'nope'"),
        ({"period": "next_month"}, "Unknown period 'next_month'"),
        ({"timezone": "Mars/Olympus"}, "Unknown time zone 'Mars/Olympus'"),
        ({"rule": {"time": "8h"}}, "HH:MM"),
        ({"rule_kind": "cron", "rule": {"expr": "every day"}}, "five fields"),
        ({"large_file_mode": "zip"}, "'attach' or 'link'"),
        ({"parameters": {"colour": "red"}}, "has no parameter 'colour'"),
        ({"parameters": {"granularity": "fortnight"}}, "granularity must be one of"),
        ({"parameters": {"period": "today"}}, "schedule's own period"),
        ({"saved_report_id": 999_999_999}, "No such saved report"),
    ],
)
def test_invalid_schedules_are_refused_with_a_clear_message(
    jobs: Jobs, tenant: Tenant, changes: dict[str, Any], message: str
) -> None:
    with jobs.session() as s, pytest.raises(ScheduleError, match=message):
        create_schedule(s, tenant.scope("manager"), spec(**changes), now=NOW)
    with jobs.session() as s:
        assert s.scalar(select(Schedule.id).where(Schedule.business_id == tenant.business_id)) is None


def test_a_valid_schedule_is_cleaned_and_due_in_its_own_zone(jobs: Jobs, tenant: Tenant) -> None:
    with jobs.session() as s:
        info = create_schedule(
            s,
            tenant.scope("manager"),
            spec(
                recipients=(" Ops@Example.com ", "ops@example.com; cfo@example.com", "cfo@EXAMPLE.com"),
                formats=("JSON", "json"),
                parameters={"region": "North", "granularity": "week"},
                subject="{report} for {period} ({business}) {{draft}}",
            ),
            now=NOW,
        )
    assert info.recipients == ("Ops@Example.com", "cfo@example.com")
    assert info.formats == ("json",)
    assert info.parameters == {"filters": {"region": ["North"]}, "options": {"granularity": "week"}}
    assert info.name == "Sales summary, daily at 08:00"
    assert info.owner == tenant.users["manager"][1]
    # 08:00 in Berlin on 21 March 2026 (CET, UTC+1)
    assert info.next_due_at == dt.datetime(2026, 3, 21, 7, 0)
    assert info.next_due_local is not None and info.next_due_local.strftime("%H:%M %Z") == "08:00 CET"
    runs = next_run_times(info, now=NOW)
    assert [o.local.strftime("%m-%d %H:%M %Z") for o in runs] == [
        "03-21 08:00 CET",
        "03-22 08:00 CET",
        "03-23 08:00 CET",
        "03-24 08:00 CET",
        "03-25 08:00 CET",
    ]
    with jobs.session() as s:
        event = s.scalars(
            select(AuditEvent).where(
                AuditEvent.business_id == tenant.business_id,
                AuditEvent.entity == "schedule",
                AuditEvent.entity_id == str(info.id),
            )
        ).one()
    assert event.event_type == "schedule_created" and event.user == tenant.users["manager"][1]


def test_next_runs_cross_the_spring_transition_in_the_schedules_zone(jobs: Jobs, tenant: Tenant) -> None:
    sid = create(jobs, tenant, rule={"time": "02:30"})
    with jobs.session() as s:
        info = get_schedule(s, tenant.scope("admin"), sid)
    shown = [
        o.local.strftime("%m-%d %H:%M %Z") for o in next_run_times(info, now=dt.datetime(2026, 3, 27, 12))
    ]
    assert shown[:3] == ["03-28 02:30 CET", "03-29 03:00 CEST", "03-30 02:30 CEST"]


def test_placeholders_render_and_values_cannot_break_the_subject() -> None:
    assert check_template("{report} / {period} / {business}", "subject")
    subject = render_subject("{report} for {period}", report="Sales", period="2026-02", business="X")
    assert subject == "Sales for 2026-02"
    assert (
        render_subject("{business}: {report}", report="R", period="", business="Evil\r\nBcc: x")
        == "Evil Bcc: x: R"
    )


# --- scope and roles ----------------------------------------------------------------------------


def test_staff_cannot_manage_schedules(jobs: Jobs, tenant: Tenant) -> None:
    sid = create(jobs, tenant)
    with jobs.session() as s:
        with pytest.raises(Forbidden, match="managers and admins"):
            create_schedule(s, tenant.scope("staff"), spec(), now=NOW)
        with pytest.raises(Forbidden):
            list_schedules(s, tenant.scope("staff"))
        with pytest.raises(Forbidden):
            pause_schedule(s, tenant.scope("staff"), sid, now=NOW)


def test_another_business_sees_nothing_and_cannot_touch(jobs: Jobs, tenant: Tenant, other: Tenant) -> None:
    sid = create(jobs, tenant)
    with jobs.session() as s:
        assert list_schedules(s, other.scope("admin")) == []
        for action in (pause_schedule, resume_schedule, delete_schedule, run_now):
            with pytest.raises(NotFound, match="No such schedule"):
                action(s, other.scope("admin"), sid, now=NOW)
        with pytest.raises(NotFound):
            get_schedule(s, other.scope("admin"), sid)
        with pytest.raises(NotFound):
            update_schedule(s, other.scope("admin"), sid, spec(), now=NOW)
        with pytest.raises(NotFound):
            schedule_runs(s, other.scope("admin"), sid)
        assert [i.id for i in list_schedules(s, tenant.scope("admin"))] == [sid]


def test_the_owner_must_be_a_manager_or_admin_who_may_run_the_report(jobs: Jobs, tenant: Tenant) -> None:
    with jobs.session() as s:
        with pytest.raises(ScheduleError, match="cannot own schedules"):
            create_schedule(s, tenant.scope("admin"), spec(), now=NOW, owner=tenant.users["staff"][1])
        with pytest.raises(ScheduleError, match="No user 'ghost'"):
            create_schedule(s, tenant.scope("admin"), spec(), now=NOW, owner="ghost")
        with pytest.raises(ScheduleError, match="may not generate the 'audit_log' report"):
            create_schedule(s, tenant.scope("manager"), spec(report_slug="audit_log"), now=NOW)
        info = create_schedule(s, tenant.scope("admin"), spec(report_slug="audit_log"), now=NOW)
    assert info.owner == tenant.users["admin"][1]


# --- lifecycle ----------------------------------------------------------------------------------


def test_pause_resume_update_delete(jobs: Jobs, tenant: Tenant) -> None:
    sid = create(jobs, tenant)
    scope = tenant.scope("manager")
    later = NOW + dt.timedelta(days=3)
    with jobs.session() as s:
        paused = pause_schedule(s, scope, sid, now=NOW)
        assert not paused.active and paused.next_due_at is None
        assert next_run_times(paused, now=NOW) == []
        resumed = resume_schedule(s, scope, sid, now=later)
        assert resumed.active and resumed.next_due_at == dt.datetime(2026, 3, 24, 7, 0)
        updated = update_schedule(
            s, scope, sid, spec(rule_kind="weekly", rule={"time": "09:15", "weekdays": [4]}), now=later
        )
        assert updated.rule_text == "Fridays at 09:15"
        assert updated.next_due_at == dt.datetime(2026, 3, 27, 8, 15)
        events = s.scalars(
            select(AuditEvent.event_type)
            .where(
                AuditEvent.business_id == tenant.business_id,
                AuditEvent.entity == "schedule",
                AuditEvent.entity_id == str(sid),
            )
            .order_by(AuditEvent.id)
        ).all()
        assert events == ["schedule_created", "schedule_paused", "schedule_resumed", "schedule_updated"]
        delete_schedule(s, scope, sid, now=later)
        assert s.get(Schedule, sid) is None
        with pytest.raises(NotFound):
            get_schedule(s, scope, sid)


def test_a_clock_stepping_back_does_not_bring_back_a_handled_window(jobs: Jobs, tenant: Tenant) -> None:
    sid = create(jobs, tenant)
    with jobs.session() as s:
        row = s.get(Schedule, sid)
        assert row is not None
        row.last_due_at = dt.datetime(2026, 3, 21, 7, 0)  # the 21 March window already ran
        s.commit()
        info = update_schedule(s, tenant.scope("admin"), sid, spec(subject="New subject"), now=NOW)
    assert info.next_due_at == dt.datetime(2026, 3, 22, 7, 0)


def test_upcoming_and_overdue_lists(jobs: Jobs, tenant: Tenant) -> None:
    soon = create(jobs, tenant, rule={"time": "12:00"})
    late = create(jobs, tenant, rule={"time": "20:00"})
    paused = create(jobs, tenant, rule={"time": "13:00"})
    with jobs.session() as s:
        pause_schedule(s, tenant.scope("admin"), paused, now=NOW)
        scope = tenant.scope("admin")
        assert [i.id for i in upcoming_schedules(s, scope, now=NOW)] == [soon, late]
        # at 11:30 UTC (12:30 Berlin) the 12:00 window is 30 minutes late and nobody claimed it
        assert [i.id for i in overdue_schedules(s, scope, now=NOW + dt.timedelta(hours=1, minutes=30))] == [
            soon
        ]
        assert overdue_schedules(s, scope, now=dt.datetime(2026, 3, 20, 11, 0, 30)) == []  # within slack


def test_run_now_and_the_status_of_each_delivery(jobs: Jobs, tenant: Tenant) -> None:
    sid = create(jobs, tenant, recipients=("a@example.com", "b@example.com"))
    scope = tenant.scope("manager")
    with jobs.session() as s:
        requested = run_now(s, scope, sid, now=NOW)
        assert requested.status == "requested" and requested.due_at == NOW.replace(tzinfo=None)
        with pytest.raises(ScheduleError, match="already has a run for this very second"):
            run_now(s, scope, sid, now=NOW)
        window = s.get(ScheduleRun, requested.id)
        assert window is not None
        window.status = "queued"
        for i, address in enumerate(("a@example.com", "b@example.com")):
            s.add(
                OutboxMessage(
                    business_id=tenant.business_id,
                    schedule_run_id=window.id,
                    kind="report",
                    recipient=address,
                    message_id=f"<t{window.id}.{i}@test>",
                    status="sent" if i == 0 else "failed",
                    attempts=1,
                    last_error="" if i == 0 else "550 mailbox unavailable",
                )
            )
        s.commit()
        [status] = schedule_runs(s, scope, sid)
        assert status.status == "queued" and status.due_local.strftime("%H:%M") == "11:00"
        assert [(d.recipient, d.status, d.last_error) for d in status.deliveries] == [
            ("a@example.com", "sent", ""),
            ("b@example.com", "failed", "550 mailbox unavailable"),
        ]
        assert [r.id for r in schedule_runs(s, scope)] == [requested.id]
