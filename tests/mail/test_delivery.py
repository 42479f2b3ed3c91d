"""mail.delivery on a real database with a scripted transport: queueing once, claiming once, retry, failure, notices."""

from __future__ import annotations

import datetime as dt
import random
import smtplib
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from core.models import Business, OutboxMessage, User
from core.settings import Settings
from mail import delivery
from mail.delivery import (
    DeliveryStats,
    classify,
    deliver_due,
    email_summary,
    enqueue,
    message_id,
    retry_delay,
    weekly_summary,
)
from mail.transports import ConnectFailed, MaybeDelivered
from tests.conftest import new_business
from tests.mail.mail_fixtures import (
    ADMIN_EMAIL,
    OWNER_EMAIL,
    UTC_NOW,
    ScriptedTransport,
    make_window,
    messages,
    parts,
    quiet_outbox,
    set_email,
)
from tests.tenants import Jobs, Tenant


@pytest.fixture(autouse=True)
def clean_outbox(jobs: Jobs) -> None:
    quiet_outbox(jobs.engine)


@pytest.fixture
def mail(jobs: Jobs, tmp_path: Path) -> Settings:
    """Settings for sending: no jitter (retry times are exact), a private outbox folder and key file."""
    return jobs.settings.with_changes(
        mail_jitter=0.0,
        outbox_dir=tmp_path / "outbox",
        secret_key_file=tmp_path / "secret.key",
        public_url="https://reports.example.com/",
    )


def test_email_summary_of_the_tiny_example(jobs: Jobs, tenant: Tenant) -> None:
    outcome = jobs.generate(tenant)
    assert outcome.report is not None
    summary = email_summary(outcome.report)
    assert summary["title"] == "Sales summary"
    assert summary["business"] == "Alpha Trading"
    assert summary["period"] == "1–31 Jan 2025 (last month)"  # Period.describe, as every period text
    assert [k[:2] for k in summary["kpis"][:4]] == [
        ["Revenue", "€1,555.00"],
        ["Gross profit", "€415.00"],
        ["Margin", "26.7 %"],
        ["Orders", "3"],
    ]
    assert 6 <= len(summary["kpis"]) <= 8
    table = summary["table"]
    assert table["title"] == "Revenue by day", table  # a one-month period: by day (granularity auto)
    assert table["columns"][:2] == ["Day", "Revenue"]
    # The time series' last 10 days up to the period's end; the tiny example's January sales are earlier.
    assert [r[0] for r in table["rows"]] == [f"2025-01-{d}" for d in range(22, 32)]
    assert [r for r in table["rows"] if r[4] != "0"] == [  # O9 on the 30th, O2 on the 31st (tiny/sales.csv)
        ["2025-01-30", "€30.00", "€10.00", "33.3 %", "1"],
        ["2025-01-31", "€1,330.00", "€330.00", "24.8 %", "1"],
    ]
    assert table["total_rows"] == 31 and table["order"] == "last"
    assert table["align"][:2] == ["left", "right"]
    dt.datetime.fromisoformat(summary["generated_at"])  # ISO text: the payload is JSON


def test_a_long_table_shows_its_top_ten_rows_and_at_most_five_columns(jobs: Jobs, tenant: Tenant) -> None:
    outcome = jobs.generate(tenant, slug="sales_lines")
    assert outcome.report is not None
    report = outcome.report
    summary = email_summary(report)
    table = summary["table"]
    first = next(t for t in report.tables.values() if t.row_count > 0)
    assert table["total_rows"] == first.row_count
    assert len(table["rows"]) == min(10, first.row_count)
    assert len(table["columns"]) == min(5, len(first.columns))
    assert table["more_columns"] == len(first.columns) - len(table["columns"])
    assert table["columns"][0] == first.columns[0].label


