"""Transports that hand a finished EmailMessage on: an SMTP server (smtplib), or .eml files in a folder.

A transport's `send(message)` returns the server's reply text ("250 2.0.0 Ok: queued as ...") or
raises what went wrong: smtplib's exceptions for SMTP replies, OSError/TimeoutError for the
network, `ConnectFailed` when the connection, TLS or login failed before any message was offered,
and `MaybeDelivered` when the connection dropped or timed out after the message text had been
sent - the server may have accepted it, so it is retried with the same Message-ID for the receiver
to drop the copy.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import smtplib
import socket
import ssl
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, parseaddr
from pathlib import Path
from typing import Protocol

SECURITY_MODES = ("none", "starttls", "ssl")

# A practical address check on top of email.utils: one local part, one dotted domain, no spaces.
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)


class Transport(Protocol):
    """Hands one message on; returns the server's reply text or raises."""

    def send(self, message: EmailMessage) -> str: ...


class ConnectFailed(OSError):
    """Connecting, TLS, EHLO or login failed: no message was offered (the next ones would fail too)."""


class SettingsRefused(ConnectFailed):
    """The server refused these settings - the login (535), or STARTTLS / AUTH it does not offer:
    a configuration error that retrying cannot mend."""


# Replies that mean "these settings are wrong" whenever they come: authentication required,
# mechanism too weak, credentials invalid, encryption required for the mechanism (RFC 4954).
SETTINGS_CODES = frozenset({530, 534, 535, 538})


def settings_problem(exc: BaseException) -> bool:
    """True for an error that only new SMTP settings can mend (see SettingsRefused)."""
    if isinstance(exc, SettingsRefused):
        return True
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code in SETTINGS_CODES
    return False


class MaybeDelivered(smtplib.SMTPServerDisconnected):
    """The connection failed after the message text was sent: the server may have it already."""


def one_line(value: str, what: str) -> str:
    """`value` unchanged, or ValueError when it holds a line break or a control character
    (a CR/LF in a header would let the text add headers of its own)."""
    for ch in value:
        if ch in "\r\n" or unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            kind = "a line break" if ch in "\r\n\u2028\u2029\x85" else "a control character"
            raise ValueError(f"The {what} contains {kind}; it must be one line.")
    return value


def check_address(raw: str, what: str = "address") -> str:
    """One plain e-mail address (name@example.com), trimmed; ValueError saying what is wrong."""
    one_line(raw, what)
    address = raw.strip()
    name, parsed = parseaddr(address)
    if not address or name or parsed != address or not _ADDRESS.match(address):
        raise ValueError(
            f"The {what} {address!r} is not a valid e-mail address (write it as name@example.com)."
        )
    return address


@dataclass(frozen=True)
class Sender:
    """Who the messages come from: the From address and name, and where replies go."""

    address: str
    name: str = "Tallyboard"
    reply_to: str = ""

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2].lower()


@dataclass(frozen=True)
class Attachment:
    name: str
    data: bytes
    mime: str = "application/octet-stream"


@dataclass(frozen=True)
class InlineImage:
    """An image the HTML body shows as <img src="cid:{cid}">: sent once, beside the HTML part."""

    cid: str  # without the angle brackets
    data: bytes
    name: str = "chart.png"
    mime: str = "image/png"


def compose(
    sender: Sender,
    recipient: str,
    subject: str,
    message_id: str,
    *,
    text: str,
    html: str,
    attachments: Sequence[Attachment] = (),
    date: dt.datetime | None = None,
    inline: Sequence[InlineImage] = (),
) -> EmailMessage:
    """One message to one recipient: plain text with an HTML alternative, then the attachments.

    `inline` images travel with the HTML part (multipart/related, Content-ID, inline disposition)
    for the HTML to show as cid: links. Headers are checked for line breaks (ValueError). The
    bodies are quoted-printable, so the message is 7-bit clean for any server.
    """
    msg = EmailMessage()
    local, _, domain = check_address(sender.address, "from address").rpartition("@")
    msg["From"] = Address(
        display_name=one_line(sender.name, "from name").strip(), username=local, domain=domain
    )
    msg["To"] = check_address(recipient, "recipient")
    if sender.reply_to:
        msg["Reply-To"] = check_address(sender.reply_to, "reply-to address")
    msg["Subject"] = one_line(subject, "subject").strip()
    msg["Date"] = format_datetime((date or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))
    msg["Message-ID"] = one_line(message_id, "Message-ID").strip()
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies to a report
    msg.set_content(text, subtype="plain", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", cte="quoted-printable")
    if inline:
        html_part = msg.get_body(("html",))
        assert isinstance(html_part, EmailMessage)
        for image in inline:
            maintype, _, subtype = image.mime.partition("/")
            html_part.add_related(
                image.data,
                maintype=maintype or "image",
                subtype=subtype or "png",
                cid=f"<{one_line(image.cid, 'Content-ID').strip('<> ')}>",
                filename=image.name,
                disposition="inline",
            )
    for item in attachments:
        maintype, _, subtype = item.mime.partition("/")
        if not maintype or not subtype:
            maintype, subtype = "application", "octet-stream"
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.name)
    return msg


