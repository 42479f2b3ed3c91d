"""Benchmark: every report on N demo sales lines (default 1M), beside a naive pandas baseline.

Each measurement runs in its own process so peak memory (ru_maxrss) belongs to that one job.
Prints a Markdown table; copy the numbers into bench/RESULTS.md.

    .venv/bin/python bench/reports.py [--rows 1000000] [--pg postgresql+psycopg://...] [--small 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
TODAY = dt.date(2026, 11, 21)  # pinned so every run measures the same data


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(argv: list[str]) -> dict[str, Any]:
    """Run this script in a fresh process for one measurement; it prints one JSON line."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *argv], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- children ------------------------------------------------------------------------------------


def child_load(url: str, rows: int) -> dict[str, Any]:
    from core.db import make_engine, migrate
    from ingest.demo import has_data, load_demo

    engine = make_engine(url)
    migrate(engine)
    if has_data(engine, "demo"):
        return {"seconds": None, "peak_mb": peak_mb(), "note": "already loaded"}
    started = time.perf_counter()
    summary = load_demo(engine, "demo", rows=rows, today=TODAY)
    return {"seconds": time.perf_counter() - started, "peak_mb": peak_mb(), "lines": summary.lines}


def _business_id(engine: Any) -> int:
    from core.db import business_by_code, make_sessionmaker

    with make_sessionmaker(engine)() as session:
        business = business_by_code(session, "demo")
        assert business is not None
        return business.id


def child_snapshot(url: str, snapdir: str) -> dict[str, Any]:
    from core.db import make_engine
    from snapshots.store import SnapshotStore

    engine = make_engine(url)
    shutil.rmtree(snapdir, ignore_errors=True)
    bid = _business_id(engine)
    started = time.perf_counter()
    snap = SnapshotStore(engine, Path(snapdir)).current(bid)
    seconds = time.perf_counter() - started
    size = sum(f.stat().st_size for f in snap.path.iterdir())
    return {"seconds": seconds, "peak_mb": peak_mb(), "size_mb": size / 1024 / 1024}


def child_report(url: str, snapdir: str, slug: str, pairs: list[str]) -> dict[str, Any]:
    from analytics.report import ReportParams, Scope
    from core.clock import utc_now
    from core.db import make_engine, make_sessionmaker
    from reports.registry import generate
    from snapshots.store import SnapshotStore

    engine = make_engine(url)
    bid = _business_id(engine)
    store = SnapshotStore(engine, Path(snapdir))
    params = ReportParams.from_pairs(pairs)
    before = peak_mb()
    times = []
    for _ in range(4):
        started = time.perf_counter()
        with make_sessionmaker(engine)() as session:
            generate(session, store, Scope(bid), slug, params, now=utc_now())
        times.append(time.perf_counter() - started)
    return {
        "first_s": times[0],
        "warm_s": statistics.median(times[1:]),
        "peak_mb": peak_mb(),
        "import_mb": before,
    }


def child_naive(url: str, slug: str, start: str, end: str) -> dict[str, Any]:
    """The naive way: read every line with pandas, then filter and group in Python."""
    import pandas as pd

    from core.db import make_engine

    engine = make_engine(url)
    bid = _business_id(engine)
    started = time.perf_counter()
    with engine.connect() as conn:
        lines = pd.read_sql(
            "SELECT s.order_id, s.order_date, s.status, c.customer_code, c.region, c.customer_type, "
            "p.sku, p.category, st.code AS storefront, s.sales_rep, l.quantity, l.net_micros, l.cost_micros "
            "FROM sale_lines l JOIN sales s ON s.id = l.sale_id JOIN customers c ON c.id = s.customer_id "
            "JOIN products p ON p.id = l.product_id LEFT JOIN storefronts st ON st.id = s.storefront_id "
            f"WHERE l.business_id = {bid}",
            conn,
        )
    lines["order_date"] = pd.to_datetime(lines["order_date"])
    cur = lines[
        (lines["status"] == "completed") & (lines["order_date"] >= start) & (lines["order_date"] <= end)
    ]
    totals = (cur["net_micros"].sum(), cur["cost_micros"].sum(), cur["order_id"].nunique())
    by_month = cur.groupby(cur["order_date"].dt.strftime("%Y-%m")).agg(
        revenue=("net_micros", "sum"), cost=("cost_micros", "sum"), orders=("order_id", "nunique")
    )
    groups = (
        ["customer_code", "sku", "category", "region", "storefront"]
        if slug == "sales_summary"
        else [
            "customer_code",
            "sku",
        ]
    )
    for key in groups:
        cur.groupby(key)["net_micros"].sum().sort_values(ascending=False)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_mb": peak_mb(),
        "rows": len(lines),
        "check": [int(totals[0]), len(by_month)],
    }


