"""Benchmark: N schedules due in the same minute, two daemons, a local SMTP server; SQLite and PostgreSQL.

Measures the seconds from starting the daemons until every report email is in the aiosmtpd
mailbox, and counts duplicates (must be 0) and missing messages (must be 0), per window and
recipient. The daemons run as real subprocesses (`scheduler_daemon.py --now`: a clock started at
08:00:05 on the pinned day that then runs in real time) against a
fresh database each; the schedules spread over a few reports, periods and formats, so some
generations are real and the rest are served from the run cache as they would be in practice.
Writes the "Scheduler" section of bench/RESULTS.md (other sections are kept).

    .venv/bin/python bench/scheduler.py [--schedules 500] [--daemons 2] [--recipients 2]
                                        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import datetime as dt
import email
import email.policy
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "RESULTS.md"
DUE = dt.datetime(2026, 11, 20, 8, 0)  # pinned: the daemons' clocks start at 08:00:05 UTC
REPORTS = (
    ("sales_summary", "csv"),
    ("kpi_dashboard", "json"),
    ("payments", "json"),
    ("product_analysis", "csv"),
)
PERIODS = ("last_month", "last_7_days", "yesterday", "month_to_date")
SCHEMA = "bench_scheduler"


class Mailbox:
    """aiosmtpd handler: keeps (recipient, Message-ID) of every delivery."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, str]] = []
        self.first_at: float | None = None
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            if self.first_at is None:
                self.first_at = time.monotonic()
            for to in envelope.rcpt_tos:
                self.delivered.append((str(to), str(message["Message-ID"])))
        return "250 OK"

    def reports(self) -> list[tuple[str, str]]:
        with self._lock:
            return [d for d in self.delivered if ".report." in d[1]]


@dataclass
class Result:
    database: str
    schedules: int
    daemons: int
    expected: int
    seconds: float
    first_email_after: float
    delivered: int
    duplicates: int
    missing: int
    windows: int
    queued: int
    windows_per_daemon: dict[str, int]
    generated: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(kind: str, pg: str | None, data_dir: Path) -> str:
    from sqlalchemy import make_url, text

    from core.db import make_engine

    if kind == "sqlite":
        return f"sqlite:///{data_dir / 'tallyboard.db'}"
    assert pg is not None
    admin = make_engine(pg)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    admin.dispose()
    return (
        make_url(pg)
        .update_query_dict({"options": f"-csearch_path={SCHEMA}"})
        .render_as_string(hide_password=False)
    )


