"""Admin page pieces: the users table, running one audited account change, a user's name and email,
the SMTP settings with a test email, where notices go, the scheduler heartbeat and the retention period."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pandas as pd
import streamlit as st

from accounts import users
from core.clock import utc_now
from core.db import session_scope
from core.errors import Forbidden, TallyboardError
from core.models import User
from mail import smtp_config
from mail.delivery import smtp_problem, untold_warning
from scheduling import summary
from scheduling.heartbeat import scheduler_status
from ui.context import PageContext
from ui.formatting import local_text, without_paths
from ui.schedule_view import no_mail_server
from ui.tables import plain_table

NOTICE = "admin_notice"


def users_table(users: list[User], tz: str) -> None:
    """The business's users, one row each (created in the business's named time zone)."""
    frame = pd.DataFrame(
        [
            {
                "Username": u.username,
                "Name": u.name,
                "Email": u.email,
                "Role": u.role,
                "Status": "active" if u.active else "disabled",
                "Created": local_text(u.created_at, tz),
            }
            for u in users
        ]
    )
    plain_table(frame, key="admin_users")


def user_label(user: User) -> str:
    status = "" if user.active else ", disabled"
    return f"{user.username} — {user.name} ({user.role}{status})"


def act(
    ctx: PageContext,
    action: Callable[..., object],
    done: str,
    *args: object,
    clear: Sequence[str] = (),
    **kwargs: object,
) -> None:
    """Run one account change of the caller's business in its own transaction (the action checks
    the caller's role again and audits); on success empty the widgets `clear`, rerun and show `done`,
    else show what is wrong (the form keeps what was typed)."""
    try:
        with session_scope(ctx.engine) as session:
            action(session, ctx.scope, *args, **kwargs)
    except TallyboardError as exc:
        st.error(without_paths(str(exc)))
        return
    forget(clear)
    st.session_state[NOTICE] = done
    st.rerun()


def forget(keys: Iterable[str]) -> None:
    """Empty these widgets: on the next run they start from their defaults."""
    for key in keys:
        st.session_state.pop(key, None)


def notice() -> None:
    """The outcome of the change made just before this run, if any."""
    if done := st.session_state.pop(NOTICE, None):
        st.success(done)


def details_form(ctx: PageContext, user: User) -> None:
    """Change the chosen user's name and email (the address their notices and subscriptions use)."""
    with st.form(f"admin_details_{user.id}"):
        left, right = st.columns(2)
        name = left.text_input("Name", value=user.name, key=f"admin_name_{user.id}")
        email = right.text_input(
            "Email",
            value=user.email,
            key=f"admin_email_{user.id}",
            help="Where their scheduled reports, failure notices and (admins) the weekly summary go. "
            "Leave blank for none.",
        )
        if st.form_submit_button("Save name and email"):
            done = f"Saved the name and email of {user.username}."
            act(ctx, users.set_details, done, user.id, name=name, email=email)


def notices_section(ctx: PageContext) -> None:
    """Who will not be told (a warning), and the business's notification address: where failure
    notices and the weekly summary go when neither the schedule's owner nor an admin has an email."""
    with ctx.session() as session:
        warning = untold_warning(session, ctx.business_id)
        current = users.get_notice_email(session, ctx.business_id)
    if warning:
        fix = "Add an email address to an admin under Users above, or set the notification address below."
        st.warning(f"{warning} {fix}", icon=":material/notifications_off:")
    with st.form("admin_notices"):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        address = left.text_input(
            "Notification address",
            value=current,
            key="admin_notice_email",
            help="Failure notices go to the schedule's owner, else to the admins with an email address, "
            "else here; the weekly summary goes to the admins, else here. Leave blank for none.",
        )
        if right.form_submit_button("Save notification address"):
            done = (
                f"Notices without another address now go to {address.strip()}."
                if address.strip()
                else "Notification address removed."
            )
            act(ctx, users.set_notice_email, done, address)


# --- email and scheduler ------------------------------------------------------------------------

SECURITY_CHOICES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
SMTP_KEYS = tuple(
    f"admin_smtp_{k}"
    for k in ("host", "port", "security", "user", "password", "from", "from_name", "reply_to")
)


