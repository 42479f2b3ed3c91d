"""Tenants cannot touch each other's email or retention, and every setting function checks the acting
user itself: business B's admin sets up SMTP, and business A's scheduled report still goes through
A's route (the installation default, or the outbox folder) - never B's server. Two real SMTP servers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from accounts.users import operator
from analytics.report import Scope
from core.db import make_sessionmaker
from core.errors import Forbidden, NotFound
from core.models import AuditEvent, Business, Run, SavedReport, Schedule, SmtpSettings, User
from core.settings import Settings
from mail.delivery import DeliveryStats, deliver_due
from mail.smtp_config import clear_smtp, delivery_status, get_smtp, save_smtp, send_test
from runs import history, saved
from runs.retention import expire_files, retention_days
from scheduling.schedules import (
    ScheduleSpec,
    create_schedule,
    delete_schedule,
    pause_schedule,
    resume_schedule,
    run_now,
    update_schedule,
)
from scheduling.summary import get_retention_days, set_retention_days
from tests.mail.mail_fixtures import (
    UTC_NOW,
    clean_installation,
    mail_settings,
    make_window,
    parse,
)
from tests.mail.test_transports_smtp import USER as SMTP_USER
from tests.mail.test_transports_smtp import Mailbox, StartServer, authenticator, smtp_server
from tests.tenants import NOW, Jobs, Tenant, last_month

__all__ = ["clean_installation", "smtp_server"]  # fixtures shared with other modules

PASSWORD = "s3cret pass phrase"  # what test_mailer_smtp's authenticator accepts
DEFAULT_FROM = "reports@installation.example"
BETA_FROM = "reports@beta.example"


@pytest.fixture
def mail(jobs: Jobs, tmp_path: Path) -> Settings:
    return mail_settings(jobs, tmp_path / "outbox", smtp_timeout_s=5)


def set_default(jobs: Jobs, settings: Settings, port: int) -> None:
    """The operator's installation default (manage.py smtp set without --business)."""
    with jobs.session() as s:
        save_smtp(
            s,
            settings,
            operator(),
            installation_default=True,
            host="127.0.0.1",
            port=port,
            security="none",
            from_address=DEFAULT_FROM,
            from_name="Installation Reports",
        )


def set_own(jobs: Jobs, settings: Settings, tenant: Tenant, port: int) -> None:
    """What business B's admin saves on B's Admin page: B's server, with a password."""
    with jobs.session() as s:
        save_smtp(
            s,
            settings,
            tenant.scope("admin"),
            host="127.0.0.1",
            port=port,
            security="none",
            username=SMTP_USER,
            password=PASSWORD,
            from_address=BETA_FROM,
            from_name="Beta Reports",
            reply_to="sales@beta.example",
        )


def deliver(jobs: Jobs, settings: Settings, minutes: int = 0) -> DeliveryStats:
    return deliver_due(jobs.engine, settings, now=UTC_NOW + dt.timedelta(minutes=minutes))


def senders(box: Mailbox) -> dict[str, str]:
    """recipient -> From header of what the server received."""
    return {r.rcpt_tos[0]: str(parse(r.data)["From"]) for r in box.received}