# --- driver --------------------------------------------------------------------------------------


def run(url: str, label: str, rows: int, snapdir: Path, naive: bool) -> list[str]:
    from reports.registry import REPORTS

    out: list[str] = []
    load = child(["load", url, str(rows)])
    out.append(f"\n### {label}, {rows:,} demo lines\n")
    if load["seconds"] is not None:
        out.append(f"- demo load: {load['seconds']:.1f} s, peak {load['peak_mb']:.0f} MB")
    snap = child(["snapshot", url, str(snapdir)])
    out.append(
        f"- snapshot build (first report after an import): {snap['seconds']:.2f} s, "
        f"peak {snap['peak_mb']:.0f} MB, {snap['size_mb']:.1f} MB of Parquet\n"
    )
    last_year = [f"start={TODAY.year - 1}-01-01", f"end={TODAY.year - 1}-12-31"]
    everything = [f"start={TODAY.year - 3}-11-01", f"end={TODAY.isoformat()}"]
    out.append("| report | period | first run s | warm run s | peak MB | naive s | naive MB | speed-up |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for defn in REPORTS:
        cases = [("last year", last_year)]
        if defn.slug in ("kpi_dashboard", "sales_summary"):
            cases.append(("all 3 years", everything))
        for name, pairs in cases:
            r = child(["report", url, str(snapdir), defn.slug, *pairs])
            naive_cells = ["", "", ""]
            if naive and defn.slug in ("kpi_dashboard", "sales_summary"):
                start, end = pairs[0].split("=")[1], pairs[1].split("=")[1]
                n = child(["naive", url, defn.slug, start, end])
                naive_cells = [
                    f"{n['seconds']:.2f}",
                    f"{n['peak_mb']:.0f}",
                    f"{n['seconds'] / r['warm_s']:.0f}×",
                ]
            out.append(
                f"| {defn.slug} | {name} | {r['first_s']:.3f} | {r['warm_s']:.3f} | {r['peak_mb']:.0f} | "
                + " | ".join(naive_cells)
                + " |"
            )
            print(out[-1], flush=True)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        handlers = {
            "load": lambda: child_load(rest[0], int(rest[1])),
            "snapshot": lambda: child_snapshot(rest[0], rest[1]),
            "report": lambda: child_report(rest[0], rest[1], rest[2], rest[3:]),
            "naive": lambda: child_naive(rest[0], rest[1], rest[2], rest[3]),
        }
        print(json.dumps(handlers[kind]()))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="also run at this size (memory growth)")
    parser.add_argument("--pg", default=os.environ.get("BENCH_PG_URL", ""), help="PostgreSQL URL (optional)")
    parser.add_argument("--no-naive", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    lines = [f"Benchmark run {dt.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores"]
    sizes = [args.rows] + ([args.small] if args.small and args.small != args.rows else [])
    for rows in sizes:
        url = f"sqlite:///{OUT / f'reports_{rows}.db'}"
        lines += run(url, "SQLite", rows, OUT / f"snap_sqlite_{rows}", naive=not args.no_naive)
    if args.pg:
        lines += run(args.pg, "PostgreSQL", args.rows, OUT / "snap_pg", naive=not args.no_naive)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