def envelope_recipients(message: EmailMessage) -> list[str]:
    """The addresses in To, Cc and Bcc, in order, once each."""
    fields = [str(v) for h in ("To", "Cc", "Bcc") for v in message.get_all(h, [])]
    seen: dict[str, str] = {}
    for _name, address in getaddresses(fields):
        if address:
            seen.setdefault(address.lower(), address)
    return list(seen.values())


def envelope_sender(message: EmailMessage) -> str:
    return parseaddr(str(message.get("From", "")))[1]


def message_bytes(message: EmailMessage) -> bytes:
    """The message as sent on the wire and written to .eml files: CRLF line ends, headers encoded."""
    return message.as_bytes(policy=policy.SMTP)


def _reply(code: int, text: bytes | str) -> str:
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {shown}".strip()


def describe_error(exc: BaseException) -> str:
    """What went wrong in one line, with the server's exact reply when there was one."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{rcpt}: {_reply(code, text)}" for rcpt, (code, text) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc.smtp_code, exc.smtp_error)
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError | socket.timeout) and "timed out" not in text:
        text = f"timed out ({text})"
    return text


class SmtpTransport:
    """An SMTP server: security none | starttls | ssl, AUTH when a user name is set.

    One connection serves the messages of a delivery pass (call `close()` after); any error closes
    it and the next message opens a new one. TLS uses the system's CA certificates, plus `ca_file`
    (a private CA or a self-signed server certificate) when given; the host name is always checked.
    """

    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        *,
        username: str = "",
        password: str = "",
        timeout: float = 30,
        ca_file: str = "",
        local_hostname: str | None = None,
    ) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(
                f"Unknown SMTP security {security!r}; choose one of: {', '.join(SECURITY_MODES)}."
            )
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.ca_file = ca_file
        self.local_hostname = local_hostname or socket.gethostname() or "localhost"
        self._conn: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        return context

    def _connect(self) -> smtplib.SMTP:
        conn: smtplib.SMTP | None = None
        try:
            if self.security == "ssl":
                conn = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    local_hostname=self.local_hostname,
                    timeout=self.timeout,
                    context=self._context(),
                )
            else:
                conn = smtplib.SMTP(
                    self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
                )
            conn.ehlo()
            if self.security == "starttls":
                conn.starttls(context=self._context())  # raises SMTPNotSupportedError: never falls back
                conn.ehlo()
            if self.username:
                conn.login(self.username, self.password)
        except (smtplib.SMTPException, OSError) as exc:
            if conn is not None:
                _abort(conn)
            where = f"{self.host}:{self.port} ({self.security})"
            refused = isinstance(exc, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError) or (
                isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code in SETTINGS_CODES
            )
            kind = SettingsRefused if refused else ConnectFailed
            raise kind(f"Could not connect to the SMTP server {where}: {describe_error(exc)}") from exc
        return conn

    def send(self, message: EmailMessage) -> str:
        """Send `message` to its To/Cc/Bcc addresses; the server's reply to the message text."""
        recipients = envelope_recipients(message)
        if not recipients:
            raise ValueError("The message has no recipient.")
        sender = envelope_sender(message)
        body = message_bytes(message)
        if self._conn is None:
            self._conn = self._connect()
        conn = self._conn
        data_sent = False
        try:
            code, text = conn.mail(sender)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, text, sender)
            refused: dict[str, tuple[int, bytes]] = {}
            for rcpt in recipients:
                code, text = conn.rcpt(rcpt)
                if code not in (250, 251):
                    refused[rcpt] = (code, text)
            if len(refused) == len(recipients):
                raise smtplib.SMTPRecipientsRefused(refused)
            data_sent = True
            code, text = conn.data(body)
            if code != 250:
                raise smtplib.SMTPDataError(code, text)
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused):
            self.close()
            raise
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._conn = None
            _abort(conn)
            if data_sent:
                raise MaybeDelivered(
                    f"The connection failed after the message was sent ({describe_error(exc)}); "
                    "the server may have accepted it."
                ) from exc
            raise
        except BaseException:
            self._conn = None
            _abort(conn)
            raise
        return _reply(code, text)

    def close(self) -> None:
        """QUIT the open connection, if any (errors ignored: the messages are already recorded)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            _abort(conn)


def _abort(conn: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        conn.close()


def eml_file_name(message_id: str) -> str:
    """A safe file name from a Message-ID: '<tb.1.report.ab@x.org>' -> 'tb.1.report.ab@x.org.eml'."""
    stem = re.sub(r"[^A-Za-z0-9._@+-]", "_", message_id.strip().strip("<>"))[:200].lstrip(".")
    return f"{stem or 'message'}.eml"


class EmlFolderTransport:
    """Writes each message to `{folder}/{Message-ID}.eml` (temp file + rename): used until SMTP is set.

    Writing the same Message-ID again replaces the file, so a retried message is still one file.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> str:
        message_id = str(message.get("Message-ID", "")).strip()
        if not message_id:
            raise ValueError("The message has no Message-ID.")
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / eml_file_name(message_id)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(message_bytes(message))
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return f"written to {target}"

    def close(self) -> None:
        return None
