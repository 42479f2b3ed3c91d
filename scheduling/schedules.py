"""Schedules: validate, create, edit, pause, resume, delete, run now; next run times; run and delivery status.

Every function takes the caller's Scope: only managers and admins manage schedules, and only their
own business's (a missing id and another business's id look the same: NotFound). Writes commit and
keep `next_due_at` current, so the daemon never has to compute it. Header injection is stopped
here: a line break in a subject, a recipient or a name is refused when the schedule is saved.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from accounts.users import acting_user, record_refusal
from analytics.periods import RELATIVE_PERIODS
from analytics.report import ParamError, ReportParams, Scope
from core.clock import aware, utc_naive
from core.errors import Conflict, Invalid
from core.ids import storable_id
from core.models import Business, OutboxMessage, SavedReport, Schedule, ScheduleRun, User
from core.secret_key import SecretKeyError
from core.settings import Settings
from mail.transports import check_address as mail_address
from mail.transports import one_line
from mail.webhooks import WebhookError, check_urls, encrypt_secret, new_secret, parse_condition
from reports.audit_log import record_event
from reports.registry import NotFound, definition
from runs.access import report_allowed
from runs.runner import check_formats
from scheduling.timerules import (
    Occurrence,
    RuleError,
    describe_rule,
    next_due,
    time_zone,
    upcoming,
    validate_rule,
)

MANAGING_ROLES = frozenset({"admin", "manager"})
PLACEHOLDERS = ("report", "period", "business")
LARGE_FILE_MODES = ("attach", "link")
MAX_RECIPIENTS = 50
MAX_NAME = 120
MAX_SUBJECT = 200
# Parameters the schedule itself decides: the relative period and the zone are its own fields.
_SCHEDULE_OWNED_PARAMS = ("period", "start", "end", "tz", "now")


class ScheduleError(Invalid):
    """A schedule that cannot be saved or changed; the message says how to fix it."""


class ScheduleConflict(Conflict, ScheduleError):
    """The schedule is busy: a run was already requested for this very second."""


@dataclass(frozen=True)
class ScheduleSpec:
    """What a person fills in. Formats default to the saved report's when one is chosen."""

    report_slug: str
    rule_kind: str
    rule: Mapping[str, Any]
    recipients: Sequence[str]
    formats: Sequence[str] = ("pdf",)
    timezone: str = "UTC"
    period: str = "last_month"
    name: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    saved_report_id: int | None = None
    subject: str = "{report} for {period}"
    message: str = ""
    skip_if_empty: bool = False
    large_file_mode: str = "link"
    notify_success: bool = False
    active: bool = True
    # Webhook and Slack incoming-webhook URLs (besides or instead of `recipients`), and an alert:
    # "KPI OP VALUE" (send only when it holds), `when_changes`: only when it turns from false to true.
    webhooks: Sequence[str] = ()
    slack: Sequence[str] = ()
    condition: str = ""
    when_changes: bool = False


@dataclass(frozen=True)
class ScheduleInfo:
    """One schedule as pages and the CLI show it. Times are naive UTC; `next_due_local` is in its zone."""

    id: int
    business_id: int
    name: str
    report_slug: str
    report_title: str
    saved_report_id: int | None
    parameters: dict[str, Any]
    formats: tuple[str, ...]
    recipients: tuple[str, ...]
    subject: str
    message: str
    rule_kind: str
    rule: dict[str, Any]
    rule_text: str
    timezone: str
    period: str
    skip_if_empty: bool
    large_file_mode: str
    notify_success: bool
    active: bool
    owner: str
    next_due_at: dt.datetime | None
    last_due_at: dt.datetime | None
    webhooks: tuple[str, ...] = ()
    slack: tuple[str, ...] = ()
    condition: str = ""  # "margin_pct < 0.2", "" for none
    when_changes: bool = False
    # The webhook signing secret in plain text: only in what create/update return when a new one was
    # made (shown once); stored encrypted.
    webhook_secret: str = field(default="", repr=False)

    @property
    def targets_text(self) -> str:
        """Where it is delivered: '2 e-mail recipients, 1 webhook, Slack'."""
        parts = []
        if self.recipients:
            n = len(self.recipients)
            parts.append(f"{n} e-mail recipient" + ("" if n == 1 else "s"))
        if self.webhooks:
            n = len(self.webhooks)
            parts.append(f"{n} webhook" + ("" if n == 1 else "s"))
        if self.slack:
            parts.append("Slack" if len(self.slack) == 1 else f"{len(self.slack)} Slack channels")
        return ", ".join(parts) or "nobody"

    @property
    def condition_text(self) -> str:
        """'Only when margin_pct < 0.2 (when it changes to true)', or '' without a condition."""
        if not self.condition:
            return ""
        return f"Only when {self.condition}" + (" (when it changes to true)" if self.when_changes else "")

    @property
    def next_due_local(self) -> dt.datetime | None:
        if self.next_due_at is None:
            return None
        return self.next_due_at.replace(tzinfo=dt.UTC).astimezone(time_zone(self.timezone))