def test_enqueue_is_idempotent_with_deterministic_message_ids(jobs: Jobs, tenant: Tenant) -> None:
    window = make_window(jobs, tenant, ["a@example.com", "B@Example.com"])
    with jobs.session() as s:
        again = enqueue(
            s,
            business_id=tenant.business_id,
            schedule_run_id=window.window_id,
            kind="report",
            recipients=["A@example.com", "b@example.com", "c@example.com"],
            subject="Again",
            payload={},
            now=UTC_NOW,
        )
        s.commit()
        assert [r.recipient for r in again] == ["c@example.com"]  # only the new recipient
        rows = messages(s, window.window_id)
    assert [r.recipient for r in rows] == ["a@example.com", "B@Example.com", "c@example.com"]
    expected = message_id(
        "report", "b@example.com", "tallyboard.localhost", schedule_run_id=window.window_id, key=None
    )
    assert rows[1].message_id == expected
    assert expected.startswith(f"<tb.{window.window_id}.report.") and expected.endswith(
        "@tallyboard.localhost>"
    )
    assert all(r.status == "pending" and r.attempts == 0 and r.next_attempt_at == UTC_NOW for r in rows)


def test_enqueue_from_two_sessions_at_once_inserts_each_message_once(jobs: Jobs, tenant: Tenant) -> None:
    window = make_window(jobs, tenant, ["a@example.com"])
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def queue() -> None:
        try:
            with jobs.session() as s:
                barrier.wait(10)
                enqueue(
                    s,
                    business_id=tenant.business_id,
                    schedule_run_id=window.window_id,
                    kind="failure_notice",
                    recipients=[OWNER_EMAIL],
                    subject="Scheduled report not delivered",
                    payload={},
                    now=UTC_NOW,
                )
                s.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=queue) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    with jobs.session() as s:
        assert len(messages(s, window.window_id, "failure_notice")) == 1


@pytest.mark.parametrize(
    ("recipient", "subject"),
    [
        ("a@example.com\r\nBcc: evil@example.com", "Fine"),
        ("not an address", "Fine"),
        ("a@example.com", "Sales\r\nBcc: evil@example.com"),
    ],
)
def test_enqueue_refuses_header_injection(jobs: Jobs, tenant: Tenant, recipient: str, subject: str) -> None:
    with jobs.session() as s, pytest.raises(ValueError):
        enqueue(
            s,
            business_id=tenant.business_id,
            schedule_run_id=None,
            kind="test",
            recipients=[recipient],
            subject=subject,
            payload={},
            now=UTC_NOW,
            key="injection",
        )


def test_delivery_builds_a_complete_message(jobs: Jobs, tenant: Tenant, mail: Settings) -> None:
    window = make_window(
        jobs,
        tenant,
        ["ana@example.com"],
        formats=("csv", "json"),
        message="Hello <b>team</b>,\n\nthe numbers.",
    )
    transport = ScriptedTransport()
    stats = deliver_due(jobs.engine, mail, now=UTC_NOW, transport=transport)
    assert (stats.claimed, stats.sent, stats.retried, stats.failed) == (1, 1, 0, 0)
    (message,) = transport.sent
    with jobs.session() as s:
        (row,) = messages(s, window.window_id)
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None and row.last_error == ""
    assert message["Message-ID"] == row.message_id
    assert message["To"] == "ana@example.com"
    assert message["From"] == "Tallyboard <tallyboard@tallyboard.localhost>"
    assert message["Subject"] == "Sales summary for January 2025"
    assert message["Auto-Submitted"] == "auto-generated"
    text, html, files = parts(message)
    assert {name: mime for name, (mime, _) in files.items()} == dict(
        zip(window.file_names, window.mimes, strict=True)
    )
    assert len(files) == 2 and "application/json" in window.mimes
    assert "Hello &lt;b&gt;team&lt;/b&gt;," in html and "<b>team</b>" not in html
    assert "Hello <b>team</b>," in text
    for body in (text, html):
        assert "€1,555.00" in body and "1–31 Jan 2025 (last month)" in body and "Alpha Trading" in body
    assert "Revenue by day" in html and "Attached" in html


