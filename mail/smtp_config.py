"""SMTP settings per business, and the installation default: validated saves with the password
Fernet-encrypted, the route each business's email takes, a test send.

Each business may have one SmtpSettings row (its admin edits it in Admin): its own server, or only
its sender name and reply-to. One row without a business is the installation default, set by the
operator from the command line only; it is never shown to a business. A business's email goes
through its own server, else the default's, else into the outbox folder as .eml files - never
through another business's server.

Passwords are encrypted with the primary secret key (core/secret_key) and the key's fingerprint is
stored beside each: loading with a key that matches none of the available ones raises SecretKeyError
with the message people need, and nothing is sent.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from accounts.users import OPERATOR, acting_user, record_refusal
from analytics.report import Scope
from core.clock import aware, utc_naive
from core.db import make_sessionmaker
from core.errors import Forbidden, Invalid
from core.models import Business, SmtpSettings
from core.secret_key import SecretKeyError, keyring
from core.secret_key import check as check_keys
from core.settings import Settings
from mail.render import render
from mail.transports import (
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
from reports.audit_log import record_event

SECURITY_LABELS = {"none": "no encryption", "starttls": "STARTTLS", "ssl": "SSL/TLS"}
DEFAULT_FROM_NAME = "Tallyboard"
MANAGES_SMTP = frozenset({"admin"})
# A host name or an IP address (IPv6 in brackets or bare): no spaces, no slashes, no schemes.
_HOST = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f:]+:[0-9A-Fa-f:.]*|[A-Za-z0-9](?:[A-Za-z0-9._-]{0,253}))$"
)


class SmtpConfigError(Invalid):
    """SMTP settings that cannot be saved or used; the message says what to fix."""


@dataclass(frozen=True)
class SmtpConfig:
    """One settings row as the Admin page or `smtp show` presents it (never the password).
    `host` is "" for a business that keeps only its sender name and reply-to."""

    business_id: int | None
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
    def has_server(self) -> bool:
        return bool(self.host)

    @property
    def sender(self) -> Sender:
        return Sender(self.from_address, self.from_name, self.reply_to)

    def describe(self) -> str:
        if not self.host:
            return "no server of its own (sender name and reply-to only)"
        user = f" as {self.username}" if self.username else ""
        return f"{self.host}:{self.port} ({SECURITY_LABELS.get(self.security, self.security)}){user}"


@dataclass(frozen=True)
class TestSend:
    """The outcome of "send test email": `text` is the server's exact answer, or the exact error."""

    ok: bool
    text: str
    message_id: str = ""
    written: bool = False  # written to a .eml file in the outbox folder (no SMTP server): nobody got it

    @property
    def outcome(self) -> str:
        """What happened, in words: "sent", "written to the outbox folder (no SMTP server set)" or
        "failed"."""
        if not self.ok:
            return "failed"
        return "written to the outbox folder (no SMTP server set)" if self.written else "sent"


def _config(row: SmtpSettings) -> SmtpConfig:
    return SmtpConfig(
        business_id=row.business_id,
        host=row.host or "",
        port=int(row.port),
        security=row.security,
        username=row.username or "",
        has_password=bool(row.password_encrypted),
        from_address=row.from_address or "",
        from_name=row.from_name or "",
        reply_to=row.reply_to or "",
        key_fingerprint=row.key_fingerprint or "",
        updated_at=row.updated_at,
    )


def _row(session: Session, business_id: int | None) -> SmtpSettings | None:
    """The business's own row, or (None) the installation default's; never another business's."""
    owner = (
        SmtpSettings.business_id.is_(None) if business_id is None else SmtpSettings.business_id == business_id
    )
    return session.scalar(select(SmtpSettings).where(owner).order_by(SmtpSettings.id).limit(1))