def prepare(url: str, data_dir: Path, n: int, recipients: int, smtp_port: int) -> list[int]:
    """A fresh database: demo data, an owner, `n` schedules due at DUE, SMTP pointing at the mailbox."""
    from accounts.users import add_user, operator
    from analytics.report import Scope
    from core.db import business_by_code, make_engine, make_sessionmaker, migrate
    from core.settings import Settings
    from ingest.demo import load_demo
    from mail.smtp_config import save_smtp
    from scheduling.schedules import ScheduleSpec, create_schedule

    engine = make_engine(url)
    migrate(engine)
    load_demo(engine, "bench", rows=5_000, today=DUE.date())
    settings = Settings(database_url=url, data_dir=data_dir)
    ids = []
    with make_sessionmaker(engine)() as s:
        business = business_by_code(s, "bench")
        assert business is not None
        add_user(
            s, operator(business.id), "bench-owner", "bench-password-1", "manager", email="owner@bench.test"
        )
        s.commit()
        save_smtp(
            s,
            settings,
            operator(),
            installation_default=True,
            host="127.0.0.1",
            port=smtp_port,
            security="none",
            from_address="reports@bench.test",
        )
        scope = Scope(business.id, "bench-owner", "manager")
        for i in range(n):
            slug, fmt = REPORTS[i % len(REPORTS)]
            spec = ScheduleSpec(
                report_slug=slug,
                rule_kind="daily",
                rule={"time": "08:00"},
                recipients=tuple(f"r{i}-{k}@bench.test" for k in range(recipients)),
                formats=(fmt,),
                timezone="UTC",
                period=PERIODS[(i // len(REPORTS)) % len(PERIODS)],
                name=f"bench {i}",
            )
            ids.append(create_schedule(s, scope, spec, now=DUE - dt.timedelta(minutes=5)).id)
    engine.dispose()
    return ids


@dataclass
class Tally:
    per_daemon: dict[str, int]  # windows claimed, by daemon (host:pid)
    windows: int
    queued: int
    generated: int  # runs that built their files (the rest reused the run cache)
    expected: list[tuple[str, str]]  # (recipient, Message-ID) of every report email queued


def tally(url: str) -> Tally:
    from sqlalchemy import func, select

    from core.db import make_engine, make_sessionmaker
    from core.models import OutboxMessage, Run, ScheduleRun

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        per = s.execute(select(ScheduleRun.claimed_by, func.count()).group_by(ScheduleRun.claimed_by)).all()
        windows = int(s.scalar(select(func.count()).select_from(ScheduleRun)) or 0)
        queued = int(
            s.scalar(select(func.count()).select_from(ScheduleRun).where(ScheduleRun.status == "queued")) or 0
        )
        generated = int(s.scalar(select(func.count()).select_from(Run).where(Run.cached.is_(False))) or 0)
        expected = [
            (str(r), str(m))
            for r, m in s.execute(
                select(OutboxMessage.recipient, OutboxMessage.message_id).where(
                    OutboxMessage.kind == "report"
                )
            ).all()
        ]
    engine.dispose()
    per_daemon = {re.sub(r":[0-9a-f]+$", "", str(k)): int(v) for k, v in per}
    return Tally(per_daemon, windows, queued, generated, expected)


def run_one(kind: str, args: argparse.Namespace) -> Result:
    from aiosmtpd.controller import Controller

    data_dir = OUT / f"scheduler-{kind}"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        url = database_url(kind, args.pg, data_dir)
        print(f"[{kind}] preparing {args.schedules} schedules ...", file=sys.stderr)
        ids = prepare(url, data_dir, args.schedules, args.recipients, port)
        expected_n = len(ids) * args.recipients
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "TALLYBOARD_DATA_DIR": str(data_dir),
            "TALLYBOARD_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        start_at = (DUE + dt.timedelta(seconds=5)).replace(tzinfo=dt.UTC).isoformat()
        cmd = [sys.executable, str(ROOT / "scheduler_daemon.py"), "--now", start_at, "--tick", "2"]
        print(f"[{kind}] starting {args.daemons} daemons ...", file=sys.stderr)
        started = time.monotonic()
        logs = [open(data_dir / f"daemon{i}.log", "wb") for i in range(args.daemons)]  # noqa: SIM115
        procs = [
            subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT) for log in logs
        ]
        deadline = started + args.timeout
        try:
            while time.monotonic() < deadline and len(set(box.reports())) < expected_n:
                time.sleep(0.2)
            done = time.monotonic()
            time.sleep(3)  # a late duplicate would show up here
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(timeout=120)
            for log in logs:
                log.close()
        delivered = box.reports()
        t = tally(url)
        got = Counter(delivered)
        duplicates = sum(n - 1 for n in got.values() if n > 1)
        missing = len(set(t.expected) - set(got)) + max(0, expected_n - len(set(t.expected)))
        first = box.first_at or done
        return Result(
            database="SQLite" if kind == "sqlite" else "PostgreSQL",
            schedules=len(ids),
            daemons=args.daemons,
            expected=expected_n,
            seconds=done - started,
            first_email_after=min(first, done) - started,
            delivered=len(delivered),
            duplicates=duplicates,
            missing=missing,
            windows=t.windows,
            queued=t.queued,
            windows_per_daemon=t.per_daemon,
            generated=t.generated,
        )
    finally:
        controller.stop()


def markdown(results: list[Result], args: argparse.Namespace) -> str:
    stamp = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        "## Scheduler",
        "",
        f"Run {stamp}, {os.cpu_count()} cores shared with other work (noisy), `bench/scheduler.py "
        f"--schedules {args.schedules} --daemons {args.daemons} --recipients {args.recipients}`: "
        f"{args.schedules} schedules due in the same minute over {len(REPORTS)} reports × {len(PERIODS)} "
        "periods (the rest of each group served from the run cache), demo data of 5,000 lines, "
        f"{args.daemons} `scheduler_daemon.py` processes (tick 2 s) on one database, a local aiosmtpd "
        "server (plain SMTP). Seconds run from starting the daemons (including their ~5 s start-up) "
        "until the mailbox holds one message per recipient per window.",
        "",
        "| database | schedules | emails | seconds to all delivered | first email after (s) | windows (queued) | "
        "windows per daemon | generated | duplicates | missing |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for r in results:
        split = " / ".join(str(v) for v in sorted(r.windows_per_daemon.values(), reverse=True))
        lines.append(
            f"| {r.database} | {r.schedules} | {r.expected} | {r.seconds:.1f} | {r.first_email_after:.1f} | "
            f"{r.windows} ({r.queued}) | {split} | {r.generated} | **{r.duplicates}** | **{r.missing}** |"
        )
    lines.append("")
    return "\n".join(lines)


def write_results(section: str) -> None:
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(r"^## Scheduler\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):  # replace our section in place (a function: no escapes in the text)
        text = pattern.sub(lambda _m: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=500)
    parser.add_argument("--daemons", type=int, default=2)
    parser.add_argument("--recipients", type=int, default=2)
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_PG_URL"), help="PostgreSQL URL (skipped without)"
    )
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument(
        "--pg-only", action="store_true", help="skip SQLite (with --no-write: a quick re-check)"
    )
    args = parser.parse_args()
    kinds = ([] if args.pg_only else ["sqlite"]) + (["pg"] if args.pg else [])
    results = [run_one(kind, args) for kind in kinds]
    section = markdown(results, args)
    print(section)
    if not args.no_write:
        write_results(section)
    return 0 if all(r.duplicates == 0 and r.missing == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
