"""Tallyboard's command line: database, businesses, demo data, imports, reports and users.

Every mistake is answered with one line on stderr and a non-zero exit status, never a traceback:
a TallyboardError (core/errors.py) prints its sentence and exits with its kind's status (2 for a
wrong command line, 1 for the rest). Run `python manage.py --help` or `python manage.py COMMAND --help`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from accounts.users import add_business, add_user, operator
from analytics.report import Report, ReportParams, Scope
from core.db import business_by_code, make_engine, make_sessionmaker, migrate, session_scope
from core.errors import Conflict, Invalid, NotFound, TallyboardError, Unavailable, UsageError
from core.models import ROLES, Business
from core.settings import Settings

EXIT_FAILED = 1  # a failure outside the error tree (database, file system, a crash)


def fail(error: TallyboardError) -> int:
    """The command line's one answer to a refusal: its sentence on stderr, its kind's exit status."""
    print(f"error: {error}", file=sys.stderr)
    return error.exit_status


def _progress(total_label: str) -> tuple[Callable[[int, int], None], Callable[[], None]]:
    """A tqdm progress callback on stderr (silent when stderr is not a terminal)."""
    from tqdm import tqdm

    bar: Any = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit=" rows", desc=total_label, disable=None, file=sys.stderr)
        bar.total = total
        bar.n = done
        bar.refresh()

    def close() -> None:
        if bar is not None:
            bar.close()

    return update, close


_OPENED: list[Engine] = []  # disposed when the command ends


def _engine(settings: Settings, *, need_schema: bool = True) -> Engine:
    engine = make_engine(settings.database_url)
    _OPENED.append(engine)
    if need_schema:
        try:
            tables = set(inspect(engine).get_table_names())
        except SQLAlchemyError as exc:
            raise Unavailable(f"Cannot open the database {engine.url!r}: {exc.__class__.__name__}.") from exc
        if "businesses" not in tables:
            raise Unavailable("The database has no Tallyboard tables yet: run `python manage.py init-db`.")
    return engine


def _business(engine: Engine, code: str) -> Business:
    with make_sessionmaker(engine)() as session:
        business = business_by_code(session, code)
    if business is None:
        raise NotFound(f"No business with code {code!r}: create it with `python manage.py business add`.")
    return business


# --- commands ------------------------------------------------------------------------------------


def cmd_init_db(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings, need_schema=False)
    migrate(engine)
    print(f"Database ready: {engine.url.render_as_string(hide_password=True)}")
    return 0


def cmd_business_add(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    with session_scope(engine) as session:
        business = add_business(session, args.code, args.name, args.currency, args.timezone)
        print(f"Created business {business.code!r} ({business.name}).")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.demo import has_data, load_demo

    engine = _engine(settings)
    if has_data(engine, args.business):
        if args.if_empty:
            print(f"Business {args.business!r} already has data; demo data not loaded.")
            return 0
        raise Conflict(
            f"Business {args.business!r} already has data; demo data is only loaded into an empty one."
        )
    if args.rows < 100:
        raise UsageError("--rows must be at least 100.")
    update, close = _progress("demo sales lines")
    try:
        summary = load_demo(engine, args.business, rows=args.rows, seed=args.seed, progress=update)
    finally:
        close()
    print(
        f"Loaded demo business {args.business!r}: {summary.customers} customers, {summary.products} products, "
        f"{summary.sales} orders with {summary.lines} lines, {summary.payments} payments, "
        f"{summary.forecasts} forecasts in {summary.seconds:.1f} s."
    )
    _refresh_snapshot(engine, settings, summary.business_id)
    return 0


def _refresh_snapshot(engine: Engine, settings: Settings, business_id: int) -> None:
    """Build the reports' snapshot of the data just committed, so no page or report waits for it."""
    from snapshots.store import SnapshotStore

    started = time.perf_counter()
    SnapshotStore(engine, settings.snapshot_dir).refresh(business_id)
    print(f"Report data ready in {time.perf_counter() - started:.1f} s.", file=sys.stderr)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.importer import ENTITIES, import_path

    if args.entity not in ENTITIES:
        raise UsageError(f"Unknown entity {args.entity!r}; choose one of: {', '.join(ENTITIES)}.")
    path = Path(args.file)
    if not path.is_file():
        raise NotFound(f"File not found: {path}")
    engine = _engine(settings)  # no size limit here: the file is streamed in bounded memory
    business = _business(engine, args.business)
    update, close = _progress(f"import {args.entity}")
    try:
        result = import_path(
            engine, business.id, args.entity, path, settings, username=args.user, progress=update
        )
    finally:
        close()
    if result.ok:
        print(result.message)
        if not args.no_refresh:
            _refresh_snapshot(engine, settings, business.id)
        return 0
    print(result.message, file=sys.stderr)
    for err in result.errors:
        where = f"row {err.row}" if err.row else "file"
        column = f", column {err.column}" if err.column else ""
        print(f"  {where}{column}: {err.reason}", file=sys.stderr)
    return EXIT_FAILED


