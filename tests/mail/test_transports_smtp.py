"""Delivery through a real SMTP server (aiosmtpd on 127.0.0.1): plain, STARTTLS + AUTH, SSL, scripted
451 / 550 / a stall after DATA, the server down and back, racing senders, a wrong key, the CLI."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openpyxl
import pypdf
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import manage
from accounts.users import operator
from core.secret_key import KEY_MISMATCH, SecretKeyError
from core.settings import Settings
from mail.delivery import DeliveryStats, deliver_due
from mail.smtp_config import SmtpConfigError, delivery_status, load_smtp, save_smtp, send_test
from tests.mail.mail_fixtures import OWNER_EMAIL, UTC_NOW, make_window, messages, parse, parts, quiet_outbox
from tests.tenants import Jobs, Tenant

FROM = "reports@tallyboard.example"
USER, PASSWORD = "mailer", "s3cret pass phrase"


# --- a scriptable SMTP server ---------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    login: str

    @property
    def message_id(self) -> str:
        return str(parse(self.data)["Message-ID"])


@dataclass
class Mailbox:
    """An aiosmtpd handler. `data_script` answers successive DATA commands: None accepts,
    "stall:S" stores the message then waits S seconds before accepting (the answer arrives too
    late), any other text is the reply. `rcpt_replies` refuses chosen recipients."""

    data_script: list[str | None] = field(default_factory=list)
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def _store(self, server: Any, session: Session, envelope: Envelope) -> None:
        content = envelope.original_content or b""
        tls = server.transport.get_extra_info("ssl_object") is not None
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else ""
        with self.lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), content, tls, login)
            )

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        with self.lock:
            action = self.data_script.pop(0) if self.data_script else None
        if self.delay:
            await asyncio.sleep(self.delay)
        if action is None:
            self._store(server, session, envelope)
            return "250 2.0.0 Message accepted for delivery"
        if action.startswith("stall:"):
            self._store(server, session, envelope)  # accepted, but the answer will come too late
            await asyncio.sleep(float(action.partition(":")[2]))
            return "250 2.0.0 Message accepted for delivery"
        return action

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


def authenticator(server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=data)  # handled=False, or a failed login hangs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost, made here with cryptography."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Tallyboard test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(folder / "cert.pem", folder / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


StartServer = Callable[..., tuple[Mailbox, int]]


@pytest.fixture
def smtp_server() -> Iterator[StartServer]:
    """Start aiosmtpd servers on 127.0.0.1 (a free port, or the one given); all stopped after the test."""
    running: list[Controller] = []

    def start(mailbox: Mailbox | None = None, port: int | None = None, **options: Any) -> tuple[Mailbox, int]:
        box = mailbox or Mailbox()
        chosen = port or free_port()
        controller = Controller(box, hostname="127.0.0.1", port=chosen, **options)
        controller.start()
        running.append(controller)
        return box, chosen

    yield start
    for controller in running:
        controller.stop()


@pytest.fixture(autouse=True)
def clean_installation(jobs: Jobs) -> Iterator[None]:
    """No SMTP settings and no leftover messages before, and no SMTP settings after (other tests'
    daemons must not try this test's server)."""
    quiet_outbox(jobs.engine)
    yield
    quiet_outbox(jobs.engine)


@pytest.fixture
def mail(jobs: Jobs, tmp_path: Path, certificate: Certificate) -> Settings:
    return jobs.settings.with_changes(
        secret_key=Fernet.generate_key().decode(),
        mail_jitter=0.0,
        smtp_timeout_s=5,
        smtp_ca_file=str(certificate.cert),
        outbox_dir=tmp_path / "outbox",
    )


def configure(
    jobs: Jobs,
    settings: Settings,
    port: int,
    security: str = "none",
    *,
    user: str = "",
    password: str | None = None,
) -> None:
    with jobs.session() as s:
        save_smtp(
            s,
            settings,
            operator(),
            installation_default=True,
            host="127.0.0.1",
            port=port,
            security=security,
            username=user,
            password=password,
            from_address=FROM,
            from_name="Tallyboard Reports",
            reply_to="help@tallyboard.example",
        )


def deliver(jobs: Jobs, settings: Settings, now: dt.datetime = UTC_NOW) -> DeliveryStats:
    return deliver_due(jobs.engine, settings, now=now)


# --- the tests -------------------------------------------------------------------------------------


def test_plain_delivery_arrives_once_with_files_that_open(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    box, port = smtp_server()
    configure(jobs, mail, port)
    window = make_window(jobs, tenant, ["ana@example.com", "ben@example.com"], formats=("xlsx", "pdf"))
    stats = deliver(jobs, mail)
    assert (stats.sent, stats.retried, stats.failed, stats.transport) == (2, 0, 0, "smtp")
    assert deliver(jobs, mail).claimed == 0
    assert sorted(r.rcpt_tos[0] for r in box.received) == ["ana@example.com", "ben@example.com"]
    (got,) = box.to("ana@example.com")
    assert got.mail_from == FROM
    message = parse(got.data)
    with jobs.session() as s:
        rows = {r.recipient: r for r in messages(s, window.window_id)}
    assert message["Message-ID"] == rows["ana@example.com"].message_id
    assert rows["ana@example.com"].message_id.endswith("@tallyboard.example>")
    assert message["From"] == f"Tallyboard Reports <{FROM}>"
    assert message["Reply-To"] == "help@tallyboard.example"
    assert message["Subject"] == "Sales summary for January 2025"
    assert message["Date"] is not None
    text, html, files = parts(message)
    assert "€1,555.00" in text and "€1,555.00" in html and "Good morning," in text
    assert set(files) == set(window.file_names)
    (xlsx,) = [data for mime, data in files.values() if mime.endswith("spreadsheetml.sheet")]
    (pdf,) = [data for mime, data in files.values() if mime == "application/pdf"]
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    assert workbook.sheetnames
    workbook.close()
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) >= 1 and "Sales summary" in reader.pages[0].extract_text()
    assert all(r.status == "sent" and r.attempts == 1 for r in rows.values())


def test_starttls_with_auth_and_a_self_signed_certificate(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer, certificate: Certificate
) -> None:
    box, port = smtp_server(
        tls_context=certificate.server_context(),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    configure(jobs, mail, port, "starttls", user=USER, password="wrong")
    window = make_window(jobs, tenant, ["ana@example.com"])
    stats = deliver(jobs, mail)
    assert (stats.held, stats.retried, stats.sent) == (1, 0, 0)  # a refused login waits for new settings
    with jobs.session() as s:
        (row,) = messages(s, window.window_id)
    assert "535" in row.last_error and "Could not connect" in row.last_error
    assert (row.status, row.attempts) == ("pending", 0)
    configure(jobs, mail, port, "starttls", user=USER, password=PASSWORD)
    assert deliver(jobs, mail, UTC_NOW + dt.timedelta(hours=1)).sent == 1
    (got,) = box.received
    assert got.tls and got.login == USER
    # The same server refuses a client that does not trust its certificate.
    untrusting = mail.with_changes(smtp_ca_file="")
    result = send_test(jobs.engine, untrusting, "ana@example.com", operator(), installation_default=True)
    assert not result.ok and "CERTIFICATE_VERIFY_FAILED" in result.text


def test_implicit_ssl(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer, certificate: Certificate
) -> None:
    box, port = smtp_server(ssl_context=certificate.server_context())
    configure(jobs, mail, port, "ssl")
    make_window(jobs, tenant, ["ana@example.com"])
    assert deliver(jobs, mail).sent == 1
    assert len(box.received) == 1 and box.received[0].tls


def test_a_451_is_retried_later_with_backoff_then_delivered_once(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    box, port = smtp_server(Mailbox(data_script=["451 4.3.0 Please try again later"]))
    configure(jobs, mail, port)
    window = make_window(jobs, tenant, ["ana@example.com"])
    assert deliver(jobs, mail).retried == 1
    with jobs.session() as s:
        (row,) = messages(s, window.window_id)
    assert row.status == "pending" and row.last_error == "Attempt 1: 451 4.3.0 Please try again later"
    assert row.next_attempt_at is not None and row.next_attempt_at >= UTC_NOW + dt.timedelta(seconds=120)
    assert deliver(jobs, mail, UTC_NOW + dt.timedelta(seconds=60)).claimed == 0  # not yet
    assert deliver(jobs, mail, row.next_attempt_at).sent == 1
    assert len(box.received) == 1 and box.received[0].message_id == row.message_id


def test_a_550_fails_at_once_and_the_owner_gets_one_notice(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    refusal = "550 5.1.1 <{0}>: Recipient address rejected: User unknown in local recipient table"
    bad = ["gone@example.com", "typo@example.com"]
    box, port = smtp_server(Mailbox(rcpt_replies={a: refusal.format(a) for a in bad}))
    configure(jobs, mail, port)
    window = make_window(jobs, tenant, [*bad, "ana@example.com"])
    stats = deliver(jobs, mail)
    assert (stats.sent, stats.failed, stats.retried, stats.notices) == (1, 2, 0, 1)
    with jobs.session() as s:
        rows = {r.recipient: r for r in messages(s, window.window_id, "report")}
    assert rows["gone@example.com"].status == "failed" and rows["gone@example.com"].attempts == 1
    assert (
        rows["gone@example.com"].last_error
        == f"Attempt 1: gone@example.com: {refusal.format('gone@example.com')}"
    )
    assert deliver(jobs, mail).sent == 1
    assert deliver(jobs, mail).claimed == 0
    (notice,) = box.to(OWNER_EMAIL)
    text, _, _ = parts(parse(notice.data))
    assert "gone@example.com" in text and "typo@example.com" in text and "User unknown" in text
    assert [r.rcpt_tos for r in box.received].count(["ana@example.com"]) == 1


def test_a_stall_after_data_is_retried_with_the_same_message_id(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    box, port = smtp_server(Mailbox(data_script=["stall:3"]))
    configure(jobs, mail.with_changes(smtp_timeout_s=1), port)
    settings = mail.with_changes(smtp_timeout_s=1)
    window = make_window(jobs, tenant, ["ana@example.com"])
    stats = deliver(jobs, settings)
    assert stats.retried == 1
    with jobs.session() as s:
        (row,) = messages(s, window.window_id)
    assert row.status == "pending"
    assert "may have been delivered" in row.last_error and row.message_id in row.last_error
    assert row.next_attempt_at is not None
    assert deliver(jobs, settings, row.next_attempt_at).sent == 1
    with jobs.session() as s:
        (row,) = messages(s, window.window_id)
    assert row.status == "sent" and row.attempts == 2
    assert row.last_error.startswith("An earlier attempt may also have been delivered (same Message-ID).")
    # The receiver got it twice - the first answer was lost - under one Message-ID it can dedupe by.
    assert [r.message_id for r in box.received] == [row.message_id, row.message_id]


def test_smtp_down_then_up_delivers_each_message_once(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    port = free_port()
    configure(jobs, mail, port)
    window = make_window(jobs, tenant, ["ana@example.com", "ben@example.com", "cy@example.com"])
    down = deliver(jobs, mail)
    assert (down.claimed, down.retried, down.sent) == (1, 1, 0)  # the pass stops at a dead server
    with jobs.session() as s:
        rows = messages(s, window.window_id)
    assert "Connection refused" in rows[0].last_error
    assert [r.attempts for r in rows] == [1, 0, 0]
    box, _ = smtp_server(port=port)
    up = deliver(jobs, mail, UTC_NOW + dt.timedelta(hours=1))
    assert up.sent == 3
    assert sorted(r.rcpt_tos[0] for r in box.received) == [
        "ana@example.com",
        "ben@example.com",
        "cy@example.com",
    ]


def test_two_senders_racing_deliver_each_message_once(
    jobs: Jobs, tenant: Tenant, mail: Settings, smtp_server: StartServer
) -> None:
    box, port = smtp_server(Mailbox(delay=0.02))
    configure(jobs, mail, port)
    recipients = [f"r{i}@example.com" for i in range(10)]
    make_window(jobs, tenant, recipients)
    barrier = threading.Barrier(2)
    results: list[DeliveryStats] = []

    def run() -> None:
        barrier.wait(10)
        results.append(deliver(jobs, mail))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(r.rcpt_tos[0] for r in box.received) == sorted(recipients)
    assert len({r.message_id for r in box.received}) == 10
    assert sum(r.sent for r in results) == 10


def test_a_wrong_secret_key_stops_sending_with_a_clear_message(
    jobs: Jobs,
    tenant: Tenant,
    mail: Settings,
    smtp_server: StartServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    box, port = smtp_server(authenticator=authenticator, auth_require_tls=False)
    configure(jobs, mail, port, user=USER, password=PASSWORD)
    window = make_window(jobs, tenant, ["ana@example.com"])
    other = mail.with_changes(secret_key=Fernet.generate_key().decode())
    with caplog.at_level(logging.ERROR, logger="mail.delivery"):
        stats = deliver(jobs, other)
    assert stats.error == KEY_MISMATCH and stats.claimed == 0
    assert str(stats) == f"sending stopped: {KEY_MISMATCH}"
    assert [r.getMessage() for r in caplog.records] == [f"email sending stopped: {KEY_MISMATCH}"]
    assert box.received == []
    with jobs.session() as s:
        (row,) = messages(s, window.window_id)
        assert (row.status, row.attempts) == ("pending", 0)
        with pytest.raises(SecretKeyError, match="set TALLYBOARD_SECRET_KEY to the original key"):
            load_smtp(s, other)
    assert (
        send_test(jobs.engine, other, "ana@example.com", operator(), installation_default=True).text
        == KEY_MISMATCH
    )
    assert deliver(jobs, mail).sent == 1  # the right key: sending resumes
    assert box.received[0].login == USER


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        ("host", "smtp.example.com\r\nRCPT TO:<x@y.org>"),
        ("host", "smtp example com"),
        ("from_address", "reports@example.com\r\nBcc: evil@example.com"),
        ("from_address", "Reports <reports@example.com>"),
        ("from_name", "Reports\nBcc: evil@example.com"),
        ("reply_to", "help@example.com\rBcc: evil@example.com"),
        ("username", "mailer\r\nAUTH"),
        ("security", "tls"),
        ("port", 0),
        ("port", 70000),
    ],
)
def test_smtp_settings_refuse_header_injection_and_nonsense(
    jobs: Jobs, mail: Settings, field_name: str, value: Any
) -> None:
    fields: dict[str, Any] = {
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "username": "",
        "from_address": "reports@example.com",
        "from_name": "Reports",
        "reply_to": "",
    }
    fields[field_name] = value
    with jobs.session() as s, pytest.raises(SmtpConfigError):
        save_smtp(
            s,
            mail,
            operator(),
            installation_default=True,
            password="x" if fields["username"] else None,
            **fields,
        )
    with jobs.session() as s:
        assert delivery_status(s, mail).startswith("SMTP is not set up: emails are written as .eml files")


def test_send_test_shows_the_servers_exact_answer(
    jobs: Jobs, mail: Settings, smtp_server: StartServer
) -> None:
    box, port = smtp_server()
    configure(jobs, mail, port)
    result = send_test(jobs.engine, mail, "ana@example.com", operator(), installation_default=True)
    assert result.ok and result.text == "250 2.0.0 Message accepted for delivery"
    assert box.received[0].message_id == result.message_id
    with jobs.session() as s:
        assert delivery_status(s, mail) == (
            f"Emails are sent through 127.0.0.1:{port} (no encryption) from {FROM}."
        )
    _refused, port2 = smtp_server(Mailbox(data_script=["554 5.7.1 Spam message rejected"]))
    configure(jobs, mail, port2)
    result = send_test(jobs.engine, mail, "ana@example.com", operator(), installation_default=True)
    assert (result.ok, result.text) == (False, "554 5.7.1 Spam message rejected")


def test_the_smtp_cli_sets_and_tests_the_server(
    jobs: Jobs,
    mail: Settings,
    smtp_server: StartServer,
    cli_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    box, port = smtp_server(authenticator=authenticator, auth_require_tls=False)
    monkeypatch.setenv("TALLYBOARD_SECRET_KEY", mail.secret_key)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    status = manage.main(
        [
            "smtp", "set", "--host", "127.0.0.1", "--port", str(port), "--security", "none",
            "--user", USER, "--password-stdin", "--from", FROM, "--from-name", "Reports",
        ]
    )  # fmt: skip
    out = capsys.readouterr()
    assert status == 0, out.err
    assert f"SMTP set: 127.0.0.1:{port} (no encryption) as {USER}, from Reports <{FROM}>." in out.out
    with jobs.session() as s:
        loaded = load_smtp(s, mail)
    assert loaded is not None and loaded[1] == PASSWORD and loaded[0].password_encrypted != PASSWORD
    assert manage.main(["smtp", "test", "--to", "ana@example.com"]) == 0
    assert capsys.readouterr().out == "Server answered: 250 2.0.0 Message accepted for delivery\n"
    assert box.received[0].login == USER
    bad = manage.main(
        [
            "smtp",
            "set",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--security",
            "none",
            "--from",
            "x@y\r\nz",
        ]
    )
    assert bad == 1 and "line break" in capsys.readouterr().err