def _check_actor(session: Session, actor: Scope, installation_default: bool, action: str) -> int | None:
    """The business whose settings `actor` may touch (None: the installation default, operator only)."""
    if installation_default:
        if actor.role != OPERATOR:
            record_refusal(
                session,
                actor.business_id,
                user=actor.user,
                action=action,
                reason="the installation's default mail server is the operator's",
                entity="smtp_settings",
                entity_id="default",
            )
            raise Forbidden("Only the operator can change the installation's mail server (manage.py smtp).")
        return None
    acting_user(session, actor, MANAGES_SMTP, action, entity_id=str(actor.business_id))
    return actor.business_id


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
    actor: Scope,
    *,
    host: str,
    port: int | str = 587,
    security: str = "starttls",
    username: str = "",
    password: str | None = None,
    from_address: str = "",
    from_name: str = DEFAULT_FROM_NAME,
    reply_to: str = "",
    installation_default: bool = False,
    now: dt.datetime | None = None,
) -> SmtpConfig:
    """Validate and store the SMTP settings of the actor's business (its admins, or the operator), or
    with `installation_default` the installation's default (the operator only); commits and audits.

    `password` None keeps the stored one (same user name only); a new password is encrypted with the
    primary key, whose fingerprint is stored. No user name means no AUTH and no stored password.
    A business may leave `host` empty to keep only its sender name and reply-to (the default server
    sends); the installation default needs a host.
    """
    business_id = _check_actor(session, actor, installation_default, "change_email_settings")
    sender_only = business_id is not None and not host.strip()
    if sender_only:
        from_name = _field(from_name, "from name", 200)
        reply_to = _address(reply_to, "reply-to address") if reply_to.strip() else ""
        number, security, username, from_address = 587, "starttls", "", ""
    else:
        host, number, security, username, from_address, from_name, reply_to = validate(
            host, port, security, username, from_address, from_name, reply_to
        )
    if password is not None and any(ch in password for ch in "\r\n\x00"):
        raise SmtpConfigError("The password contains a line break; it must be one line.")
    row = _row(session, business_id)
    if not username:
        encrypted, fingerprint = "", ""
    elif password:
        ring = keyring(settings, session=session)
        encrypted, fingerprint = ring.encrypt(password), ring.primary_fingerprint
    elif password is None and row is not None and row.username == username and row.password_encrypted:
        encrypted, fingerprint = row.password_encrypted, row.key_fingerprint
    else:
        raise SmtpConfigError(f"Enter the password for the SMTP user {username!r}.")
    stamp = utc_naive(aware(now))
    if row is None:
        row = SmtpSettings(business_id=business_id, host=host, from_address=from_address)
        session.add(row)
    row.host, row.port, row.security, row.username = host, number, security, username
    row.password_encrypted, row.key_fingerprint = encrypted, fingerprint
    row.from_address, row.from_name, row.reply_to = from_address, from_name, reply_to
    row.updated_at = stamp
    session.flush()
    if business_id is not None:
        record_event(
            session,
            business_id,
            "email_settings_changed",
            user=actor.user,
            entity="smtp_settings",
            entity_id=str(business_id),
            detail={"server": _config(row).describe(), "from": from_address, "reply_to": reply_to},
            at=stamp,
        )
    session.commit()
    return _config(row)


def clear_smtp(session: Session, actor: Scope, *, installation_default: bool = False) -> bool:
    """Remove the actor's business's own settings (its email then goes through the installation
    default, or to the outbox folder), or the installation default (operator only); commits and
    audits. False when there was nothing to remove."""
    business_id = _check_actor(session, actor, installation_default, "change_email_settings")
    row = _row(session, business_id)
    if row is None:
        return False
    session.delete(row)
    if business_id is not None:
        record_event(
            session,
            business_id,
            "email_settings_removed",
            user=actor.user,
            entity="smtp_settings",
            entity_id=str(business_id),
        )
    session.commit()
    return True


def get_smtp(session: Session, actor: Scope, *, installation_default: bool = False) -> SmtpConfig | None:
    """The actor's business's own settings without the password (for its Admin form), or with
    `installation_default` the default's (operator only); None when there are none. A business is
    never shown the installation default."""
    business_id = _check_actor(session, actor, installation_default, "view_email_settings")
    row = _row(session, business_id)
    return _config(row) if row is not None else None