def test_files_over_the_limit_become_a_link_when_the_schedule_says_link(
    jobs: Jobs, tenant: Tenant, mail: Settings
) -> None:
    small = mail.with_changes(attachment_limit_mb=0.001)  # about 1 KB: every report is larger
    linked = make_window(jobs, tenant, ["link@example.com"], large_file_mode="link")
    attached = make_window(jobs, tenant, ["attach@example.com"], large_file_mode="attach")
    transport = ScriptedTransport()
    deliver_due(jobs.engine, small, now=UTC_NOW, transport=transport)
    by_to = {str(m["To"]): m for m in transport.sent}
    text, html, files = parts(by_to["link@example.com"])
    assert files == {}
    link = f"https://reports.example.com/history?run={linked.run_id}"
    assert link in text and f'href="{link}"' in html
    assert all(name in text for name in linked.file_names)
    _, _, files = parts(by_to["attach@example.com"])
    assert set(files) == set(attached.file_names)


def test_a_transient_failure_is_retried_with_backoff_then_sent_once(
    jobs: Jobs, tenant: Tenant, mail: Settings
) -> None:
    window = make_window(jobs, tenant, ["a@example.com"])
    transport = ScriptedTransport([smtplib.SMTPResponseException(451, b"4.3.0 Try again later")])
    first = deliver_due(jobs.engine, mail, now=UTC_NOW, transport=transport)
    assert (first.retried, first.sent) == (1, 0)
    with jobs.session() as s:
        (row,) = messages(s, window.window_id)
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error == "Attempt 1: 451 4.3.0 Try again later"
    # min(base * 2^1, cap) with no jitter: two minutes after the attempt
    assert row.next_attempt_at is not None
    wait = (row.next_attempt_at - UTC_NOW).total_seconds()
    assert 120 <= wait < 125
    early = deliver_due(
        jobs.engine, mail, now=row.next_attempt_at - dt.timedelta(seconds=5), transport=transport
    )
    assert early.claimed == 0
    later = deliver_due(jobs.engine, mail, now=row.next_attempt_at, transport=transport)
    assert later.sent == 1
    assert len(transport.sent) == 1 and len(transport.attempts) == 2


def test_backoff_doubles_up_to_the_cap_with_jitter(mail: Settings) -> None:
    settings = mail.with_changes(mail_backoff_base_s=60, mail_backoff_cap_s=3600, mail_jitter=0.0)
    assert [retry_delay(n, settings).total_seconds() for n in range(1, 8)] == [
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]
    jittery = settings.with_changes(mail_jitter=0.2)
    rng = random.Random(7)
    for n in range(1, 8):
        seconds = retry_delay(n, jittery, rng).total_seconds()
        plain = retry_delay(n, settings).total_seconds()
        assert plain <= seconds <= plain * 1.2


@pytest.mark.parametrize(
    ("error", "permanent", "stop"),
    [
        (smtplib.SMTPResponseException(451, b"later"), False, False),
        (smtplib.SMTPDataError(554, b"5.7.1 rejected"), True, False),
        (smtplib.SMTPRecipientsRefused({"a@x.org": (550, b"no such user")}), True, False),
        (smtplib.SMTPRecipientsRefused({"a@x.org": (452, b"mailbox full")}), False, False),
        (smtplib.SMTPSenderRefused(553, b"sender rejected", "x@y.org"), True, False),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), False, True),
        (ConnectionRefusedError(111, "Connection refused"), False, True),
        (TimeoutError("timed out"), False, True),
        (TimeoutError("timed out"), False, True),
        (OSError(101, "Network is unreachable"), False, True),
        (ConnectFailed("Could not connect: 535 5.7.8 bad password"), False, True),
        (MaybeDelivered("timed out after DATA"), False, True),
        (ValueError("bad header"), True, False),
    ],
)
def test_errors_are_sorted_into_transient_and_permanent(
    error: BaseException, permanent: bool, stop: bool
) -> None:
    verdict = classify(error)
    assert (verdict.permanent, verdict.stop) == (permanent, stop)


