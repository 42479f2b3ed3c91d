"""Benchmark: how fresh the dashboards are after an import (issue 8's targets).

Each step is its own command so that a whole-process timer can run it several times:

    python bench/freshness.py setup --dir D --rows 1000000     # demo DB in D (SQLite), snapshot built
    python bench/freshness.py import --dir D                    # import a payments file + refresh
    python bench/freshness.py rebuild --dir D                   # drop the snapshot, build it again
    python bench/freshness.py report --dir D [--slug S] [--period P] [--repeat 5]

`import` is what a user does after the data changed: a small payments file (new ids every run)
imported with `manage.py import`, which commits and then builds the reports' snapshot; the first
report after it then finds the snapshot ready (`report` in a fresh process). `report` prints the
first and the warm (median of the rest) generation time inside one process, and the process's peak
memory. `rebuild` prints the seconds of the snapshot build alone, its peak memory (the copy runs in
a child process) and the snapshot's size on disk. `ceiling` is the row-streaming copy the snapshot
build replaced (SQLAlchemy rows into pyarrow batches into Parquet), for the ratio.
D must be a folder this script may create and fill; nothing outside it is written.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BUSINESS = "demo"


def env_for(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'demo.db'}",
        "TALLYBOARD_DATA_DIR": str(folder / "data"),
    }


def peak_mb(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def manage(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env_for(folder),
        capture_output=True,
        text=True,
        check=True,
    )


def setup(folder: Path, rows: int) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    manage(folder, "init-db")
    started = time.perf_counter()
    out = manage(folder, "demo", "--business", BUSINESS, "--rows", str(rows), "--if-empty")
    return {
        "seconds": time.perf_counter() - started,
        "output": (out.stdout + out.stderr).strip().splitlines()[-2:],
    }


def _store(folder: Path) -> tuple[Any, int]:
    os.environ.update(env_for(folder))
    from core.db import business_by_code, make_engine, make_sessionmaker
    from core.settings import Settings
    from snapshots.store import SnapshotStore

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        business = business_by_code(session, BUSINESS)
        assert business is not None, "run setup first"
        return SnapshotStore(engine, settings.snapshot_dir), business.id


def rebuild(folder: Path) -> dict[str, Any]:
    store, business_id = _store(folder)
    shutil.rmtree(store.root, ignore_errors=True)
    started = time.perf_counter()
    snap = store.current(business_id)
    seconds = time.perf_counter() - started
    size = sum(f.stat().st_size for f in snap.path.iterdir())
    return {"seconds": seconds, "copy_peak_mb": peak_mb(children=True), "size_mb": size / 1024 / 1024}


def import_payments(folder: Path, count: int = 200) -> dict[str, Any]:
    """Import `count` new payments for existing orders (fresh ids every run), as a user would."""
    import sqlite3

    db = sqlite3.connect(folder / "demo.db")
    orders = [r[0] for r in db.execute("SELECT order_id FROM sales ORDER BY id DESC LIMIT ?", (count,))]
    db.close()
    tag = secrets.token_hex(4)
    path = folder / f"payments-{tag}.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["payment_id", "order_id", "paid_at", "amount", "method"])
        for i, order in enumerate(orders):
            writer.writerow([f"BENCH-{tag}-{i}", order, "2026-11-20", "1.00", "card"])
    try:
        started = time.perf_counter()
        out = manage(folder, "import", "payments", str(path), "--business", BUSINESS)
        seconds = time.perf_counter() - started
    finally:
        path.unlink(missing_ok=True)
    return {"seconds": seconds, "output": (out.stdout + out.stderr).strip().splitlines()[-2:]}


def report(folder: Path, slug: str, period: str, repeat: int) -> dict[str, Any]:
    store, business_id = _store(folder)
    from analytics.report import ReportParams, Scope
    from core.clock import utc_now
    from core.db import make_sessionmaker
    from reports.registry import generate

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        with make_sessionmaker(store.engine)() as session:
            generate(
                session,
                store,
                Scope(business_id, user="bench"),
                slug,
                ReportParams(period=period),
                now=utc_now(),
            )
        times.append(time.perf_counter() - started)
    return {
        "slug": slug,
        "period": period,
        "first_s": times[0],
        "warm_s": statistics.median(times[1:]) if len(times) > 1 else None,
        "peak_mb": peak_mb(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("step", choices=("setup", "import", "rebuild", "report"))
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--slug", default="kpi_dashboard")
    parser.add_argument("--period", default="last_year")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder: Path = args.dir.resolve()
    if args.step == "setup":
        result = setup(folder, args.rows)
    elif args.step == "import":
        result = import_payments(folder)
    elif args.step == "rebuild":
        result = rebuild(folder)
    else:
        result = report(folder, args.slug, args.period, args.repeat)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
