"""The outbox: emails queued with a Message-ID fixed before the first attempt, claimed with a lease, sent, retried or failed.

- `enqueue` adds one outbox row per recipient. The Message-ID is derived from (window or key,
  kind, recipient), and UNIQUE(message_id) makes queueing the same thing twice insert nothing.
- `deliver_due` claims due rows one at a time with a conditional UPDATE (pending and due, or
  'sending' with an expired lease: a sender that died), so two daemons never send the same row.
  Each claim raises `attempts`, which is also the fencing token when the result is recorded.
- 2xx: sent. 4xx replies, refused or dropped connections and timeouts: retried after
  min(base * 2^attempts, cap) * (1 + jitter) for settings.mail_retry_hours (2 days) after the
  message was queued (and at most settings.mail_max_attempts attempts when that is set), then
  failed. 5xx replies: failed at once.
- A login the server refuses (535, or STARTTLS / AUTH it does not offer) is a configuration error,
  not a passing one: the server's settings are recorded as refused (SmtpFailure, by fingerprint)
  and no message goes through them - nor is one charged an attempt - until the settings change;
  Admin and Schedules say so (`smtp_problem`).
- A timeout after the message text was sent (or a sender that died mid-send) may still have
  delivered it: it is retried once with the same Message-ID (receivers can drop the copy); a second
  such attempt ends as 'unknown' ("may have been delivered") with one notice, never more copies.
- A report email that finally fails queues one failure notice per window to the schedule's owner
  (or the business's admins); a window whose emails all went out queues a success notice when
  the schedule asks for one. `weekly_summary` queues each business's weekly summary to its admins.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import io
import itertools
import logging
import random
import re
import smtplib
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from analytics.formatting import format_cell
from analytics.kpis import Comparison, comparisons, headline_kpis
from analytics.labels import column_formatter
from analytics.periods import Period
from analytics.report import Column, Report, Table
from core.clock import aware, named_time, utc_naive
from core.db import make_sessionmaker, session_scope
from core.models import (
    AppSetting,
    Business,
    OutboxMessage,
    Run,
    RunFile,
    Schedule,
    ScheduleRun,
    SmtpFailure,
    SmtpSettings,
    User,
)
from core.secret_key import SecretKeyError
from core.settings import Settings
from mail.render import FileRef, render
from mail.smtp_config import MailRoute, MailRoutes, mail_route, sender_for, stored_keys_problem
from mail.transports import (
    Attachment,
    ConnectFailed,
    EmlFolderTransport,
    InlineImage,
    MaybeDelivered,
    Transport,
    check_address,
    compose,
    describe_error,
    one_line,
    settings_problem,
)
from runs.files import FileStore, format_bytes

log = logging.getLogger(__name__)

KINDS = ("report", "failure_notice", "success_notice", "weekly_summary", "test")
HOOK_KINDS = ("webhook", "slack")  # outbox rows posted by mail/webhooks.py, not emailed
DELIVERY_KINDS = ("report", *HOOK_KINDS)  # a window's deliveries: its report emails and posts
STATUSES = ("pending", "sending", "sent", "failed", "unknown")  # unknown: may have been delivered
MAYBE = ("may have been delivered", "may already have been delivered")  # in last_error: an ambiguous attempt
MAX_KPIS = 8
MAX_TABLE_ROWS = 10
MAX_TABLE_COLUMNS = 5  # a phone fits about five; the files have them all
FALLBACK_DOMAIN = "tallyboard.localhost"
WEEKLY_SETTING = "weekly_summary"  # AppSetting: false turns the admins' weekly summary off
_NUMERIC = ("money", "pct", "int", "number", "quantity")
_TIME_KINDS = ("date", "month", "datetime")
# The main chart in an email: shown CHART_WIDTH x CHART_HEIGHT CSS pixels, drawn at twice that for
# sharp screens; CHART_DPI sets its text size (as the PDF's charts read at their printed size).
CHART_WIDTH = 600
CHART_HEIGHT = 260
CHART_DPI = 200
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,80}$")


# --- the email body's numbers -------------------------------------------------------------------


# A time series' flag of a bucket the period cuts short: the email writes "(to date)" after that
# bucket instead of a column of Yes/No.
PARTIAL_KEY = "partial"


def _email_columns(columns: Sequence[Column]) -> list[int]:
    """Which columns an email table shows (indexes, in order): the first, the first two other text
    columns, then the numbers, at most MAX_TABLE_COLUMNS; never the `partial` flag."""
    if len(columns) <= MAX_TABLE_COLUMNS and PARTIAL_KEY not in [c.key for c in columns]:
        return list(range(len(columns)))
    texts = [i for i, c in enumerate(columns) if i and c.kind not in _NUMERIC and c.key != PARTIAL_KEY][:2]
    numbers = [i for i, c in enumerate(columns) if i and c.kind in _NUMERIC]
    chosen = [0, *texts, *numbers][:MAX_TABLE_COLUMNS]
    return sorted(chosen)


def _bucket_day(value: Any) -> dt.date | None:
    """The first day of a time bucket cell (a date, a datetime, '2025-01' or '2025-01-31'), else None."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return dt.date.fromisoformat(text[:10] if len(text) >= 10 else f"{text[:7]}-01")
        except ValueError:
            return None
    return None


def is_time_series(report: Report, table: Table) -> bool:
    """A table of time buckets: its first column is a date or month that one of the report's charts
    draws the table over (a trend). Its latest rows matter; a ranked table's first rows do."""
    if not table.columns or table.columns[0].kind not in _TIME_KINDS:
        return False
    first = table.columns[0].key
    return any(c.table == table.name and c.x == first for c in report.charts)


def email_rows(
    report: Report, table: Table, limit: int = MAX_TABLE_ROWS
) -> tuple[list[Sequence[Any]], int, str]:
    """The rows an email shows of `table`, how many rows they were taken from, and which: "top"
    (the first `limit` rows of a ranked table) or "last" (a time series' latest `limit` buckets up
    to the period's end, in time order - so the report's own period is always among them)."""
    if not is_time_series(report, table):
        batches = table.batches(size=limit)
        try:
            rows: list[Sequence[Any]] = list(itertools.islice(next(batches, []), limit))
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
        return rows, int(table.row_count), "top"
    end = report.period.end if report.period is not None else None
    first: list[Sequence[Any]] = []
    last: deque[Sequence[Any]] = deque(maxlen=limit)
    kept = 0
    for batch in table.batches():
        for row in batch:
            day = _bucket_day(row[0])
            if end is not None and day is not None and day > end:
                continue  # a bucket after the period (a forecast, a partial month) is not its end
            kept += 1
            if len(first) < limit:
                first.append(row)
            last.append(row)
    newest_first = (
        len(last) > 1
        and (a := _bucket_day(first[0][0])) is not None
        and (b := _bucket_day(last[-1][0])) is not None
        and a > b
    )
    return (first if newest_first else list(last)), kept, "last"