def test_a_5xx_fails_at_once_and_the_owner_gets_one_failure_notice(
    jobs: Jobs, tenant: Tenant, mail: Settings
) -> None:
    window = make_window(jobs, tenant, ["x@example.com", "y@example.com", "ok@example.com"])
    refused = smtplib.SMTPRecipientsRefused({"x": (550, b"5.1.1 User unknown")})
    transport = ScriptedTransport([refused, refused, None])
    stats = deliver_due(jobs.engine, mail, now=UTC_NOW, transport=transport)
    assert (stats.sent, stats.failed, stats.retried, stats.notices) == (1, 2, 0, 1)
    with jobs.session() as s:
        reports = messages(s, window.window_id, "report")
        notices = messages(s, window.window_id, "failure_notice")
    assert [r.status for r in reports] == ["failed", "failed", "sent"]
    assert reports[0].last_error == "Attempt 1: x: 550 5.1.1 User unknown"
    assert [(n.recipient, n.status) for n in notices] == [(OWNER_EMAIL, "pending")]
    deliver_due(jobs.engine, mail, now=UTC_NOW, transport=transport)
    notice = transport.sent[-1]
    assert notice["To"] == OWNER_EMAIL
    assert notice["Subject"] == "Scheduled report not delivered: Monthly sales"
    text, html, _ = parts(notice)
    for body in (text, html):
        assert "x@example.com" in body and "y@example.com" in body and "550 5.1.1 User unknown" in body
        assert "ok@example.com" not in body


def test_without_an_owner_address_the_admins_are_told(jobs: Jobs, tenant: Tenant, mail: Settings) -> None:
    set_email(jobs.engine, tenant.user_id("admin"), ADMIN_EMAIL)
    window = make_window(jobs, tenant, ["x@example.com"], owner_email="")
    deliver_due(
        jobs.engine,
        mail,
        now=UTC_NOW,
        transport=ScriptedTransport([smtplib.SMTPDataError(554, b"5.7.1 Message rejected as spam")]),
    )
    with jobs.session() as s:
        notices = messages(s, window.window_id, "failure_notice")
    assert [n.recipient for n in notices] == [ADMIN_EMAIL]


def test_transient_failures_give_up_after_the_maximum_attempts(
    jobs: Jobs, tenant: Tenant, mail: Settings
) -> None:
    settings = mail.with_changes(mail_max_attempts=3)
    window = make_window(jobs, tenant, ["a@example.com"])
    transport = ScriptedTransport([smtplib.SMTPResponseException(421, b"4.7.0 busy")] * 3)
    now = UTC_NOW
    for _ in range(3):
        deliver_due(jobs.engine, settings, now=now, transport=transport)
        now += dt.timedelta(days=1)
    with jobs.session() as s:
        (row,) = messages(s, window.window_id, "report")
        notices = messages(s, window.window_id, "failure_notice")
    assert row.status == "failed" and row.attempts == 3
    assert row.last_error == "Gave up after 3 attempts. Attempt 3: 421 4.7.0 busy"
    assert len(notices) == 1
    assert len(transport.attempts) == 3


def test_a_sender_that_died_mid_send_is_taken_over_after_its_lease(
    jobs: Jobs, tenant: Tenant, mail: Settings
) -> None:
    window = make_window(jobs, tenant, ["a@example.com"])
    with jobs.session() as s:
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.schedule_run_id == window.window_id)
            .values(status="sending", attempts=1, lease_until=UTC_NOW + dt.timedelta(minutes=10))
        )
        s.commit()
    transport = ScriptedTransport()
    assert deliver_due(jobs.engine, mail, now=UTC_NOW, transport=transport).claimed == 0  # lease still held
    stats = deliver_due(jobs.engine, mail, now=UTC_NOW + dt.timedelta(minutes=11), transport=transport)
    assert stats.sent == 1
    with jobs.session() as s:
        (row,) = messages(s, window.window_id)
    assert row.status == "sent" and row.attempts == 2
    assert "may already have been delivered" in row.last_error and "same Message-ID" in row.last_error
    assert transport.sent[0]["Message-ID"] == row.message_id