def cmd_reports(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.report import COMPARE_CHOICES
    from reports.registry import REPORTS

    for r in REPORTS:
        print(f"{r.slug}: {r.title}")
        print(f"    {r.description}")
        params = (
            ["period=<relative> | start=YYYY-MM-DD end=YYYY-MM-DD", "tz=<IANA zone>"] if r.uses_period else []
        )
        if r.filters:
            params.append("filters: " + ", ".join(f"{f}=a,b" for f in r.filters))
        if r.compares:
            params.append(
                f"compare=previous ({'|'.join(COMPARE_CHOICES)}): what the KPIs are compared with; "
                "custom takes compare_start=YYYY-MM-DD compare_end=YYYY-MM-DD"
            )
        for opt in r.options:
            choices = f" ({'|'.join(opt.choices)})" if opt.choices else ""
            params.append(f"{opt.name}={opt.default}{choices}: {opt.help}")
        params.append("columns.<table>=col1,col2")
        for p in params:
            print(f"    --param {p}")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """A run like the builder's (trigger "cli": History, Statistics and the audit log see it) that
    also writes its file to --out: never served from the cache, not rate-limited, no size limit."""
    from core.clock import utc_now
    from exporters import EXPORTERS
    from runs.files import FileStore
    from runs.runner import generate_run
    from snapshots.store import SnapshotStore

    exporter = EXPORTERS.get(args.format)
    if exporter is None:
        raise UsageError(f"Unknown format {args.format!r}; available: {', '.join(EXPORTERS)}.")
    _check_table_option(args)
    params = ReportParams.from_pairs(args.param)
    engine = _engine(settings)
    business = _business(engine, args.business)
    store = SnapshotStore(engine, settings.snapshot_dir)
    files = FileStore.from_settings(settings, engine)
    scope = Scope(business.id, user="cli")  # no user row: the run belongs to the command line
    with ExitStack() as opened:
        # Open --out first: a folder or a missing folder is refused before a run is recorded.
        out = sys.stdout.buffer if args.out == "-" else opened.enter_context(_atomic_file(Path(args.out)))
        with make_sessionmaker(engine)() as session:
            outcome = generate_run(
                session,
                store,
                files,
                # The per-file limit guards the web app's storage; the operator's exports (like
                # imports) have none.
                settings.with_changes(max_file_bytes=sys.maxsize),
                scope,
                None,
                args.slug,
                params,
                [args.format],
                trigger="cli",
                now=utc_now(),
            )
            if not outcome.ok:
                raise (Unavailable if outcome.passing else TallyboardError)(outcome.error)
            _, stored = files.find(session, scope, outcome.files[0].id)
        report = outcome.report
        assert report is not None  # built now: the command line's runs never come from the cache
        render = _csv_choice(args, report) if args.format == "csv" else None
        if render is not None:
            render(out)
        else:
            _write_out(out, stored, lambda handle: exporter.write(report, handle))
        out.flush()
    if args.out != "-":
        print(f"Wrote {args.out}", file=sys.stderr)
    return 0


def _out_suffix(args: argparse.Namespace) -> str:
    return "" if args.out == "-" else Path(args.out).suffix.lower()


def _check_table_option(args: argparse.Namespace) -> None:
    """--table is a CSV option writing one CSV file: refused (before any run) with another format or
    with an --out ending in .zip."""
    if args.table is None:
        return
    if args.format != "csv":
        raise UsageError(f"--table NAME works with --format csv only (not {args.format}).")
    if _out_suffix(args) == ".zip":
        raise UsageError(
            "--table NAME writes one CSV file: give an --out ending in .csv (or - for standard output), "
            "or leave --table out to get every table in the .zip."
        )


def _csv_choice(args: argparse.Namespace, report: Report) -> Callable[[IO[bytes]], None] | None:
    """How `--format csv` writes to --out: one table (--table NAME), every table as a ZIP (an --out
    ending in .zip), or None: the run's own file (one CSV for a one-table report, else a ZIP). A .csv
    --out for a report of several tables without --table is refused: a ZIP under a .csv name is what
    a spreadsheet shows as garbage."""
    from exporters.csv_export import write_table_csv, write_zip

    if args.table is not None:
        return lambda out: write_table_csv(report, args.table, out)
    suffix = _out_suffix(args)
    if suffix == ".zip" and len(report.tables) <= 1:
        return lambda out: write_zip(report, out)
    if suffix == ".csv" and len(report.tables) > 1:
        raise UsageError(
            f"{report.slug} has {len(report.tables)} tables ({', '.join(report.tables)}): add --table NAME "
            f"to write one of them to {args.out}, or give an --out ending in .zip for all of them."
        )
    return None


def _write_out(out: IO[bytes], stored: Path, render: Callable[[IO[bytes]], None]) -> None:
    """Copy the run's stored file to `out` where rendering the report there gives the same bytes (a
    seekable file at its start: the exporters are deterministic); else render it again, streamed: a
    pipe gets a ZIP written for pipes, as it always did, and nothing sits in memory."""
    try:
        copy = out.seekable() and out.tell() == 0
    except (OSError, ValueError):
        copy = False
    if not copy:
        render(out)
        return
    with stored.open("rb") as source:
        shutil.copyfileobj(source, out, 1024 * 1024)


@contextmanager
def _atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """Open `--out` for writing without ever replacing something that is not a regular file.

    A regular file (or a new one) is written to a temp file beside it, then renamed over it:
    readers never see half a file, and it gets the mode a plain `open` would give. A symlink is
    written through (its target is replaced, the link stays). A device, FIFO or socket (say
    /dev/null or a named pipe) is written directly: renaming over it would replace the device.
    """
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise Invalid(f"{path} is a folder; give a file name.")
    if mode is not None and not stat.S_ISREG(mode):
        with open(target, "wb") as handle:
            yield handle
        return
    if not target.parent.is_dir():
        raise NotFound(f"Folder does not exist: {path.parent}")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.chmod(tmp, stat.S_IMODE(mode) if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != first:
            raise Invalid("The two passwords differ.")
        return first
    line = sys.stdin.readline()
    if not line:
        raise Invalid("No password on standard input (pipe it in, one line).")
    return line.rstrip("\r\n")


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    engine = _engine(settings)
    business = _business(engine, args.business)
    password = _read_password()
    with session_scope(engine) as session:
        user = add_user(
            session,
            operator(business.id),
            args.username,
            password,
            args.role,
            name=args.name,
            email=args.email,
        )
        print(f"Created {user.role} {user.username!r} in business {business.code!r}.")
    return 0


def cmd_users_ensure_demo(args: argparse.Namespace, settings: Settings) -> int:
    from accounts.users import ensure_demo_users

    engine = _engine(settings)
    try:
        business = _business(engine, args.business)
        with session_scope(engine) as session:
            created = ensure_demo_users(session, business.id)
    finally:
        engine.dispose()
    if not created:
        print(
            f"Business {business.code!r} already has users (list them with `python manage.py users list "
            f"--business {business.code}`; set a password with `python manage.py users set-password`)."
        )
        return 0
    width = max(len(login.username) for login in created)
    print(f"Created demo logins for business {business.code!r} (passwords are shown only this once):")
    for login in created:
        print(f"  {login.role:<8} {login.username:<{width}}  {login.password}")
    first = created[0]
    print(f"Log in at http://localhost:{args.port} as {first.username} / {first.password}")
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    from accounts.users import list_users

    engine = _engine(settings)
    try:
        business = _business(engine, args.business)
        with make_sessionmaker(engine)() as session:
            users = list_users(session, operator(business.id))
            rows = [(u.username, u.role, "active" if u.active else "disabled", u.name) for u in users]
    finally:
        engine.dispose()
    if not rows:
        print(f"Business {business.code!r} has no users yet.")
    for row in rows:
        print("\t".join(row))
    return 0


def cmd_users_set_password(args: argparse.Namespace, settings: Settings) -> int:
    from accounts.users import reset_password, user_by_username

    engine = _engine(settings)
    try:
        business = _business(engine, args.business)
        password = _read_password()
        with session_scope(engine) as session:
            user = user_by_username(session, args.username)
            if user is None or user.business_id != business.id:
                raise NotFound(f"No user {args.username!r} in business {business.code!r}.")
            reset_password(session, operator(business.id), user.id, password)
            print(f"New password set for {user.username!r}.")
    finally:
        engine.dispose()
    return 0


def _user_id(session: Session, business: Business, username: str) -> int:
    """The id of user `username` (any case) of `business`; NotFound naming the business otherwise."""
    from accounts.users import user_by_username

    user = user_by_username(session, username)
    if user is None or user.business_id != business.id:
        raise NotFound(f"No user {username!r} in business {business.code!r}.")
    return user.id


def cmd_users_set_email(args: argparse.Namespace, settings: Settings) -> int:
    from accounts.users import set_email

    engine = _engine(settings)
    try:
        business = _business(engine, args.business)
        with session_scope(engine) as session:
            user = set_email(
                session, operator(business.id), _user_id(session, business, args.username), args.email
            )
            if user.email:
                print(f"Email of {user.username!r} set to {user.email}.")
            else:
                print(f"Email of {user.username!r} removed.")
    finally:
        engine.dispose()
    return 0


def cmd_users_set_name(args: argparse.Namespace, settings: Settings) -> int:
    from accounts.users import set_name

    engine = _engine(settings)
    try:
        business = _business(engine, args.business)
        with session_scope(engine) as session:
            user = set_name(
                session, operator(business.id), _user_id(session, business, args.username), args.name
            )
            print(f"Name of {user.username!r} set to {user.name!r}.")
    finally:
        engine.dispose()
    return 0


def _utc(stamp: dt.datetime | None, none: str) -> str:
    return stamp.isoformat(timespec="minutes") + "Z" if stamp is not None else none


def cmd_tokens_create(args: argparse.Namespace, settings: Settings) -> int:
    """The new token alone on stdout (for `TOKEN=$(python manage.py tokens create ...)`); the rest on stderr."""
    from accounts.tokens import create_token
    from core.clock import utc_now

    engine = _engine(settings)
    business = _business(engine, args.business)
    with session_scope(engine) as session:
        made = create_token(
            session,
            operator(business.id),
            args.username,
            now=utc_now(),
            name=args.name,
            expires_days=args.expires_days,
        )
    expiry = f"expires {_utc(made.info.expires_at, '')}" if made.info.expires_at else "never expires"
    print(made.token)
    print(
        f"Created API token {made.info.id} {made.info.name!r} for {made.info.username!r} ({expiry}). "
        "It is shown only this once.",
        file=sys.stderr,
    )
    return 0


def cmd_tokens_list(args: argparse.Namespace, settings: Settings) -> int:
    """One line per token of the business, newest first: id, user, name, created, last used, expires,
    status (tab-separated, times in UTC); never the token."""
    from accounts.tokens import list_tokens
    from core.clock import utc_now

    engine = _engine(settings)
    business = _business(engine, args.business)
    now = utc_now()
    with make_sessionmaker(engine)() as session:
        found = list_tokens(session, operator(business.id), everyone=True)
    if not found:
        print(f"Business {business.code!r} has no API tokens.", file=sys.stderr)
    for t in found:
        fields = (
            str(t.id),
            t.username,
            t.name,
            _utc(t.created_at, ""),
            _utc(t.last_used_at, "never used"),
            _utc(t.expires_at, "never expires"),
            t.status(now),
        )
        print("\t".join(fields))
    return 0


def cmd_tokens_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from accounts.tokens import revoke_token
    from core.clock import utc_now

    engine = _engine(settings)
    business = _business(engine, args.business)
    now = utc_now()
    with session_scope(engine) as session:
        info = revoke_token(session, operator(business.id), args.id, now=now)
    print(f"Revoked API token {info.id} {info.name!r} of {info.username!r}.")
    return 0


def _schedule_rule(args: argparse.Namespace, today: dt.date) -> tuple[str, dict[str, Any]]:
    from scheduling.timerules import rule_from_text

    given = [
        (kind, text)
        for kind, text in (
            ("cron", args.cron),
            ("daily", args.daily),
            ("weekly", args.weekly),
            ("monthly", args.monthly),
            ("every_n_days", args.every_days),
        )
        if text is not None
    ]
    if len(given) != 1:
        raise UsageError(
            "Give exactly one time rule: --cron EXPR, --daily HH:MM, --weekly MON,WED@HH:MM, "
            "--monthly 1|last@HH:MM or --every-days N@HH:MM."
        )
    kind, text = given[0]
    return kind, rule_from_text(kind, text, today=today)


def _schedule_line(info: Any) -> str:
    state = "active" if info.active else "paused"
    local = info.next_due_local
    nxt = f"next {local:%Y-%m-%d %H:%M %Z}" if local is not None else "no next run"
    from mail.webhooks import shown_url

    targets = [
        *info.recipients,
        *(f"webhook {shown_url(u)}" for u in getattr(info, "webhooks", ())),
        *(shown_url(u, "slack") for u in getattr(info, "slack", ())),
    ]
    condition = getattr(info, "condition_text", "")
    return (
        f"{info.id}\t{state}\t{info.rule_text} ({info.timezone})\t{nxt}\t"
        f"{info.report_slug} [{','.join(info.formats)}] {info.period} -> {', '.join(targets)}\t{info.name}"
        + (f"\t{condition}" if condition else "")
    )


def cmd_schedules_add(args: argparse.Namespace, settings: Settings) -> int:
    from scheduling.schedules import ScheduleSpec, create_schedule, default_period
    from scheduling.timerules import time_zone

    engine = _engine(settings)
    try:
        business = _business(engine, args.business)
        tz = args.tz or business.timezone or "UTC"
        now = dt.datetime.now(dt.UTC)
        kind, rule = _schedule_rule(args, now.astimezone(time_zone(tz)).date())
        parameters: dict[str, str] = {}
        for pair in args.param:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"Parameter {pair!r} must look like KEY=VALUE.")
            parameters[key.strip()] = value.strip()
        spec = ScheduleSpec(
            report_slug=args.report,
            rule_kind=kind,
            rule=rule,
            recipients=tuple(args.to or ()),
            formats=tuple(args.format or ["pdf"]),
            timezone=tz,
            period=args.period or default_period(kind),
            name=args.name,
            parameters=parameters,
            subject=args.subject,
            message=args.message,
            skip_if_empty=args.skip_if_empty,
            large_file_mode=args.large_files,
            active=not args.paused,
            webhooks=tuple(args.webhook or ()),
            slack=tuple(args.slack or ()),
            condition=args.when or "",
            when_changes=args.when_changes,
        )
        if not (args.to or args.webhook or args.slack):
            raise UsageError(
                "Say where to deliver: --to ADDRESS, --webhook URL or --slack URL (each repeatable)."
            )
        with make_sessionmaker(engine)() as session:
            info = create_schedule(
                session, operator(business.id), spec, now=now, owner=args.owner or "", settings=settings
            )
        print(f"Created schedule {info.id} in business {business.code!r}:")
        print(_schedule_line(info))
        if info.webhook_secret:
            print(
                f"Webhook signing secret (shown only now; keep it with the receiver): {info.webhook_secret}\n"
                "Each POST carries Tallyboard-Signature: sha256=<HMAC-SHA256 of the body with this secret>."
            )
        return 0
    finally:
        engine.dispose()


def cmd_schedules_list(args: argparse.Namespace, settings: Settings) -> int:
    from scheduling.schedules import list_schedules

    engine = _engine(settings)
    try:
        business = _business(engine, args.business)
        with make_sessionmaker(engine)() as session:
            infos = list_schedules(session, operator(business.id))
        if not infos:
            print(f"Business {business.code!r} has no schedules yet.")
        for info in infos:
            print(_schedule_line(info))
        return 0
    finally:
        engine.dispose()


def cmd_schedules_change(args: argparse.Namespace, settings: Settings) -> int:
    from scheduling.schedules import delete_schedule, pause_schedule, resume_schedule

    engine = _engine(settings)
    try:
        business = _business(engine, args.business)
        now = dt.datetime.now(dt.UTC)
        scope = operator(business.id)
        with make_sessionmaker(engine)() as session:
            if args.action == "delete":
                delete_schedule(session, scope, args.id, now=now)
                print(f"Deleted schedule {args.id}.")
                return 0
            change = pause_schedule if args.action == "pause" else resume_schedule
            info = change(session, scope, args.id, now=now)
        print(f"Schedule {info.id} is {'active' if info.active else 'paused'}.")
        print(_schedule_line(info))
        return 0
    finally:
        engine.dispose()


def _smtp_actor(engine: Engine, code: str | None) -> tuple[Scope, str]:
    """The operator acting on a business's settings (--business) or on the installation default."""
    if code is None:
        return operator(), "the installation default"
    business = _business(engine, code)
    return operator(business.id), f"business {business.code!r}"


def cmd_smtp_set(args: argparse.Namespace, settings: Settings) -> int:
    from mail.smtp_config import SmtpConfigError, save_smtp

    if not args.host and args.business is None:
        raise UsageError("The installation default needs --host (and --from).")
    if args.host and not args.from_address:
        raise UsageError("--from is required with --host.")
    password: str | None = None
    if args.password_stdin:
        if not args.user:
            raise UsageError("--password-stdin needs --user.")
        password = _read_password()
    engine = _engine(settings)
    actor, label = _smtp_actor(engine, args.business)
    try:
        with make_sessionmaker(engine)() as session:
            config = save_smtp(
                session,
                settings,
                actor,
                host=args.host or "",
                port=args.port,
                security=args.security,
                username=args.user or "",
                password=password,
                from_address=args.from_address or "",
                from_name=args.from_name,
                reply_to=args.reply_to,
                installation_default=args.business is None,
            )
    except SmtpConfigError as exc:
        if "Enter the password" in str(exc):
            raise SmtpConfigError(f"{exc} (pipe it in with --password-stdin)") from None
        raise
    if not config.has_server:
        reply = f", replies to {config.reply_to}" if config.reply_to else ""
        print(
            f"Email of {label} is sent as {config.from_name or 'Tallyboard'}{reply} through the default server."
        )
        return 0
    sender = f"{config.from_name} <{config.from_address}>" if config.from_name else config.from_address
    reply = f", replies to {config.reply_to}" if config.reply_to else ""
    whose = "" if args.business is None else f" for {label}"
    print(f"SMTP set{whose}: {config.describe()}, from {sender}{reply}.")
    where = f" --business {args.business}" if args.business is not None else ""
    print(f"Check it with `python manage.py smtp test{where} --to YOUR-ADDRESS`.")
    return 0


def cmd_smtp_test(args: argparse.Namespace, settings: Settings) -> int:
    from mail.smtp_config import SmtpConfigError, send_test

    engine = _engine(settings)
    actor, _ = _smtp_actor(engine, args.business)
    try:
        result = send_test(engine, settings, args.to, actor, installation_default=args.business is None)
    except SmtpConfigError as exc:  # the only one here: a bad --to address, so a wrong command line
        raise UsageError(str(exc)) from None
    if not result.ok:
        raise Unavailable(f"the test email was not sent: {result.text}")
    print(f"Server answered: {result.text}")
    return 0


def cmd_smtp_clear(args: argparse.Namespace, settings: Settings) -> int:
    from mail.smtp_config import clear_smtp, delivery_status

    engine = _engine(settings)
    actor, label = _smtp_actor(engine, args.business)
    with make_sessionmaker(engine)() as session:
        removed = clear_smtp(session, actor, installation_default=args.business is None)
        status = delivery_status(session, settings, None if args.business is None else actor.business_id)
    print(
        f"{'Removed the SMTP settings of' if removed else 'No SMTP settings to remove for'} {label}. {status}"
    )
    return 0


def cmd_smtp_show(args: argparse.Namespace, settings: Settings) -> int:
    from mail.smtp_config import delivery_status, get_smtp

    engine = _engine(settings)
    actor, label = _smtp_actor(engine, args.business)
    with make_sessionmaker(engine)() as session:
        config = get_smtp(session, actor, installation_default=args.business is None)
        status = delivery_status(session, settings, None if args.business is None else actor.business_id)
    if config is None:
        print(f"No SMTP settings of {label}. {status}")
        return 0
    print(f"SMTP settings of {label}: {config.describe()}")
    if config.has_server:
        print(f"  from: {config.from_name} <{config.from_address}>")
    else:
        print(f"  sender name: {config.from_name}")
    if config.reply_to:
        print(f"  reply-to: {config.reply_to}")
    if config.has_password:
        print(f"  password: stored encrypted (key {config.key_fingerprint})")
    print(f"  {status}")
    return 0


def cmd_secret_key_check(args: argparse.Namespace, settings: Settings) -> int:
    from core.secret_key import check

    engine = _engine(settings)
    with make_sessionmaker(engine)() as session:
        result = check(session, settings)
    print(result)
    return 0


def cmd_secret_key_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from core.secret_key import SecretKeyError, keyring, rotate

    engine = _engine(settings)
    try:
        with session_scope(engine) as session:
            count = rotate(session, settings)
            primary = keyring(settings, session=session).primary_fingerprint
    except SecretKeyError as exc:
        raise SecretKeyError(f"{exc} Nothing was changed.") from None
    if not count:
        print("No stored password to re-encrypt.")
        return 0
    print(
        f"Re-encrypted {count} stored password{'s' if count != 1 else ''} with key {primary}. "
        "Restart the app and the daemon with the same TALLYBOARD_SECRET_KEY; the older keys may then be removed."
    )
    return 0


# --- parser --------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, no usage dump
        raise UsageError(f"{message} (see `python manage.py --help`)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="manage.py", description="Tallyboard command line.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("init-db", help="create or upgrade the database schema")
    p.set_defaults(func=cmd_init_db)

    business = sub.add_parser("business", help="manage businesses").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    p = business.add_parser("add", help="add a business")
    p.add_argument("code")
    p.add_argument("--name", required=True)
    p.add_argument("--currency", default="EUR")
    p.add_argument("--timezone", default="UTC")
    p.set_defaults(func=cmd_business_add)

    p = sub.add_parser("demo", help="load deterministic demo data into an empty business")
    p.add_argument("--business", default="demo")
    p.add_argument("--rows", type=int, default=100_000, help="sales lines (default 100000)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--if-empty", action="store_true", help="do nothing (exit 0) when data exists")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("import", help="import a CSV or XLSX file (all or nothing)")
    p.add_argument("entity")
    p.add_argument("file")
    p.add_argument("--business", required=True)
    p.add_argument("--user", default="cli")
    p.add_argument(
        "--no-refresh",
        action="store_true",
        help="do not build the reports' snapshot now (the daemon or the first report does)",
    )
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("reports", help="list reports and their parameters")
    p.set_defaults(func=cmd_reports)

    p = sub.add_parser("report", help="generate a report to a file")
    p.add_argument("slug")
    p.add_argument("--business", required=True)
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--format", default="json")
    p.add_argument("--out", required=True, help="file path, or - for standard output")
    p.add_argument(
        "--table",
        metavar="NAME",
        help="with --format csv: write only this table, as one CSV file (a report of several tables "
        "otherwise needs an --out ending in .zip)",
    )
    p.set_defaults(func=cmd_report)

    users = sub.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    p = users.add_parser("add", help="add a user (password read from standard input)")
    p.add_argument("username")
    p.add_argument("--business", required=True)
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--name", default="")
    p.add_argument("--email", default="")
    p.set_defaults(func=cmd_users_add)
    p = users.add_parser("list", help="list the users of a business")
    p.add_argument("--business", required=True)
    p.set_defaults(func=cmd_users_list)
    p = users.add_parser("set-password", help="set a user's password (read from standard input)")
    p.add_argument("username")
    p.add_argument("--business", required=True)
    p.set_defaults(func=cmd_users_set_password)
    p = users.add_parser(
        "set-email", help="set a user's email address (where notices and subscriptions go; '' removes it)"
    )
    p.add_argument("username")
    p.add_argument("email")
    p.add_argument("--business", required=True, metavar="CODE")
    p.set_defaults(func=cmd_users_set_email)
    p = users.add_parser("set-name", help="set a user's display name")
    p.add_argument("username")
    p.add_argument("name")
    p.add_argument("--business", required=True, metavar="CODE")
    p.set_defaults(func=cmd_users_set_name)
    p = users.add_parser(
        "ensure-demo",
        help="give a business without users an admin, a manager and a staff login (printed once)",
    )
    p.add_argument("--business", default="demo")
    p.add_argument("--port", type=int, default=8501, help="the app's port, for the printed address")
    p.set_defaults(func=cmd_users_ensure_demo)
    tokens = sub.add_parser("tokens", help="manage the users' tokens for the HTTP API").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    p = tokens.add_parser("create", help="make an API token for a user (printed once, alone on stdout)")
    p.add_argument("username")
    p.add_argument("--business", required=True, metavar="CODE")
    p.add_argument("--name", default="", help="what the token is for (default 'API token')")
    p.add_argument("--expires-days", type=int, default=None, metavar="N", help="default: never expires")
    p.set_defaults(func=cmd_tokens_create)
    p = tokens.add_parser("list", help="list a business's API tokens (never the tokens themselves)")
    p.add_argument("--business", required=True, metavar="CODE")
    p.set_defaults(func=cmd_tokens_list)
    p = tokens.add_parser("revoke", help="revoke an API token: it stops working at once")
    p.add_argument("id", type=int)
    p.add_argument("--business", required=True, metavar="CODE")
    p.set_defaults(func=cmd_tokens_revoke)
    schedules = sub.add_parser("schedules", help="manage scheduled report emails").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    p = schedules.add_parser("add", help="schedule a report by email (one time rule)")
    p.add_argument("--report", required=True, metavar="SLUG")
    p.add_argument("--business", required=True, metavar="CODE")
    p.add_argument("--cron", metavar="EXPR", help="'m h dom mon dow'")
    p.add_argument("--daily", metavar="HH:MM")
    p.add_argument("--weekly", metavar="MON,WED@HH:MM")
    p.add_argument("--monthly", metavar="1|last@HH:MM", help="day 1-28 or last")
    p.add_argument("--every-days", metavar="N@HH:MM", help="every N days from today")
    p.add_argument("--tz", metavar="ZONE", help="IANA time zone (default: the business's)")
    p.add_argument("--format", action="append", metavar="FMT", help="repeatable (default: pdf)")
    p.add_argument("--to", action="append", metavar="ADDRESS", help="repeatable")
    p.add_argument(
        "--webhook", action="append", metavar="URL", help="POST the signed JSON document here (repeatable)"
    )
    p.add_argument(
        "--slack", action="append", metavar="URL", help="a Slack incoming-webhook URL (repeatable)"
    )
    p.add_argument(
        "--when",
        metavar='"KPI OP VALUE"',
        help="send only when it holds, e.g. 'margin_pct < 0.25' (operators < <= > >= == !=)",
    )
    p.add_argument("--when-changes", action="store_true", help="only when --when turns from false to true")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--period",
        help="relative period resolved at each run (default: yesterday for --daily, last_week for "
        "--weekly, else last_month)",
    )
    p.add_argument(
        "--subject", default="{report} for {period}", help="placeholders {report} {period} {business}"
    )
    p.add_argument("--message", default="")
    p.add_argument("--name", default="")
    p.add_argument("--owner", metavar="USERNAME", help="a manager or admin (default: the first admin)")
    p.add_argument("--skip-if-empty", action="store_true", help="send nothing when the report is empty")
    p.add_argument("--large-files", choices=("link", "attach"), default="link")
    p.add_argument("--paused", action="store_true", help="create it paused")
    p.set_defaults(func=cmd_schedules_add)
    p = schedules.add_parser("list", help="list a business's schedules")
    p.add_argument("--business", required=True, metavar="CODE")
    p.set_defaults(func=cmd_schedules_list)
    for action, text in (
        ("pause", "pause a schedule"),
        ("resume", "resume a paused schedule"),
        ("delete", "delete a schedule"),
    ):
        p = schedules.add_parser(action, help=text)
        p.add_argument("id", type=int)
        p.add_argument("--business", required=True, metavar="CODE")
        p.set_defaults(func=cmd_schedules_change)
    smtp = sub.add_parser("smtp", help="set up and test the SMTP servers for emails").add_subparsers(
        dest="action", required=True, parser_class=_Parser
    )
    business_help = "the business's own settings (default: the installation default, used by businesses without their own)"
    p = smtp.add_parser("set", help="store an SMTP server and sender (the password is encrypted)")
    p.add_argument("--business", metavar="CODE", help=business_help)
    p.add_argument(
        "--host",
        default="",
        metavar="H",
        help="omit with --business to set only the sender name and reply-to",
    )
    p.add_argument("--port", type=int, default=587, metavar="P")
    p.add_argument("--security", choices=("none", "starttls", "ssl"), default="starttls")
    p.add_argument("--user", default="", metavar="U", help="log in as U (AUTH); omit for none")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input (one line)"
    )
    p.add_argument("--from", dest="from_address", default="", metavar="ADDRESS")
    p.add_argument("--from-name", default="Tallyboard", metavar="N")
    p.add_argument("--reply-to", default="", metavar="R")
    p.set_defaults(func=cmd_smtp_set)
    p = smtp.add_parser("test", help="send a test email now and show the server's answer")
    p.add_argument("--business", metavar="CODE", help="send the way this business's email goes")
    p.add_argument("--to", required=True, metavar="ADDRESS")
    p.set_defaults(func=cmd_smtp_test)
    p = smtp.add_parser("clear", help="remove SMTP settings (a business then uses the default or the outbox)")
    p.add_argument("--business", metavar="CODE", help=business_help)
    p.set_defaults(func=cmd_smtp_clear)
    p = smtp.add_parser("show", help="show SMTP settings (never the password)")
    p.add_argument("--business", metavar="CODE", help=business_help)
    p.set_defaults(func=cmd_smtp_show)
    secret = sub.add_parser(
        "secret-key", help="check or rotate the key that encrypts stored passwords"
    ).add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = secret.add_parser("check", help="check that the key opens every stored password")
    p.set_defaults(func=cmd_secret_key_check)
    p = secret.add_parser(
        "rotate", help="re-encrypt every stored password with the first key of TALLYBOARD_SECRET_KEY"
    )
    p.set_defaults(func=cmd_secret_key_rotate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        settings = Settings.from_env()
        status: int = args.func(args, settings)
        return status
    except TallyboardError as exc:
        return fail(exc)
    except (LookupError, ValueError) as exc:  # a library's refusal outside the tree: one line too
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except SQLAlchemyError as exc:
        print(
            f"error: database problem: {exc.__class__.__name__}: {str(exc).splitlines()[0]}", file=sys.stderr
        )
        return EXIT_FAILED
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the last word is one line too: an import racing a report, say
        from runs.failures import explain

        failure = explain(exc)
        print(f"error: {failure.text}{' Run the command again.' if failure.passing else ''}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        while _OPENED:
            _OPENED.pop().dispose()


if __name__ == "__main__":
    sys.exit(main())