def _comparison_item(comparison: Comparison) -> dict[str, str]:
    return {
        "text": comparison.text,
        "direction": comparison.direction,
        "against": comparison.label,
        "dates": comparison.period.describe() if comparison.period is not None else "",
    }


def _main_chart(report: Report) -> dict[str, Any] | None:
    """The report's first chart with data as a PNG (base64), drawn as the PDF draws it."""
    from exporters.static_charts import chart_png  # matplotlib: only when an email is built

    spec = next(
        (c for c in report.charts if c.table in report.tables and report.tables[c.table].row_count > 0), None
    )
    if spec is None:
        return None
    png = chart_png(
        spec,
        report.tables[spec.table],
        report.currency,
        width_px=CHART_WIDTH * 2,
        height_px=CHART_HEIGHT * 2,
        dpi=CHART_DPI,
    )
    return {
        "title": spec.title,
        "png": base64.b64encode(_smaller_png(png)).decode("ascii"),
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
    }


def _smaller_png(png: bytes) -> bytes:
    """The chart with a 256-colour palette: a third of the bytes, no visible difference for flat colours."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(png)) as image:
            small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
            out = io.BytesIO()
            small.save(out, format="PNG", optimize=True)
    except (OSError, ValueError):
        return png
    data = out.getvalue()
    return data if len(data) < len(png) else png


def email_summary(report: Report) -> dict[str, Any]:
    """What an email shows of a report, as JSON-able text: title, business, period (Period.describe),
    up to 8 headline KPIs [label, formatted value, [comparisons]] (each comparison: text '+10.9 %',
    direction up/down/flat, against 'vs previous period', dates of the compared period), the main
    table (title, up to 5 columns, the top 10 rows - or a time series' last 10 up to the period's
    end - formatted, `order` "top" or "last"), the main chart (title, PNG as base64, display
    width and height), notes and generated_at (ISO, UTC). Small enough for the outbox payload."""
    currency = report.currency
    kpis: list[list[Any]] = []
    for k in headline_kpis(report)[:MAX_KPIS]:
        changes = [_comparison_item(c) for c in comparisons(report, k) if c is not None]
        kpis.append([k.label, format_cell(k.value, k.kind, currency), changes])
    table: dict[str, Any] | None = None
    for t in report.tables.values():
        if t.row_count <= 0:
            continue
        picked = _email_columns(t.columns)
        columns = [t.columns[i] for i in picked]
        shown, total, order = email_rows(report, t)
        shows = {i: column_formatter(t.columns[i], currency) for i in picked}  # a code as its label
        rows = [[shows[i](row[i]) for i in picked if i < len(row)] for row in shown]
        keys = [c.key for c in t.columns]
        if PARTIAL_KEY in keys:
            flag = keys.index(PARTIAL_KEY)
            for row, cells in zip(shown, rows, strict=True):
                if cells and flag < len(row) and row[flag] is not None and bool(row[flag]):
                    cells[0] = f"{cells[0]} (to date)"
        table = {
            "title": t.title,
            "columns": [c.label for c in columns],
            "align": ["right" if c.kind in _NUMERIC else "left" for c in columns],
            "rows": rows,
            "total_rows": total,
            "order": order,
            "more_columns": max(0, len(t.columns) - len(columns)),
        }
        break
    generated = report.generated_at
    if generated.tzinfo is not None:
        generated = generated.astimezone(dt.UTC).replace(tzinfo=None)
    return {
        "slug": report.slug,
        "title": report.title,
        "business": report.business_name,
        "period": report.period_label(),
        "kpis": kpis,
        "table": table,
        "chart": _main_chart(report),
        "notes": [str(n) for n in report.notes[:5]],
        "generated_at": generated.isoformat(),
    }


# --- queueing -----------------------------------------------------------------------------------


def message_id(
    kind: str, recipient: str, domain: str, *, schedule_run_id: int | None, key: str | None
) -> str:
    """`<tb.{window or key}.{kind}.{sha256(recipient)[:16]}@{domain}>`: the same inputs, the same id."""
    ref = str(schedule_run_id) if schedule_run_id is not None else str(key)
    digest = hashlib.sha256(recipient.strip().lower().encode("utf-8")).hexdigest()[:16]
    return f"<tb.{ref}.{kind}.{digest}@{domain}>"


def _domain(session: Session, business_id: int) -> str:
    address = sender_for(session, business_id).address  # the business's own sender, never another's
    domain = address.rpartition("@")[2].strip().lower()
    return domain if domain and re.fullmatch(r"[a-z0-9.-]+", domain) else FALLBACK_DOMAIN


def enqueue(
    session: Session,
    *,
    business_id: int,
    schedule_run_id: int | None,
    kind: str,
    recipients: Sequence[str],
    subject: str,
    payload: dict[str, Any],
    now: dt.datetime,
    key: str | None = None,
) -> list[OutboxMessage]:
    """Queue one message per recipient (flushed in the caller's transaction, not committed).

    Idempotent: a message is identified by (schedule_run_id, or `key` when there is no window;
    kind; recipient, case-insensitive), so queueing again after a crash inserts nothing twice,
    even from two processes at once (UNIQUE(message_id), each insert in its own savepoint).
    Returns the rows this call inserted. ValueError for an unknown kind, a missing key, a line
    break in the subject or an invalid recipient.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown message kind {kind!r}; kinds are: {', '.join(KINDS)}.")
    if schedule_run_id is None and (key is None or not _KEY.match(key)):
        raise ValueError("A message without a schedule window needs a key (letters, digits, '.', '-').")
    one_line(subject, "subject")
    addresses: dict[str, str] = {}
    for raw in recipients:
        address = check_address(raw, "recipient")
        addresses.setdefault(address.lower(), address)
    stamp = utc_naive(aware(now))
    domain = _domain(session, business_id)
    existing: set[str] = set()
    if schedule_run_id is not None:
        # Already queued for this window and kind (whatever domain the id was made with).
        existing = {
            r.lower()
            for r in session.scalars(
                select(OutboxMessage.recipient).where(
                    OutboxMessage.schedule_run_id == schedule_run_id, OutboxMessage.kind == kind
                )
            )
        }
    added: list[OutboxMessage] = []
    for lowered, address in addresses.items():
        if lowered in existing:
            continue
        mid = message_id(kind, address, domain, schedule_run_id=schedule_run_id, key=key)
        if session.scalar(select(OutboxMessage.id).where(OutboxMessage.message_id == mid)) is not None:
            continue
        row = OutboxMessage(
            business_id=business_id,
            schedule_run_id=schedule_run_id,
            kind=kind,
            recipient=address,
            message_id=mid,
            subject=subject.strip()[:250],
            status="pending",
            attempts=0,
            next_attempt_at=stamp,
            payload=payload,
            created_at=stamp,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            continue  # queued by someone else a moment ago
        added.append(row)
    return added


# --- delivering ---------------------------------------------------------------------------------


@dataclass
class DeliveryStats:
    """One delivery pass. `claimed` rows were attempted (sent + retried + failed); `skipped` ones
    another sender claimed first; `error` is set when sending is stopped (a wrong secret key)."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    notices: int = 0
    unknown: int = 0  # may have been delivered: not retried again
    held: int = 0  # not sent: their server's settings were refused (a configuration error)
    error: str = ""
    transport: str = ""

    def __str__(self) -> str:
        if self.error:
            return f"sending stopped: {self.error}"
        parts = [
            f"{name} {value}"
            for name, value in (
                ("sent", self.sent),
                ("retried", self.retried),
                ("failed", self.failed),
                ("unknown", self.unknown),
                ("held (SMTP settings refused)", self.held),
                ("skipped", self.skipped),
                ("notices queued", self.notices),
            )
            if value
        ]
        return (", ".join(parts) or "nothing due") + (f" ({self.transport})" if self.transport else "")


@dataclass(frozen=True)
class _Claim:
    id: int
    attempts: int  # after this claim: the attempt number, and the fencing token
    interrupted: bool  # the row was taken over from a sender whose lease ran out mid-send
    created_at: dt.datetime | None = None
    last_error: str = ""
    business_id: int | None = None
    kind: str = "report"


@dataclass(frozen=True)
class _Verdict:
    permanent: bool
    stop: bool  # the server or connection is unwell: leave the rest of the batch for the next pass
    ambiguous: bool
    text: str
    settings: bool = False  # the server refused its settings: hold its messages until they change


class _Unsendable(Exception):
    """The message cannot be built (its files are gone, a bad header): final for this recipient."""


def retry_delay(attempts: int, settings: Settings, rng: random.Random | None = None) -> dt.timedelta:
    """How long after failed attempt number `attempts` to try again: min(base * 2^attempts, cap) * (1 + jitter)."""
    base = min(settings.mail_backoff_base_s * 2 ** max(attempts, 0), settings.mail_backoff_cap_s)
    jitter = (rng or random).uniform(0, max(settings.mail_jitter, 0.0))
    return dt.timedelta(seconds=base * (1 + jitter))


def classify(exc: BaseException) -> _Verdict:
    """Transient (retry later) or permanent (5xx), and whether to stop the pass."""
    text = describe_error(exc)
    if settings_problem(exc):
        return _Verdict(False, True, False, text, settings=True)
    if isinstance(exc, MaybeDelivered):
        return _Verdict(False, True, True, text)
    if isinstance(exc, ConnectFailed | ConnectionError):
        return _Verdict(False, True, False, text)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return _Verdict(bool(codes) and all(c >= 500 for c in codes), False, False, text)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _Verdict(exc.smtp_code >= 500, False, False, text)
    if isinstance(exc, smtplib.SMTPServerDisconnected | TimeoutError | OSError):
        return _Verdict(False, True, False, text)
    if isinstance(exc, ValueError | TypeError | UnicodeError):
        return _Verdict(True, False, False, f"The message could not be built: {text}")
    return _Verdict(False, False, False, f"{type(exc).__name__}: {text}")


class _Pass:
    """One deliver_due call: its clock, and each business's transport and sender (`routes`)."""

    def __init__(self, engine: Engine, settings: Settings, now: dt.datetime, routes: MailRoutes) -> None:
        self.engine = engine
        self.settings = settings
        self.now = now
        self.routes = routes
        self.files = FileStore.from_settings(settings, engine)
        self.stats = DeliveryStats()
        self.held: dict[int | None, bool] = {}  # business -> its server's settings were refused
        self._t0 = time.monotonic()
        self.lease = dt.timedelta(seconds=max(settings.mail_lease_seconds, 1))

    def clock(self) -> dt.datetime:
        return self.now + dt.timedelta(seconds=time.monotonic() - self._t0)

    # -- claiming ----------------------------------------------------------------------------
    def _due(self, now: dt.datetime) -> Any:
        return (
            OutboxMessage.status == "pending",
            or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
        )

    def _stale(self, now: dt.datetime) -> Any:
        return OutboxMessage.status == "sending", OutboxMessage.lease_until < now

    def candidates(self, n: int) -> list[int]:
        now = self.clock()
        held = [b for b, refused in self.held.items() if refused and b is not None]
        with make_sessionmaker(self.engine)() as s:
            ids = s.scalars(
                select(OutboxMessage.id)
                .where(
                    or_(and_(*self._due(now)), and_(*self._stale(now))),
                    or_(OutboxMessage.business_id.not_in(held), OutboxMessage.kind.in_(HOOK_KINDS))
                    if held
                    else true(),
                )
                .order_by(OutboxMessage.id)
                .limit(n)
            ).all()
        return list(ids)

    def is_held(self, row_id: int) -> bool:
        """True when the message's server is one whose settings were refused (counted in stats.held)."""
        with make_sessionmaker(self.engine)() as s:
            if s.scalar(select(OutboxMessage.kind).where(OutboxMessage.id == row_id)) in HOOK_KINDS:
                return False  # a webhook does not go through the mail server
        business_id = self._business_of(row_id)
        if business_id not in self.held:
            with make_sessionmaker(self.engine)() as s:
                self.held[business_id] = refused_settings(s, self.routes.route(business_id)) is not None
        if self.held[business_id]:
            self.stats.held += 1
        return self.held[business_id]

    def claim(self, row_id: int) -> _Claim | None:
        now = self.clock()
        values = {
            "status": "sending",
            "lease_until": now + self.lease,
            "attempts": OutboxMessage.attempts + 1,
        }
        with self.engine.begin() as conn:
            interrupted = False
            result = conn.execute(
                update(OutboxMessage).where(OutboxMessage.id == row_id, *self._due(now)).values(**values)
            )
            if result.rowcount != 1:
                interrupted = True
                result = conn.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row_id, *self._stale(now))
                    .values(**values)
                )
                if result.rowcount != 1:
                    return None
            attempts, created_at, last_error, business_id, kind = conn.execute(
                select(
                    OutboxMessage.attempts,
                    OutboxMessage.created_at,
                    OutboxMessage.last_error,
                    OutboxMessage.business_id,
                    OutboxMessage.kind,
                ).where(OutboxMessage.id == row_id)
            ).one()
        return _Claim(
            row_id, int(attempts or 0), interrupted, created_at, last_error or "", business_id, str(kind)
        )

    # -- one message -------------------------------------------------------------------------
    def _out_of_time(self, claim: _Claim) -> str:
        """Why a transiently failing message is not retried again ('' while it still may be)."""
        limit = self.settings.mail_max_attempts
        if limit > 0 and claim.attempts >= limit:
            return f"Gave up after {claim.attempts} attempts."
        created = claim.created_at or self.now
        if self.clock() >= created + dt.timedelta(hours=self.settings.mail_retry_hours):
            return (
                f"Gave up after {claim.attempts} attempts over "
                f"{_hours_text(self.settings.mail_retry_hours)} (TALLYBOARD_MAIL_RETRY_HOURS)."
            )
        return ""

    def deliver(self, claim: _Claim) -> bool:
        """Build, send and record one claimed row; True when the rest of the pass should wait."""
        if claim.kind in HOOK_KINDS:  # a webhook or Slack post (mail/webhooks.py), not an email
            from mail.webhooks import deliver_hook

            return deliver_hook(self, claim)
        ambiguous_before = claim.interrupted or any(m in claim.last_error for m in MAYBE)
        earlier = ""
        if claim.interrupted:
            earlier = (
                f"Attempt {claim.attempts - 1} was interrupted (the sender stopped) and may already have "
                "been delivered; retried with the same Message-ID. "
            )
            over = self._out_of_time(dataclasses.replace(claim, attempts=claim.attempts - 1))
            if over:
                self._finish(claim, sent=False, error=earlier.replace("retried", "not retried") + over)
                return False
        try:
            with make_sessionmaker(self.engine)() as s:
                message = self.build(s, claim.id)
        except _Unsendable as exc:
            self._finish(claim, sent=False, error=earlier + str(exc))
            return False
        try:
            transport = self.routes.transport(self._business_of(claim.id))
            reply = transport.send(message)
        except Exception as exc:
            verdict = classify(exc)
            if verdict.settings:
                self._hold(claim, verdict.text)
                return True
            if not verdict.permanent:
                log.warning("outbox message %s, attempt %s: %s", claim.id, claim.attempts, verdict.text)
            note = earlier + f"Attempt {claim.attempts}: {verdict.text}"
            if verdict.ambiguous and ambiguous_before:
                # The server took the text twice without answering: a third copy helps nobody.
                note += (
                    f" Unknown - may have been delivered: an earlier attempt ended the same way, so it is "
                    f"not sent again (Message-ID {message['Message-ID']}); check with the recipient."
                )
                self._finish(claim, sent=False, error=note, status="unknown")
                return verdict.stop
            if verdict.ambiguous:
                note += (
                    f" It may have been delivered; the retry keeps Message-ID {message['Message-ID']} "
                    "so the receiver can drop a duplicate. It is retried once."
                )
            over = "" if verdict.permanent else self._out_of_time(claim)
            if verdict.permanent:
                self._finish(claim, sent=False, error=note)
            elif over:
                self._finish(claim, sent=False, error=f"{over} {note}")
            else:
                self._retry(claim, note)
            return verdict.stop
        note = ""
        if ambiguous_before:
            before = earlier or "An earlier attempt may also have been delivered (same Message-ID). "
            note = f"{before}Sent on attempt {claim.attempts}: {reply}"
        written = reply.removeprefix("written to ") if isinstance(transport, EmlFolderTransport) else ""
        self._finish(claim, sent=True, error=note, written_to=written)
        return False

    def _hold(self, claim: _Claim, text: str) -> None:
        """The server refused its settings: remember them as refused, give the message back uncharged
        (it goes out once the settings change), and hold the rest of that server's messages."""
        route = self.routes.route(claim.business_id)
        with session_scope(self.engine) as s:
            fingerprint = server_fingerprint(s, route)
            if fingerprint is not None and s.get(SmtpFailure, fingerprint) is None:
                try:
                    with s.begin_nested():
                        s.add(
                            SmtpFailure(
                                fingerprint=fingerprint,
                                server=_server_text(route)[:300],
                                error=text[:2000],
                                failed_at=self.clock(),
                            )
                        )
                except IntegrityError:
                    pass  # another sender recorded it a moment ago
        note = (
            f"Not sent: {text}. The mail server refused its settings (a configuration error), so nothing "
            "goes through it until its SMTP settings are changed; this message is sent then."
        )
        if self._record(
            claim,
            lambda s, row: None,
            status="pending",
            attempts=OutboxMessage.attempts - 1,
            lease_until=None,
            last_error=note[:4000],
        ):
            self.stats.held += 1
            log.error("email through %s stopped: %s", _server_text(route), text)
        self.held.clear()  # look again at every business's server: others may share this one

    def _business_of(self, row_id: int) -> int | None:
        with make_sessionmaker(self.engine)() as s:
            return s.scalar(select(OutboxMessage.business_id).where(OutboxMessage.id == row_id))

    def _record(self, claim: _Claim, after: Callable[[Session, OutboxMessage], None], **values: Any) -> bool:
        with session_scope(self.engine) as s:
            result = s.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id == claim.id,
                    OutboxMessage.status == "sending",
                    OutboxMessage.attempts == claim.attempts,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                log.warning("outbox %s: another sender took it over; its result is theirs", claim.id)
                return False
            row = s.get(OutboxMessage, claim.id)
            assert row is not None
            after(s, row)
        return True

    def _retry(self, claim: _Claim, note: str, delay: float | None = None) -> None:
        """Pending again after the backoff (or after `delay` seconds: a receiver's Retry-After)."""
        wait = retry_delay(claim.attempts, self.settings) if delay is None else dt.timedelta(seconds=delay)
        when = self.clock() + wait
        values = {
            "status": "pending",
            "next_attempt_at": when,
            "lease_until": None,
            "last_error": note[:4000],
        }
        if self._record(claim, lambda s, row: None, **values):
            self.stats.retried += 1

    def _finish(
        self, claim: _Claim, *, sent: bool, error: str, status: str = "failed", written_to: str = ""
    ) -> None:
        stamp = self.clock()
        values: dict[str, Any] = {"lease_until": None, "last_error": error[:4000]}
        if sent:
            values.update(status="sent", sent_at=stamp, written_to=written_to[:500])
        else:
            values.update(status=status)
        if not self._record(claim, lambda s, row: self._notify(s, row, sent), **values):
            return
        if sent:
            self.stats.sent += 1
        elif status == "unknown":
            self.stats.unknown += 1
            log.warning("outbox message %s may have been delivered: %s", claim.id, error)
        else:
            self.stats.failed += 1
            log.warning("outbox message %s failed: %s", claim.id, error)

    def _notify(self, s: Session, row: OutboxMessage, sent: bool) -> None:
        """Queue the owner's failure notice (once per window) or success notice (when all are sent)."""
        if row.kind not in DELIVERY_KINDS or row.schedule_run_id is None:
            return
        window = s.get(ScheduleRun, row.schedule_run_id)
        schedule = s.get(Schedule, window.schedule_id) if window is not None else None
        if window is None or schedule is None:
            return
        if sent:
            statuses = s.scalars(
                select(OutboxMessage.status).where(
                    OutboxMessage.schedule_run_id == window.id, OutboxMessage.kind.in_(DELIVERY_KINDS)
                )
            ).all()
            if not schedule.notify_success or any(st != "sent" for st in statuses):
                return
            kind, subject = "success_notice", f"Scheduled report delivered: {schedule.name}"
        else:
            kind, subject = "failure_notice", f"Scheduled report not delivered: {schedule.name}"
        to = notice_recipients(s, schedule)
        if not to:
            log.warning(
                "schedule %s: no owner, admin or notification e-mail address for the %s", schedule.id, kind
            )
            return
        payload = {
            "schedule_id": schedule.id,
            "schedule_name": schedule.name,
            "due_at": window.due_at.isoformat(),
            "timezone": schedule.timezone,
            "run_id": window.run_id,
        }
        added = enqueue(
            s,
            business_id=row.business_id,
            schedule_run_id=window.id,
            kind=kind,
            recipients=to,
            subject=" ".join(subject.split())[:250],
            payload=payload,
            now=self.now,  # due at once: the next pass sends it
        )
        self.stats.notices += len(added)

    # -- building ----------------------------------------------------------------------------
    def build(self, s: Session, row_id: int) -> EmailMessage:
        row = s.get(OutboxMessage, row_id)
        if row is None:
            raise _Unsendable("The message was deleted.")
        business = s.get(Business, row.business_id)
        payload = row.payload if isinstance(row.payload, dict) else {}
        tz = str(payload.get("timezone") or (business.timezone if business else "UTC") or "UTC")
        builder = {
            "report": self._report_body,
            "failure_notice": self._failure_body,
            "success_notice": self._success_body,
        }.get(row.kind, self._generic_body)
        summary, message, files, link, link_note, attachments = builder(s, row, payload, tz)
        summary.setdefault("business", business.name if business else "")
        footer = _footer(row, summary, tz)
        inline: tuple[InlineImage, ...] = ()
        run_link: str | None = None
        if row.kind == "report":
            inline, run_link = self._report_extras(s, row, summary, payload)
        bodies = render(
            summary,
            message=message,
            files=files,
            link=link,
            link_note=link_note,
            footer=footer,
            subject=row.subject,
            chart_cid=inline[0].cid if inline else None,
            run_link=run_link,
        )
        try:
            return compose(
                self.routes.sender(row.business_id),
                row.recipient,
                row.subject,
                row.message_id,
                text=bodies.text,
                html=bodies.html,
                attachments=attachments,
                date=self.clock().replace(tzinfo=dt.UTC),
                inline=inline,
            )
        except ValueError as exc:
            raise _Unsendable(f"The message could not be built: {exc}") from exc

    def _report_extras(
        self, s: Session, row: OutboxMessage, summary: Mapping[str, Any], payload: Mapping[str, Any]
    ) -> tuple[tuple[InlineImage, ...], str | None]:
        """A report email's main chart as an inline image (Content-ID made from the Message-ID, so a
        retry sends the same message) and the link that opens its run in History."""
        inline: tuple[InlineImage, ...] = ()
        chart = summary.get("chart")
        if isinstance(chart, Mapping) and isinstance(chart.get("png"), str):
            try:
                data = base64.b64decode(chart["png"], validate=True)
            except ValueError:
                data = b""
            if data.startswith(b"\x89PNG"):
                cid = f"chart.{row.message_id.strip('<> ')}"
                inline = (InlineImage(cid, data, "chart.png", "image/png"),)
        run_id = payload.get("run_id")
        if not isinstance(run_id, int) and row.schedule_run_id is not None:
            run_id = s.scalar(select(ScheduleRun.run_id).where(ScheduleRun.id == row.schedule_run_id))
        link = history_link(self.settings, run_id) if isinstance(run_id, int) else None
        return inline, link

    def _report_body(
        self, s: Session, row: OutboxMessage, payload: Mapping[str, Any], tz: str
    ) -> tuple[dict[str, Any], str, list[FileRef], str | None, str, list[Attachment]]:
        summary = dict(payload.get("summary") or {"title": row.subject})
        # Summaries queued before the period had one text carry its dates apart.
        if summary.get("period_dates") and summary.get("period") != summary.get("period_dates"):
            summary["period"] = f"{summary['period']} ({summary['period_dates']})"
        message = str(payload.get("message") or "")
        run_id = payload.get("run_id")
        if not isinstance(run_id, int) and row.schedule_run_id is not None:
            run_id = s.scalar(select(ScheduleRun.run_id).where(ScheduleRun.id == row.schedule_run_id))
        stored: list[RunFile] = []
        if isinstance(run_id, int):
            stored = list(
                s.scalars(
                    select(RunFile)
                    .where(RunFile.run_id == run_id, RunFile.business_id == row.business_id)
                    .order_by(RunFile.id)
                )
            )
        expected = payload.get("formats")
        if isinstance(expected, list) and expected and not stored:
            raise _Unsendable(
                "The report's files are no longer stored (the run was deleted or expired); nothing was sent."
            )
        for f in stored:
            if f.deleted_at is not None or not self.files.exists(f.path):
                raise _Unsendable(f"The report file {f.file_name} is no longer stored; nothing was sent.")
        refs = [FileRef(f.file_name, int(f.bytes)) for f in stored]
        total = sum(int(f.bytes) for f in stored)
        limit = int(self.settings.attachment_limit_mb * 1024 * 1024)
        mode = str(payload.get("large_file_mode") or "")
        if not mode and isinstance(payload.get("schedule_id"), int):
            mode = (
                s.scalar(select(Schedule.large_file_mode).where(Schedule.id == payload["schedule_id"])) or ""
            )
        if stored and total > limit and (mode or "link") == "link":
            link = history_link(self.settings, run_id) if isinstance(run_id, int) else None
            note = (
                f"The files are {format_bytes(total)} together, over the {format_bytes(limit)} "
                "attachment limit, so they are not attached. Sign in to download them:"
            )
            return summary, message, refs, link, note, []
        attachments = [
            Attachment(
                f.file_name, self.files.absolute(f.path).read_bytes(), f.mime or "application/octet-stream"
            )
            for f in stored
        ]
        return summary, message, refs, None, "", attachments

    def _window(self, s: Session, row: OutboxMessage) -> tuple[ScheduleRun | None, Schedule | None]:
        window = s.get(ScheduleRun, row.schedule_run_id) if row.schedule_run_id is not None else None
        schedule = s.get(Schedule, window.schedule_id) if window is not None else None
        return window, schedule

    def _failure_body(
        self, s: Session, row: OutboxMessage, payload: Mapping[str, Any], tz: str
    ) -> tuple[dict[str, Any], str, list[FileRef], str | None, str, list[Attachment]]:
        window, schedule = self._window(s, row)
        name = str(payload.get("schedule_name") or (schedule.name if schedule else "") or "a schedule")
        due = _local_text(window.due_at if window else payload.get("due_at"), tz)
        rows = s.execute(
            select(OutboxMessage.recipient, OutboxMessage.last_error, OutboxMessage.status)
            .where(
                OutboxMessage.schedule_run_id == row.schedule_run_id,
                OutboxMessage.kind.in_(DELIVERY_KINDS),
                OutboxMessage.status.in_(("failed", "unknown")),
            )
            .order_by(OutboxMessage.id)
        ).all()
        failed = [(r, e) for r, e, st in rows]
        unsure = [r for r, _e, st in rows if st == "unknown"]
        summary: dict[str, Any] = {"title": "Scheduled report not delivered", "period": f"{name} · due {due}"}
        error = str(payload.get("error") or (window.error if window else "") or "")
        if failed:
            summary["table"] = {
                "title": "Recipients not reached" if len(unsure) < len(failed) else "Delivery not confirmed",
                "columns": ["Recipient", "Server's answer"],
                "align": ["left", "left"],
                "rows": [[r, (e or "")[:300]] for r, e in failed],
                "total_rows": len(failed),
            }
            message = (
                f"The report of the schedule “{name}” was generated, but it could not be delivered to "
                f"{'this recipient' if len(failed) == 1 else 'these recipients'}. "
                "Check the addresses in the schedule; the mail server's answers are below."
            )
            if unsure:
                message = (
                    f"The report of the schedule “{name}” was handed to the mail server for "
                    f"{', '.join(unsure)}, but the server never confirmed it: it may or may not have "
                    "arrived. It was not sent again, so nobody gets more copies; please check with "
                    f"{'them' if len(unsure) > 1 else 'the recipient'}."
                    + (
                        " Other recipients could not be reached at all; the server's answers are below."
                        if len(unsure) < len(failed)
                        else ""
                    )
                )
        else:
            summary["title"] = "Scheduled report failed"
            message = f"The schedule “{name}” did not send its report.\n\n{error}".strip()
        return summary, message, [], None, "", []

    def _success_body(
        self, s: Session, row: OutboxMessage, payload: Mapping[str, Any], tz: str
    ) -> tuple[dict[str, Any], str, list[FileRef], str | None, str, list[Attachment]]:
        window, schedule = self._window(s, row)
        name = str(payload.get("schedule_name") or (schedule.name if schedule else "") or "a schedule")
        due = _local_text(window.due_at if window else payload.get("due_at"), tz)
        sent = s.execute(
            select(OutboxMessage.recipient, OutboxMessage.sent_at)
            .where(
                OutboxMessage.schedule_run_id == row.schedule_run_id, OutboxMessage.kind.in_(DELIVERY_KINDS)
            )
            .order_by(OutboxMessage.id)
        ).all()
        summary: dict[str, Any] = {
            "title": "Scheduled report delivered",
            "period": f"{name} · due {due}",
            "table": {
                "title": "Delivered to",
                "columns": ["Recipient", "Sent"],
                "align": ["left", "left"],
                "rows": [[r, _local_text(at, tz)] for r, at in sent],
                "total_rows": len(sent),
            },
        }
        return summary, f"The schedule “{name}” delivered its report to everyone.", [], None, "", []

    def _generic_body(
        self, s: Session, row: OutboxMessage, payload: Mapping[str, Any], tz: str
    ) -> tuple[dict[str, Any], str, list[FileRef], str | None, str, list[Attachment]]:
        summary = dict(payload.get("summary") or {"title": row.subject})
        return summary, str(payload.get("message") or ""), [], None, "", []