def test_two_senders_racing_send_each_message_once(jobs: Jobs, tenant: Tenant, mail: Settings) -> None:
    recipients = [f"r{i}@example.com" for i in range(12)]
    window = make_window(jobs, tenant, recipients, formats=("json",))
    transports = [ScriptedTransport(), ScriptedTransport()]
    results: list[DeliveryStats] = []
    barrier = threading.Barrier(2)

    def run(transport: ScriptedTransport) -> None:
        barrier.wait(10)
        results.append(deliver_due(jobs.engine, mail, now=UTC_NOW, transport=transport))

    threads = [threading.Thread(target=run, args=(t,)) for t in transports]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    sent = [str(m["To"]) for t in transports for m in t.sent]
    assert sorted(sent) == sorted(recipients)
    assert sum(r.sent for r in results) == 12
    with jobs.session() as s:
        assert {r.status for r in messages(s, window.window_id)} == {"sent"}


def test_a_success_notice_when_the_schedule_asks_for_one(jobs: Jobs, tenant: Tenant, mail: Settings) -> None:
    window = make_window(jobs, tenant, ["a@example.com", "b@example.com"], notify_success=True)
    transport = ScriptedTransport()
    deliver_due(jobs.engine, mail, now=UTC_NOW, transport=transport)
    deliver_due(jobs.engine, mail, now=UTC_NOW, transport=transport)
    with jobs.session() as s:
        notices = messages(s, window.window_id, "success_notice")
    assert [(n.recipient, n.status) for n in notices] == [(OWNER_EMAIL, "sent")]
    text, _, _ = parts(transport.sent[-1])
    assert "a@example.com" in text and "b@example.com" in text


def test_missing_report_files_fail_the_message_with_a_clear_reason(
    jobs: Jobs, tenant: Tenant, mail: Settings
) -> None:
    window = make_window(jobs, tenant, ["a@example.com"])
    for path in (mail.reports_dir / f"b{tenant.business_id}" / str(window.run_id)).iterdir():
        path.unlink()
    transport = ScriptedTransport()
    stats = deliver_due(jobs.engine, mail, now=UTC_NOW, transport=transport)
    assert stats.failed == 1 and transport.attempts == []
    with jobs.session() as s:
        (row,) = messages(s, window.window_id, "report")
    assert "is no longer stored" in row.last_error


def test_eml_files_are_written_while_smtp_is_not_set(jobs: Jobs, tenant: Tenant, mail: Settings) -> None:
    window = make_window(jobs, tenant, ["a@example.com", "b@example.com"])
    stats = deliver_due(jobs.engine, mail, now=UTC_NOW)
    assert stats.sent == 2 and stats.transport == "eml"
    files = sorted(mail.outbox_dir.glob("*.eml"))
    assert len(files) == 2
    with jobs.session() as s:
        rows = messages(s, window.window_id)
    names = {f.name for f in files}
    assert names == {r.message_id.strip("<>") + ".eml" for r in rows}
    from tests.mail.mail_fixtures import parse

    _, _, attached = parts(parse(files[0].read_bytes()))
    assert set(attached) == set(window.file_names)


