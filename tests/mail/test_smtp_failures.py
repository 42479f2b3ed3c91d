"""SMTP failure classes against a real SMTP server (aiosmtpd on 127.0.0.1) scripted to fail (issue 9,
item 9): a refused login is a configuration error, a server that always stalls after DATA gets at
most two copies and one notice, and passing failures are retried for two days."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from sqlalchemy import update

from accounts.users import operator
from core.models import Business
from core.settings import Settings
from mail.delivery import DeliveryStats, deliver_due, smtp_problem
from mail.smtp_config import save_smtp
from tests.mail.mail_fixtures import (
    OWNER_EMAIL,
    UTC_NOW,
    clean_installation,
    mail_settings,
    make_window,
    messages,
)
from tests.tenants import Jobs, Tenant

__all__ = ["clean_installation"]  # the autouse fixture, from mail_fixtures

FROM = "reports@alpha.example"
USER, PASSWORD = "mailer", "the right pass phrase"


@dataclass
class Server:
    """An aiosmtpd handler that counts logins and answers DATA from a script: None accepts, 'stall'
    keeps the message and answers only after `stall_s` (too late), other text is the reply; the last
    entry repeats for ever."""

    data_script: list[str | None] = field(default_factory=lambda: [None])
    stall_s: float = 2.5
    logins: int = 0
    received: list[tuple[list[str], str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        with self.lock:
            self.logins += 1
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        )
        return AuthResult(success=ok, handled=False, auth_data=data)  # handled=False: a refusal gets its 535

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        with self.lock:
            action = self.data_script.pop(0) if len(self.data_script) > 1 else self.data_script[0]
        if action is not None and action != "stall":
            return action
        parsed = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), str(parsed["Message-ID"])))
        if action == "stall":
            await asyncio.sleep(self.stall_s)
        return "250 2.0.0 Message accepted for delivery"

    def copies(self, recipient: str) -> list[str]:
        with self.lock:
            return [mid for tos, mid in self.received if recipient in tos]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[Any]:
    running: list[Controller] = []

    def start(server: Server, **options: Any) -> int:
        port = free_port()
        controller = Controller(server, hostname="127.0.0.1", port=port, **options)
        controller.start()
        running.append(controller)
        return port

    yield start
    for controller in running:
        controller.stop()


@pytest.fixture
def mail(jobs: Jobs, tmp_path: Path) -> Settings:
    return mail_settings(jobs, tmp_path / "outbox", smtp_timeout_s=1)


def own_server(
    jobs: Jobs, settings: Settings, tenant: Tenant, port: int, password: str | None = None
) -> None:
    """The business's own SMTP settings (as its admin sets them in Admin)."""
    with jobs.session() as s:
        save_smtp(
            s,
            settings,
            operator(tenant.business_id),
            host="127.0.0.1",
            port=port,
            security="none",
            username=USER if password is not None else "",
            password=password,
            from_address=FROM,
            from_name="Alpha reports",
        )


def deliver(jobs: Jobs, settings: Settings, now: dt.datetime) -> DeliveryStats:
    return deliver_due(jobs.engine, settings, now=now)