def history_link(settings: Settings, run_id: int) -> str:
    """The address that opens run `run_id` on the History page (TALLYBOARD_PUBLIC_URL)."""
    return f"{settings.public_url.rstrip('/')}/history?run={run_id}"


def _local_text(value: Any, tz: str) -> str:
    """A stored naive-UTC time (or its ISO text) as 'YYYY-MM-DD HH:MM TZ' in `tz`."""
    if isinstance(value, str):
        text = value
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            return text
    if not isinstance(value, dt.datetime):
        return ""
    return named_time(value, tz)


def _footer(row: OutboxMessage, summary: Mapping[str, Any], tz: str) -> str:
    parts = []
    generated = summary.get("generated_at")
    if generated:
        parts.append(f"Generated {_local_text(generated, tz)}")
    if row.kind == "report":
        name = row.payload.get("schedule_name") if isinstance(row.payload, dict) else None
        parts.append(f"scheduled report “{name}”" if name else "scheduled report")
    parts.append(f"sent by Tallyboard to {row.recipient}")
    text = " · ".join(parts)
    return text[0].upper() + text[1:] + "."


def notice_recipients(s: Session, schedule: Schedule) -> list[str]:
    """Where a schedule's notices go: the owner's address; without one, the business's active admins
    with an address; without any, the business's notification address (Admin); else nobody."""
    if schedule.owner_id is not None:
        owner = s.get(User, schedule.owner_id)
        if owner is not None and owner.active and owner.email.strip():
            return [owner.email.strip()]
    return admin_addresses(s, schedule.business_id) or business_notice_addresses(s, schedule.business_id)


