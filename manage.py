"""Tallyboard's command line: database, businesses, demo data, imports, reports and users.

Every mistake is answered with one line on stderr and a non-zero exit status, never a traceback.
Run `python manage.py --help` or `python manage.py COMMAND --help`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from accounts.users import AccountError, add_business, add_user, operator
from analytics.periods import PeriodError
from analytics.report import ParamError, ReportParams, Scope
from core.db import business_by_code, make_engine, make_sessionmaker, migrate, session_scope
from core.errors import Forbidden
from core.models import ROLES, Business
from core.settings import Settings

EXIT_USAGE = 2
EXIT_FAILED = 1


class CommandError(Exception):
    """A mistake to report in one line (exit status 1 unless given)."""

    def __init__(self, message: str, status: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.status = status


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
            raise CommandError(f"Cannot open the database {engine.url!r}: {exc.__class__.__name__}.") from exc
        if "businesses" not in tables:
            raise CommandError("The database has no Tallyboard tables yet: run `python manage.py init-db`.")
    return engine


def _business(engine: Engine, code: str) -> Business:
    with make_sessionmaker(engine)() as session:
        business = business_by_code(session, code)
    if business is None:
        raise CommandError(f"No business with code {code!r}: create it with `python manage.py business add`.")
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
        raise CommandError(
            f"Business {args.business!r} already has data; demo data is only loaded into an empty one."
        )
    if args.rows < 100:
        raise CommandError("--rows must be at least 100.", EXIT_USAGE)
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
        raise CommandError(
            f"Unknown entity {args.entity!r}; choose one of: {', '.join(ENTITIES)}.", EXIT_USAGE
        )
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"File not found: {path}")
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
    from reports.registry import REPORTS

    for r in REPORTS:
        print(f"{r.slug}: {r.title}")
        print(f"    {r.description}")
        params = (
            ["period=<relative> | start=YYYY-MM-DD end=YYYY-MM-DD", "tz=<IANA zone>"] if r.uses_period else []
        )
        if r.filters:
            params.append("filters: " + ", ".join(f"{f}=a,b" for f in r.filters))
        for opt in r.options:
            choices = f" ({'|'.join(opt.choices)})" if opt.choices else ""
            params.append(f"{opt.name}={opt.default}{choices}: {opt.help}")
        params.append("columns.<table>=col1,col2")
        for p in params:
            print(f"    --param {p}")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from exporters import EXPORTERS
    from reports.registry import generate
    from snapshots.store import SnapshotStore

    exporter = EXPORTERS.get(args.format)
    if exporter is None:
        raise CommandError(f"Unknown format {args.format!r}; available: {', '.join(EXPORTERS)}.", EXIT_USAGE)
    params = ReportParams.from_pairs(args.param)
    engine = _engine(settings)
    business = _business(engine, args.business)
    store = SnapshotStore(engine, settings.snapshot_dir)
    with make_sessionmaker(engine)() as session:
        report = generate(session, store, Scope(business.id, user="cli"), args.slug, params)
    if args.out == "-":
        # Straight to stdout: a million-line export never sits in memory (ZipFile copes with a pipe).
        exporter.write(report, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return 0
    with _atomic_file(Path(args.out)) as handle:
        exporter.write(report, handle)
    print(f"Wrote {args.out}", file=sys.stderr)
    return 0


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
        raise CommandError(f"{path} is a folder; give a file name.")
    if mode is not None and not stat.S_ISREG(mode):
        with open(target, "wb") as handle:
            yield handle
        return
    if not target.parent.is_dir():
        raise CommandError(f"Folder does not exist: {path.parent}")
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
            raise CommandError("The two passwords differ.")
        return first
    line = sys.stdin.readline()
    if not line:
        raise CommandError("No password on standard input (pipe it in, one line).")
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
                raise CommandError(f"No user {args.username!r} in business {business.code!r}.")
            reset_password(session, operator(business.id), user.id, password)
            print(f"New password set for {user.username!r}.")
    finally:
        engine.dispose()
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
        raise CommandError(
            "Give exactly one time rule: --cron EXPR, --daily HH:MM, --weekly MON,WED@HH:MM, "
            "--monthly 1|last@HH:MM or --every-days N@HH:MM.",
            EXIT_USAGE,
        )
    kind, text = given[0]
    return kind, rule_from_text(kind, text, today=today)


def _schedule_line(info: Any) -> str:
    state = "active" if info.active else "paused"
    local = info.next_due_local
    nxt = f"next {local:%Y-%m-%d %H:%M %Z}" if local is not None else "no next run"
    return (
        f"{info.id}\t{state}\t{info.rule_text} ({info.timezone})\t{nxt}\t"
        f"{info.report_slug} [{','.join(info.formats)}] {info.period} -> {', '.join(info.recipients)}\t{info.name}"
    )


def cmd_schedules_add(args: argparse.Namespace, settings: Settings) -> int:
    from scheduling.schedules import ScheduleSpec, create_schedule
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
                raise CommandError(f"Parameter {pair!r} must look like KEY=VALUE.", EXIT_USAGE)
            parameters[key.strip()] = value.strip()
        spec = ScheduleSpec(
            report_slug=args.report,
            rule_kind=kind,
            rule=rule,
            recipients=tuple(args.to),
            formats=tuple(args.format or ["pdf"]),
            timezone=tz,
            period=args.period,
            name=args.name,
            parameters=parameters,
            subject=args.subject,
            message=args.message,
            skip_if_empty=args.skip_if_empty,
            large_file_mode=args.large_files,
            active=not args.paused,
        )
        with make_sessionmaker(engine)() as session:
            info = create_schedule(session, operator(business.id), spec, now=now, owner=args.owner or "")
        print(f"Created schedule {info.id} in business {business.code!r}:")
        print(_schedule_line(info))
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
    from core.secret_key import SecretKeyError
    from mail.smtp_config import SmtpConfigError, save_smtp

    if not args.host and args.business is None:
        raise CommandError("The installation default needs --host (and --from).", EXIT_USAGE)
    if args.host and not args.from_address:
        raise CommandError("--from is required with --host.", EXIT_USAGE)
    password: str | None = None
    if args.password_stdin:
        if not args.user:
            raise CommandError("--password-stdin needs --user.", EXIT_USAGE)
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
        hint = " (pipe it in with --password-stdin)" if "Enter the password" in str(exc) else ""
        raise CommandError(f"{exc}{hint}") from None
    except SecretKeyError as exc:
        raise CommandError(str(exc)) from None
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
    except SmtpConfigError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    if not result.ok:
        raise CommandError(f"the test email was not sent: {result.text}")
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
    from core.secret_key import SecretKeyError, check

    engine = _engine(settings)
    try:
        with make_sessionmaker(engine)() as session:
            result = check(session, settings)
    except SecretKeyError as exc:
        raise CommandError(str(exc)) from None
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
        raise CommandError(f"{exc} Nothing was changed.") from None
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
        raise CommandError(f"{message} (see `python manage.py --help`)", EXIT_USAGE)


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
        "ensure-demo",
        help="give a business without users an admin, a manager and a staff login (printed once)",
    )
    p.add_argument("--business", default="demo")
    p.add_argument("--port", type=int, default=8501, help="the app's port, for the printed address")
    p.set_defaults(func=cmd_users_ensure_demo)
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
    p.add_argument("--to", action="append", required=True, metavar="ADDRESS", help="repeatable")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--period", default="last_month", help="relative period resolved at each run")
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
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.status
    except (ParamError, PeriodError, AccountError, Forbidden, LookupError, ValueError) as exc:
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