def test_a_refused_login_stops_that_server_until_its_settings_change(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp: Any
) -> None:
    server = Server()
    port = smtp(server, authenticator=server.authenticate, auth_require_tls=False)
    own_server(jobs, mail, tenant, port, password="a stale password")
    recipients = ["ana@example.com", "ben@example.com", "cy@example.com"]
    window = make_window(jobs, tenant, recipients)

    first = deliver(jobs, mail, UTC_NOW)
    assert (first.sent, first.retried, first.failed, first.held) == (0, 0, 0, 1)
    tried = server.logins  # one login (smtplib tries each AUTH mechanism the server offers)
    assert 1 <= tried <= 2
    for minutes in (1, 10, 60, 600):  # later passes do not even try the server
        again = deliver(jobs, mail, UTC_NOW + dt.timedelta(minutes=minutes))
        assert (again.claimed, again.held) == (0, 3)
    assert server.logins == tried
    with jobs.session() as s:
        rows = messages(s, window.window_id)
        problem = smtp_problem(s, mail, tenant.business_id)
    assert [(r.kind, r.status, r.attempts) for r in rows] == [
        ("report", "pending", 0)
    ] * 3  # no notice either
    assert "535" in rows[0].last_error and "refused its settings" in rows[0].last_error
    assert problem is not None and problem.startswith(
        f"Email is not being sent: the mail server 127.0.0.1:{port} refused this business's SMTP settings"
    )
    assert "535" in problem and "changed in Admin" in problem
    assert "at 2025-02-10 12:00 UTC" in problem  # the business's zone, named (this one is in UTC)
    with jobs.session() as s:
        s.execute(update(Business).where(Business.id == tenant.business_id).values(timezone="Europe/Berlin"))
        s.commit()
        assert "at 2025-02-10 13:00 CET" in (smtp_problem(s, mail, tenant.business_id) or "")

    own_server(jobs, mail, tenant, port, password=PASSWORD)  # the admin fixes the password
    with jobs.session() as s:
        assert smtp_problem(s, mail, tenant.business_id) is None
    fixed = deliver(jobs, mail, UTC_NOW + dt.timedelta(hours=11))
    assert fixed.sent == 3 and server.logins == tried + 1
    assert sorted(tos[0] for tos, _ in server.received) == recipients


def test_a_server_stalling_after_data_gets_two_copies_then_unknown_and_one_notice(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp: Any
) -> None:
    server = Server(data_script=["stall"])
    port = smtp(server)
    own_server(jobs, mail, tenant, port)
    window = make_window(jobs, tenant, ["ana@example.com"])
    now = UTC_NOW
    for _ in range(8):  # far more passes than needed: nothing more may be sent
        deliver(jobs, mail, now)
        now += dt.timedelta(hours=3)
    with jobs.session() as s:
        rows = messages(s, window.window_id)
    report = next(r for r in rows if r.kind == "report")
    assert (report.status, report.attempts) == ("unknown", 2)
    assert "Unknown - may have been delivered" in report.last_error and report.message_id in report.last_error
    [notice] = [r for r in rows if r.kind == "failure_notice"]  # one notice
    assert notice.recipient == OWNER_EMAIL and notice.status == "unknown"  # the notice stalls the same way
    assert server.copies("ana@example.com") == [report.message_id] * 2  # one retry with the same id
    assert server.copies(OWNER_EMAIL) == [notice.message_id] * 2


def test_passing_failures_keep_retrying_for_two_days(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp: Any
) -> None:
    server = Server(data_script=["451 4.3.0 Mailbox temporarily unavailable"])
    port = smtp(server)
    own_server(jobs, mail, tenant, port)
    window = make_window(jobs, tenant, ["ana@example.com"])
    now = UTC_NOW
    tries = 0
    while True:
        stats = deliver(jobs, mail, now)
        tries += stats.claimed
        with jobs.session() as s:
            (row,) = messages(s, window.window_id, "report")
        if row.status != "pending":
            break
        assert row.next_attempt_at is not None
        if now < UTC_NOW + dt.timedelta(hours=47):
            assert row.status == "pending"  # still trying after an hour, a day, 47 hours
        now = row.next_attempt_at
    assert row.status == "failed" and row.created_at is not None
    assert row.last_error.startswith(
        f"Gave up after {tries} attempts over 2 days (TALLYBOARD_MAIL_RETRY_HOURS)."
    )
    assert now >= row.created_at + dt.timedelta(hours=48)
    assert tries > 40  # backoff doubles up to an hour, then hourly
    with jobs.session() as s:
        assert [n.recipient for n in messages(s, window.window_id, "failure_notice")] == [OWNER_EMAIL]