def business_notice_addresses(s: Session, business_id: int) -> list[str]:
    """The business's notification address as a list (empty when none is set or it is not valid)."""
    business = s.get(Business, business_id)
    raw = (business.notice_email or "").strip() if business is not None else ""
    if not raw:
        return []
    try:
        return [check_address(raw, "notification address")]
    except ValueError:
        return []


def summary_recipients(s: Session, business_id: int) -> list[str]:
    """Where the weekly summary goes: the active admins with an address, else the notification address."""
    return admin_addresses(s, business_id) or business_notice_addresses(s, business_id)


def untold_warning(s: Session, business_id: int) -> str | None:
    """A warning for Schedules and Admin naming who will not be told (failure notices of which
    schedules, the weekly summary) because no address exists for them, or None when every notice
    has somewhere to go. It states the fact; the page adds what its reader can do about it."""
    if summary_recipients(s, business_id):
        return None  # an admin or the notification address catches every notice
    owners = {
        u.id: u for u in s.scalars(select(User).where(User.business_id == business_id, User.active.is_(True)))
    }
    untold = []
    for schedule in s.scalars(
        select(Schedule)
        .where(Schedule.business_id == business_id, Schedule.active.is_(True))
        .order_by(Schedule.name, Schedule.id)
    ):
        if not notice_recipients(s, schedule):
            owner = owners.get(schedule.owner_id) if schedule.owner_id is not None else None
            who = f"its owner {owner.username} has no email address" if owner else "it has no active owner"
            untold.append(f"“{schedule.name}” ({who})")
    parts = []
    if untold:
        parts.append("the failure notices of " + ", ".join(untold))
    admins = sorted(u.username for u in owners.values() if u.role == "admin")
    if admins:
        parts.append(f"the weekly summary for the admins ({', '.join(admins)})")
    if not parts:
        return None
    return (
        "Nobody will be told about "
        + " and ".join(parts)
        + ": no admin has an email address and no notification address is set."
    )  # what to do depends on who reads it: the pages add that (ui/schedule_view, ui/admin_view)