@dataclass(frozen=True)
class Delivery:
    """One outbox message of a run: who, what kind, and how far it got."""

    recipient: str
    kind: str
    status: str
    attempts: int
    last_error: str
    sent_at: dt.datetime | None
    message_id: str
    written_to: str = ""  # the .eml file, when no SMTP server was set (then nobody received it)

    @property
    def text(self) -> str:
        """What happened to this message, in words (see `delivery_text`)."""
        return delivery_text(self.status, self.written_to)


@dataclass(frozen=True)
class RunStatus:
    """One (schedule, due time) window and the delivery status of each of its messages."""

    id: int
    schedule_id: int
    due_at: dt.datetime
    due_local: dt.datetime
    status: str
    claimed_by: str
    attempts: int
    run_id: int | None
    error: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    deliveries: tuple[Delivery, ...]

    @property
    def text(self) -> str:
        """What happened in this window, in words (see `window_text`)."""
        return window_text(self.status, self.deliveries)


# The period a new schedule reports on unless one is chosen: the span since the previous run.
DEFAULT_PERIODS = {"daily": "yesterday", "weekly": "last_week", "monthly": "last_month"}


def default_period(rule_kind: str) -> str:
    """The period that follows the frequency: daily → yesterday, weekly → last week, monthly (and
    every other rule) → last month."""
    return DEFAULT_PERIODS.get(rule_kind, "last_month")


# --- what happened, in words --------------------------------------------------------------------

OUTBOX_TEXT = "written to the outbox folder (no SMTP server set)"
WINDOW_LABELS = {
    "retrying": "retrying soon",  # a passing failure (full disk, database away): tried again shortly
    "unknown": "unknown — may have been delivered",
}


def delivery_text(status: str, written_to: str = "") -> str:
    """One message's outcome: "sent", "written to the outbox folder (no SMTP server set)" when it
    went to a .eml file, "failed", "unknown — may have been delivered", "queued" or "sending"."""
    if status == "sent":
        return OUTBOX_TEXT if written_to else "sent"
    if status == "pending":
        return "queued"
    return WINDOW_LABELS.get(status, status)


def window_text(status: str, deliveries: Sequence[Delivery]) -> str:
    """A window's outcome, from its report emails once they are queued: "sent" (all), "partly sent
    (3 of 4)", "failed" (none), "written to the outbox folder (no SMTP server set)", "sending (1 of 4
    sent)" while some wait; before that the window's own status ("requested", "generating", ...)."""
    if status != "queued":
        return WINDOW_LABELS.get(status, status)
    # Its report emails and its webhook / Slack posts (issue 12b): a webhook-only window is sent too.
    reports = [d for d in deliveries if d.kind in ("report", "webhook", "slack")]
    if not reports:
        return "queued"
    done = [d for d in reports if d.status == "sent"]
    waiting = [d for d in reports if d.status in ("pending", "sending")]
    total = len(reports)
    if waiting:
        return f"sending ({len(done)} of {total} sent)" if done else "queued"
    if len(done) == total:
        if all(d.written_to for d in done):
            return OUTBOX_TEXT
        return "sent"
    if done:
        return f"partly sent ({len(done)} of {total})"
    if any(d.status == "unknown" for d in reports):
        return WINDOW_LABELS["unknown"]
    return "failed"