def test_a_business_email_goes_through_its_own_server_or_the_default_never_another(
    jobs: Jobs, tenant: Tenant, other: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    default_box, default_port = smtp_server()
    beta_box, beta_port = smtp_server(authenticator=authenticator, auth_require_tls=False)
    set_default(jobs, mail, default_port)
    set_own(jobs, mail, other, beta_port)  # business B's admin points SMTP at their own server

    make_window(jobs, tenant, ["ana@alpha.example"])  # A's scheduled report, with its file attached
    make_window(jobs, other, ["bob@beta.example"])
    assert deliver(jobs, mail).sent == 2

    assert list(senders(default_box)) == ["ana@alpha.example"]  # A's report: the default server only
    assert senders(beta_box) == {"bob@beta.example": "Beta Reports <reports@beta.example>"}
    assert [r.login for r in beta_box.received] == [SMTP_USER]
    assert parse(beta_box.received[0].data)["Reply-To"] == "sales@beta.example"
    assert "beta.example" not in default_box.received[0].data.decode("utf-8", "replace")

    # A sets only its own sender name: still the default server, under A's name.
    with jobs.session() as s:
        save_smtp(
            s, mail, tenant.scope("admin"), host="", from_name="Alpha Sales", reply_to="ops@alpha.example"
        )
    make_window(jobs, tenant, ["cy@alpha.example"], subject="Again")
    assert deliver(jobs, mail, 1).sent == 1
    assert senders(default_box)["cy@alpha.example"] == f"Alpha Sales <{DEFAULT_FROM}>"
    assert len(beta_box.received) == 1

    # B removes its settings: B's email falls back to the default; nothing reaches B's server any more.
    with jobs.session() as s:
        assert clear_smtp(s, other.scope("admin"))
    make_window(jobs, other, ["dee@beta.example"], subject="After")
    assert deliver(jobs, mail, 2).sent == 1
    assert senders(default_box)["dee@beta.example"] == f"Installation Reports <{DEFAULT_FROM}>"
    assert len(beta_box.received) == 1


def test_without_a_default_another_business_server_is_never_used(
    jobs: Jobs, tenant: Tenant, other: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    beta_box, beta_port = smtp_server(authenticator=authenticator, auth_require_tls=False)
    set_own(jobs, mail, other, beta_port)
    window = make_window(jobs, tenant, ["ana@alpha.example"])
    stats = deliver(jobs, mail)
    assert (stats.sent, stats.transport) == (1, "eml")
    assert beta_box.received == []
    [eml] = list(mail.outbox_dir.glob("*.eml"))
    assert "ana@alpha.example" in eml.read_text(encoding="utf-8", errors="replace")
    with jobs.session() as s:
        assert delivery_status(s, mail, tenant.business_id).startswith("SMTP is not set up")
        assert delivery_status(s, mail, other.business_id).startswith("Emails are sent through 127.0.0.1")
    # The test email of A's admin goes A's way too (the outbox), not through B's server.
    result = send_test(jobs.engine, mail, "ana@alpha.example", tenant.scope("admin"))
    assert result.ok and len(list(mail.outbox_dir.glob("*.eml"))) == 2
    assert beta_box.received == []
    assert window.business_id == tenant.business_id


def test_a_business_never_sees_the_installation_default(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    _box, port = smtp_server()
    set_default(jobs, mail, port)
    with jobs.session() as s:
        assert get_smtp(s, tenant.scope("admin")) is None  # nothing of its own to show
        status = delivery_status(s, mail, tenant.business_id)
        assert "127.0.0.1" not in status and DEFAULT_FROM not in status
        assert status.startswith("Emails are sent through the installation's mail server")
        with pytest.raises(Forbidden):
            get_smtp(s, tenant.scope("admin"), installation_default=True)
        default = get_smtp(s, operator(), installation_default=True)
        assert default is not None and default.host == "127.0.0.1"


# --- every settings function checks the acting user ----------------------------------------------

SETTINGS_CALLS: dict[str, Callable[[Any, Settings, Jobs, Scope], object]] = {
    "save_smtp": lambda s, mail, jobs, actor: save_smtp(
        s, mail, actor, host="127.0.0.1", port=2525, security="none", from_address="x@evil.example"
    ),
    "save_default_smtp": lambda s, mail, jobs, actor: save_smtp(
        s, mail, actor, installation_default=True, host="127.0.0.1", port=2525, from_address="x@evil.example"
    ),
    "clear_smtp": lambda s, mail, jobs, actor: clear_smtp(s, actor),
    "clear_default_smtp": lambda s, mail, jobs, actor: clear_smtp(s, actor, installation_default=True),
    "get_smtp": lambda s, mail, jobs, actor: get_smtp(s, actor),
    "send_test": lambda s, mail, jobs, actor: send_test(jobs.engine, mail, "t@example.com", actor),
    "set_retention_days": lambda s, mail, jobs, actor: set_retention_days(s, actor, 3),
    "get_retention_days": lambda s, mail, jobs, actor: get_retention_days(s, mail, actor),
}
OPERATOR_ONLY = ("save_default_smtp", "clear_default_smtp")


@pytest.mark.parametrize("who", ["admin", "manager", "staff", "staff claiming admin", "other admin claiming"])
@pytest.mark.parametrize("call", list(SETTINGS_CALLS))
def test_email_and_retention_settings_check_the_acting_user(
    jobs: Jobs, tenant: Tenant, other: Tenant, mail: Settings, call: str, who: str
) -> None:
    actor = {
        "admin": tenant.scope("admin"),
        "manager": tenant.scope("manager"),
        "staff": tenant.scope("staff"),
        "staff claiming admin": Scope(tenant.business_id, tenant.users["staff"][1], "admin"),
        "other admin claiming": Scope(tenant.business_id, other.users["admin"][1], "admin"),
    }[who]
    allowed = who == "admin" and call not in OPERATOR_ONLY
    with jobs.session() as s:
        if allowed:
            SETTINGS_CALLS[call](s, mail, jobs, actor)
        else:
            with pytest.raises(Forbidden):
                SETTINGS_CALLS[call](s, mail, jobs, actor)
            s.rollback()
    with jobs.session() as s:
        rows = s.scalars(select(SmtpSettings)).all()
        days = s.scalar(select(Business.retention_days).where(Business.id == tenant.business_id))
        refused = s.scalars(
            select(AuditEvent).where(
                AuditEvent.business_id == tenant.business_id, AuditEvent.event_type == "access_refused"
            )
        ).all()
    if allowed:
        assert refused == []
    else:
        assert rows == [] and days is None
        assert [e.user for e in refused] == [actor.user]


def test_retention_is_per_business(jobs: Jobs, tenant: Tenant, other: Tenant) -> None:
    """B's admin keeps files 3 days; A's files (the installation default, 30 days) stay."""
    old = NOW - dt.timedelta(days=10)
    a_run = jobs.generate(tenant, now=old)
    b_run = jobs.generate(other, now=old)
    with jobs.session() as s:
        set_retention_days(s, other.scope("admin"), 3)
        assert get_retention_days(s, jobs.settings, other.scope("admin")) == (3, True)
        assert get_retention_days(s, jobs.settings, tenant.scope("admin")) == (30, False)
        assert retention_days(s, jobs.settings, tenant.business_id) == jobs.settings.retention_days
    expire_files(jobs.engine, jobs.settings, jobs.files, now=NOW)
    with jobs.session() as s:
        expired = {
            r.id: r.expired_at for r in s.scalars(select(Run).where(Run.id.in_([a_run.run_id, b_run.run_id])))
        }
    assert expired[a_run.run_id] is None and expired[b_run.run_id] is not None
    with jobs.session() as s:
        set_retention_days(s, other.scope("admin"), None)  # back to the default
        assert get_retention_days(s, jobs.settings, other.scope("admin")) == (30, False)


# --- runs record only their own business's saved reports and schedules ---------------------------


def test_generate_run_refuses_another_business_saved_report_and_schedule(
    jobs: Jobs, tenant: Tenant, other: Tenant
) -> None:
    from runs.runner import generate_run

    with jobs.session() as s:
        saved = SavedReport(business_id=other.business_id, name="Theirs", report_slug="sales_summary")
        schedule = Schedule(
            business_id=other.business_id,
            name="Theirs",
            report_slug="sales_summary",
            rule_kind="daily",
            active=False,
        )
        s.add_all([saved, schedule])
        s.commit()
        ids: dict[str, Any] = {"saved_report_id": saved.id, "schedule_id": schedule.id}
    for field, value in ids.items():
        with jobs.session() as s:
            before = s.scalar(select(Run.id).order_by(Run.id.desc()).limit(1))
            with pytest.raises(NotFound):
                generate_run(
                    s,
                    jobs.store,
                    jobs.files,
                    jobs.settings,
                    tenant.scope("manager"),
                    tenant.user_id("manager"),
                    "sales_summary",
                    last_month(),
                    ("json",),
                    now=NOW,
                    **{field: value},
                )
            s.rollback()
            assert s.scalar(select(Run.id).order_by(Run.id.desc()).limit(1)) == before  # no run recorded
    with jobs.session() as s:
        refused = s.scalars(
            select(AuditEvent.entity)
            .where(AuditEvent.business_id == tenant.business_id, AuditEvent.event_type == "access_refused")
            .order_by(AuditEvent.id)  # in the order they were refused (no ORDER BY: any order on PostgreSQL)
        ).all()
    assert refused == ["saved_report", "schedule"]
    with jobs.session() as s:  # its own business's ids are fine
        mine = SavedReport(business_id=tenant.business_id, name="Mine", report_slug="sales_summary")
        s.add(mine)
        s.commit()
        out = generate_run(
            s,
            jobs.store,
            jobs.files,
            jobs.settings,
            tenant.scope("manager"),
            tenant.user_id("manager"),
            "sales_summary",
            last_month(),
            ("json",),
            now=NOW,
            saved_report_id=mine.id,
        )
        assert out.ok and s.get(Run, out.run_id).saved_report_id == mine.id  # type: ignore[union-attr]


def test_a_disabled_admin_can_no_longer_change_the_settings(
    jobs: Jobs, tenant: Tenant, mail: Settings
) -> None:
    with make_sessionmaker(jobs.engine)() as s:
        s.execute(update(User).where(User.id == tenant.user_id("admin")).values(active=False))
        s.commit()
        with pytest.raises(Forbidden):
            save_smtp(s, mail, tenant.scope("admin"), host="", from_name="Still me?")
        s.rollback()
        assert s.scalars(select(SmtpSettings)).all() == []


# --- the command line ------------------------------------------------------------------------------


def test_smtp_cli_per_business_set_test_show_and_clear(
    jobs: Jobs,
    other: Tenant,
    mail: Settings,
    smtp_server: StartServer,
    cli_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io
    import sys

    import manage

    default_box, default_port = smtp_server()
    beta_box, beta_port = smtp_server(authenticator=authenticator, auth_require_tls=False)
    monkeypatch.setenv("TALLYBOARD_SECRET_KEY", mail.secret_key)
    with jobs.session() as s:
        code = s.get(Business, other.business_id).code  # type: ignore[union-attr]
    base = ["smtp", "set", "--host", "127.0.0.1", "--security", "none"]
    assert manage.main([*base, "--port", str(default_port), "--from", DEFAULT_FROM]) == 0
    assert capsys.readouterr().out.startswith("SMTP set: 127.0.0.1")
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    args = ["--business", code, "--port", str(beta_port), "--user", SMTP_USER, "--password-stdin"]
    assert manage.main([*base, *args, "--from", BETA_FROM, "--from-name", "Beta Reports"]) == 0
    assert capsys.readouterr().out.startswith(f"SMTP set for business {code!r}: 127.0.0.1:{beta_port}")

    assert manage.main(["smtp", "show", "--business", code]) == 0
    shown = capsys.readouterr().out
    assert f"127.0.0.1:{beta_port}" in shown and "stored encrypted" in shown and PASSWORD not in shown

    assert manage.main(["smtp", "test", "--business", code, "--to", "me@beta.example"]) == 0
    assert [r.rcpt_tos for r in beta_box.received] == [["me@beta.example"]] and default_box.received == []
    capsys.readouterr()

    assert manage.main(["smtp", "clear", "--business", code]) == 0
    assert capsys.readouterr().out.startswith(f"Removed the SMTP settings of business {code!r}.")
    assert manage.main(["smtp", "test", "--business", code, "--to", "me@beta.example"]) == 0
    assert len(default_box.received) == 1 and len(beta_box.received) == 1  # now the default's way

    assert manage.main(["smtp", "clear"]) == 0  # the installation default too: the outbox folder
    capsys.readouterr()
    assert manage.main(["smtp", "show"]) == 0
    assert capsys.readouterr().out.startswith(
        "No SMTP settings of the installation default. SMTP is not set up"
    )
    assert manage.main(["smtp", "set", "--from-name", "X"]) == 2  # the default needs a server
    assert "needs --host" in capsys.readouterr().err


# --- schedules: every mutating function, each role and another business's user ----------------------

SCHEDULE_CALLS: dict[str, Callable[[Any, Scope, int], object]] = {
    "create": lambda s, actor, sid: create_schedule(s, actor, _spec(), now=NOW),
    "update": lambda s, actor, sid: update_schedule(s, actor, sid, _spec(subject="Changed"), now=NOW),
    "pause": lambda s, actor, sid: pause_schedule(s, actor, sid, now=NOW),
    "resume": lambda s, actor, sid: resume_schedule(s, actor, sid, now=NOW),
    "run_now": lambda s, actor, sid: run_now(s, actor, sid, now=NOW),
    "delete": lambda s, actor, sid: delete_schedule(s, actor, sid, now=NOW),
}


def _spec(**changes: Any) -> ScheduleSpec:
    return ScheduleSpec(
        report_slug="sales_summary",
        rule_kind="daily",
        rule={"time": "08:00"},
        recipients=("ops@example.com",),
        formats=("json",),
        timezone="Europe/Berlin",
        period="last_month",
        active=False,  # other tests' daemons must not pick it up
        **changes,
    )


@pytest.mark.parametrize(
    "who",
    ["admin", "manager", "staff", "staff claiming manager", "other business's manager", "other claiming"],
)
@pytest.mark.parametrize("call", list(SCHEDULE_CALLS))
def test_schedule_changes_check_the_acting_user(
    jobs: Jobs, tenant: Tenant, other: Tenant, call: str, who: str
) -> None:
    with jobs.session() as s:
        sid = create_schedule(s, tenant.scope("manager"), _spec(), now=NOW).id
        before = s.get(Schedule, sid)
        assert before is not None
        snapshot = (before.subject, before.active)
    actor = {
        "admin": tenant.scope("admin"),
        "manager": tenant.scope("manager"),
        "staff": tenant.scope("staff"),
        "staff claiming manager": Scope(tenant.business_id, tenant.users["staff"][1], "manager"),
        "other business's manager": other.scope("manager"),
        "other claiming": Scope(tenant.business_id, other.users["manager"][1], "manager"),
    }[who]
    expected: type[Exception] | None = {
        "admin": None,
        "manager": None,
        "other business's manager": NotFound if call != "create" else None,
    }.get(who, Forbidden)
    with jobs.session() as s:
        if expected is None:
            SCHEDULE_CALLS[call](s, actor, sid)
        else:
            with pytest.raises(expected):
                SCHEDULE_CALLS[call](s, actor, sid)
            s.rollback()
    with jobs.session() as s:
        after = s.get(Schedule, sid)
        refused = s.scalars(
            select(AuditEvent.user).where(
                AuditEvent.business_id == actor.business_id, AuditEvent.event_type == "access_refused"
            )
        ).all()
        if expected is not None:
            assert after is not None and (after.subject, after.active) == snapshot
        if expected is not None:
            assert refused == [actor.user]  # refused by role, or another business's id: on record


# --- run history and saved reports: the acting user, each role, another business ---------------------

RUN_CALLS: dict[str, Callable[[Jobs, Any, Scope, int, int], object]] = {
    "delete_runs": lambda jobs, s, actor, uid, target: history.delete_runs(
        s, jobs.files, actor, [target], now=NOW
    ),
    "rerun": lambda jobs, s, actor, uid, target: history.rerun(
        s, jobs.store, jobs.files, jobs.settings, actor, uid, target, now=NOW
    ),
    "delete_saved": lambda jobs, s, actor, uid, target: saved.delete(s, actor, uid, target),
    "save": lambda jobs, s, actor, uid, target: saved.save(
        s, actor, uid, f"Mine {uid}", "sales_summary", last_month(), ("json",), now=NOW
    ),
}
# who -> (scope key, user key whose id is passed, expected error for the manager's run / saved report)
RUN_ACTORS: dict[str, tuple[str, str, type[Exception] | None]] = {
    "admin": ("admin", "admin", None),
    "manager (the owner)": ("manager", "manager", None),
    "staff": ("staff", "staff", NotFound),  # not theirs: invisible
    "staff claiming admin": ("staff claiming admin", "staff", NotFound),  # the role is re-read: still staff
    "staff under the admin's id": ("staff", "admin", Forbidden),
    "other business's admin": ("other admin", "other admin", NotFound),
    "other admin claiming this one": ("other claiming", "other admin", Forbidden),
}


@pytest.mark.parametrize("who", list(RUN_ACTORS))
@pytest.mark.parametrize("call", list(RUN_CALLS))
def test_history_and_saved_reports_check_the_acting_user(
    jobs: Jobs, tenant: Tenant, other: Tenant, call: str, who: str
) -> None:
    out = jobs.generate(tenant, "manager", now=NOW)
    with jobs.session() as s:
        mine = saved.save(
            s,
            tenant.scope("manager"),
            tenant.user_id("manager"),
            "Managers",
            "sales_summary",
            last_month(),
            ("json",),
            now=NOW,
        )
    target = mine.id if call == "delete_saved" else out.run_id
    scopes = {
        "admin": tenant.scope("admin"),
        "manager": tenant.scope("manager"),
        "staff": tenant.scope("staff"),
        "staff claiming admin": Scope(tenant.business_id, tenant.users["staff"][1], "admin"),
        "other admin": other.scope("admin"),
        "other claiming": Scope(tenant.business_id, other.users["admin"][1], "admin"),
    }
    ids = {
        "admin": tenant.user_id("admin"),
        "manager": tenant.user_id("manager"),
        "staff": tenant.user_id("staff"),
        "other admin": other.user_id("admin"),
    }
    scope_key, id_key, expected = RUN_ACTORS[who]
    actor, uid = scopes[scope_key], ids[id_key]
    if call == "save":  # saving one's own setup: every role of the business may
        expected = expected if expected is Forbidden else None
    if call == "delete_runs" and who == "staff under the admin's id":
        expected = NotFound  # no user id is passed: plain staff, and the run is not theirs
    if call == "delete_saved" and who == "admin":
        expected = NotFound  # a private saved report is its owner's alone (templates are shared)
    with jobs.session() as s:
        if expected is None:
            RUN_CALLS[call](jobs, s, actor, uid, target)
        else:
            with pytest.raises(expected):
                RUN_CALLS[call](jobs, s, actor, uid, target)
            s.rollback()
    with jobs.session() as s:
        run_left = s.get(Run, out.run_id) is not None
        saved_left = s.get(SavedReport, mine.id) is not None
        refused = s.scalars(
            select(AuditEvent.user).where(
                AuditEvent.business_id == actor.business_id, AuditEvent.event_type == "access_refused"
            )
        ).all()
    if expected is not None:
        assert run_left and saved_left
        if expected is Forbidden or scope_key == "other admin":
            assert refused == [actor.user]  # a role refusal, or another business's id: on record
