"""The installation's SMTP settings: validated saves with the password Fernet-encrypted, loading with the key check, a test send.

One SmtpSettings row holds the server. Its password is encrypted with the primary secret key
(jobs/secret_key) and the key's fingerprint is stored beside it: loading with a key that matches none
of the available ones raises SecretKeyError with the message people need, and nothing is sent.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from analytics.db import make_sessionmaker
from analytics.models import SmtpSettings
from analytics.settings import Settings
from jobs.clock import aware, utc_naive
from jobs.email_render import render
from jobs.mailer import (
    SECURITY_MODES,
    EmlFolderTransport,
    Sender,
    SmtpTransport,
    Transport,
    check_address,
    compose,
    describe_error,
    one_line,
)
from jobs.secret_key import SecretKeyError, keyring

SECURITY_LABELS = {"none": "no encryption", "starttls": "STARTTLS", "ssl": "SSL/TLS"}
DEFAULT_FROM_NAME = "Tallyboard"
# A host name or an IP address (IPv6 in brackets or bare): no spaces, no slashes, no schemes.
_HOST = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]+:[0-9A-Fa-f:.]*|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253}))$"
)


class SmtpConfigError(ValueError):
    """SMTP settings that cannot be saved or used; the message says what to fix."""


@dataclass(frozen=True)
class SmtpConfig:
    """The SMTP settings as the Admin page shows them (never the password)."""

    host: str
    port: int
    security: str
    username: str
    has_password: bool
    from_address: str
    from_name: str
    reply_to: str
    key_fingerprint: str
    updated_at: dt.datetime

    @property
    def sender(self) -> Sender:
        return Sender(self.from_address, self.from_name, self.reply_to)

    def describe(self) -> str:
        user = f" as {self.username}" if self.username else ""
        return f"{self.host}:{self.port} ({SECURITY_LABELS.get(self.security, self.security)}){user}"


@dataclass(frozen=True)
class TestSend:
    """The outcome of "send test email": `text` is the server's exact answer, or the exact error."""

    ok: bool
    text: str
    message_id: str = ""


def _config(row: SmtpSettings) -> SmtpConfig:
    return SmtpConfig(
        host=row.host,
        port=int(row.port),
        security=row.security,
        username=row.username or "",
        has_password=bool(row.password_encrypted),
        from_address=row.from_address,
        from_name=row.from_name or "",
        reply_to=row.reply_to or "",
        key_fingerprint=row.key_fingerprint or "",
        updated_at=row.updated_at,
    )


def _row(session: Session) -> SmtpSettings | None:
    return session.scalar(select(SmtpSettings).order_by(SmtpSettings.id).limit(1))


def _field(value: str, what: str, limit: int) -> str:
    try:
        one_line(value, what)
    except ValueError as exc:
        raise SmtpConfigError(str(exc)) from None
    value = value.strip()
    if len(value) > limit:
        raise SmtpConfigError(f"The {what} is longer than {limit} characters.")
    return value


def _address(value: str, what: str) -> str:
    try:
        return check_address(value, what)
    except ValueError as exc:
        raise SmtpConfigError(str(exc)) from None


def validate(
    host: str,
    port: int | str,
    security: str,
    username: str,
    from_address: str,
    from_name: str,
    reply_to: str,
) -> tuple[str, int, str, str, str, str, str]:
    """The settings trimmed and checked: SmtpConfigError for a line break anywhere, a bad host,
    a port outside 1-65535, an unknown security mode or an invalid address."""
    host = _field(host, "SMTP host", 255)
    if not host or not _HOST.match(host):
        raise SmtpConfigError(f"{host!r} is not a host name or IP address (e.g. smtp.example.com).")
    try:
        number = int(str(port).strip())
    except ValueError:
        raise SmtpConfigError(f"The port must be a whole number, not {port!r}.") from None
    if not 1 <= number <= 65535:
        raise SmtpConfigError(f"The port must be between 1 and 65535, not {number}.")
    security = _field(security, "security mode", 10).lower()
    if security not in SECURITY_MODES:
        raise SmtpConfigError(f"Unknown security {security!r}; choose one of: {', '.join(SECURITY_MODES)}.")
    username = _field(username, "user name", 255)
    from_address = _address(from_address, "from address")
    from_name = _field(from_name, "from name", 200)
    reply_to = _address(reply_to, "reply-to address") if reply_to.strip() else ""
    return host, number, security, username, from_address, from_name, reply_to


