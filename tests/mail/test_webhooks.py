"""Webhook and Slack deliveries and alerts, end to end: a real tick, the real outbox and a local HTTP server.

The receiver is an http.server on 127.0.0.1 in this process, so TALLYBOARD_WEBHOOK_ALLOW_PRIVATE=1
is set for every test except the ones that check private addresses are refused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
from sqlalchemy import select, update

import mail.delivery as delivery
from core.models import AuditEvent, OutboxMessage, Schedule, ScheduleRun, User
from core.settings import Settings
from mail.delivery import deliver_due
from mail.webhooks import (
    ALLOW_PRIVATE_ENV,
    SIGNATURE_HEADER,
    WebhookError,
    _kpi_line,
    check_url,
    parse_condition,
    retry_after_seconds,
    sign,
    slack_body,
    verify,
)
from scheduling.schedules import ScheduleError, ScheduleSpec, create_schedule, list_schedules
from scheduling.tick import Outbox, process_due
from tests.mail.mail_fixtures import quiet_outbox
from tests.tenants import Jobs, Tenant, park_leftover_work

DUE = dt.datetime(2025, 2, 10, 8, 0)  # "last month" is January 2025 in the tiny example
OWNER_EMAIL = "owner@example.com"


# --- a local receiver -----------------------------------------------------------------------------


@dataclass
class Receiver:
    """Records every POST; answers from `script` ((status, headers) per request, then 200)."""

    url: str
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts(self, path: str | None = None) -> list[tuple[str, dict[str, str], bytes]]:
        with self.lock:
            return [r for r in self.requests if path is None or r[0] == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.requests.append((self.path, {k: v for k, v in self.headers.items()}, body))
                status, headers = state.script.pop(0) if state.script else (200, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def clean(jobs: Jobs, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    park_leftover_work(jobs)
    quiet_outbox(jobs.engine)  # no SMTP settings: nothing here encrypted with another test's key
    yield
    # Other tests use their own secret key: leave no webhook secret made with this one behind.
    with jobs.session() as s:
        s.execute(update(Schedule).values(webhook_secret_encrypted="", webhook_key_fingerprint=""))
        s.commit()
    park_leftover_work(jobs)


@pytest.fixture
def mail(jobs: Jobs, tmp_path: Any) -> Settings:
    return jobs.settings.with_changes(
        mail_jitter=0.0, outbox_dir=tmp_path / "outbox", public_url="https://reports.example.com/"
    )


@pytest.fixture
def owned(jobs: Jobs, tenant: Tenant) -> Tenant:
    with jobs.session() as s:
        s.execute(update(User).where(User.id == tenant.user_id("manager")).values(email=OWNER_EMAIL))
        s.commit()
    return tenant


def make(jobs: Jobs, tenant: Tenant, mail: Settings, **changes: Any) -> tuple[int, str]:
    """A daily schedule due at DUE; returns its id and its webhook secret (shown once)."""
    fields: dict[str, Any] = {
        "report_slug": "sales_summary",
        "rule_kind": "daily",
        "rule": {"time": DUE.strftime("%H:%M")},
        "recipients": (),
        "formats": ("json",),
        "timezone": "UTC",
        "period": "last_month",
    }
    fields.update(changes)
    with jobs.session() as s:
        info = create_schedule(
            s,
            tenant.scope("manager"),
            ScheduleSpec(**fields),
            now=DUE - dt.timedelta(minutes=1),
            settings=mail,
        )
    if info.next_due_at != DUE:
        with jobs.session() as s:
            s.execute(update(Schedule).where(Schedule.id == info.id).values(next_due_at=DUE))
            s.commit()
    return info.id, info.webhook_secret


def tick(jobs: Jobs, mail: Settings, now: dt.datetime, daemon: str = "d1") -> Any:
    return process_due(
        jobs.engine, mail, jobs.store, jobs.files, now=now, daemon_id=daemon, outbox=cast(Outbox, delivery)
    )


def rows(jobs: Jobs, sid: int, kind: str | None = None) -> list[OutboxMessage]:
    with jobs.session() as s:
        query = (
            select(OutboxMessage)
            .join(ScheduleRun, ScheduleRun.id == OutboxMessage.schedule_run_id)
            .where(ScheduleRun.schedule_id == sid)
            .order_by(OutboxMessage.id)
        )
        if kind:
            query = query.where(OutboxMessage.kind == kind)
        out = list(s.scalars(query))
        s.expunge_all()
        return out


def windows(jobs: Jobs, sid: int) -> list[ScheduleRun]:
    with jobs.session() as s:
        out = list(
            s.scalars(select(ScheduleRun).where(ScheduleRun.schedule_id == sid).order_by(ScheduleRun.due_at))
        )
        s.expunge_all()
        return out


AFTER = DUE + dt.timedelta(seconds=20)


# --- webhooks -------------------------------------------------------------------------------------


def test_a_webhook_gets_the_signed_json_document_once(
    jobs: Jobs, owned: Tenant, mail: Settings, receiver: Receiver
) -> None:
    sid, secret = make(jobs, owned, mail, webhooks=(f"{receiver.url}/hook",))
    assert secret.startswith("whsec_")
    with jobs.session() as s:
        row = s.get(Schedule, sid)
        assert row is not None and row.webhook_secret_encrypted and secret not in row.webhook_secret_encrypted

    assert tick(jobs, mail, AFTER).queued == 1
    stats = deliver_due(jobs.engine, mail, now=AFTER)
    assert stats.sent == 1

    [(path, headers, body)] = receiver.posts()
    [row_] = rows(jobs, sid, "webhook")
    assert path == "/hook" and row_.status == "sent"
    assert verify(secret, body, headers[SIGNATURE_HEADER])
    assert headers[SIGNATURE_HEADER] == sign(secret, body)
    assert not verify("whsec_wrong", body, headers[SIGNATURE_HEADER])
    assert headers["Idempotency-Key"] == str(row_.id)
    document = json.loads(body)
    [window] = windows(jobs, sid)
    assert document["report"] == "sales_summary" and "revenue" in document["kpis"] and document["tables"]
    assert document["schedule"]["id"] == sid
    assert document["run"]["id"] == window.run_id and document["run"]["window"] == window.id
    assert document["links"]["history"] == f"https://reports.example.com/history?run={window.run_id}"

    # Delivered: another pass and a second daemon post nothing more.
    assert deliver_due(jobs.engine, mail, now=AFTER + dt.timedelta(hours=1)).sent == 0
    assert len(receiver.posts()) == 1


def test_slack_gets_a_block_kit_message_with_kpis_comparisons_and_the_history_link(
    jobs: Jobs, owned: Tenant, mail: Settings, receiver: Receiver
) -> None:
    sid, secret = make(
        jobs, owned, mail, slack=(f"{receiver.url}/services/T0/B0/xyz",), recipients=("a@example.com",)
    )
    assert secret == ""  # Slack posts are not signed
    tick(jobs, mail, AFTER)
    deliver_due(jobs.engine, mail, now=AFTER)
    [(_path, headers, body)] = receiver.posts()
    assert SIGNATURE_HEADER not in headers
    message = json.loads(body)
    assert message["blocks"][0]["type"] == "header"
    fields = [f["text"] for b in message["blocks"] if b["type"] == "section" for f in b.get("fields", [])]
    [email] = rows(jobs, sid, "report")
    kpis = email.payload["summary"]["kpis"]  # the email's KPIs, with their comparisons
    assert fields == [_kpi_line(k) for k in kpis]
    revenue = next(f for f in fields if f.startswith("*Revenue*"))
    assert revenue.split("\n")[1] == next(k[1] for k in kpis if k[0] == "Revenue")
    assert any(
        "1–31 Jan 2025 (last month)" in e["text"]
        for b in message["blocks"]
        if b["type"] == "context"
        for e in b["elements"]
    )
    [window] = windows(jobs, sid)
    assert f"history?run={window.run_id}|" in body.decode()
    [slack] = rows(jobs, sid, "slack")
    assert slack.recipient.startswith("Slack 127.0.0.1") and "xyz" not in slack.recipient
    assert len(rows(jobs, sid, "report")) == 1  # and the email besides


def test_slack_kpi_lines_carry_both_comparisons_with_arrows_and_dates() -> None:
    summary = {
        "title": "Sales summary",
        "business": "Alpha",
        "period": "November 2026",
        "period_dates": "1 – 30 Nov 2026",
        "kpis": [
            [
                "Revenue",
                "€12,000.00",
                [
                    {
                        "text": "+10.9 %",
                        "direction": "up",
                        "against": "vs previous period",
                        "dates": "October 2026",
                    },
                    {
                        "text": "-2.0 %",
                        "direction": "down",
                        "against": "vs a year before",
                        "dates": "November 2025",
                    },
                ],
            ]
        ],
    }
    message = slack_body(summary, schedule_name="Weekly", history="https://x.example/history?run=7")
    [field] = [f["text"] for b in message["blocks"] for f in b.get("fields", [])]
    assert field == (
        "*Revenue*\n€12,000.00\n▲ +10.9 % vs previous period (October 2026)\n"
        "▼ -2.0 % vs a year before (November 2025)"
    )
    assert "November 2026 (1 – 30 Nov 2026)" in json.dumps(message, ensure_ascii=False)
    assert "<https://x.example/history?run=7|" in json.dumps(message)


def test_429_waits_for_retry_after_then_sends(
    jobs: Jobs, owned: Tenant, mail: Settings, receiver: Receiver
) -> None:
    sid, _ = make(jobs, owned, mail, webhooks=(f"{receiver.url}/hook",))
    receiver.script = [(429, {"Retry-After": "300"})]
    tick(jobs, mail, AFTER)

    assert deliver_due(jobs.engine, mail, now=AFTER).retried == 1
    [row] = rows(jobs, sid, "webhook")
    assert row.status == "pending" and "429" in row.last_error and "Retry-After 300" in row.last_error
    assert row.next_attempt_at is not None
    assert dt.timedelta(seconds=299) <= row.next_attempt_at - AFTER <= dt.timedelta(seconds=330)

    assert deliver_due(jobs.engine, mail, now=AFTER + dt.timedelta(seconds=200)).claimed == 0  # not yet
    assert deliver_due(jobs.engine, mail, now=AFTER + dt.timedelta(seconds=400)).sent == 1
    first, second = receiver.posts()
    assert first[2] == second[2] and first[1][SIGNATURE_HEADER] == second[1][SIGNATURE_HEADER]
    assert first[1]["Idempotency-Key"] == second[1]["Idempotency-Key"]


def test_500_then_200_is_retried_with_backoff_and_sent_once(
    jobs: Jobs, owned: Tenant, mail: Settings, receiver: Receiver
) -> None:
    sid, _ = make(jobs, owned, mail, webhooks=(f"{receiver.url}/hook",))
    receiver.script = [(500, {})]
    tick(jobs, mail, AFTER)
    assert deliver_due(jobs.engine, mail, now=AFTER).retried == 1
    [row] = rows(jobs, sid, "webhook")
    assert row.next_attempt_at is not None
    wait = (row.next_attempt_at - AFTER).total_seconds()
    assert mail.mail_backoff_base_s <= wait <= mail.mail_backoff_base_s * 2 + 30  # base * 2^1, no jitter
    assert deliver_due(jobs.engine, mail, now=row.next_attempt_at + dt.timedelta(seconds=31)).sent == 1
    [row] = rows(jobs, sid, "webhook")
    assert (row.status, row.attempts) == ("sent", 2)
    assert len(receiver.posts()) == 2


def test_a_404_is_final_and_the_owner_is_told_once(
    jobs: Jobs, owned: Tenant, mail: Settings, receiver: Receiver
) -> None:
    sid, _ = make(jobs, owned, mail, webhooks=(f"{receiver.url}/gone",))
    receiver.script = [(404, {})]
    tick(jobs, mail, AFTER)
    stats = deliver_due(jobs.engine, mail, now=AFTER)
    assert (stats.failed, stats.retried, stats.notices) == (1, 0, 1)
    [row] = rows(jobs, sid, "webhook")
    assert row.status == "failed" and "HTTP 404" in row.last_error and "Not retried" in row.last_error
    [notice] = rows(jobs, sid, "failure_notice")
    assert notice.recipient == OWNER_EMAIL
    deliver_due(jobs.engine, mail, now=AFTER + dt.timedelta(hours=3))
    assert len(receiver.posts()) == 1
    assert len(rows(jobs, sid, "failure_notice")) == 1


def test_two_daemons_post_once_per_window(
    jobs: Jobs, owned: Tenant, mail: Settings, receiver: Receiver
) -> None:
    sid, _ = make(jobs, owned, mail, webhooks=(f"{receiver.url}/hook",))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def daemon(name: str, now: dt.datetime) -> None:
        try:
            barrier.wait()
            tick(jobs, mail, now, daemon=name)
            deliver_due(jobs.engine, mail, now=now)
        except BaseException as exc:  # pragma: no cover - shown by the assert below
            errors.append(exc)

    for day in range(2):  # two windows: 10 and 11 February
        now = AFTER + dt.timedelta(days=day)
        threads = [threading.Thread(target=daemon, args=(f"d{i}", now)) for i in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert errors == []
    assert [w.status for w in windows(jobs, sid)] == ["queued", "queued"]
    posts = receiver.posts()
    keys = [h["Idempotency-Key"] for _p, h, _b in posts]
    assert len(posts) == 2 and len(set(keys)) == 2
    assert sorted(json.loads(b)["run"]["window"] for _p, _h, b in posts) == [w.id for w in windows(jobs, sid)]


# --- private addresses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
    ],
)
def test_private_addresses_are_refused_without_the_setting(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV)
    with pytest.raises(WebhookError, match=ALLOW_PRIVATE_ENV):
        check_url(url)
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    assert check_url(url) == url


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "https://", "https://a b.com/"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(WebhookError):
        check_url(url)


def test_a_private_url_is_refused_when_saved_and_when_sent(
    jobs: Jobs, owned: Tenant, mail: Settings, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV)
    with pytest.raises(ScheduleError, match="loopback"):
        make(jobs, owned, mail, webhooks=(f"{receiver.url}/hook",))
    # Saved while allowed, sent after it no longer is: a name resolving to a loopback address.
    monkeypatch.setenv(ALLOW_PRIVATE_ENV, "1")
    port = receiver.url.rsplit(":", 1)[1]
    sid, _ = make(jobs, owned, mail, webhooks=(f"http://localhost:{port}/hook",))
    tick(jobs, mail, AFTER)
    monkeypatch.delenv(ALLOW_PRIVATE_ENV)
    stats = deliver_due(jobs.engine, mail, now=AFTER)
    assert stats.failed == 1
    [row] = rows(jobs, sid, "webhook")
    assert row.status == "failed" and "loopback" in row.last_error
    assert receiver.posts() == []


# --- alerts ---------------------------------------------------------------------------------------


def test_an_alert_that_holds_sends_and_records_the_value(
    jobs: Jobs, owned: Tenant, mail: Settings, receiver: Receiver
) -> None:
    sid, _ = make(jobs, owned, mail, webhooks=(f"{receiver.url}/hook",), condition="revenue > 100")
    tick(jobs, mail, AFTER)
    [window] = windows(jobs, sid)
    assert window.status == "queued" and window.alert_held is True
    assert window.alert_seen is not None and Decimal(window.alert_seen) > 100
    deliver_due(jobs.engine, mail, now=AFTER)
    [(_p, _h, body)] = receiver.posts()
    assert Decimal(json.loads(body)["run"]["alert_seen"]) == Decimal(window.alert_seen)
    with jobs.session() as s:
        event = s.scalars(
            select(AuditEvent).where(
                AuditEvent.business_id == owned.business_id,
                AuditEvent.entity_id == str(sid),
                AuditEvent.event_type == "schedule_run_queued",
            )
        ).one()
        assert event.detail["alert_seen"] == window.alert_seen


def test_an_alert_that_does_not_hold_sends_nothing_and_says_why(
    jobs: Jobs, owned: Tenant, mail: Settings, receiver: Receiver
) -> None:
    sid, _ = make(
        jobs,
        owned,
        mail,
        recipients=("a@example.com",),
        webhooks=(f"{receiver.url}/hook",),
        condition="margin_pct < 0.01",
    )
    stats = tick(jobs, mail, AFTER)
    assert (stats.queued, stats.skipped) == (0, 1)
    [window] = windows(jobs, sid)
    assert window.status == "skipped" and window.alert_held is False and window.alert_seen
    assert f"margin_pct was {window.alert_seen}" in window.error and "did not hold" in window.error
    assert rows(jobs, sid) == []
    deliver_due(jobs.engine, mail, now=AFTER)
    assert receiver.posts() == []


def test_an_alert_on_change_sends_only_when_it_flips_to_true(
    jobs: Jobs, owned: Tenant, mail: Settings, receiver: Receiver
) -> None:
    sid, _ = make(
        jobs, owned, mail, webhooks=(f"{receiver.url}/hook",), condition="revenue > 100", when_changes=True
    )
    day = dt.timedelta(days=1)
    tick(jobs, mail, AFTER)  # holds (nothing before): sent
    tick(jobs, mail, AFTER + day)  # still holds: not sent again
    with jobs.session() as s:  # the threshold moves: false on the third day
        s.execute(update(Schedule).where(Schedule.id == sid).values(alert_value="1000000000"))
        s.commit()
    tick(jobs, mail, AFTER + 2 * day)
    with jobs.session() as s:  # and true again on the fourth: it flipped, so it is sent
        s.execute(update(Schedule).where(Schedule.id == sid).values(alert_value="100"))
        s.commit()
    tick(jobs, mail, AFTER + 3 * day)
    got = [(w.status, w.alert_held) for w in windows(jobs, sid)]
    assert got == [("queued", True), ("skipped", True), ("skipped", False), ("queued", True)]
    assert "still holds" in windows(jobs, sid)[1].error
    deliver_due(jobs.engine, mail, now=AFTER + 3 * day)
    assert len(receiver.posts()) == 2


def test_an_alert_on_a_kpi_the_report_lacks_fails_and_says_which_it_has(
    jobs: Jobs, owned: Tenant, mail: Settings
) -> None:
    sid, _ = make(jobs, owned, mail, recipients=("a@example.com",), condition="outstanding > 5")
    tick(jobs, mail, AFTER)
    [window] = windows(jobs, sid)
    assert window.status == "failed" and "'outstanding' is not one of this report's KPIs" in window.error
    assert "revenue" in window.error


# --- parsing and the schedule ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kpi", "op", "value"),
    [
        ("revenue < 10000", "revenue", "<", "10000"),
        ("margin_pct<0.2", "margin_pct", "<", "0.2"),
        ("outstanding > 50000", "outstanding", ">", "50000"),
        ("exceptions > 0", "exceptions", ">", "0"),
        ("orders >= 3", "orders", ">=", "3"),
        ("orders <= 3", "orders", "<=", "3"),
        ("orders == 3", "orders", "==", "3"),
        ("orders != 3", "orders", "!=", "3"),
    ],
)
def test_conditions_parse(text: str, kpi: str, op: str, value: str) -> None:
    condition = parse_condition(text)
    assert (condition.kpi, condition.op, condition.value) == (kpi, op, Decimal(value))


@pytest.mark.parametrize(
    "text", ["revenue", "revenue < ten", "revenue = 5", "< 5", "revenue < 5 6", "revenue < nan"]
)
def test_bad_conditions_say_how_to_write_one(text: str) -> None:
    with pytest.raises(WebhookError):
        parse_condition(text)


def test_retry_after_as_seconds_or_a_date() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Thu, 01 Jan 2026 12:02:00 GMT", now) == 120
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds("9999999", now) == 24 * 3600


def test_the_schedule_list_shows_targets_and_condition(jobs: Jobs, owned: Tenant, mail: Settings) -> None:
    make(
        jobs,
        owned,
        mail,
        recipients=("a@example.com",),
        webhooks=("https://hooks.example.com/tallyboard",),
        slack=("https://hooks.slack.com/services/T0/B0/secret",),
        condition="margin_pct < 0.25",
        when_changes=True,
    )
    with jobs.session() as s:
        [info] = [i for i in list_schedules(s, owned.scope("manager")) if i.webhooks]
    assert info.targets_text == "1 e-mail recipient, 1 webhook, Slack"
    assert info.condition_text == "Only when margin_pct < 0.25 (when it changes to true)"
    assert info.webhook_secret == ""  # shown once, when made


def test_a_schedule_needs_somewhere_to_deliver(jobs: Jobs, owned: Tenant, mail: Settings) -> None:
    with pytest.raises(ScheduleError, match="recipient"):
        make(jobs, owned, mail)
    with pytest.raises(ScheduleError, match="changes"):
        make(jobs, owned, mail, recipients=("a@example.com",), when_changes=True)


def test_cli_schedules_add_with_webhook_slack_and_alert(
    jobs: Jobs, owned: Tenant, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.models import Business
    from mail.webhooks import open_secret
    from manage import main

    with jobs.session() as s:
        business = s.get(Business, owned.business_id)
        assert business is not None
        code = business.code
    status = main(
        [
            "schedules", "add", "--report", "sales_summary", "--business", code, "--weekly", "MON@08:00",
            "--webhook", "https://hooks.example.com/tallyboard", "--webhook", "https://other.example.com/in",
            "--slack", "https://hooks.slack.com/services/T0/B0/secret",
            "--when", "margin_pct < 0.25", "--when-changes",
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert status == 0, out
    secret = re.search(r"secret \(shown only now; keep it with the receiver\): (whsec_\S+)", out)
    assert secret is not None
    assert (
        "-> webhook https://hooks.example.com/tallyboard, webhook https://other.example.com/in, Slack" in out
    )
    assert "secret" not in out.split("Slack", 1)[1].split("\n")[0]  # the Slack URL's secret path is not shown
    assert "Only when margin_pct < 0.25 (when it changes to true)" in out
    with jobs.session() as s:
        row = s.scalars(select(Schedule).where(Schedule.business_id == owned.business_id)).one()
        assert row.webhooks == ["https://hooks.example.com/tallyboard", "https://other.example.com/in"]
        assert row.slack_webhooks == ["https://hooks.slack.com/services/T0/B0/secret"]
        assert (row.alert_kpi, row.alert_op, row.alert_value, row.alert_on_change) == (
            "margin_pct",
            "<",
            "0.25",
            True,
        )
        assert open_secret(s, Settings.from_env(), row) == secret.group(1)

    assert (
        main(["schedules", "add", "--report", "sales_summary", "--business", code, "--daily", "08:00"]) == 2
    )
    assert "--webhook URL" in capsys.readouterr().err
    bad = ["schedules", "add", "--report", "sales_summary", "--business", code, "--daily", "08:00"]
    assert main([*bad, "--webhook", "ftp://x.example.com/"]) == 1
    assert main([*bad, "--to", "a@example.com", "--when", "margin below 5"]) == 1
    err = capsys.readouterr().err
    assert "https://" in err and "KPI OPERATOR VALUE" in err


def test_a_webhook_only_window_reads_sent_once_posted(
    jobs: Jobs, owned: Tenant, mail: Settings, receiver: Receiver
) -> None:
    from scheduling.schedules import schedule_runs

    sid, _ = make(jobs, owned, mail, webhooks=(f"{receiver.url}/hook",))
    tick(jobs, mail, AFTER)
    with jobs.session() as s:
        [run] = schedule_runs(s, owned.scope("manager"), sid)
    assert run.text == "queued"
    deliver_due(jobs.engine, mail, now=AFTER)
    with jobs.session() as s:
        [run] = schedule_runs(s, owned.scope("manager"), sid)
    assert run.text == "sent" and [d.kind for d in run.deliveries] == ["webhook"]


def test_the_secret_key_check_and_rotation_cover_webhook_secrets(
    jobs: Jobs, owned: Tenant, mail: Settings, tmp_path: Any
) -> None:
    from cryptography.fernet import Fernet

    from core import secret_key
    from mail.webhooks import open_secret

    sid, secret = make(jobs, owned, mail, webhooks=("https://hooks.example.com/x",))
    other = mail.with_changes(secret_key_file=tmp_path / "other.key")
    other.secret_key_file.write_text(Fernet.generate_key().decode())
    with jobs.session() as s:
        with pytest.raises(secret_key.SecretKeyError):
            secret_key.check(s, other)  # the daemon and the app refuse to start with a wrong key
        old = mail.secret_key_file.read_text().strip()
        rotated = mail.with_changes(secret_key=f"{Fernet.generate_key().decode()},{old}")
        assert secret_key.rotate(s, rotated) >= 1
        s.commit()
        row = s.get(Schedule, sid)
        assert row is not None and open_secret(s, rotated, row) == secret
        assert row.webhook_key_fingerprint == secret_key.keyring(rotated).primary_fingerprint
