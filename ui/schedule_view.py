"""Schedules page pieces: the scheduler heartbeat, the schedules table, the create/edit form, the
actions (pause, resume, run now, delete) and a schedule's next run times, runs and deliveries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import pandas as pd
import streamlit as st

from analytics.labels import words
from analytics.periods import PERIOD_LABELS, RELATIVE_PERIODS
from core.clock import utc_now
from core.errors import TallyboardError
from mail.delivery import smtp_problem, untold_warning
from mail.smtp_config import delivery_status
from mail.webhooks import shown_url
from runs import saved
from runs.access import allowed_reports
from runs.files import format_label
from scheduling import schedules as sched
from scheduling.heartbeat import scheduler_status
from scheduling.schedules import RunStatus, ScheduleInfo, ScheduleSpec
from scheduling.summary import Subscription
from scheduling.timerules import RULE_KINDS
from ui.builder import format_choices
from ui.context import PageContext
from ui.formatting import local_text, without_paths
from ui.tables import plain_table

NOTICE = "schedules_notice"
PICK = "schedules_pick"
PICK_NEXT = "schedules_pick_next"
NEW = 0
RULE_LABELS = {
    "daily": "Daily",
    "weekly": "Weekly",
    "monthly": "Monthly",
    "every_n_days": "Every N days",
    "cron": "Cron expression",
}
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_DAYS: tuple[int | str, ...] = (*range(1, 29), "last")
LARGE_FILE_LABELS = {"link": "Send a download link", "attach": "Attach anyway"}
NO_CONDITION = "(always send)"
DELIVERY_KINDS = {
    "report": "Report email",
    "webhook": "Webhook",
    "slack": "Slack",
    "failure_notice": "Failure notice",
    "success_notice": "Sent notice",
}
# KPIs an alert is often set on (any KPI key of the report may be typed in).
ALERT_KPIS = {
    NO_CONDITION: "(always send)",
    "revenue": "Revenue (revenue)",
    "gross_profit": "Gross profit (gross_profit)",
    "margin_pct": "Margin (margin_pct, 0.25 = 25 %)",
    "orders": "Orders (orders)",
    "cash_received": "Cash received (cash_received)",
    "outstanding": "Outstanding (outstanding)",
    "outstanding_total": "Outstanding, credit report (outstanding_total)",
    "exceptions": "Forecast exceptions (exceptions)",
    "out_of_stock": "Out of stock (out_of_stock)",
    "low_stock": "Low stock (low_stock)",
    "anomalies": "Anomalies found, statistical forecast (anomalies > 0: an anomaly was found)",
}
OPERATORS = ["<", "<=", ">", ">=", "==", "!="]


@cache
def zones() -> list[str]:
    return sorted(z for z in available_timezones() if "/" in z or z == "UTC")


def heartbeat(ctx: PageContext) -> None:
    """'Scheduler last seen 12 s ago', or a warning that says how to start it; a warning when the
    business's mail server refused its settings (no email goes out until they change), and one naming
    who will not be told when a schedule fails (no owner, admin or notification address)."""
    with ctx.session() as session:
        status = scheduler_status(session, now=utc_now())
        mail_problem = smtp_problem(session, ctx.settings, ctx.business_id)
        untold = untold_warning(session, ctx.business_id)
    if mail_problem:
        st.error(mail_problem, icon=":material/mail_lock:")
    if untold:
        fix = (
            "Add an email address to an admin, or set the business's notification address, in Admin."
            if ctx.role == "admin"
            else "Ask an admin to add an email address to their account or to set the business's "
            "notification address."
        )
        st.warning(f"{untold} {fix}", icon=":material/notifications_off:")
    if status.running:
        st.caption(f":material/check_circle: {status.text}")
    else:
        detail = status.text.removeprefix("Scheduler not running")
        st.warning(
            f"The scheduler is not running{detail}: start it with `python scheduler_daemon.py` "
            "(or `make run`). Until then no schedule runs.",
            icon=":material/warning:",
        )


def email_notice(ctx: PageContext) -> None:
    """When the business has no mail server (its email is only written to files on the server): say
    so, and who can change it — never the server's folder."""
    with ctx.session() as session:
        status = delivery_status(session, ctx.settings, ctx.business_id)
    if not no_mail_server(status):
        return
    who = (
        "Set it up in Admin → Email."
        if ctx.role == "admin"
        else "Ask an administrator to set up email (Admin → Email)."
    )
    st.info(
        f"Email is not set up yet: scheduled reports are generated and kept in History, but not sent. {who}",
        icon=":material/mail:",
    )