def sent_count(deliveries: Sequence[Delivery]) -> str:
    """'2 of 2': how many report emails reached a mail server ('0 of 2' when written to the outbox
    folder: nobody received them)."""
    reports = [d for d in deliveries if d.kind == "report"]
    sent = sum(d.status == "sent" and not d.written_to for d in reports)
    return f"{sent} of {len(reports)}"


# --- validation -------------------------------------------------------------------------------


def reject_line_breaks(value: str, what: str) -> str:
    """`value` unchanged, or ScheduleError when it holds a line break or another control character.

    Mail headers end at CR/LF: one inside a subject, an address or a display name would let the
    text add headers (Bcc: ...) to every message sent. The check is the mailer's own, so what is
    saved here is what the mailer accepts later.
    """
    try:
        return one_line(value, what)
    except ValueError as exc:
        raise ScheduleError(str(exc)) from None


def check_address(raw: str) -> str:
    """One e-mail address, trimmed; ScheduleError when it is not a plain, valid address."""
    try:
        return mail_address(raw, "recipient")
    except ValueError as exc:
        raise ScheduleError(str(exc)) from None


def check_recipients(raw: Iterable[str]) -> list[str]:
    """Valid addresses, once each (case-insensitive), in the order given; at least one."""
    seen: dict[str, str] = {}
    for item in raw:
        reject_line_breaks(item, f"recipient {item.strip()!r}")
        for part in re.split(r"[,;]", item):
            if part.strip():
                address = check_address(part)
                seen.setdefault(address.lower(), address)
    if not seen:
        raise ScheduleError("Add at least one recipient.")
    if len(seen) > MAX_RECIPIENTS:
        raise ScheduleError(f"A schedule may have at most {MAX_RECIPIENTS} recipients, not {len(seen)}.")
    return list(seen.values())


def check_template(text: str, what: str) -> str:
    """`text` when its only placeholders are {report}, {period} and {business}; ScheduleError otherwise."""
    allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError:
        raise ScheduleError(
            f"The {what} has an unmatched brace; placeholders are {allowed} (write {{{{ or }}}} for a brace)."
        ) from None
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ScheduleError(f"Unknown placeholder {shown} in the {what}; use {allowed}.")
    return text


def render_text(template: str, *, report: str, period: str, business: str) -> str:
    """Fill the placeholders of a validated subject or message."""
    return template.format(report=report, period=period, business=business)


def render_subject(template: str, *, report: str, period: str, business: str) -> str:
    """The subject line: placeholders filled, then any line break from the values made a space."""
    text = render_text(template, report=report, period=period, business=business)
    return " ".join(re.sub(r"[\x00-\x1f\x7f\u2028\u2029\x85]", " ", text).split())[:MAX_SUBJECT]


