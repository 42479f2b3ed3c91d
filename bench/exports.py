"""Benchmark: the sales_lines export of N demo lines (default 1M) to CSV, XLSX and JSON, a 10,000-row PDF,
beside the baselines: pandas + openpyxl (naive), XlsxWriter constant_memory writing the same rows with
no formatting (the XLSX ceiling) and a plain csv.writer loop over a cursor (the CSV ceiling).

Each measurement runs in its own process, so its peak memory (ru_maxrss) is its own; CPU seconds are
the process's user + system time, the fairer comparison on a shared machine. Reuses (or builds) the
demo database bench/out/reports_N.db that bench/reports.py uses (measuring on a private copy of it,
bench/out/exports_N.db, which other benchmarks do not write to) and its own snapshot folder.
Prints a Markdown table and writes it to bench/RESULTS.md under "## Exports" (other sections stay).

    .venv/bin/python bench/exports.py [--rows 1000000] [--skip-naive] [--repeat 3]

The XLSX target alone (issue 15: sales_lines for last year to XLSX within 1.3× the wall time of a
bare XlsxWriter constant_memory loop writing the same rows, peak memory under 250 MB): ours and the
bare loop in turn, `--repeat` pairs (the order alternating), the ratio of each pair and their
median, the 1-minute load average around every run; written under "## Exports: XLSX target".

    .venv/bin/python bench/exports.py --xlsx-target [--rows 1000000] [--period last_year] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib
import importlib.util
import json
import os
import re
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "out"
FILES = OUT / "exports"
RESULTS = ROOT / "bench" / "RESULTS.md"
PDF_ROWS = 10_000


def _reports_bench() -> Any:
    """bench/reports.py as a module: the same demo database (same rows, seed and pinned day)."""
    spec = importlib.util.spec_from_file_location("bench_reports", ROOT / "bench" / "reports.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


_CPU_START = [0.0]


def start_clock() -> float:
    """Call after the imports: CPU seconds are counted from here; returns the wall clock."""
    _CPU_START[0] = _cpu()
    return time.perf_counter()


def usage() -> dict[str, float]:
    """Peak memory of the whole process; CPU seconds since start_clock()."""
    return {
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cpu_s": _cpu() - _CPU_START[0],
    }


def child(argv: list[str]) -> dict[str, Any]:
    """Run this script in a fresh process for one measurement; it prints one JSON line."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *argv], capture_output=True, text=True, cwd=ROOT, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --- children ------------------------------------------------------------------------------------------


def _engine_and_business(url: str) -> tuple[Any, int]:
    from core.db import business_by_code, make_engine, make_sessionmaker

    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        business = business_by_code(session, "demo")
        assert business is not None
        return engine, business.id


def child_snapshot(url: str, snapdir: str) -> dict[str, Any]:
    from snapshots.store import SnapshotStore

    engine, bid = _engine_and_business(url)
    started = start_clock()
    snap = SnapshotStore(engine, Path(snapdir)).current(bid)
    return {"seconds": time.perf_counter() - started, "path": str(snap.path), **usage()}


def _report(url: str, snapdir: str, pairs: list[str]) -> Any:
    from analytics.report import ReportParams, Scope
    from core.clock import utc_now
    from core.db import make_sessionmaker
    from reports.registry import generate
    from snapshots.store import SnapshotStore

    engine, bid = _engine_and_business(url)
    with make_sessionmaker(engine)() as session:
        return generate(
            session,
            SnapshotStore(engine, Path(snapdir)),
            Scope(bid),
            "sales_lines",
            ReportParams.from_pairs(pairs),
            now=utc_now(),
        )