def no_mail_server(status: str) -> bool:
    """True when mail/smtp_config.delivery_status says email only goes to the outbox folder."""
    return status.startswith("SMTP is not set up")


def prepare_pick(options: Sequence[int]) -> None:
    """Select the schedule just created, or "new" when the selected one is gone."""
    if (made := st.session_state.pop(PICK_NEXT, None)) is not None:
        st.session_state[PICK] = made
    if st.session_state.get(PICK) not in options:
        st.session_state[PICK] = NEW


def notice() -> None:
    if message := st.session_state.pop(NOTICE, None):
        st.success(message)


def act(done: str | Callable[[], str], action: Callable[[], object]) -> None:
    """Run one schedule change; on success rerun and show `done` (or what it returns), else say what
    is wrong."""
    try:
        action()
    except TallyboardError as exc:
        st.error(without_paths(str(exc)))
        return
    st.session_state[NOTICE] = done() if callable(done) else done
    st.rerun()


def when(ctx: PageContext, info: ScheduleInfo) -> str:
    """The next run in the business's named time zone, e.g. 'Fri 2026-11-20 08:00 CET'."""
    if not info.active:
        return "paused"
    return local_text(info.next_due_at, ctx.timezone, "%a %Y-%m-%d %H:%M")


def rule_text(ctx: PageContext, rule: str, tz: str) -> str:
    """The time rule; with its zone's place when that is not the business's zone ('Daily at 07:30
    (New York)': the rule's hours are that place's)."""
    return rule if tz == ctx.timezone else f"{rule} ({tz.rsplit('/', 1)[-1].replace('_', ' ')})"


def label(ctx: PageContext, info: ScheduleInfo) -> str:
    return f"{info.name} — {info.rule_text} ({'active' if info.active else 'paused'})"


def last_statuses(ctx: PageContext) -> dict[int, str]:
    """What happened in each schedule's newest run, in words ("sent", "partly sent (3 of 4)", ...)."""
    with ctx.session() as session:
        runs = sched.schedule_runs(session, ctx.scope, None, limit=500)
    out: dict[int, str] = {}
    for run in runs:
        out.setdefault(run.schedule_id, run.text)
    return out


def schedules_table(ctx: PageContext, infos: Sequence[ScheduleInfo], key: str) -> None:
    """The schedules, one row each, in a table that fits the page (times in the business's zone)."""
    last = last_statuses(ctx)
    frame = pd.DataFrame(
        [
            {
                "Name": i.name,
                "Report": i.report_title,
                "When": rule_text(ctx, i.rule_text, i.timezone),
                "Next run": when(ctx, i),
                "Status": "active" if i.active else "paused",
                "Last run": last.get(i.id, "") or "never run",
                "Delivers to": i.targets_text,
                "Condition": i.condition_text or "—",
            }
            for i in infos
        ]
    )
    plain_table(frame, key=key, cap=170)


# --- the form ---------------------------------------------------------------------------------


def _sources(ctx: PageContext) -> dict[str, str]:
    """'report:<slug>' and 'saved:<id>' choices with their labels."""
    out = {f"report:{r.slug}": r.title for r in allowed_reports(ctx.scope)}
    with ctx.session() as session:
        for item in saved.list_saved(session, ctx.scope, ctx.user_id):
            if not item.system and item.active:
                out[f"saved:{item.id}"] = f"{item.name} ({item.kind.lower()} of {item.title})"
    return out


