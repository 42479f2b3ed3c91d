"""Tallyboard's command line: database, businesses, demo data, imports, reports and users.

Every mistake is answered with one line on stderr and a non-zero exit status, never a traceback.
Run `python manage.py --help` or `python manage.py COMMAND --help`.
"""

from __future__ import annotations

import argparse
import getpass
import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from analytics.accounts import AccountError, add_business, add_user
from analytics.db import business_by_code, make_engine, make_sessionmaker, migrate, session_scope
from analytics.models import ROLES, Business
from analytics.periods import PeriodError
from analytics.report import ParamError, ReportParams, Scope
from analytics.settings import Settings

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


def _engine(settings: Settings, *, need_schema: bool = True) -> Engine:
    engine = make_engine(settings.database_url)
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
    from analytics.demo import has_data, load_demo

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
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.importer import ENTITIES, import_file

    if args.entity not in ENTITIES:
        raise CommandError(
            f"Unknown entity {args.entity!r}; choose one of: {', '.join(ENTITIES)}.", EXIT_USAGE
        )
    path = Path(args.file)
    if not path.is_file():
        raise CommandError(f"File not found: {path}")
    size = path.stat().st_size
    if size > settings.max_upload_bytes:
        limit_mb = settings.max_upload_bytes / 1024 / 1024
        raise CommandError(f"{path.name} is {size / 1024 / 1024:.1f} MB; the limit is {limit_mb:.0f} MB.")
    engine = _engine(settings)
    business = _business(engine, args.business)
    update, close = _progress(f"import {args.entity}")
    try:
        result = import_file(
            engine,
            business.id,
            args.entity,
            path.name,
            path.read_bytes(),
            settings,
            username=args.user,
            progress=update,
        )
    finally:
        close()
    if result.ok:
        print(result.message)
        return 0
    print(result.message, file=sys.stderr)
    for err in result.errors:
        where = f"row {err.row}" if err.row else "file"
        column = f", column {err.column}" if err.column else ""
        print(f"  {where}{column}: {err.reason}", file=sys.stderr)
    return EXIT_FAILED


def cmd_reports(args: argparse.Namespace, settings: Settings) -> int:
    from analytics.registry import REPORTS

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
    from analytics.registry import generate
    from analytics.snapshot import SnapshotStore
    from exporters import EXPORTERS

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
        buffer = io.BytesIO()
        exporter.write(report, buffer)
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.buffer.flush()
        return 0
    with _atomic_file(Path(args.out)) as handle:
        exporter.write(report, handle)
    print(f"Wrote {args.out}", file=sys.stderr)
    return 0


@contextmanager
def _atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """Write to a temp file beside `path`, then rename: readers never see half a file."""
    if path.parent and not path.parent.exists():
        raise CommandError(f"Folder does not exist: {path.parent}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
            session, business.id, args.username, password, args.role, name=args.name, email=args.email
        )
        print(f"Created {user.role} {user.username!r} in business {business.code!r}.")
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
    except (ParamError, PeriodError, AccountError, LookupError, ValueError) as exc:
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


if __name__ == "__main__":
    sys.exit(main())
