"""Helpers for the mail tests: a schedule window with a real generated run, its queued emails, a scripted transport.

The outbox and the SMTP settings are installation-wide (every business shares them), so each mail
test starts by parking earlier tests' unsent messages and removing any SMTP settings.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from core.db import make_sessionmaker
from core.models import OutboxMessage, Schedule, ScheduleRun, SmtpSettings, User
from core.settings import Settings
from mail.delivery import email_summary, enqueue
from reports.registry import generate
from tests.tenants import NOW, Jobs, Tenant, last_month

UTC_NOW = NOW.replace(tzinfo=None)  # 2025-02-10 12:00, stored times are naive UTC
OWNER_EMAIL = "owner@example.com"
ADMIN_EMAIL = "admin@example.com"


def quiet_outbox(engine: Engine) -> None:
    """Park messages earlier tests left unsent and drop the SMTP settings: a clean installation."""
    with make_sessionmaker(engine)() as s:
        s.execute(
            update(OutboxMessage)
            .where(OutboxMessage.status.in_(("pending", "sending")))
            .values(status="failed", last_error="left by an earlier test")
        )
        s.execute(delete(SmtpSettings))
        s.commit()


@dataclass(frozen=True)
class Window:
    schedule_id: int
    window_id: int
    run_id: int
    business_id: int
    file_names: tuple[str, ...]
    mimes: tuple[str, ...]


def set_email(engine: Engine, user_id: int, address: str) -> None:
    with make_sessionmaker(engine)() as s:
        s.execute(update(User).where(User.id == user_id).values(email=address))
        s.commit()


def make_window(
    jobs: Jobs,
    tenant: Tenant,
    recipients: Sequence[str],
    *,
    formats: Sequence[str] = ("json",),
    large_file_mode: str = "attach",
    notify_success: bool = False,
    owner: str | None = "manager",
    owner_email: str = OWNER_EMAIL,
    message: str = "Good morning,\n\nhere are last month's numbers.",
    subject: str = "Sales summary for January 2025",
    now: dt.datetime = UTC_NOW,
    slug: str = "sales_summary",
) -> Window:
    """A (paused) schedule with one queued window: the report generated through runs.runner into
    stored files, and one report email per recipient queued through delivery.enqueue."""
    outcome = jobs.generate(tenant, slug=slug, formats=formats, trigger="schedule")
    assert outcome.ok, outcome.error
    report = outcome.report
    if report is None:  # served from the cache: rebuild the numbers, as the scheduler does
        with jobs.session() as s:
            report = generate(s, jobs.store, tenant.scope("admin"), slug, last_month(now=NOW), now=NOW)
    owner_id = tenant.user_id(owner) if owner else None
    if owner_id is not None:
        set_email(jobs.engine, owner_id, owner_email)
    with jobs.session() as s:
        schedule = Schedule(
            business_id=tenant.business_id,
            owner_id=owner_id,
            name="Monthly sales",
            report_slug=slug,
            formats=",".join(formats),
            recipients=list(recipients),
            subject=subject,
            message=message,
            rule_kind="daily",
            rule={"time": "08:00"},
            timezone="Europe/Berlin",
            period="last_month",
            large_file_mode=large_file_mode,
            notify_success=notify_success,
            active=False,  # daemons in other tests must not pick it up
        )
        s.add(schedule)
        s.flush()
        window = ScheduleRun(
            schedule_id=schedule.id,
            business_id=tenant.business_id,
            due_at=now - dt.timedelta(hours=4),
            status="queued",
            run_id=outcome.run_id,
        )
        s.add(window)
        s.flush()
        enqueue(
            s,
            business_id=tenant.business_id,
            schedule_run_id=window.id,
            kind="report",
            recipients=recipients,
            subject=subject,
            payload=report_payload(report, outcome.run_id, schedule, formats),
            now=now,
        )
        s.commit()
        return Window(
            schedule.id,
            window.id,
            outcome.run_id,
            tenant.business_id,
            tuple(f.file_name for f in outcome.files),
            tuple(f.mime for f in outcome.files),
        )


def report_payload(report: Any, run_id: int, schedule: Schedule, formats: Sequence[str]) -> dict[str, Any]:
    """The payload the scheduler queues with a report email (scheduling/tick._queue)."""
    return {
        "summary": email_summary(report),
        "run_id": run_id,
        "schedule_id": schedule.id,
        "schedule_name": schedule.name,
        "message": schedule.message,
        "large_file_mode": schedule.large_file_mode,
        "formats": list(formats),
        "timezone": schedule.timezone,
    }


def messages(session: Session, window_id: int, kind: str | None = None) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.schedule_run_id == window_id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    rows = list(session.scalars(query.order_by(OutboxMessage.id)))
    session.expunge_all()
    return rows


def parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str, dict[str, tuple[str, bytes]]]:
    """(plain text, HTML, {file name: (MIME type, bytes)}) of a received message."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    files: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        files[str(part.get_filename())] = (part.get_content_type(), payload)
    return str(text.get_content()), str(html.get_content()), files


class ScriptedTransport:
    """A transport that answers from a script (an exception to raise, or None to accept) and
    records what it accepted; thread-safe enough for the race tests (list.append is atomic)."""

    def __init__(self, script: Sequence[BaseException | None] = ()) -> None:
        self.script = list(script)
        self.sent: list[EmailMessage] = []
        self.attempts: list[str] = []

    def send(self, message: EmailMessage) -> str:
        self.attempts.append(str(message["To"]))
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        self.sent.append(message)
        return f"250 2.0.0 Ok: queued as {len(self.sent)}"


def mail_settings(jobs: Jobs, outbox: Path, *, smtp_timeout_s: float) -> Settings:
    """The test settings with a fresh secret key, no retry jitter, an SMTP timeout and an outbox folder."""
    from cryptography.fernet import Fernet

    return jobs.settings.with_changes(
        secret_key=Fernet.generate_key().decode(),
        mail_jitter=0.0,
        smtp_timeout_s=smtp_timeout_s,
        outbox_dir=outbox,
    )


@pytest.fixture(autouse=True)
def clean_installation(jobs: Jobs) -> Iterator[None]:
    """No SMTP settings and no pending messages left by other tests, before and after (import it
    into a test module to use it there)."""
    quiet_outbox(jobs.engine)
    yield
    quiet_outbox(jobs.engine)