def _rule_fields(kind: str, rule: dict[str, Any], k: str) -> dict[str, Any]:
    """The widgets of one rule kind; returns the rule mapping scheduling/timerules validates."""
    if kind == "cron":
        expr = st.text_input(
            "Cron expression",
            value=str(rule.get("expr", "0 8 * * 1-5")),
            key=f"{k}_cron",
            help="minute hour day-of-month month day-of-week, in the schedule's time zone; "
            "'0 8 * * 1-5' = weekdays at 08:00.",
        )
        return {"expr": expr}
    cols = st.columns(2)
    at = cols[0].time_input(
        "At (local time)", value=_time(rule.get("time", "08:00")), step=300, key=f"{k}_time"
    )
    out: dict[str, Any] = {"time": at.strftime("%H:%M") if at else ""}
    if kind == "weekly":
        days = cols[1].multiselect(
            "On",
            range(7),
            default=rule.get("weekdays", [0]),
            format_func=lambda d: WEEKDAY_NAMES[d],
            key=f"{k}_weekdays",
        )
        out["weekdays"] = list(days)
    elif kind == "monthly":
        day = rule.get("day", 1)
        out["day"] = cols[1].selectbox(
            "Day of the month",
            MONTH_DAYS,
            index=MONTH_DAYS.index(day) if day in MONTH_DAYS else 0,
            format_func=lambda d: "Last day" if d == "last" else str(d),
            key=f"{k}_day",
            help="1 to 28, or the last day (29-31 are missing in some months).",
        )
    elif kind == "every_n_days":
        out["n"] = int(cols[1].number_input("Every N days", 1, 365, int(rule.get("n", 2)), key=f"{k}_n"))
        start = rule.get("start")
        out["start"] = st.date_input(
            "Counting from",
            value=dt.date.fromisoformat(start) if start else dt.date.today(),
            key=f"{k}_start",
        )
    return out


def _time(text: object) -> dt.time:
    try:
        return dt.time.fromisoformat(str(text))
    except ValueError:
        return dt.time(8, 0)


def split_recipients(text: str) -> list[str]:
    """One address per line or comma separated (scheduling/schedules splits commas too)."""
    return [line for line in text.splitlines() if line.strip()]