def save_smtp(
    session: Session,
    settings: Settings,
    *,
    host: str,
    port: int | str,
    security: str,
    username: str = "",
    password: str | None = None,
    from_address: str,
    from_name: str = DEFAULT_FROM_NAME,
    reply_to: str = "",
    now: dt.datetime | None = None,
) -> SmtpConfig:
    """Validate and store the SMTP settings (commits). `password` None keeps the stored one (same
    user name only); a new password is encrypted with the primary key, whose fingerprint is stored.
    No user name means no AUTH and no stored password."""
    host, number, security, username, from_address, from_name, reply_to = validate(
        host, port, security, username, from_address, from_name, reply_to
    )
    if password is not None and any(ch in password for ch in "\r\n\x00"):
        raise SmtpConfigError("The password contains a line break; it must be one line.")
    row = _row(session)
    if not username:
        encrypted, fingerprint = "", ""
    elif password:
        ring = keyring(settings)
        encrypted, fingerprint = ring.encrypt(password), ring.primary_fingerprint
    elif password is None and row is not None and row.username == username and row.password_encrypted:
        encrypted, fingerprint = row.password_encrypted, row.key_fingerprint
    else:
        raise SmtpConfigError(f"Enter the password for the SMTP user {username!r}.")
    stamp = utc_naive(aware(now))
    if row is None:
        row = SmtpSettings(host=host, from_address=from_address)
        session.add(row)
    row.host, row.port, row.security, row.username = host, number, security, username
    row.password_encrypted, row.key_fingerprint = encrypted, fingerprint
    row.from_address, row.from_name, row.reply_to = from_address, from_name, reply_to
    row.updated_at = stamp
    session.commit()
    return _config(row)


def get_smtp(session: Session) -> SmtpConfig | None:
    """The stored settings without the password (for the Admin form); None when SMTP is not set."""
    row = _row(session)
    return _config(row) if row is not None and row.host else None


def is_configured(session: Session) -> bool:
    """True when an SMTP server is set; until then messages are written as .eml files."""
    return get_smtp(session) is not None


def load_smtp(session: Session, settings: Settings) -> tuple[SmtpSettings, str] | None:
    """The settings row and the decrypted password ("" without AUTH); None when SMTP is not set.

    Raises SecretKeyError (KEY_MISMATCH) when the stored key fingerprint matches none of the
    available keys, or the password cannot be decrypted with them.
    """
    row = _row(session)
    if row is None or not row.host:
        return None
    if not row.password_encrypted:
        return row, ""
    ring = keyring(settings)
    ring.check(row.key_fingerprint)
    return row, ring.decrypt(row.password_encrypted)


def smtp_transport(settings: Settings, row: SmtpSettings, password: str) -> SmtpTransport:
    return SmtpTransport(
        row.host,
        int(row.port),
        row.security,
        username=row.username or "",
        password=password,
        timeout=settings.smtp_timeout_s,
        ca_file=settings.smtp_ca_file,
    )


def fallback_sender() -> Sender:
    """The From of .eml files written while SMTP is not set."""
    return Sender("tallyboard@tallyboard.localhost", DEFAULT_FROM_NAME)


def delivery_status(session: Session, settings: Settings) -> str:
    """One sentence for the app: where email goes now."""
    config = get_smtp(session)
    if config is None:
        return (
            f"SMTP is not set up: emails are written as .eml files to {settings.outbox_dir} "
            "instead of being sent. Set the SMTP server in Admin."
        )
    return f"Emails are sent through {config.describe()} from {config.from_address}."


def send_test(engine: Engine, settings: Settings, to: str, *, now: dt.datetime | None = None) -> TestSend:
    """Send a test email to `to` through the stored SMTP settings, at once (not through the outbox).

    Returns the server's exact answer (ok) or the exact error; SmtpConfigError for a bad address.
    Without SMTP settings the message is written to the outbox folder and the answer says so.
    """
    recipient = _address(to, "test recipient")
    when = aware(now)
    with make_sessionmaker(engine)() as session:
        try:
            loaded = load_smtp(session, settings)
        except SecretKeyError as exc:
            return TestSend(False, str(exc))
    transport: Transport
    if loaded is None:
        sender, where = fallback_sender(), "the outbox folder (SMTP is not set up)"
        transport = EmlFolderTransport(settings.outbox_dir)
    else:
        row, password = loaded
        sender = Sender(row.from_address, row.from_name or "", row.reply_to or "")
        where = f"{row.host}:{row.port} ({SECURITY_LABELS.get(row.security, row.security)})"
        transport = smtp_transport(settings, row, password)
    message_id = f"<tb.test.{secrets.token_hex(8)}@{sender.domain}>"
    bodies = render(
        {"title": "Test email", "business": "Tallyboard", "period": f"{when:%Y-%m-%d %H:%M} UTC"},
        message=f"This is a test email from Tallyboard, sent through {where}.\n\n"
        "If you can read it, scheduled reports will reach this address.",
        footer="Sent from Admin → Email settings → Send test email.",
        subject="Tallyboard test email",
    )
    message = compose(
        sender,
        recipient,
        "Tallyboard test email",
        message_id,
        text=bodies.text,
        html=bodies.html,
        date=when,
    )
    try:
        reply = transport.send(message)
    except Exception as exc:
        return TestSend(False, describe_error(exc), message_id)
    finally:
        close = getattr(transport, "close", None)
        if close is not None:
            close()
    return TestSend(True, reply, message_id)
