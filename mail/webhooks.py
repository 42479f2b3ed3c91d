"""Webhook and Slack deliveries, and alert conditions: a schedule's report sent as an HTTP POST.

- Targets: a schedule's `webhooks` (POST of the report's JSON document plus {"schedule", "run",
  "links"}, signed `Tallyboard-Signature: sha256=<hex HMAC-SHA256 of the body>` with the schedule's
  secret, `Idempotency-Key: <delivery id>`) and `slack_webhooks` (a Slack incoming webhook: a Block
  Kit message with the KPIs, their comparisons and the History link).
- The ledger is the email outbox (mail.delivery): one outbox row per target (kind 'webhook' or
  'slack'), queued with the window's emails, claimed with a lease, retried with backoff and jitter
  on network errors, 408, 429 (after its Retry-After) and 5xx; any other 4xx is final and the
  owner gets the window's failure notice. The body is fixed when queued, so a retry sends the same
  bytes (and the same signature).
- Only http(s) URLs; loopback, link-local, private and other non-public addresses are refused (the
  host is resolved, and the connection goes to the address that was checked) unless
  TALLYBOARD_WEBHOOK_ALLOW_PRIVATE=1. 10 s timeout; redirects are not followed (a 3xx is final).
- Alerts: `parse_condition("margin_pct < 0.2")` and `evaluate`: exact decimal comparison of one KPI.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hashlib
import hmac
import http.client
import ipaddress
import json
import os
import re
import secrets
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.clock import aware, utc_naive
from core.models import OutboxMessage, Schedule
from core.secret_key import keyring
from core.settings import Settings

if TYPE_CHECKING:
    from mail.delivery import _Claim, _Pass

HOOK_KINDS = ("webhook", "slack")
ALLOW_PRIVATE_ENV = "TALLYBOARD_WEBHOOK_ALLOW_PRIVATE"
TIMEOUT_S = 10.0
MAX_URL = 2000
MAX_TARGETS = 10
MAX_RETRY_AFTER_S = 24 * 3600
SIGNATURE_HEADER = "Tallyboard-Signature"
OPERATORS = ("<=", ">=", "==", "!=", "<", ">")
_CONDITION = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")
_ARROWS = {"up": "▲", "down": "▼", "flat": "▶"}


class WebhookError(ValueError):
    """A URL or condition that cannot be used; the message says why."""


# --- URLs ---------------------------------------------------------------------------------------


def allow_private() -> bool:
    return os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """Why an address may not be posted to ('' when it may)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _refused(ip.ipv4_mapped)
    for test, words in (
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_private, "a private address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_reserved, "a reserved address"),
    ):
        if test:
            return words
    return ""