def _check_parameters(slug: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
    owned = [k for k in parameters if k in _SCHEDULE_OWNED_PARAMS]
    if owned:
        raise ScheduleError(
            f"Set {', '.join(owned)} with the schedule's own period and time zone, not as a report parameter."
        )
    try:
        params = ReportParams.from_mapping(parameters)
    except ParamError as exc:
        raise ScheduleError(str(exc)) from None
    defn = definition(slug)
    for dim in params.filters:
        if dim not in defn.filters:
            raise ScheduleError(
                f"Report {slug!r} cannot be filtered by {dim!r}; its filters are: {', '.join(defn.filters) or 'none'}."
            )
    known = {o.name: o for o in defn.options}
    for name, value in params.options.items():
        if name not in known:
            takes = [*known, *defn.filters] or ["no other parameters"]
            raise ScheduleError(f"Report {slug!r} has no parameter {name!r}; it takes: {', '.join(takes)}.")
        if known[name].choices and value not in known[name].choices:
            raise ScheduleError(f"{name} must be one of {', '.join(known[name].choices)}, not {value!r}.")
    return {k: v for k, v in params.to_dict().items() if k != "tz"}


def validate_spec(session: Session, business_id: int, spec: ScheduleSpec, owner: User | None) -> ScheduleSpec:
    """The spec cleaned and checked (every message says what to fix), or ScheduleError."""
    saved: SavedReport | None = None
    slug = spec.report_slug
    formats: Sequence[str] = spec.formats
    if spec.saved_report_id is not None:
        saved = session.get(SavedReport, spec.saved_report_id)
        if saved is None or saved.business_id != business_id or not saved.active:
            raise ScheduleError("No such saved report.")
        slug = saved.report_slug
        formats = spec.formats or tuple(f for f in saved.formats.split(",") if f)
    try:
        defn = definition(slug)
    except ParamError as exc:
        raise ScheduleError(str(exc)) from None
    role = owner.role if owner is not None else "manager"
    if not report_allowed(Scope(business_id, "", role), slug):
        raise ScheduleError(f"The schedule's owner ({role}) may not generate the {slug!r} report.")
    try:
        chosen = check_formats(list(formats))
    except ParamError as exc:
        raise ScheduleError(str(exc)) from None
    try:
        time_zone(spec.timezone)
        rule = validate_rule(spec.rule_kind, spec.rule)
    except RuleError as exc:
        raise ScheduleError(str(exc)) from None
    if spec.period not in RELATIVE_PERIODS:
        raise ScheduleError(f"Unknown period {spec.period!r}; choose one of: {', '.join(RELATIVE_PERIODS)}.")
    if spec.large_file_mode not in LARGE_FILE_MODES:
        raise ScheduleError(f"Large files are sent as 'attach' or 'link', not {spec.large_file_mode!r}.")
    try:
        webhooks = check_urls(list(spec.webhooks), "webhook URL")
        slack = check_urls(list(spec.slack), "Slack webhook URL")
        condition = parse_condition(spec.condition) if spec.condition.strip() else None
    except WebhookError as exc:
        raise ScheduleError(str(exc)) from None
    if any(r.strip() for r in spec.recipients) or not (webhooks or slack):
        recipients = check_recipients(spec.recipients)
    else:
        recipients = []  # delivered to webhooks or Slack only
    if spec.when_changes and condition is None:
        raise ScheduleError("'Only when it changes' needs a condition (e.g. 'margin_pct < 0.25').")
    subject = check_template(reject_line_breaks(spec.subject, "subject"), "subject").strip()
    if not subject:
        raise ScheduleError("Give the e-mail a subject.")
    if len(subject) > MAX_SUBJECT:
        raise ScheduleError(
            f"The subject is too long ({len(subject)} characters); keep it under {MAX_SUBJECT}."
        )
    message = check_template(spec.message.replace("\r\n", "\n"), "message")
    name = " ".join(reject_line_breaks(spec.name, "schedule name").split())
    if not name:
        title = saved.name if saved is not None else defn.title
        name = f"{title}, {describe_rule(spec.rule_kind, rule).lower()}"[:MAX_NAME]
    if len(name) > MAX_NAME:
        raise ScheduleError(f"The name is too long ({len(name)} characters); keep it under {MAX_NAME}.")
    parameters = {} if saved is not None else _check_parameters(slug, spec.parameters)
    return ScheduleSpec(
        report_slug=slug,
        rule_kind=spec.rule_kind,
        rule=rule,
        recipients=tuple(recipients),
        formats=chosen,
        timezone=spec.timezone,
        period=spec.period,
        name=name,
        parameters=parameters,
        saved_report_id=spec.saved_report_id,
        subject=subject,
        message=message,
        skip_if_empty=bool(spec.skip_if_empty),
        large_file_mode=spec.large_file_mode,
        notify_success=bool(spec.notify_success),
        active=bool(spec.active),
        webhooks=tuple(webhooks),
        slack=tuple(slack),
        condition=condition.text if condition is not None else "",
        when_changes=bool(spec.when_changes),
    )


# --- reading ----------------------------------------------------------------------------------


def _require_manager(session: Session, scope: Scope) -> None:
    """Forbidden (audited) unless the acting user is, per the database now, an active manager or
    admin of the scope's business (or the operator)."""
    acting_user(
        session,
        scope,
        MANAGING_ROLES,
        "manage_schedules",
        message="Only managers and admins can manage schedules.",
    )


def _get(session: Session, scope: Scope, schedule_id: int) -> Schedule:
    _require_manager(session, scope)
    row = session.get(Schedule, schedule_id) if storable_id(schedule_id) else None
    if row is None or row.business_id != scope.business_id:
        if row is not None:  # another business's schedule: answered like a missing one, and audited
            record_refusal(
                session,
                scope.business_id,
                user=scope.user,
                action="manage_schedules",
                reason="the schedule belongs to another business",
                entity="schedule",
                entity_id=str(schedule_id),
            )
        raise NotFound("No such schedule.")
    return row


def _owner_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(wanted))).all()
    return {int(uid): str(name) for uid, name in rows}