def admin_addresses(s: Session, business_id: int) -> list[str]:
    emails = s.scalars(
        select(User.email)
        .where(User.business_id == business_id, User.role == "admin", User.active.is_(True), User.email != "")
        .order_by(User.id)
    ).all()
    out: dict[str, str] = {}
    for email in emails:
        try:
            address = check_address(email, "admin address")
        except ValueError:
            continue
        out.setdefault(address.lower(), address)
    return list(out.values())


def deliver_due(
    engine: Engine,
    settings: Settings,
    *,
    now: dt.datetime,
    transport: Transport | None = None,
    limit: int = 100,
) -> DeliveryStats:
    """Send up to `limit` due outbox messages through `transport` (default: each message's business's
    route - its own SMTP server, else the installation default - or
    .eml files in settings.outbox_dir while SMTP is not set). Never raises for a message's
    failure: it is recorded on the row. A wrong secret key stops sending: the returned stats carry
    the error (logged once per call) and nothing is claimed."""
    start = utc_naive(aware(now))
    problem = stored_keys_problem(engine, settings)  # one installation key opens every business's password
    if problem:
        log.error("email sending stopped: %s", problem)
        return DeliveryStats(error=problem)
    routes = MailRoutes(engine, settings, transport)  # each message goes the way its business's email goes
    work = _Pass(engine, settings, start, routes)
    try:
        rounds = 0
        while work.stats.claimed < limit and rounds < limit:
            rounds += 1
            wanted = limit - work.stats.claimed
            ids = work.candidates(wanted)
            if not ids:
                break
            stop = False
            for row_id in ids:
                if work.is_held(row_id):
                    continue  # its server's settings were refused: it waits for new ones
                claim = work.claim(row_id)
                if claim is None:
                    work.stats.skipped += 1
                    continue
                work.stats.claimed += 1
                if work.deliver(claim):
                    stop = True
                    break
            if stop or len(ids) < wanted:
                break
    finally:
        work.stats.transport = routes.label
        if transport is None:
            routes.close()
    return work.stats


