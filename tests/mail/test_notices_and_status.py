# ruff: noqa: F811 - the SMTP fixtures are imported from test_transports_smtp and used by name
"""Issue 12, defects 3 and 4 on a real database and a real SMTP server (aiosmtpd on 127.0.0.1):
notices fall back from the owner to the admins to the business's notification address, a notice
with no address is named in a warning, and every delivery status says what happened."""

from __future__ import annotations

import datetime as dt
import smtplib

from sqlalchemy import update

from accounts.users import operator, set_notice_email
from core.models import Schedule
from core.settings import Settings
from mail.delivery import deliver_due, untold_warning, weekly_summary
from mail.smtp_config import send_test
from scheduling.schedules import OUTBOX_TEXT, RunStatus, schedule_runs, sent_count
from tests.mail.mail_fixtures import ADMIN_EMAIL, UTC_NOW, ScriptedTransport, make_window, messages, set_email
from tests.mail.test_transports_smtp import (  # noqa: F401 - fixtures used by name
    Mailbox,
    StartServer,
    certificate,
    clean_installation,
    configure,
    mail,
    smtp_server,
)
from tests.tenants import Jobs, Tenant

NOTICE_ADDRESS = "alerts@example.com"
SPAM = smtplib.SMTPDataError(554, b"5.7.1 Message rejected as spam")


def window_status(jobs: Jobs, tenant: Tenant, schedule_id: int) -> RunStatus:
    with jobs.session() as s:
        (run,) = schedule_runs(s, operator(tenant.business_id), schedule_id)
    return run


def set_notice_address(jobs: Jobs, tenant: Tenant, address: str) -> None:
    with jobs.session() as s:
        set_notice_email(s, operator(tenant.business_id), address)
        s.commit()


# --- defect 3: where notices go -------------------------------------------------------------------


def test_a_notice_goes_to_the_admins_then_to_the_notification_address(
    jobs: Jobs, tenant: Tenant, mail: Settings
) -> None:
    # the owner has no address: the admins are told
    set_email(jobs.engine, tenant.user_id("admin"), ADMIN_EMAIL)
    first = make_window(jobs, tenant, ["x@example.com"], owner_email="")
    deliver_due(jobs.engine, mail, now=UTC_NOW, transport=ScriptedTransport([SPAM]))
    with jobs.session() as s:
        assert [n.recipient for n in messages(s, first.window_id, "failure_notice")] == [ADMIN_EMAIL]
        assert untold_warning(s, tenant.business_id) is None
    told = ScriptedTransport()
    deliver_due(jobs.engine, mail, now=UTC_NOW, transport=told)
    assert [m["To"] for m in told.sent] == [ADMIN_EMAIL]

    # no admin has one either: the business's notification address is told
    set_email(jobs.engine, tenant.user_id("admin"), "")
    set_notice_address(jobs, tenant, NOTICE_ADDRESS)
    second = make_window(jobs, tenant, ["y@example.com"], owner_email="")
    transport = ScriptedTransport([SPAM])
    deliver_due(jobs.engine, mail, now=UTC_NOW, transport=transport)
    with jobs.session() as s:
        assert [n.recipient for n in messages(s, second.window_id, "failure_notice")] == [NOTICE_ADDRESS]
        assert untold_warning(s, tenant.business_id) is None
    deliver_due(jobs.engine, mail, now=UTC_NOW, transport=transport)
    assert transport.sent[-1]["To"] == NOTICE_ADDRESS
    assert "not delivered" in str(transport.sent[-1]["Subject"])


def test_a_notice_with_no_address_is_named_in_a_warning(jobs: Jobs, tenant: Tenant, mail: Settings) -> None:
    window = make_window(jobs, tenant, ["x@example.com"], owner_email="")
    with jobs.session() as s:
        s.execute(update(Schedule).where(Schedule.id == window.schedule_id).values(active=True))
        s.commit()
        warning = untold_warning(s, tenant.business_id)
    owner = tenant.users["manager"][1]
    assert warning is not None
    assert "Nobody will be told" in warning
    assert f"“Monthly sales” (its owner {owner} has no email address)" in warning
    assert "the weekly summary for the admins" in warning
    assert "notification address" in warning
    deliver_due(jobs.engine, mail, now=UTC_NOW, transport=ScriptedTransport([SPAM]))
    with jobs.session() as s:
        assert messages(s, window.window_id, "failure_notice") == []  # nowhere to go: the warning said so
    set_notice_address(jobs, tenant, NOTICE_ADDRESS)
    with jobs.session() as s:
        assert untold_warning(s, tenant.business_id) is None