def _info(row: Schedule, owner: str) -> ScheduleInfo:
    try:
        title = definition(row.report_slug).title
    except ParamError:
        title = row.report_slug
    return ScheduleInfo(
        id=row.id,
        business_id=row.business_id,
        name=row.name,
        report_slug=row.report_slug,
        report_title=title,
        saved_report_id=row.saved_report_id,
        parameters=dict(row.parameters or {}),
        formats=tuple(f for f in row.formats.split(",") if f),
        recipients=tuple(row.recipients or ()),
        subject=row.subject,
        message=row.message,
        rule_kind=row.rule_kind,
        rule=dict(row.rule or {}),
        rule_text=describe_rule(row.rule_kind, row.rule or {}),
        timezone=row.timezone,
        period=row.period,
        skip_if_empty=row.skip_if_empty,
        large_file_mode=row.large_file_mode,
        notify_success=row.notify_success,
        active=row.active,
        owner=owner,
        next_due_at=row.next_due_at,
        last_due_at=row.last_due_at,
        webhooks=tuple(row.webhooks or ()),
        slack=tuple(row.slack_webhooks or ()),
        condition=f"{row.alert_kpi} {row.alert_op} {row.alert_value}" if row.alert_kpi else "",
        when_changes=bool(row.alert_kpi and row.alert_on_change),
    )


def get_schedule(session: Session, scope: Scope, schedule_id: int) -> ScheduleInfo:
    """One schedule of the caller's business; NotFound for a missing or foreign id."""
    row = _get(session, scope, schedule_id)
    return _info(row, _owner_names(session, [row.owner_id]).get(row.owner_id or 0, ""))


def list_schedules(session: Session, scope: Scope) -> list[ScheduleInfo]:
    """Every schedule of the caller's business: active first, then by next run time, then name."""
    _require_manager(session, scope)
    rows = session.scalars(
        select(Schedule).where(Schedule.business_id == scope.business_id).order_by(Schedule.id)
    ).all()
    owners = _owner_names(session, [r.owner_id for r in rows])
    far = dt.datetime.max
    rows = sorted(rows, key=lambda r: (not r.active, r.next_due_at or far, r.name.lower(), r.id))
    return [_info(r, owners.get(r.owner_id or 0, "")) for r in rows]


def next_run_times(info: ScheduleInfo, *, now: dt.datetime, n: int = 5) -> list[Occurrence]:
    """The next `n` run times in the schedule's own zone (none while paused)."""
    if not info.active:
        return []
    after = utc_naive(aware(now))
    if info.last_due_at is not None:
        after = max(after, info.last_due_at)
    try:
        return upcoming(info.rule_kind, info.rule, info.timezone, after, n)
    except RuleError:
        return []


def upcoming_schedules(
    session: Session, scope: Scope, *, now: dt.datetime, limit: int = 20
) -> list[ScheduleInfo]:
    """Active schedules whose next run is still ahead, soonest first."""
    _require_manager(session, scope)
    stamp = utc_naive(aware(now))
    rows = session.scalars(
        select(Schedule)
        .where(
            Schedule.business_id == scope.business_id,
            Schedule.active.is_(True),
            Schedule.next_due_at >= stamp,
        )
        .order_by(Schedule.next_due_at, Schedule.id)
        .limit(limit)
    ).all()
    owners = _owner_names(session, [r.owner_id for r in rows])
    return [_info(r, owners.get(r.owner_id or 0, "")) for r in rows]