def schedule_form(ctx: PageContext, info: ScheduleInfo | None) -> None:
    """Create a schedule (info None) or edit one; errors from scheduling/schedules are shown as they are."""
    k = f"schedules_{info.id if info else 'new'}"
    sources = _sources(ctx)
    current = (
        (f"saved:{info.saved_report_id}" if info.saved_report_id else f"report:{info.report_slug}")
        if info
        else next(iter(sources))
    )
    rule_kind = st.selectbox(
        "Repeat",
        RULE_KINDS,
        index=RULE_KINDS.index(info.rule_kind) if info else 0,
        format_func=RULE_LABELS.__getitem__,
        key=f"{k}_kind",
    )
    with st.form(f"{k}_form", border=True):
        rule = _rule_fields(rule_kind, info.rule if info and info.rule_kind == rule_kind else {}, k)
        left, right = st.columns(2)
        zone_list = zones()
        zone = info.timezone if info else ctx.timezone
        timezone = left.selectbox(
            "Time zone", zone_list, index=zone_list.index(zone) if zone in zone_list else 0, key=f"{k}_tz"
        )
        period = right.selectbox(
            "Report period (as of each run)",
            RELATIVE_PERIODS,
            index=RELATIVE_PERIODS.index(
                info.period if info and info.rule_kind == rule_kind else sched.default_period(rule_kind)
            ),
            format_func=PERIOD_LABELS.__getitem__,
            key=f"{k}_period_{rule_kind}",  # a new frequency starts from its own default period
        )
        source = left.selectbox(
            "Report or saved report",
            list(sources),
            index=list(sources).index(current) if current in sources else 0,
            format_func=sources.__getitem__,
            key=f"{k}_source",
        )
        choices = format_choices()
        formats = right.multiselect(
            "File formats",
            choices,
            default=[f for f in (info.formats if info else ("pdf",)) if f in choices],
            format_func=format_label,
            key=f"{k}_formats",
        )
        recipients = st.text_area(
            "Recipients",
            value="\n".join(info.recipients) if info else ctx.email,
            help="E-mail addresses, one per line or separated by commas.",
            key=f"{k}_recipients",
        )
        hook_left, hook_right = st.columns(2)
        webhooks = hook_left.text_area(
            "Webhook URLs (optional)",
            value="\n".join(info.webhooks) if info else "",
            help="Each run POSTs the report's JSON document here, signed with the schedule's secret "
            "(Tallyboard-Signature header). One https:// URL per line.",
            key=f"{k}_webhooks",
        )
        slack = hook_right.text_area(
            "Slack incoming-webhook URLs (optional)",
            value="\n".join(info.slack) if info else "",
            help="A Slack message with the KPIs, their comparisons and a link to the run.",
            key=f"{k}_slack",
        )
        kpi_col, op_col, value_col = st.columns([2, 1, 1])
        current_kpi, current_op, current_value = (
            info.condition.split(" ", 2) if info and info.condition else ("", "<", "")
        )
        kpi_options = [NO_CONDITION, *ALERT_KPIS]
        if current_kpi and current_kpi not in kpi_options:
            kpi_options.append(current_kpi)
        alert_kpi = kpi_col.selectbox(
            "Send only when this KPI…",
            kpi_options,
            index=kpi_options.index(current_kpi) if current_kpi else 0,
            format_func=lambda key: ALERT_KPIS.get(key, key),
            accept_new_options=True,
            help="An alert: the report goes out only when the condition holds (type another KPI key if "
            "yours is not listed).",
            key=f"{k}_alert_kpi",
        )
        alert_op = op_col.selectbox("is", OPERATORS, index=OPERATORS.index(current_op), key=f"{k}_alert_op")
        alert_value = value_col.text_input(
            "Value",
            value=current_value,
            help="A number; ratios like margin as 0.25 for 25 %.",
            key=f"{k}_alert_value",
        )
        when_changes = st.checkbox(
            "Only when it changes from false to true",
            value=info.when_changes if info else False,
            key=f"{k}_alert_changes",
        )
        subject = st.text_input(
            "Subject",
            value=info.subject if info else "{report} for {period}",
            help="Placeholders: {report}, {period}, {business}.",
            key=f"{k}_subject",
        )
        message = st.text_area(
            "Message (optional)",
            value=info.message if info else "",
            help="Shown above the report. Placeholders: {report}, {period}, {business}.",
            key=f"{k}_message",
        )
        name = st.text_input(
            "Name (optional)",
            value=info.name if info else "",
            key=f"{k}_name",
            help="Made from the report and rule when blank.",
        )
        a, b = st.columns(2)
        skip_if_empty = a.checkbox(
            "Skip when the report is empty", value=info.skip_if_empty if info else False, key=f"{k}_skip"
        )
        notify_success = a.checkbox(
            "Tell me when it was sent", value=info.notify_success if info else False, key=f"{k}_notify"
        )
        active = a.checkbox("Active", value=info.active if info else True, key=f"{k}_active")
        large = b.radio(
            "Files over the attachment limit",
            list(LARGE_FILE_LABELS),
            index=list(LARGE_FILE_LABELS).index(info.large_file_mode if info else "link"),
            format_func=LARGE_FILE_LABELS.__getitem__,
            key=f"{k}_large",
        )
        submitted = st.form_submit_button("Save changes" if info else "Create schedule", type="primary")
    if not submitted:
        return
    what, _, ref = source.partition(":")
    spec = ScheduleSpec(
        report_slug=ref if what == "report" else "",
        saved_report_id=int(ref) if what == "saved" else None,
        rule_kind=rule_kind,
        rule={k2: (v.isoformat() if isinstance(v, dt.date) else v) for k2, v in rule.items()},
        recipients=split_recipients(recipients),
        webhooks=split_recipients(webhooks),
        slack=split_recipients(slack),
        condition=f"{alert_kpi} {alert_op} {alert_value.strip()}"
        if alert_kpi and alert_kpi != NO_CONDITION
        else "",
        when_changes=when_changes,
        formats=tuple(formats),
        timezone=timezone,
        period=period,
        name=name,
        subject=subject,
        message=message,
        skip_if_empty=skip_if_empty,
        large_file_mode=large,
        notify_success=notify_success,
        active=active,
    )

    secret: list[str] = []

    def save() -> None:
        with ctx.session() as session:
            if info is None:
                made = sched.create_schedule(session, ctx.scope, spec, now=utc_now(), settings=ctx.settings)
                st.session_state[PICK_NEXT] = made.id
            else:
                made = sched.update_schedule(
                    session, ctx.scope, info.id, spec, now=utc_now(), settings=ctx.settings
                )
            if made.webhook_secret:
                secret.append(made.webhook_secret)

    def done() -> str:
        text = f"Saved the schedule “{name or 'new schedule'}”." if info is None else "Saved your changes."
        if secret:
            text += (
                f" Webhook signing secret, shown only now — give it to the receiver: {secret[0]} "
                "(each POST carries Tallyboard-Signature: sha256=HMAC-SHA256 of the body with it)."
            )
        return text

    act(done, save)