def smtp_form(ctx: PageContext) -> None:
    """Where this business's email goes now, its own SMTP settings form (blank password = keep; blank
    host = only the sender name and reply-to), removing them, and the test button. The installation's
    default server is never shown here."""
    with ctx.session() as session:
        config = smtp_config.get_smtp(session, ctx.scope)
        status = smtp_config.delivery_status(session, ctx.settings, ctx.business_id)
        configured = smtp_config.is_configured(session, ctx.business_id)
        problem = smtp_problem(session, ctx.settings, ctx.business_id)
    if no_mail_server(status):  # the operator's folder path stays out of the page
        status = (
            "No mail server is set up: emails are not sent, only kept as files on the server. "
            "Fill in the SMTP settings below to send them."
        )
    (st.success if configured and not problem else st.info)(status, icon=":material/mail:")
    if problem:
        st.error(problem, icon=":material/error:")
    st.caption(
        "These settings are this business's only. Leave the host empty to keep only a sender name and "
        "reply-to of your own."
    )
    # Not cleared on submit: a refused setting keeps everything typed, to be corrected.
    with st.form("admin_smtp"):
        left, mid, right = st.columns([3, 1, 1])
        host = left.text_input(
            "SMTP host", value=config.host if config else "", key="admin_smtp_host", help="Optional."
        )
        port = mid.number_input(
            "Port",
            1,
            65535,
            value=config.port if config and config.has_server else 587,
            key="admin_smtp_port",
        )
        security = right.selectbox(
            "Security",
            SECURITY_CHOICES,
            index=SECURITY_CHOICES.index(config.security) if config and config.has_server else 0,
            format_func=smtp_config.SECURITY_LABELS.__getitem__,
            key="admin_smtp_security",
        )
        left, right = st.columns(2)
        username = left.text_input(
            "User name",
            value=config.username if config else "",
            key="admin_smtp_user",
            help="Leave blank for a server without login.",
        )
        password = right.text_input(
            "Password",
            type="password",
            autocomplete="new-password",
            key="admin_smtp_password",
            help="Stored encrypted. Leave blank to keep the stored password.",
            placeholder="(unchanged)" if config and config.has_password else "",
        )
        from_address = left.text_input(
            "From address", value=config.from_address if config else "", key="admin_smtp_from"
        )
        from_name = right.text_input(
            "From name",
            value=config.from_name if config else smtp_config.DEFAULT_FROM_NAME,
            key="admin_smtp_from_name",
        )
        reply_to = left.text_input(
            "Reply-to (optional)", value=config.reply_to if config else "", key="admin_smtp_reply_to"
        )
        submitted = st.form_submit_button("Save SMTP settings", type="primary")
    if submitted:
        try:
            with ctx.session() as session:
                saved = smtp_config.save_smtp(
                    session,
                    ctx.settings,
                    ctx.scope,
                    host=host,
                    port=int(port),
                    security=security,
                    username=username,
                    password=password or None,
                    from_address=from_address,
                    from_name=from_name,
                    reply_to=reply_to,
                )
        except TallyboardError as exc:
            st.error(without_paths(str(exc)))
        else:
            forget(["admin_smtp_password"])  # never kept in the form once stored
            st.session_state[NOTICE] = f"SMTP settings saved: {saved.describe()}."
            st.rerun()
    if config is not None and st.button("Remove our email settings", key="admin_smtp_clear"):
        try:
            with ctx.session() as session:
                smtp_config.clear_smtp(session, ctx.scope)
        except Forbidden as exc:
            st.error(without_paths(str(exc)))
        else:
            forget(SMTP_KEYS)
            st.session_state[NOTICE] = "Email settings removed."
            st.rerun()
    with st.form("admin_test_mail"):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        to = left.text_input("Send a test email to", value=ctx.email, key="admin_test_to")
        test = right.form_submit_button("Send test email")
    if test:
        try:
            with st.spinner("Talking to the mail server…"):
                result = smtp_config.send_test(ctx.engine, ctx.settings, to, ctx.scope)
        except TallyboardError as exc:
            st.error(without_paths(str(exc)))
        else:
            if result.written:
                st.info(
                    "Not sent: no mail server is set up, so the test email was only kept as a file on the "
                    "server. Fill in the SMTP settings above to send email.",
                    icon=":material/folder:",
                )
            elif result.ok:
                st.success(f"Sent — the server answered: {result.text}")
            else:
                st.error(f"Failed — not sent: {result.text}")


def scheduler_section(ctx: PageContext) -> None:
    """The scheduler's heartbeat and how long stored report files are kept."""
    with ctx.session() as session:
        status = scheduler_status(session, now=utc_now())
        days, own = summary.get_retention_days(session, ctx.settings, ctx.scope)
    if status.running:
        st.success(status.text, icon=":material/check_circle:")
    else:
        st.warning(
            f"{status.text}. Start it with `python scheduler_daemon.py` (or `make run`).",
            icon=":material/warning:",
        )
    with st.form("admin_retention_form"):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        new_days = left.number_input(
            "Keep generated report files for (days)",
            1,
            summary.MAX_RETENTION_DAYS,
            value=days,
            key="admin_retention",
            help="Older files are deleted by the scheduler; the run history stays. "
            + ("This business's own setting." if own else "The installation's default until you save one."),
        )
        if right.form_submit_button("Save retention"):
            try:
                with ctx.session() as session:
                    summary.set_retention_days(session, ctx.scope, int(new_days))
            except TallyboardError as exc:
                st.error(without_paths(str(exc)))
            else:
                st.session_state[NOTICE] = f"Report files are now kept for {int(new_days)} days."
                st.rerun()