def overdue_schedules(
    session: Session, scope: Scope, *, now: dt.datetime, slack: dt.timedelta = dt.timedelta(seconds=60)
) -> list[ScheduleInfo]:
    """Active schedules whose next run is more than `slack` (about two daemon ticks) in the past.

    A claimed window moves next_due_at on in the same transaction, so a schedule listed here has
    not been claimed by any daemon: the scheduler is stopped, stuck or far behind.
    """
    _require_manager(session, scope)
    stamp = utc_naive(aware(now))
    rows = session.scalars(
        select(Schedule)
        .where(
            Schedule.business_id == scope.business_id,
            Schedule.active.is_(True),
            Schedule.next_due_at < stamp - slack,
        )
        .order_by(Schedule.next_due_at, Schedule.id)
    ).all()
    owners = _owner_names(session, [r.owner_id for r in rows])
    return [_info(r, owners.get(r.owner_id or 0, "")) for r in rows]


def schedule_runs(
    session: Session,
    scope: Scope,
    schedule_id: int | None = None,
    *,
    limit: int = 20,
    run_id: int | None = None,
) -> list[RunStatus]:
    """The newest runs (windows) of one schedule, or of all the business's schedules (only those
    that emailed report run `run_id`, when given), each with the delivery status of every message
    it queued."""
    _require_manager(session, scope)
    query = select(ScheduleRun).where(ScheduleRun.business_id == scope.business_id)
    if run_id is not None:
        query = query.where(ScheduleRun.run_id == run_id)
    tz_by_schedule: dict[int, str]
    if schedule_id is not None:
        row = _get(session, scope, schedule_id)
        query = query.where(ScheduleRun.schedule_id == schedule_id)
        tz_by_schedule = {row.id: row.timezone}
    else:
        zones = session.execute(
            select(Schedule.id, Schedule.timezone).where(Schedule.business_id == scope.business_id)
        ).all()
        tz_by_schedule = {int(sid): str(tz) for sid, tz in zones}
    runs = session.scalars(
        query.order_by(ScheduleRun.due_at.desc(), ScheduleRun.id.desc()).limit(limit)
    ).all()
    by_run: dict[int, list[Delivery]] = {r.id: [] for r in runs}
    if runs:
        messages = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.schedule_run_id.in_(list(by_run)))
            .order_by(OutboxMessage.id)
        ).all()
        for m in messages:
            by_run[m.schedule_run_id or 0].append(
                Delivery(
                    m.recipient,
                    m.kind,
                    m.status,
                    m.attempts,
                    m.last_error,
                    m.sent_at,
                    m.message_id,
                    m.written_to or "",
                )
            )
    out = []
    for r in runs:
        zone = time_zone(tz_by_schedule.get(r.schedule_id, "UTC"))
        out.append(
            RunStatus(
                id=r.id,
                schedule_id=r.schedule_id,
                due_at=r.due_at,
                due_local=r.due_at.replace(tzinfo=dt.UTC).astimezone(zone),
                status=r.status,
                claimed_by=r.claimed_by,
                attempts=r.attempts,
                run_id=r.run_id,
                error=r.error,
                started_at=r.started_at,
                finished_at=r.finished_at,
                deliveries=tuple(by_run[r.id]),
            )
        )
    return out


# --- writing ----------------------------------------------------------------------------------


def compute_next_due(row: Schedule, now: dt.datetime) -> dt.datetime | None:
    """When the schedule is next due after `now` (never at or before a window already handled, so
    a clock that stepped back re-runs nothing); None while paused."""
    if not row.active:
        return None
    after = utc_naive(aware(now))
    if row.last_due_at is not None:
        after = max(after, row.last_due_at)
    return next_due(row.rule_kind, row.rule, row.timezone, after)