def test_weekly_summary_goes_to_admins_once_per_iso_week(jobs: Jobs, tenant: Tenant, mail: Settings) -> None:
    set_email(jobs.engine, tenant.user_id("admin"), ADMIN_EMAIL)
    jobs.generate(tenant, now=UTC_NOW.replace(tzinfo=dt.UTC) - dt.timedelta(days=1))

    def queued() -> list[OutboxMessage]:
        with jobs.session() as s:
            rows = list(
                s.scalars(
                    select(OutboxMessage)
                    .where(
                        OutboxMessage.business_id == tenant.business_id,
                        OutboxMessage.kind == "weekly_summary",
                    )
                    .order_by(OutboxMessage.id)
                )
            )
            s.expunge_all()
            return rows

    tuesday = dt.datetime(2025, 2, 11, 0, 5)  # ISO week 7: last week (6) had the run of Sunday 9 February
    weekly_summary(jobs.engine, mail, tuesday)
    assert [r.recipient for r in queued()] == [ADMIN_EMAIL]
    weekly_summary(jobs.engine, mail, tuesday + dt.timedelta(days=3))  # same ISO week
    assert len(queued()) == 1
    weekly_summary(jobs.engine, mail, tuesday + dt.timedelta(days=14))  # a quiet week: nothing to say
    (row,) = queued()
    assert ".2025-W06.weekly_summary." in row.message_id
    transport = ScriptedTransport()
    deliver_due(jobs.engine, mail, now=tuesday, transport=transport)
    (message,) = [m for m in transport.sent if m["To"] == ADMIN_EMAIL and "weekly" in str(m["Subject"])]
    text, _, _ = parts(message)
    assert "Weekly summary" in text and "Report runs:" in text and "Sales summary" in text
    assert "3–9 Feb 2025 (week 6, 2025)" in text


def test_users_without_admin_role_get_no_weekly_summary(jobs: Jobs, tenant: Tenant, mail: Settings) -> None:
    with jobs.session() as s:
        s.execute(
            update(User).where(User.business_id == tenant.business_id).values(email="someone@example.com")
        )
        s.execute(update(User).where(User.id == tenant.user_id("admin")).values(email=""))
        s.commit()
    jobs.generate(tenant, now=UTC_NOW.replace(tzinfo=dt.UTC) - dt.timedelta(days=1))
    weekly_summary(jobs.engine, mail, dt.datetime(2025, 2, 11, 0, 5))
    with jobs.session() as s:
        count = s.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.business_id == tenant.business_id, OutboxMessage.kind == "weekly_summary")
        )
    assert count == 0


def test_the_weekly_summary_step_warns_in_one_line_about_businesses_it_cannot_reach(
    jobs: Jobs, tenant: Tenant, mail: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The step runs every hour over every business: a business with nothing to report is no news,
    and those that had activity but no address are named in one line (a warning a business, an
    hour, once filled the daemon's stderr and stalled it)."""
    quiet = [new_business(jobs.engine, name=f"Quiet {i}") for i in range(3)]
    jobs.generate(tenant, now=UTC_NOW.replace(tzinfo=dt.UTC) - dt.timedelta(days=1))  # no admin address
    with caplog.at_level("WARNING", logger="mail.delivery"):
        weekly_summary(jobs.engine, mail, dt.datetime(2025, 2, 11, 0, 5))
    lines = [r.getMessage() for r in caplog.records if r.name == "mail.delivery"]
    assert len(lines) == 1, lines
    assert "no admin or notification address" in lines[0] and "weekly summary" in lines[0]
    assert not any(b.code in lines[0] for b in quiet)
    with jobs.session() as s:
        code = s.get(Business, tenant.business_id).code  # type: ignore[union-attr]
    assert code in lines[0]


def test_stats_read_well_in_the_daemon_log() -> None:
    assert str(DeliveryStats()) == "nothing due"
    assert str(DeliveryStats(claimed=3, sent=2, retried=1, transport="smtp")) == "sent 2, retried 1 (smtp)"
    assert str(DeliveryStats(error="bad key")) == "sending stopped: bad key"
    assert delivery.KINDS == ("report", "failure_notice", "success_notice", "weekly_summary", "test")