def test_the_weekly_summary_falls_back_to_the_notification_address(
    jobs: Jobs, tenant: Tenant, mail: Settings
) -> None:
    jobs.generate(tenant, now=UTC_NOW.replace(tzinfo=dt.UTC) - dt.timedelta(days=1))
    tuesday = dt.datetime(2025, 2, 11, 0, 5)
    assert weekly_summary(jobs.engine, mail, tuesday) == 0  # no admin address, no notification address
    set_notice_address(jobs, tenant, NOTICE_ADDRESS)
    assert weekly_summary(jobs.engine, mail, tuesday) == 1
    transport = ScriptedTransport()
    deliver_due(jobs.engine, mail, now=tuesday, transport=transport)
    assert [m["To"] for m in transport.sent if "eekly" in str(m["Subject"])] == [NOTICE_ADDRESS]


# --- defect 4: every status says what happened ----------------------------------------------------


def test_all_sent_says_sent(jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer) -> None:
    box, port = smtp_server()
    configure(jobs, mail, port)
    window = make_window(jobs, tenant, ["a@example.com", "b@example.com"])
    assert window_status(jobs, tenant, window.schedule_id).text == "queued"
    deliver_due(jobs.engine, mail, now=UTC_NOW)
    run = window_status(jobs, tenant, window.schedule_id)
    assert len(box.received) == 2
    assert (run.text, sent_count(run.deliveries)) == ("sent", "2 of 2")
    assert [d.text for d in run.deliveries] == ["sent", "sent"]


def test_some_refused_says_partly_sent(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    _box, port = smtp_server(Mailbox(rcpt_replies={"d@example.com": "550 5.1.1 User unknown"}))
    configure(jobs, mail, port)
    window = make_window(jobs, tenant, ["a@example.com", "b@example.com", "c@example.com", "d@example.com"])
    deliver_due(jobs.engine, mail, now=UTC_NOW)
    run = window_status(jobs, tenant, window.schedule_id)
    assert (run.text, sent_count(run.deliveries)) == ("partly sent (3 of 4)", "3 of 4")
    assert [d.text for d in run.deliveries if d.kind == "report"] == ["sent", "sent", "sent", "failed"]


def test_all_refused_says_failed(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    _box, port = smtp_server(Mailbox(data_script=["554 5.7.1 Spam message rejected"] * 2))
    configure(jobs, mail, port)
    window = make_window(jobs, tenant, ["a@example.com", "b@example.com"])
    deliver_due(jobs.engine, mail, now=UTC_NOW)
    run = window_status(jobs, tenant, window.schedule_id)
    assert (run.text, sent_count(run.deliveries)) == ("failed", "0 of 2")


def test_without_smtp_it_says_written_to_the_outbox_folder(
    jobs: Jobs, tenant: Tenant, mail: Settings
) -> None:
    window = make_window(jobs, tenant, ["a@example.com", "b@example.com"])
    stats = deliver_due(jobs.engine, mail, now=UTC_NOW)
    assert stats.transport == "eml"
    run = window_status(jobs, tenant, window.schedule_id)
    assert run.text == OUTBOX_TEXT == "written to the outbox folder (no SMTP server set)"
    assert [d.text for d in run.deliveries] == [OUTBOX_TEXT, OUTBOX_TEXT]
    assert sent_count(run.deliveries) == "0 of 2"  # nobody received them
    written = {d.written_to for d in run.deliveries}
    assert written == {str(p) for p in mail.outbox_dir.glob("*.eml")}


def test_the_test_email_says_whether_it_was_sent_or_written(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    written = send_test(jobs.engine, mail, "ana@example.com", operator(tenant.business_id))
    assert (written.ok, written.written, written.outcome) == (True, True, OUTBOX_TEXT)
    assert written.text.startswith(f"written to {mail.outbox_dir}")
    box, port = smtp_server()
    configure(jobs, mail, port)
    sent = send_test(jobs.engine, mail, "ana@example.com", operator(tenant.business_id))
    assert (sent.ok, sent.written, sent.outcome) == (True, False, "sent")
    assert len(box.received) == 1
    _refused, port2 = smtp_server(Mailbox(data_script=["554 5.7.1 Spam message rejected"]))
    configure(jobs, mail, port2)
    failed = send_test(jobs.engine, mail, "ana@example.com", operator(tenant.business_id))
    assert (failed.ok, failed.outcome, failed.text) == (False, "failed", "554 5.7.1 Spam message rejected")