def _owner(session: Session, business_id: int, username: str | None) -> User | None:
    """The schedule's owner: `username` (a manager or admin of the business), or by default the
    business's first active admin (the CLI has no logged-in user)."""
    if username:
        user = session.scalar(select(User).where(User.business_id == business_id, User.username == username))
        if user is None:
            raise ScheduleError(f"No user {username!r} in this business.")
        if user.role not in MANAGING_ROLES or not user.active:
            raise ScheduleError(
                f"User {username!r} cannot own schedules: only active managers and admins can."
            )
        return user
    return session.scalar(
        select(User)
        .where(User.business_id == business_id, User.role == "admin", User.active.is_(True))
        .order_by(User.id)
        .limit(1)
    )


def _apply(row: Schedule, spec: ScheduleSpec) -> None:
    row.name = spec.name
    row.saved_report_id = spec.saved_report_id
    row.report_slug = spec.report_slug
    row.parameters = dict(spec.parameters)
    row.formats = ",".join(spec.formats)
    row.recipients = list(spec.recipients)
    row.subject = spec.subject
    row.message = spec.message
    row.rule_kind = spec.rule_kind
    row.rule = dict(spec.rule)
    row.timezone = spec.timezone
    row.period = spec.period
    row.skip_if_empty = spec.skip_if_empty
    row.large_file_mode = spec.large_file_mode
    row.notify_success = spec.notify_success
    row.active = spec.active
    row.webhooks = list(spec.webhooks)
    row.slack_webhooks = list(spec.slack)
    condition = parse_condition(spec.condition) if spec.condition else None
    row.alert_kpi = condition.kpi if condition else ""
    row.alert_op = condition.op if condition else ""
    row.alert_value = str(condition.value) if condition else ""
    row.alert_on_change = bool(condition and spec.when_changes)


def _ensure_secret(session: Session, row: Schedule, settings: Settings | None) -> str:
    """A new webhook signing secret (returned in plain text, stored encrypted) when the schedule
    has webhooks and no secret yet; '' otherwise. Removing every webhook forgets the secret."""
    if not row.webhooks:
        row.webhook_secret_encrypted, row.webhook_key_fingerprint = "", ""
        return ""
    if row.webhook_secret_encrypted:
        return ""
    plain = new_secret()
    try:
        row.webhook_secret_encrypted, row.webhook_key_fingerprint = encrypt_secret(
            session, settings or Settings.from_env(), plain
        )
    except SecretKeyError as exc:
        raise ScheduleError(f"The webhook secret cannot be stored: {exc}") from None
    return plain


def _audit(
    session: Session, scope: Scope, row: Schedule, event: str, stamp: dt.datetime, **detail: Any
) -> None:
    record_event(
        session,
        scope.business_id,
        event,
        user=scope.user,
        entity="schedule",
        entity_id=str(row.id),
        detail={"name": row.name, "report": row.report_slug, **detail},
        at=stamp,
    )


def create_schedule(
    session: Session,
    scope: Scope,
    spec: ScheduleSpec,
    *,
    now: dt.datetime,
    owner: str | None = None,
    settings: Settings | None = None,
) -> ScheduleInfo:
    """Validate and save a new schedule owned by `owner` (default: the caller); commits. With
    webhooks, the returned info carries the new signing secret (shown once; `settings` holds the
    secret key, default from the environment)."""
    _require_manager(session, scope)
    user = _owner(session, scope.business_id, owner if owner is not None else scope.user or None)
    clean = validate_spec(session, scope.business_id, spec, user)
    stamp = utc_naive(aware(now))
    row = Schedule(business_id=scope.business_id, owner_id=user.id if user else None, created_at=stamp)
    _apply(row, clean)
    secret = _ensure_secret(session, row, settings)
    row.updated_at = stamp
    row.next_due_at = compute_next_due(row, stamp)
    session.add(row)
    session.flush()
    _audit(session, scope, row, "schedule_created", stamp, rule=describe_rule(row.rule_kind, row.rule))
    session.commit()
    return dataclasses.replace(_info(row, user.username if user else ""), webhook_secret=secret)