# --- refused server settings --------------------------------------------------------------------


def server_fingerprint(session: Session, route: MailRoute) -> str | None:
    """Names one version of a server's settings (None for the outbox folder): saving the settings
    again - a new password, say - gives another fingerprint, so a refusal is forgotten."""
    if route.settings_id is None or route.source == "outbox":
        return None
    updated = session.scalar(select(SmtpSettings.updated_at).where(SmtpSettings.id == route.settings_id))
    text = "|".join(
        (
            str(route.settings_id),
            updated.isoformat() if updated is not None else "",
            route.host,
            str(route.port),
            route.security,
            route.username,
        )
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def refused_settings(session: Session, route: MailRoute) -> SmtpFailure | None:
    """The record of the server refusing the route's current settings, or None."""
    fingerprint = server_fingerprint(session, route)
    return session.get(SmtpFailure, fingerprint) if fingerprint is not None else None


def _server_text(route: MailRoute) -> str:
    user = f" as {route.username}" if route.username else ""
    return f"{route.host}:{route.port} ({route.security}){user}"


def smtp_problem(session: Session, settings: Settings, business_id: int | None) -> str | None:
    """A warning for Admin and Schedules when the business's mail server refused its settings (the
    login, say) - its email waits until they change - else None."""
    try:
        route = mail_route(session, settings, business_id)
    except SecretKeyError:
        return None  # the key warning says what to do about that
    failure = refused_settings(session, route)
    if failure is None:
        return None
    tz = session.scalar(select(Business.timezone).where(Business.id == business_id)) if business_id else None
    when = named_time(failure.failed_at, tz or "UTC")  # the business's time, as on every page
    if route.source == "own":
        return (
            f"Email is not being sent: the mail server {route.host}:{route.port} refused this business's "
            f"SMTP settings at {when} ({failure.error}). Messages wait and go out once the SMTP "
            "settings are changed in Admin (check the user name and password)."
        )
    return (
        f"Email is not being sent: the installation's mail server refused its settings at {when}. "
        "Messages wait and go out once the operator fixes them (python manage.py smtp set)."
    )


def _hours_text(hours: float) -> str:
    if hours >= 24 and hours % 24 == 0:
        days = int(hours // 24)
        return f"{days} day" + ("" if days == 1 else "s")
    return f"{hours:g} h"


# --- weekly summary -----------------------------------------------------------------------------


def _weekly_enabled(s: Session) -> bool:
    value = s.scalar(select(AppSetting.value).where(AppSetting.key == WEEKLY_SETTING))
    return value is None or value is True or (isinstance(value, str) and value.lower() in ("1", "true", "on"))


def _report_title(slug: str) -> str:
    from reports.registry import definition  # the registry imports every report

    try:
        return str(definition(slug).title)
    except Exception:
        return slug


def weekly_summary(engine: Engine, settings: Settings, now: dt.datetime) -> int:
    """Queue each business's summary of last week (the ISO week before `now`'s, Monday to Sunday
    UTC: runs, failures, emails, top reports) to its admins, once per ISO week however often it is
    called. Businesses with no activity that week, or no admin address, get none; AppSetting
    "weekly_summary" = false turns it off. Returns how many messages were queued."""
    stamp = utc_naive(aware(now))
    until = dt.datetime.combine(stamp.date() - dt.timedelta(days=stamp.weekday()), dt.time())
    since = until - dt.timedelta(days=7)
    year, week, _ = since.isocalendar()
    queued = 0
    unreachable: list[str] = []
    with session_scope(engine) as s:
        if not _weekly_enabled(s):
            return 0
        businesses = s.execute(
            select(Business.id, Business.code, Business.name, Business.timezone).order_by(Business.id)
        ).all()
    for business in businesses:
        # One short transaction a business: racing daemons insert the same keys, and the one that
        # waits should wait for one business's summary, not for the whole loop.
        with session_scope(engine) as s:
            runs = dict(
                s.execute(
                    select(Run.status, func.count())
                    .where(Run.business_id == business.id, Run.created_at >= since, Run.created_at < until)
                    .group_by(Run.status)
                ).all()
            )
            windows = dict(
                s.execute(
                    select(ScheduleRun.status, func.count())
                    .where(
                        ScheduleRun.business_id == business.id,
                        ScheduleRun.due_at >= since,
                        ScheduleRun.due_at < until,
                    )
                    .group_by(ScheduleRun.status)
                ).all()
            )
            emails = dict(
                s.execute(
                    select(OutboxMessage.status, func.count())
                    .where(
                        OutboxMessage.business_id == business.id,
                        OutboxMessage.kind == "report",
                        OutboxMessage.created_at >= since,
                        OutboxMessage.created_at < until,
                    )
                    .group_by(OutboxMessage.status)
                ).all()
            )
            if not runs and not windows and not emails:
                continue  # nothing to say, so no address is needed either
            to = summary_recipients(s, business.id)
            if not to:
                unreachable.append(business.code)
                continue
            top = s.execute(
                select(Run.report_slug, func.count().label("n"))
                .where(Run.business_id == business.id, Run.created_at >= since, Run.created_at < until)
                .group_by(Run.report_slug)
                .order_by(func.count().desc(), Run.report_slug)
                .limit(5)
            ).all()
            tz = business.timezone or "UTC"
            first, last = since.date(), (until - dt.timedelta(days=1)).date()
            period = Period(first, last).describe()
            summary = {
                "title": "Weekly summary",
                "business": business.name,
                "period": f"{period} (week {week}, {year})",
                "kpis": [
                    ["Report runs", f"{sum(runs.values()):,}"],
                    ["Failed runs", f"{runs.get('failed', 0):,}"],
                    ["Scheduled sends", f"{windows.get('queued', 0):,}"],
                    ["Missed or failed windows", f"{windows.get('missed', 0) + windows.get('failed', 0):,}"],
                    ["Emails delivered", f"{emails.get('sent', 0):,}"],
                    ["Emails failed", f"{emails.get('failed', 0):,}"],
                ],
                "table": {
                    "title": "Top reports",
                    "columns": ["Report", "Runs"],
                    "align": ["left", "right"],
                    "rows": [[_report_title(slug), f"{n:,}"] for slug, n in top],
                    "total_rows": len(top),
                }
                if top
                else None,
                "generated_at": stamp.isoformat(),
            }
            added = enqueue(
                s,
                business_id=business.id,
                schedule_run_id=None,
                kind="weekly_summary",
                recipients=to,
                subject=f"Tallyboard weekly summary: {' '.join(business.name.split())}, week {week}"[:250],
                payload={
                    "summary": summary,
                    "timezone": tz,
                    "message": "What Tallyboard did for your business in the last seven days.",
                },
                now=stamp,
                key=f"weekly.b{business.id}.{year}-W{week:02d}",  # the week summarised
            )
            queued += len(added)
    if unreachable:  # one line an hour, however many businesses (a line each once filled the log)
        log.warning(
            "no admin or notification address for the weekly summary of %d business%s: %s",
            len(unreachable),
            "" if len(unreachable) == 1 else "es",
            ", ".join(unreachable),
        )
    return queued