# --- where a business's email goes ---------------------------------------------------------------


@dataclass(frozen=True)
class MailRoute:
    """Where one business's email goes: `source` "own" (its server), "default" (the installation's)
    or "outbox" (.eml files). `settings_id` is the server's settings row (None for the outbox)."""

    business_id: int | None
    source: str
    settings_id: int | None
    host: str
    port: int
    security: str
    username: str
    password: str
    sender: Sender

    def transport(self, settings: Settings) -> Transport:
        if self.source == "outbox":
            return EmlFolderTransport(settings.outbox_dir)
        return SmtpTransport(
            self.host,
            self.port,
            self.security,
            username=self.username,
            password=self.password,
            timeout=settings.smtp_timeout_s,
            ca_file=settings.smtp_ca_file,
        )

    def where(self, settings: Settings) -> str:
        """Where the messages go, in words a business may see (the default server stays unnamed)."""
        if self.source == "outbox":
            return f"the outbox folder {settings.outbox_dir} (no mail server is set up)"
        if self.source == "default":
            return "the installation's mail server (set up by the operator)"
        return f"{self.host}:{self.port} ({SECURITY_LABELS.get(self.security, self.security)})"


def _server(
    session: Session, business_id: int | None
) -> tuple[SmtpSettings | None, SmtpSettings | None, str]:
    own = _row(session, business_id) if business_id is not None else None
    if own is not None and own.host:
        return own, own, "own"
    default = _row(session, None)
    if default is not None and default.host:
        return own, default, "default"
    return own, None, "outbox"


def sender_for(session: Session, business_id: int | None) -> Sender:
    """The From, name and reply-to of a business's messages (no password is decrypted)."""
    own, server, _ = _server(session, business_id)
    base = (
        Sender(server.from_address, server.from_name or "", server.reply_to or "")
        if server is not None
        else fallback_sender()
    )
    if own is not None and own is not server:  # its own sender name and reply-to on another server
        return Sender(base.address, own.from_name or base.name, own.reply_to or base.reply_to)
    return base


def mail_route(session: Session, settings: Settings, business_id: int | None) -> MailRoute:
    """The route of a business's email (None: the installation's own notices): its own server, else
    the installation default, else the outbox folder. SecretKeyError (KEY_MISMATCH) when the
    server's password cannot be decrypted with the available keys."""
    _, server, source = _server(session, business_id)
    sender = sender_for(session, business_id)
    if server is None:
        return MailRoute(business_id, "outbox", None, "", 0, "none", "", "", sender)
    password = ""
    if server.password_encrypted:
        ring = keyring(settings, session=session)
        ring.check(server.key_fingerprint)
        password = ring.decrypt(server.password_encrypted)
    return MailRoute(
        business_id,
        source,
        server.id,
        server.host,
        int(server.port),
        server.security,
        server.username or "",
        password,
        sender,
    )


def load_smtp(
    session: Session, settings: Settings, business_id: int | None = None
) -> tuple[SmtpSettings, str] | None:
    """The settings row of the server a business's email goes through (its own, else the default;
    None: the default only) and the decrypted password ("" without AUTH); None when there is no
    server (outbox folder). Raises SecretKeyError (KEY_MISMATCH) when the stored key fingerprint
    matches none of the available keys, or the password cannot be decrypted with them."""
    _, row, _ = _server(session, business_id)
    if row is None:
        return None
    if not row.password_encrypted:
        return row, ""
    ring = keyring(settings, session=session)
    ring.check(row.key_fingerprint)
    return row, ring.decrypt(row.password_encrypted)