def update_schedule(
    session: Session,
    scope: Scope,
    schedule_id: int,
    spec: ScheduleSpec,
    *,
    now: dt.datetime,
    settings: Settings | None = None,
) -> ScheduleInfo:
    """Replace a schedule's settings (its owner stays); the next run time is recomputed; commits.
    A first webhook makes a signing secret (in the returned info, shown once)."""
    row = _get(session, scope, schedule_id)
    owner = session.get(User, row.owner_id) if row.owner_id is not None else None
    clean = validate_spec(session, scope.business_id, spec, owner)
    stamp = utc_naive(aware(now))
    _apply(row, clean)
    secret = _ensure_secret(session, row, settings)
    row.updated_at = stamp
    row.next_due_at = compute_next_due(row, stamp)
    _audit(session, scope, row, "schedule_updated", stamp, rule=describe_rule(row.rule_kind, row.rule))
    session.commit()
    return dataclasses.replace(_info(row, owner.username if owner else ""), webhook_secret=secret)


def pause_schedule(session: Session, scope: Scope, schedule_id: int, *, now: dt.datetime) -> ScheduleInfo:
    """Stop a schedule until resumed (windows while paused are not runs, nor missed); commits."""
    row = _get(session, scope, schedule_id)
    stamp = utc_naive(aware(now))
    if row.active:
        row.active = False
        row.next_due_at = None
        row.updated_at = stamp
        _audit(session, scope, row, "schedule_paused", stamp)
        session.commit()
    return get_schedule(session, scope, schedule_id)


def resume_schedule(session: Session, scope: Scope, schedule_id: int, *, now: dt.datetime) -> ScheduleInfo:
    """Start a paused schedule again from its next window after `now`; commits."""
    row = _get(session, scope, schedule_id)
    stamp = utc_naive(aware(now))
    if not row.active:
        row.active = True
        try:
            row.next_due_at = compute_next_due(row, stamp)
        except RuleError as exc:
            raise ScheduleError(str(exc)) from None
        row.updated_at = stamp
        _audit(session, scope, row, "schedule_resumed", stamp)
        session.commit()
    return get_schedule(session, scope, schedule_id)


def delete_schedule(session: Session, scope: Scope, schedule_id: int, *, now: dt.datetime) -> None:
    """Delete a schedule with its run log and outbox rows (the report runs and files stay); commits."""
    row = _get(session, scope, schedule_id)
    stamp = utc_naive(aware(now))
    _audit(session, scope, row, "schedule_deleted", stamp)
    run_ids = select(ScheduleRun.id).where(ScheduleRun.schedule_id == row.id)
    session.execute(delete(OutboxMessage).where(OutboxMessage.schedule_run_id.in_(run_ids)))
    session.execute(delete(ScheduleRun).where(ScheduleRun.schedule_id == row.id))
    session.delete(row)
    session.commit()


def run_now(session: Session, scope: Scope, schedule_id: int, *, now: dt.datetime) -> RunStatus:
    """Ask the daemon to run the schedule once at its next tick, for the period as of `now`; commits.

    The request is a window with due time `now` (to the second) in status 'requested'; the daemon
    claims it like any other window, so it runs once however many daemons there are.
    """
    row = _get(session, scope, schedule_id)
    stamp = utc_naive(aware(now)).replace(microsecond=0)
    request = ScheduleRun(
        schedule_id=row.id,
        business_id=row.business_id,
        due_at=stamp,
        status="requested",
        claimed_by="",
        attempts=0,
        created_at=stamp,
    )
    session.add(request)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ScheduleConflict(
            "This schedule already has a run for this very second; wait a moment."
        ) from None
    _audit(session, scope, row, "schedule_run_requested", stamp, due_at=stamp.isoformat())
    session.commit()
    return _status(row, request)


def _status(row: Schedule, run: ScheduleRun) -> RunStatus:
    return RunStatus(
        id=run.id,
        schedule_id=row.id,
        due_at=run.due_at,
        due_local=run.due_at.replace(tzinfo=dt.UTC).astimezone(time_zone(row.timezone)),
        status=run.status,
        claimed_by=run.claimed_by,
        attempts=run.attempts,
        run_id=run.run_id,
        error=run.error,
        started_at=run.started_at,
        finished_at=run.finished_at,
        deliveries=(),
    )


def business_name(session: Session, business_id: int) -> str:
    return session.scalar(select(Business.name).where(Business.id == business_id)) or ""