# --- one schedule -------------------------------------------------------------------------------


def actions(ctx: PageContext, info: ScheduleInfo) -> None:
    """Pause or resume, run now, and delete with a confirmation."""

    def call(fn: Callable[..., object]) -> Callable[[], None]:
        def run() -> None:
            with ctx.session() as session:
                fn(session, ctx.scope, info.id, now=utc_now())

        return run

    toggle, now_col, delete_col = st.columns([1, 1, 2], vertical_alignment="bottom")
    if info.active:
        if toggle.button("Pause", icon=":material/pause:", key="schedules_pause"):
            act(f"Paused “{info.name}”: nothing is sent until you resume it.", call(sched.pause_schedule))
    elif toggle.button("Resume", icon=":material/play_arrow:", key="schedules_resume"):
        act(f"Resumed “{info.name}”.", call(sched.resume_schedule))
    if now_col.button(
        "Run now", icon=":material/send:", key="schedules_run_now", help="Sent at the scheduler's next tick"
    ):
        act(f"“{info.name}” will run at the scheduler's next tick (within about 30 s).", call(sched.run_now))
    with delete_col:
        sure = st.checkbox("Yes, delete this schedule and its run log", key=f"schedules_sure_{info.id}")
        if st.button("Delete", icon=":material/delete:", disabled=not sure, key="schedules_delete"):
            act(
                f"Deleted “{info.name}”. Reports already sent and their files stay in History.",
                call(sched.delete_schedule),
            )


def next_times(ctx: PageContext, info: ScheduleInfo) -> list[str]:
    """The next run times in the business's named time zone ('Mon 2026-12-07 08:00 CET')."""
    return [
        local_text(o.local, ctx.timezone, "%a %Y-%m-%d %H:%M")
        for o in sched.next_run_times(info, now=utc_now())
    ]


def runs_table(ctx: PageContext, runs: Sequence[RunStatus]) -> None:
    frame = pd.DataFrame(
        [
            {
                "Due": local_text(r.due_at, ctx.timezone),
                "Status": r.text,
                "Report run": f"#{r.run_id}" if r.run_id else "",
                "Sent": sched.sent_count(r.deliveries),
                "Error": without_paths(r.error),
            }
            for r in runs
        ]
    )
    plain_table(frame, key="schedules_runs", cap=300)