def child_ours(url: str, snapdir: str, fmt: str, pairs: list[str]) -> dict[str, Any]:
    """Our export through EXPORTERS (for the PDF: its writer with the row limit raised to PDF_ROWS)."""
    import reports.registry  # noqa: F401
    from exporters import EXPORTERS

    imported = usage()
    started = start_clock()
    report = _report(url, snapdir, pairs)
    generated = time.perf_counter()
    path = FILES / f"sales_lines.{fmt}"
    with open(path, "wb") as out:
        if fmt == "pdf":
            module, _, name = str(EXPORTERS["pdf"].writer).partition(":")
            getattr(importlib.import_module(module), name)(report, out, max_table_rows=PDF_ROWS)
        else:
            EXPORTERS[fmt].write(report, out)
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "generate_s": generated - started,
        "rows": report.tables["lines"].row_count,
        "file_mb": path.stat().st_size / 1024 / 1024,
        "import_mb": imported["peak_mb"],
        **usage(),
    }


def _same_rows_cursor(snapshot_path: str, pairs: list[str]) -> Any:
    """One DuckDB cursor over the snapshot with the stream's SELECT (same columns and values), one ORDER BY."""
    from reports.lines import EXPRESSIONS, ORDER_BY
    from snapshots.store import Snapshot

    start, end = (p.split("=", 1)[1] for p in pairs)
    con = Snapshot(0, 0, Path(snapshot_path)).connect()
    select = ", ".join(f"{sql} AS {key}" for key, sql in EXPRESSIONS.items())
    return con.execute(
        f"SELECT {select} FROM lines l WHERE l.order_date BETWEEN $start AND $end ORDER BY {ORDER_BY}",
        {"start": dt.date.fromisoformat(start), "end": dt.date.fromisoformat(end)},
    )


def child_csv_ceiling(snapshot_path: str, pairs: list[str]) -> dict[str, Any]:
    import reports.registry  # noqa: F401  (the same imports as ours, for comparable memory)

    started = start_clock()
    cur = _same_rows_cursor(snapshot_path, pairs)
    path = FILES / "ceiling.csv"
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([d[0] for d in cur.description])
        while batch := cur.fetchmany(10_000):
            writer.writerows(batch)
            rows += len(batch)
    return {
        "seconds": time.perf_counter() - started,
        "rows": rows,
        "file_mb": path.stat().st_size / 2**20,
        **usage(),
    }


def child_csv_sqlite(db_file: str) -> dict[str, Any]:
    """csv.writer over a plain sqlite3 cursor on the database of record (the same joined lines)."""
    started = start_clock()
    con = sqlite3.connect(db_file)
    cur = con.execute(
        "SELECT s.order_id, s.order_date, s.status, c.customer_code, c.name, c.customer_type, c.region, "
        "st.code, st.name, s.sales_rep, p.sku, p.name, p.category, l.quantity, l.unit_price_micros, "
        "l.discount, l.net_micros, l.cost_micros, l.net_micros - l.cost_micros "
        "FROM sale_lines l JOIN sales s ON s.id = l.sale_id JOIN customers c ON c.id = s.customer_id "
        "JOIN products p ON p.id = l.product_id LEFT JOIN storefronts st ON st.id = s.storefront_id "
        "ORDER BY s.order_date, s.order_id, p.sku, l.id"
    )
    path = FILES / "ceiling_sqlite.csv"
    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([d[0] for d in cur.description])
        while batch := cur.fetchmany(10_000):
            writer.writerows(batch)
            rows += len(batch)
    return {
        "seconds": time.perf_counter() - started,
        "rows": rows,
        "file_mb": path.stat().st_size / 2**20,
        **usage(),
    }


def child_xlsx_ceiling(snapshot_path: str, pairs: list[str]) -> dict[str, Any]:

    import xlsxwriter  # noqa: F401  (imported before the clock starts, as ours is)

    import reports.registry  # noqa: F401  (the same imports as ours, for comparable memory)

    started = start_clock()
    cur = _same_rows_cursor(snapshot_path, pairs)
    header = [d[0] for d in cur.description]
    return _bare_loop(FILES / "ceiling.xlsx", header, iter(lambda: cur.fetchmany(10_000), []), started)