class MailRoutes:
    """The transports of one delivery pass: one per server (or the outbox), opened on first use and
    closed by `close()`. A transport handed in (tests) carries every message, with each business's sender."""

    def __init__(self, engine: Engine, settings: Settings, transport: Transport | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.fixed = transport
        self._routes: dict[int | None, MailRoute] = {}
        self._senders: dict[int | None, Sender] = {}
        self._transports: dict[int | None, Transport] = {}

    def route(self, business_id: int | None) -> MailRoute:
        if business_id not in self._routes:
            with make_sessionmaker(self.engine)() as session:
                self._routes[business_id] = mail_route(session, self.settings, business_id)
        return self._routes[business_id]

    def sender(self, business_id: int | None) -> Sender:
        """The business's sender; decrypts nothing, so building a message never fails on the key."""
        if business_id not in self._senders:
            with make_sessionmaker(self.engine)() as session:
                self._senders[business_id] = sender_for(session, business_id)
        return self._senders[business_id]

    def transport(self, business_id: int | None) -> Transport:
        if self.fixed is not None:
            return self.fixed
        route = self.route(business_id)
        if route.settings_id not in self._transports:
            self._transports[route.settings_id] = route.transport(self.settings)
        return self._transports[route.settings_id]

    @property
    def label(self) -> str:
        if self.fixed is not None:
            return "custom"
        kinds = sorted({"eml" if r.source == "outbox" else "smtp" for r in self._routes.values()})
        return "+".join(kinds)

    def close(self) -> None:
        transports, self._transports = list(self._transports.values()), {}
        for transport in transports:
            close = getattr(transport, "close", None)
            if close is not None:
                close()


def stored_keys_problem(engine: Engine, settings: Settings) -> str | None:
    """Why no email may be sent now (the secret key opens not every stored password), or None."""
    try:
        with make_sessionmaker(engine)() as session:
            check_keys(session, settings)
    except SecretKeyError as exc:
        return str(exc)
    return None


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
    """The From of .eml files written while no SMTP server is set."""
    return Sender("tallyboard@tallyboard.localhost", DEFAULT_FROM_NAME)


def is_configured(session: Session, business_id: int | None = None) -> bool:
    """True when a business's email has a server (its own or the default); else .eml files."""
    return _server(session, business_id)[1] is not None


def delivery_status(session: Session, settings: Settings, business_id: int | None = None) -> str:
    """One sentence for a business's pages (None: the installation's): where its email goes now.
    The installation default is mentioned, never described."""
    _, server, source = _server(session, business_id)
    if source == "outbox":
        return (
            f"SMTP is not set up: emails are written as .eml files to {settings.outbox_dir} "
            "instead of being sent. Set the SMTP server in Admin."
        )
    assert server is not None
    sender = sender_for(session, business_id)
    if source == "default" and business_id is not None:
        return f"Emails are sent through the installation's mail server (set up by the operator) as {sender.name}."
    return f"Emails are sent through {_config(server).describe()} from {server.from_address}."


def business_label(session: Session, business_id: int | None) -> str:
    if business_id is None:
        return "Tallyboard"
    business = session.get(Business, business_id)
    return business.name if business is not None else "Tallyboard"


def send_test(
    engine: Engine,
    settings: Settings,
    to: str,
    actor: Scope,
    *,
    installation_default: bool = False,
    now: dt.datetime | None = None,
) -> TestSend:
    """Send a test email to `to` at once (not through the outbox) the way the actor's business's
    email goes (its admins, or the operator), or with `installation_default` through the default
    server (operator only).

    Returns the server's exact answer (ok) or the exact error; SmtpConfigError for a bad address.
    Without a server the message is written to the outbox folder and the answer says so.
    """
    recipient = _address(to, "test recipient")
    when = aware(now)
    with make_sessionmaker(engine)() as session:
        business_id = _check_actor(session, actor, installation_default, "send_test_email")
        name = business_label(session, business_id)
        try:
            route = mail_route(session, settings, business_id)
        except SecretKeyError as exc:
            return TestSend(False, str(exc))
    transport = route.transport(settings)
    sender, where = route.sender, route.where(settings)
    message_id = f"<tb.test.{secrets.token_hex(8)}@{sender.domain}>"
    bodies = render(
        {"title": "Test email", "business": name, "period": f"{when:%Y-%m-%d %H:%M} UTC"},
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
    return TestSend(True, reply, message_id, written=route.source == "outbox")