def check_url(raw: str, what: str = "webhook URL") -> str:
    """The URL trimmed, or WebhookError: http(s) with a host, no spaces or control characters, and
    (unless TALLYBOARD_WEBHOOK_ALLOW_PRIVATE=1) no literal loopback, link-local or private address."""
    url = raw.strip()
    if not url:
        raise WebhookError(f"The {what} is empty.")
    if len(url) > MAX_URL:
        raise WebhookError(f"The {what} is too long ({len(url)} characters; at most {MAX_URL}).")
    if re.search(r"[\s\x00-\x1f\x7f]", url):
        raise WebhookError(f"The {what} {url[:80]!r} holds a space or a control character.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise WebhookError(f"The {what} {url[:80]!r} is not a valid URL: {exc}.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise WebhookError(f"The {what} must start with https:// or http://, not {url[:80]!r}.")
    host = parts.hostname or ""
    if not host:
        raise WebhookError(f"The {what} {url[:80]!r} has no host.")
    if not allow_private():
        reason = ""
        if host.lower() == "localhost" or host.lower().endswith(".localhost"):
            reason = "a loopback address"
        else:
            with contextlib.suppress(ValueError):  # a name, not an address: resolved when sending
                reason = _refused(ipaddress.ip_address(host))
        if reason:
            raise WebhookError(
                f"The {what} {url[:80]!r} points to {reason}; only public addresses are allowed "
                f"(set {ALLOW_PRIVATE_ENV}=1 to allow them)."
            )
    return url


def check_urls(raw: Sequence[str], what: str) -> list[str]:
    """Valid URLs, once each, in the order given (commas or spaces also separate them)."""
    seen: dict[str, str] = {}
    for item in raw:
        for part in re.split(r"[\s,]+", item.strip()):
            if part:
                url = check_url(part, what)
                seen.setdefault(url, url)
    if len(seen) > MAX_TARGETS:
        raise WebhookError(f"A schedule may have at most {MAX_TARGETS} {what}s, not {len(seen)}.")
    return list(seen.values())


def shown_url(url: str, kind: str = "webhook") -> str:
    """A URL as lists and notices show it: scheme and host and path start; Slack's secret path and
    any query string left out."""
    parts = urlsplit(url)
    if kind == "slack":
        return f"Slack {parts.netloc}/…"
    path = parts.path if len(parts.path) <= 60 else parts.path[:59] + "…"
    return f"{parts.scheme}://{parts.netloc}{path}" + ("?…" if parts.query else "")


def resolve(url: str) -> tuple[str, int, str]:
    """(host, port, address to connect to): the host resolved and every address checked. OSError
    when it does not resolve; WebhookError when an address is not public (and not allowed)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise OSError(f"{host} has no address")
    if not allow_private():
        for address in addresses:
            reason = _refused(ipaddress.ip_address(address.split("%")[0]))
            if reason:
                raise WebhookError(
                    f"{host} resolves to {address}, {reason}; only public addresses are allowed "
                    f"(set {ALLOW_PRIVATE_ENV}=1 to allow them)."
                )
    return host, port, addresses[0]


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to the address that was checked (not a second DNS answer)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address
        self._ssl = ssl.create_default_context()

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ssl.wrap_socket(sock, server_hostname=self.host)


# --- secrets and signatures ---------------------------------------------------------------------


def new_secret() -> str:
    """A new signing secret (shown once, then stored encrypted)."""
    return "whsec_" + secrets.token_urlsafe(32)


def encrypt_secret(session: Session, settings: Settings, plain: str) -> tuple[str, str]:
    """(token, key fingerprint): the secret encrypted with the primary key, as the SMTP password is."""
    ring = keyring(settings, session=session)
    return ring.encrypt(plain), ring.primary_fingerprint


def open_secret(session: Session, settings: Settings, schedule: Schedule) -> str:
    """The schedule's signing secret in plain text ('' when it has none); SecretKeyError on a wrong key."""
    if not schedule.webhook_secret_encrypted:
        return ""
    ring = keyring(settings, session=session)
    ring.check(schedule.webhook_key_fingerprint)
    return ring.decrypt(schedule.webhook_secret_encrypted)


def sign(secret: str, body: bytes) -> str:
    """The Tallyboard-Signature header value: 'sha256=' + hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header.strip())


# --- alert conditions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    kpi: str
    op: str
    value: Decimal
    on_change: bool = False

    @property
    def text(self) -> str:
        return f"{self.kpi} {self.op} {self.value}"

    def __str__(self) -> str:
        return self.text + (" (only when it changes to true)" if self.on_change else "")


def parse_condition(text: str, *, on_change: bool = False) -> Condition:
    """'KPI OP VALUE' (operators < <= > >= == !=; the value a plain number), or WebhookError."""
    match = _CONDITION.match(text or "")
    if match is None:
        raise WebhookError(
            f"Write the condition as 'KPI OPERATOR VALUE', e.g. 'revenue < 10000' or 'margin_pct < 0.2' "
            f"(operators: {' '.join(OPERATORS)}), not {text!r}."
        )
    kpi, op, raw = match.groups()
    try:
        value = Decimal(raw.replace("_", ""))
    except InvalidOperation:
        raise WebhookError(f"The condition's value must be a number, not {raw!r}.") from None
    if not value.is_finite():
        raise WebhookError(f"The condition's value must be a number, not {raw!r}.")
    return Condition(kpi, op, value, on_change)


def schedule_condition(schedule: Schedule) -> Condition | None:
    if not schedule.alert_kpi:
        return None
    return Condition(
        schedule.alert_kpi, schedule.alert_op, Decimal(schedule.alert_value), bool(schedule.alert_on_change)
    )


def exact(value: Any) -> Decimal | None:
    """A KPI value as an exact Decimal (a float by its shortest repr), None when it has none."""
    if value is None or isinstance(value, bool):
        return None
    if hasattr(value, "item"):
        value = value.item()
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def holds(condition: Condition, seen: Decimal) -> bool:
    a, b = seen, condition.value
    return {
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
        "==": a == b,
        "!=": a != b,
    }[condition.op]


def kpi_values(report: Any) -> dict[str, str | None]:
    """A report's KPIs as {key: exact decimal text or None}: what an alert compares."""
    out: dict[str, str | None] = {}
    for k in getattr(report, "kpis", ()):
        number = exact(k.value)
        out[str(k.key)] = None if number is None else str(number)
    return out


# --- queueing -----------------------------------------------------------------------------------


def _json_ready(value: Any) -> Any:
    """A document with Decimals, numpy numbers and dates made plain JSON (for the outbox payload)."""
    import orjson

    def default(obj: Any) -> Any:
        if isinstance(obj, Decimal):
            return float(obj) if obj.is_finite() else None
        if hasattr(obj, "isoformat"):
            return obj.isoformat()
        return str(obj)

    return orjson.loads(
        orjson.dumps(value, default=default, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    )


def report_document(report: Any) -> dict[str, Any]:
    """The report's JSON document (the same one the JSON export writes), as plain JSON values."""
    from exporters.json_export import report_document as document

    return dict(_json_ready(document(report)))


def body_bytes(body: Mapping[str, Any]) -> bytes:
    """The exact bytes posted (and signed): compact UTF-8 JSON, keys in the stored order."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def webhook_body(
    document: Mapping[str, Any],
    *,
    schedule: Mapping[str, Any],
    run: Mapping[str, Any],
    links: Mapping[str, Any],
) -> dict[str, Any]:
    return {**document, "schedule": dict(schedule), "run": dict(run), "links": dict(links)}


def _kpi_line(kpi: Sequence[Any]) -> str:
    label, value = str(kpi[0]), str(kpi[1])
    text = f"*{label}*\n{value}"
    changes = kpi[2] if len(kpi) > 2 and isinstance(kpi[2], list) else []
    for change in changes:
        if isinstance(change, Mapping):
            arrow = _ARROWS.get(str(change.get("direction")), "")
            dates = f" ({change['dates']})" if change.get("dates") else ""
            text += f"\n{arrow} {change.get('text', '')} {change.get('against', '')}{dates}".rstrip()
    return text[:1900]


def slack_body(
    summary: Mapping[str, Any], *, schedule_name: str, history: str, alert: str = ""
) -> dict[str, Any]:
    """A Slack Block Kit message: title, period, the KPIs with both comparisons, the History link."""
    title = str(summary.get("title") or schedule_name)
    period = str(summary.get("period") or "")
    dates = str(summary.get("period_dates") or "")
    if dates and dates != period:
        period = f"{period} ({dates})"
    business = str(summary.get("business") or "")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": " · ".join(p for p in (business, period, schedule_name) if p)[:2900],
                }
            ],
        },
    ]
    if alert:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f":rotating_light: {alert}"[:2900]}}
        )
    kpis = [k for k in summary.get("kpis") or [] if isinstance(k, list) and len(k) >= 2]
    for start in range(0, len(kpis), 10):  # a section holds at most 10 fields
        blocks.append(
            {
                "type": "section",
                "fields": [{"type": "mrkdwn", "text": _kpi_line(k)} for k in kpis[start : start + 10]],
            }
        )
    blocks.append(
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"<{history}|Open this run in Tallyboard History>"},
        }
    )
    fallback = f"{title}: {period}" + "".join(f"; {k[0]} {k[1]}" for k in kpis[:4])
    return {"text": fallback[:3000], "blocks": blocks}


def delivery_key(kind: str, url: str, schedule_run_id: int) -> str:
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    return f"<tb.{schedule_run_id}.{kind}.{digest}@hooks.tallyboard>"


def enqueue_hooks(
    session: Session,
    *,
    business_id: int,
    schedule_run_id: int,
    targets: Sequence[tuple[str, str, dict[str, Any]]],
    subject: str,
    now: dt.datetime,
) -> list[OutboxMessage]:
    """Queue one outbox row per (kind, url, body) target of a window, in the caller's transaction.
    Idempotent like email: the key is (window, kind, url), UNIQUE(message_id)."""
    stamp = utc_naive(aware(now))
    added: list[OutboxMessage] = []
    for kind, url, body in targets:
        if kind not in HOOK_KINDS:
            raise ValueError(f"Unknown delivery kind {kind!r}.")
        key = delivery_key(kind, url, schedule_run_id)
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.message_id == key)) is not None:
            continue
        row = OutboxMessage(
            business_id=business_id,
            schedule_run_id=schedule_run_id,
            kind=kind,
            recipient=shown_url(url, kind)[:254],
            message_id=key,
            subject=subject.strip()[:250],
            status="pending",
            attempts=0,
            next_attempt_at=stamp,
            payload={"url": url, "body": body},
            created_at=stamp,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue
        added.append(row)
    return added


# --- posting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    retry_after: float | None
    text: str


def retry_after_seconds(value: str | None, now: dt.datetime | None = None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now, capped at a day."""
    if not value:
        return None
    text = value.strip()
    seconds: float | None = None
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = (when - (now or dt.datetime.now(dt.UTC))).total_seconds()
    return float(min(max(seconds, 0.0), MAX_RETRY_AFTER_S))


def post(url: str, body: bytes, headers: Mapping[str, str], *, timeout: float = TIMEOUT_S) -> Reply:
    """POST `body` to `url` (the resolved, checked address; no redirects followed) and return the
    status. OSError / TimeoutError for network failures, WebhookError for a refused address."""
    host, port, address = resolve(url)
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme.lower() == "https":
        conn = _PinnedHTTPS(host, port, address, timeout)
    else:
        conn = _PinnedHTTP(host, port, address, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": "Tallyboard-Webhook/1",
                **headers,
            },
        )
        response = conn.getresponse()
        text = response.read(2000).decode("utf-8", "replace")
        return Reply(
            response.status,
            retry_after_seconds(response.getheader("Retry-After")),
            f"HTTP {response.status} {response.reason}".strip()
            + (f": {text.strip()[:300]}" if text.strip() else ""),
        )
    except http.client.HTTPException as exc:
        raise ConnectionError(f"bad HTTP reply: {type(exc).__name__} {exc}") from exc
    finally:
        conn.close()


def transient(status: int) -> bool:
    """Worth trying again: 408, 429 and 5xx."""
    return status in (408, 429) or status >= 500


# --- delivering (called by mail.delivery for kinds 'webhook' and 'slack') -----------------------


def deliver_hook(work: _Pass, claim: _Claim) -> bool:
    """Post one claimed webhook/Slack row and record the result; never stops the pass (False)."""
    from core.db import make_sessionmaker
    from core.models import ScheduleRun
    from core.secret_key import SecretKeyError

    with make_sessionmaker(work.engine)() as s:
        row = s.get(OutboxMessage, claim.id)
        if row is None:
            return False
        payload = row.payload if isinstance(row.payload, dict) else {}
        url = str(payload.get("url") or "")
        body = body_bytes(payload.get("body") or {})
        headers = {"Idempotency-Key": str(row.id)}
        if row.kind == "webhook":
            window = s.get(ScheduleRun, row.schedule_run_id) if row.schedule_run_id is not None else None
            schedule = s.get(Schedule, window.schedule_id) if window is not None else None
            try:
                secret = open_secret(s, work.settings, schedule) if schedule is not None else ""
            except SecretKeyError as exc:
                work._finish(claim, sent=False, error=f"Not sent: the webhook secret cannot be read: {exc}")
                return False
            if not secret:
                work._finish(
                    claim, sent=False, error="Not sent: the schedule has no webhook secret any more."
                )
                return False
            headers[SIGNATURE_HEADER] = sign(secret, body)
    try:
        reply = post(url, body, headers)
    except WebhookError as exc:
        work._finish(claim, sent=False, error=f"Attempt {claim.attempts}: not sent: {exc}")
        return False
    except (OSError, ConnectionError) as exc:
        note = f"Attempt {claim.attempts}: {type(exc).__name__}: {exc}"
        over = work._out_of_time(claim)
        if over:
            work._finish(claim, sent=False, error=f"{over} {note}")
        else:
            work._retry(claim, note)
        return False
    note = f"Attempt {claim.attempts}: {reply.text}"
    if 200 <= reply.status < 300:
        work._finish(claim, sent=True, error="" if claim.attempts == 1 else note)
    elif transient(reply.status):
        over = work._out_of_time(claim)
        if over:
            work._finish(claim, sent=False, error=f"{over} {note}")
        elif reply.retry_after is not None:
            work._retry(claim, note + f" (Retry-After {reply.retry_after:g} s)", delay=reply.retry_after)
        else:
            work._retry(claim, note)
    else:
        final = " (redirects are not followed)" if 300 <= reply.status < 400 else ""
        work._finish(claim, sent=False, error=f"{note}{final}. Not retried: the receiver refused it.")
    return False