def child_xlsx_bare(url: str, snapdir: str, pairs: list[str]) -> dict[str, Any]:
    """The XLSX target: a bare XlsxWriter constant_memory loop (write_row, no formats, no labels,
    no widths) over the very rows ours writes: the same report generated the same way, its rows
    read through the same stream. Ours / this = what our per-cell work costs."""

    import xlsxwriter  # noqa: F401  (imported before the clock starts, as ours is)

    import reports.registry  # noqa: F401  (the same imports as ours, for comparable memory)

    started = start_clock()
    table = _report(url, snapdir, pairs).tables["lines"]
    return _bare_loop(FILES / "bare.xlsx", [c.key for c in table.columns], table.batches(), started)


def _bare_loop(
    path: Path, header: list[str], batches: Iterable[Sequence[Any]], started: float
) -> dict[str, Any]:
    """XlsxWriter constant_memory `write_row` over `batches` of rows, nothing else; the figures of the
    run begun at `started`."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("Lines")
    sheet.write_row(0, 0, header)
    row = 1
    for batch in batches:
        for values in batch:
            sheet.write_row(row, 0, values)
            row += 1
    book.close()
    return {
        "seconds": time.perf_counter() - started,
        "rows": row - 1,
        "file_mb": path.stat().st_size / 2**20,
        **usage(),
    }


def child_naive_xlsx(url: str) -> dict[str, Any]:
    """The naive way: pandas reads every line, then to_excel with openpyxl."""
    import pandas as pd

    engine, bid = _engine_and_business(url)
    started = start_clock()
    with engine.connect() as conn:
        frame = pd.read_sql(
            "SELECT s.order_id, s.order_date, s.status, c.customer_code, c.name AS customer_name, "
            "c.customer_type, c.region, st.code AS storefront_code, st.name AS storefront_name, s.sales_rep, "
            "p.sku, p.name AS product_name, p.category, l.quantity, l.unit_price_micros / 1e6 AS unit_price, "
            "l.discount, l.net_micros / 1e6 AS net, l.cost_micros / 1e6 AS cost, "
            "(l.net_micros - l.cost_micros) / 1e6 AS profit "
            "FROM sale_lines l JOIN sales s ON s.id = l.sale_id JOIN customers c ON c.id = s.customer_id "
            "JOIN products p ON p.id = l.product_id LEFT JOIN storefronts st ON st.id = s.storefront_id "
            f"WHERE l.business_id = {bid} ORDER BY s.order_date, s.order_id, p.sku",
            conn,
        )
    path = FILES / "naive.xlsx"
    frame.to_excel(path, sheet_name="Lines", index=False, engine="openpyxl")
    return {
        "seconds": time.perf_counter() - started,
        "rows": len(frame),
        "file_mb": path.stat().st_size / 2**20,
        **usage(),
    }


def child_pdf_period(snapshot_path: str, last: str) -> dict[str, Any]:
    """The shortest period ending `last` that holds at least PDF_ROWS lines."""
    from snapshots.store import Snapshot

    con = Snapshot(0, 0, Path(snapshot_path)).connect()
    days = con.execute(
        "SELECT order_date, COUNT(*) FROM lines WHERE order_date <= $last GROUP BY 1 ORDER BY 1 DESC",
        {"last": dt.date.fromisoformat(last)},
    ).fetchall()
    total = 0
    for day, count in days:
        total += count
        if total >= PDF_ROWS:
            return {"start": day.isoformat(), "rows": total}
    return {"start": days[-1][0].isoformat(), "rows": total}


# --- driver --------------------------------------------------------------------------------------------


def _row(name: str, r: dict[str, Any], ceiling: dict[str, Any] | None = None, note: str = "") -> str:
    ratio = ""
    if ceiling:
        ratio = f"{r['seconds'] / ceiling['seconds']:.2f}× ({r['cpu_s'] / ceiling['cpu_s']:.2f}×)"
    file_mb = f"{r['file_mb']:.0f}" if "file_mb" in r else ""
    runs = f" (median of {r['runs']})" if r.get("runs", 1) > 1 else ""
    return (
        f"| {name} | {r['rows']:,} | {r['seconds']:.1f} | {r['cpu_s']:.1f} | {r['peak_mb']:.0f} | {file_mb} | "
        f"{ratio} | {note}{runs} |"
    )


def interleaved(jobs: dict[str, list[str]], repeat: int) -> dict[str, dict[str, Any]]:
    """Each job `repeat` times, taking turns (so a busy minute hurts all alike); medians, peak = max."""
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in jobs}
    for _ in range(repeat):
        for name, argv in jobs.items():
            runs[name].append(child(argv))
    out = {}
    for name, results in runs.items():
        merged = dict(results[0])
        for key in ("seconds", "cpu_s", "generate_s"):
            if key in merged:
                merged[key] = statistics.median(r[key] for r in results)
        merged["peak_mb"] = max(r["peak_mb"] for r in results)
        merged["runs"] = len(results)
        out[name] = merged
    return out


def run(rows: int, naive: bool, repeat: int) -> list[str]:
    from exporters import EXPORTERS

    bench_reports = _reports_bench()
    FILES.mkdir(parents=True, exist_ok=True)
    # Measure on a private copy: other benchmarks write to the shared file (audit events, imports), and
    # a new data version would rebuild the snapshot inside a measurement.
    url, snapdir = _private_copy(rows)
    db_file = OUT / f"exports_{rows}.db"
    load: dict[str, Any] = {}
    snap = child(["snapshot", url, str(snapdir)])
    today = bench_reports.TODAY
    everything = [f"start={today.year - 4}-01-01", f"end={today.isoformat()}"]
    pdf = child(["pdf_period", snap["path"], today.isoformat()])
    pdf_pairs = [f"start={pdf['start']}", f"end={today.isoformat()}"]

    def show(line: str) -> str:
        print(line, flush=True)
        return line

    out = [
        f"Run {dt.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores shared with other engineers' tests "
        f"(noisy: short measurements are medians of {repeat} interleaved runs; CPU seconds compare better "
        f"than wall seconds), SQLite database of record, {rows:,} demo lines.",
        "",
    ]
    if load.get("seconds"):
        out.append(f"- demo load: {load['seconds']:.1f} s")
    out.append(f"- snapshot (reused when current): {snap['seconds']:.1f} s")
    out += [
        "",
        "Ratios: wall seconds (CPU seconds) against the ceiling of the same format. Ours includes generating",
        "the report (KPIs and chunk plan over the snapshot) before writing; peak MB includes about 160 MB",
        "of imports (pandas, pyarrow, DuckDB, SQLAlchemy).",
        "",
        "| export | rows | wall s | CPU s | peak MB | file MB | vs ceiling | notes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    csv_runs = interleaved(
        {
            "ceiling": ["csv_ceiling", snap["path"], *everything],
            "sqlite": ["csv_sqlite", str(db_file)],
            "ours": ["ours", url, str(snapdir), "csv", *everything],
        },
        repeat,
    )
    ours = csv_runs["ours"]
    note = f"generate {ours['generate_s']:.1f} s"
    out.append(show(_row("**sales_lines → CSV (ours)**", ours, csv_runs["ceiling"], note)))
    out.append(
        show(
            _row(
                "csv.writer over one DuckDB cursor, same rows (ceiling)",
                csv_runs["ceiling"],
                note="one ORDER BY over every line",
            )
        )
    )
    out.append(
        show(
            _row(
                "csv.writer over a sqlite3 cursor (database of record)",
                csv_runs["sqlite"],
                note="raw micros, no BOM, no pandas imports",
            )
        )
    )
    xlsx_jobs = {
        "ceiling": ["xlsx_ceiling", snap["path"], *everything],
        "bare": ["xlsx_bare", url, str(snapdir), *everything],
    }
    if "xlsx" in EXPORTERS:
        xlsx_jobs["ours"] = ["ours", url, str(snapdir), "xlsx", *everything]
    xlsx_runs = interleaved(xlsx_jobs, 1)
    if "ours" in xlsx_runs:
        out.append(
            show(
                _row(
                    "**sales_lines → XLSX (ours)**",
                    xlsx_runs["ours"],
                    xlsx_runs["bare"],
                    "formatted, typed, split over sheets; ratio against the bare loop below",
                )
            )
        )
    out.append(
        show(
            _row(
                "XlsxWriter constant_memory write_row over the same stream, no formatting (bare loop)",
                xlsx_runs["bare"],
            )
        )
    )
    out.append(
        show(
            _row(
                "XlsxWriter constant_memory over one DuckDB cursor, same rows, no formatting (ceiling)",
                xlsx_runs["ceiling"],
                note="one ORDER BY over every line",
            )
        )
    )
    if naive:
        out.append(show(_row("pandas read_sql + to_excel(openpyxl) (naive)", child(["naive_xlsx", url]))))
    else:
        out.append("| pandas read_sql + to_excel(openpyxl) (naive) | | | | | | | skipped (--skip-naive) |")
    json_runs = interleaved({"ours": ["ours", url, str(snapdir), "json", *everything]}, repeat)
    out.append(
        show(_row("**sales_lines → JSON (ours)**", json_runs["ours"], note="streamed, orjson per batch"))
    )
    if "pdf" in EXPORTERS:
        pdf_runs = interleaved({"ours": ["ours", url, str(snapdir), "pdf", *pdf_pairs]}, repeat)
        out.append(
            show(
                _row(
                    f"**sales_lines → PDF (ours), {PDF_ROWS:,} rows printed**",
                    pdf_runs["ours"],
                    note=f"period {pdf_pairs[0][6:]}..{today}",
                )
            )
        )
    return out


XLSX_TARGET_RATIO = 1.3
XLSX_TARGET_PEAK_MB = 250


def _private_copy(rows: int) -> tuple[str, Path]:
    """The URL of a private copy of bench/out/reports_N.db (built by bench/reports.py's loader when
    missing; never written to here) and the snapshot folder of this benchmark."""
    shared = OUT / f"reports_{rows}.db"
    if not shared.exists():
        child(["load", f"sqlite:///{shared}", str(rows)])
    db_file = OUT / f"exports_{rows}.db"
    db_file.unlink(missing_ok=True)
    with sqlite3.connect(f"file:{shared}?mode=ro", uri=True) as source, sqlite3.connect(db_file) as copy:
        source.backup(copy)
    return f"sqlite:///{db_file}", OUT / f"snap_exports_{rows}"


def xlsx_target(rows: int, period: str, repeat: int) -> list[str]:
    """Ours and the bare loop over the same rows, in turn: the wall-time ratio of each pair."""
    bench_reports = _reports_bench()
    FILES.mkdir(parents=True, exist_ok=True)
    url, snapdir = _private_copy(rows)
    child(["snapshot", url, str(snapdir)])
    pairs = [f"period={period}", f"now={bench_reports.TODAY.isoformat()}T12:00:00+00:00"]
    jobs = {
        "ours": ["ours", url, str(snapdir), "xlsx", *pairs],
        "bare": ["xlsx_bare", url, str(snapdir), *pairs],
    }
    results: dict[str, list[dict[str, Any]]] = {"ours": [], "bare": []}
    loads: list[float] = []
    for i in range(repeat):
        for name in ("ours", "bare") if i % 2 == 0 else ("bare", "ours"):
            loads.append(os.getloadavg()[0])
            results[name].append(child(jobs[name]))
            print(f"  {name}: {results[name][-1]['seconds']:.1f} s", flush=True)
    loads.append(os.getloadavg()[0])
    wall = [o["seconds"] / b["seconds"] for o, b in zip(results["ours"], results["bare"], strict=True)]
    cpu = [o["cpu_s"] / b["cpu_s"] for o, b in zip(results["ours"], results["bare"], strict=True)]
    ratio, cpu_ratio = statistics.median(wall), statistics.median(cpu)
    peak = max(r["peak_mb"] for r in results["ours"])
    met = ratio <= XLSX_TARGET_RATIO and peak < XLSX_TARGET_PEAK_MB
    ours, bare = results["ours"], results["bare"]
    return [
        f"Run {dt.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores, `bench/exports.py --xlsx-target "
        f"--rows {rows} --period {period} --repeat {repeat}`: sales_lines, {period} "
        f"(now = {bench_reports.TODAY}), {ours[0]['rows']:,} rows, to XLSX; the bare loop is XlsxWriter "
        "constant_memory `write_row` over the same report's rows (the same stream), no formats. "
        f"1-minute load average {min(loads):.1f}–{max(loads):.1f} during the runs.",
        "",
        f"**XLSX ours / bare loop, wall time: {ratio:.2f}×** (median of {repeat} pairs: "
        f"{', '.join(f'{r:.2f}×' for r in wall)}; target ≤ {XLSX_TARGET_RATIO}×); CPU time {cpu_ratio:.2f}×; "
        f"peak memory {peak:.0f} MB (target < {XLSX_TARGET_PEAK_MB} MB): **{'met' if met else 'NOT met'}**.",
        "",
        "| run | ours wall s | ours CPU s | ours peak MB | bare wall s | bare CPU s | bare peak MB | wall ratio |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {i} | {o['seconds']:.1f} | {o['cpu_s']:.1f} | {o['peak_mb']:.0f} | {b['seconds']:.1f} | "
            f"{b['cpu_s']:.1f} | {b['peak_mb']:.0f} | {w:.2f}× |"
            for i, (o, b, w) in enumerate(zip(ours, bare, wall, strict=True), start=1)
        ),
    ]


def write_results(lines: list[str], title: str = "Exports") -> None:
    """Replace (or add) the section `## {title}` of bench/RESULTS.md, keeping every other section."""
    section = f"## {title}\n\n" + "\n".join(lines).strip() + "\n"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    match = re.search(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    if match:
        text = (
            text[: match.start()] + section + ("\n" if match.end() < len(text) else "") + text[match.end() :]
        )
    else:
        text = text.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(text, encoding="utf-8")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, *rest = sys.argv[2:]
        handlers: dict[str, Callable[[], dict[str, Any]]] = {
            "load": lambda: _reports_bench().child_load(rest[0], int(rest[1])),
            "snapshot": lambda: child_snapshot(rest[0], rest[1]),
            "ours": lambda: child_ours(rest[0], rest[1], rest[2], rest[3:]),
            "csv_ceiling": lambda: child_csv_ceiling(rest[0], rest[1:]),
            "csv_sqlite": lambda: child_csv_sqlite(rest[0]),
            "xlsx_ceiling": lambda: child_xlsx_ceiling(rest[0], rest[1:]),
            "xlsx_bare": lambda: child_xlsx_bare(rest[0], rest[1], rest[2:]),
            "naive_xlsx": lambda: child_naive_xlsx(rest[0]),
            "pdf_period": lambda: child_pdf_period(rest[0], rest[1]),
        }
        print(json.dumps(handlers[kind](), default=str))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-naive", action="store_true", help="skip pandas + openpyxl (minutes, GBs)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each short measurement (median)")
    parser.add_argument(
        "--xlsx-target",
        action="store_true",
        help="only the XLSX target: ours against the bare loop, in pairs",
    )
    parser.add_argument("--period", default="last_year", help="the XLSX target's period (default last_year)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    if args.xlsx_target:
        lines = xlsx_target(args.rows, args.period, args.repeat)
        print("\n".join(lines))
        write_results(lines, "Exports: XLSX target")
        print(f"\nWritten to {RESULTS.relative_to(ROOT)} (section Exports: XLSX target).")
        return
    lines = run(args.rows, naive=not args.skip_naive, repeat=args.repeat)
    print("\n".join(lines))
    write_results(lines)
    print(f"\nWritten to {RESULTS.relative_to(ROOT)} (section Exports).")


if __name__ == "__main__":
    main()