def deliveries_table(ctx: PageContext, runs: Sequence[RunStatus]) -> None:
    rows = [
        {
            "Due": local_text(r.due_at, ctx.timezone),
            "Recipient": d.recipient,
            "Kind": DELIVERY_KINDS.get(d.kind, words(d.kind)),
            "Status": d.text,
            "Attempts": d.attempts,
            "Last error": without_paths(d.last_error),
            "Sent at": local_text(d.sent_at, ctx.timezone) if d.sent_at else "",
        }
        for r in runs
        for d in r.deliveries
    ]
    if not rows:
        st.caption("No emails queued yet.")
        return
    plain_table(pd.DataFrame(rows), key="schedules_deliveries", cap=200)


def details(ctx: PageContext, info: ScheduleInfo) -> None:
    st.caption(
        f"{info.report_title} · {', '.join(format_label(f) for f in info.formats)} · "
        f"{PERIOD_LABELS.get(info.period, info.period)} · owner {info.owner or '—'} · to {', '.join(info.recipients) or '—'}"
        + "".join(f" · webhook {shown_url(u)}" for u in info.webhooks)
        + "".join(f" · {shown_url(u, 'slack')}" for u in info.slack)
        + (f" · {info.condition_text}" if info.condition else "")
    )
    actions(ctx, info)
    times = next_times(ctx, info)
    st.markdown("**Next five runs**")
    st.markdown("\n".join(f"- {t}" for t in times) if times else "_Paused: no runs until you resume it._")
    with ctx.session() as session:
        runs = sched.schedule_runs(session, ctx.scope, info.id, limit=20)
    st.markdown("**Runs**")
    if not runs:
        st.caption("Not run yet.")
        return
    runs_table(ctx, runs)
    st.markdown("**Deliveries**")
    deliveries_table(ctx, runs)


def upcoming_and_overdue(ctx: PageContext) -> None:
    now = utc_now()
    with ctx.session() as session:
        soon = [
            i
            for i in sched.upcoming_schedules(session, ctx.scope, now=now, limit=100)
            if i.next_due_at and i.next_due_at <= now.replace(tzinfo=None) + dt.timedelta(hours=24)
        ]
        late = sched.overdue_schedules(session, ctx.scope, now=now)
    left, right = st.columns(2)
    with left:
        st.markdown("**Next 24 hours**")
        if soon:
            st.markdown("\n".join(f"- {when(ctx, i)} — {i.name}" for i in soon))
        else:
            st.caption("Nothing due in the next 24 hours.")
    with right:
        st.markdown("**Overdue**")
        if late:
            st.error("\n".join(f"- {i.name}: due {local_text(i.next_due_at, ctx.timezone)}" for i in late))
        else:
            st.caption("Nothing overdue.")


def run_emails(ctx: PageContext, run_id: int) -> None:
    """Under a run in History: what happened to the scheduled emails of that run ("sent", "partly
    sent (3 of 4)", "failed", "written to the outbox folder (no SMTP server set)"); managers and admins."""
    if ctx.role not in ("manager", "admin"):
        return
    with ctx.session() as session:
        windows = sched.schedule_runs(session, ctx.scope, None, run_id=run_id, limit=5)
    for window in windows:
        reports = sum(d.kind == "report" for d in window.deliveries)
        count = f" · {sched.sent_count(window.deliveries)} emails sent" if reports else ""
        st.caption(f":material/mail: Scheduled email of this run: {window.text}{count}")


def subscriptions_table(ctx: PageContext, items: Sequence[Subscription]) -> None:
    """The schedules that email the current user (Account page); times in the business's zone."""
    frame = pd.DataFrame(
        [
            {
                "Schedule": s.name,
                "Report": s.report,
                "When": rule_text(ctx, s.rule_text, s.timezone),
                "Next": local_text(s.next_due_at, ctx.timezone, "%a %Y-%m-%d %H:%M")
                if s.active and s.next_due_at
                else "paused",
            }
            for s in items
        ]
    )
    plain_table(frame, key="account_subscriptions")
