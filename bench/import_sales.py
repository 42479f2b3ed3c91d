"""Benchmark: `manage.py import sales` of an N-line CSV (default 1.2M) on SQLite, beside its ceiling.

The ceiling is the least any importer must do with the same file: read it with the csv module and
`executemany` the rows as they are into one table of a fresh SQLite file, in one transaction.
The import runs as a subprocess (`manage.py import`) on a fresh, migrated SQLite database whose
business already has the customers, products and storefronts the sales refer to; its wall time
and peak RSS (ru_maxrss of the child) are measured, and the ratio to the ceiling printed.
Everything is written into a temporary folder this script creates and removes.

    .venv/bin/python bench/import_sales.py [--rows 1200000] [--keep]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

CUSTOMERS = 2_000
PRODUCTS = 1_000
STOREFRONTS = ("MAIN", "NORTH", "SOUTH", "EAST", "WEST")
REPS = ("ana", "ben", "chloe", "dev", "eli", "fay", "gus", "hana")
SALES_COLUMNS = (
    "order_id",
    "order_date",
    "customer_code",
    "sku",
    "quantity",
    "unit_price",
    "unit_cost",
    "discount",
    "status",
    "sales_rep",
    "storefront",
)


def write_masters(folder: Path, seed: int) -> dict[str, Path]:
    """customers.csv, products.csv and storefronts.csv for the business the sales refer to."""
    rng = random.Random(seed)
    files = {name: folder / f"{name}.csv" for name in ("storefronts", "customers", "products")}
    with files["storefronts"].open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(("code", "name", "region"))
        for code in STOREFRONTS:
            out.writerow((code, f"{code.title()} store", code.title()))
    with files["customers"].open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(("customer_code", "name", "customer_type", "region", "credit_limit", "email", "active"))
        for i in range(1, CUSTOMERS + 1):
            kind = "wholesale" if i % 5 == 0 else "retail"
            out.writerow(
                (f"C{i:05d}", f"Customer {i}", kind, rng.choice(STOREFRONTS).title(), 5000, "", "true")
            )
    with files["products"].open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(("sku", "name", "category", "unit_cost", "unit_price", "reorder_level"))
        for i in range(1, PRODUCTS + 1):
            price = rng.randint(100, 20_000) / 100
            out.writerow(
                (f"SKU-{i:05d}", f"Product {i}", f"Category {i % 25}", f"{price * 0.6:.2f}", price, 10)
            )
    return files


def write_sales(path: Path, rows: int, seed: int, repeats: float = 0.03) -> int:
    """A sales file of exactly `rows` lines: orders of 1–8 lines, a `repeats` share listing a SKU twice."""
    rng = random.Random(seed)
    rand = rng.random
    start = dt.date(2023, 1, 1)
    days = [(start + dt.timedelta(days=d)).isoformat() for d in range(3 * 365)]
    prices = [f"{rng.randint(100, 20_000) / 100:.2f}" for _ in range(PRODUCTS)]
    costs = [f"{float(p) * 0.6:.2f}" for p in prices]
    written = 0
    order = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(SALES_COLUMNS)
        while written < rows:
            order += 1
            head = (
                f"SO-{order:08d}",
                days[int(rand() * len(days))],
                f"C{1 + int(rand() * CUSTOMERS):05d}",
            )
            r = rand()
            status = "completed" if r < 0.93 else "draft" if r < 0.96 else "void" if r < 0.98 else "refunded"
            tail = (status, REPS[int(rand() * len(REPS))], STOREFRONTS[int(rand() * len(STOREFRONTS))])
            skus = [int(rand() * PRODUCTS) for _ in range(min(1 + int(rand() * 8), rows - written))]
            if len(skus) > 1 and rand() < repeats:
                skus[-1] = skus[0]  # scanned twice
            for p in skus:
                discount = "0" if rand() < 0.9 else ("0.05", "0.1", "0.15")[int(rand() * 3)]
                quantity = 1 + int(rand() * 12) if rand() < 0.95 else f"{0.001 + rand() * 10:.3f}"
                out.writerow((*head, f"SKU-{p + 1:05d}", quantity, prices[p], costs[p], discount, *tail))
            written += len(skus)
    return order


def manage(env: dict[str, str], *argv: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *argv], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(argv)} failed: {proc.stderr[-2000:]}")


def timed_import(env: dict[str, str], entity: str, path: Path, folder: Path) -> dict[str, Any]:
    """`manage.py import` in a child process: wall seconds, its own peak RSS in MB, its output."""
    out_path, err_path = folder / "import.out", folder / "import.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            # --no-refresh: the import alone (the snapshot build after it is bench/freshness.py's)
            [
                sys.executable,
                str(ROOT / "manage.py"),
                "import",
                entity,
                str(path),
                "--business",
                "bench",
                "--no-refresh",
            ],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(proc.pid, 0)  # the rusage of this one child, not of all children
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"import failed: {err_path.read_text()[-3000:]}")
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "output": out_path.read_text().strip()}


def ceiling(sales: Path, db: Path) -> float:
    """Seconds to read the same CSV and executemany its rows into one table of a fresh SQLite file."""
    started = time.perf_counter()
    con = sqlite3.connect(db)
    try:
        con.execute(f"CREATE TABLE sales_lines ({', '.join(f'{c} TEXT' for c in SALES_COLUMNS)})")
        with sales.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            next(reader)
            marks = ", ".join("?" for _ in SALES_COLUMNS)
            con.executemany(f"INSERT INTO sales_lines VALUES ({marks})", reader)
        con.commit()
    finally:
        con.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows", type=int, default=1_200_000, help="sales lines in the file (default 1200000)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="tallyboard-import-bench-"))
    try:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{folder / 'tallyboard.db'}",
            "TALLYBOARD_DATA_DIR": str(folder / "data"),
        }
        masters = write_masters(folder, args.seed)
        sales = folder / "sales.csv"
        started = time.perf_counter()
        orders = write_sales(sales, args.rows, args.seed)
        made = time.perf_counter() - started
        manage(env, "init-db")
        manage(env, "business", "add", "bench", "--name", "Import benchmark")
        for entity, path in masters.items():
            manage(env, "import", entity, str(path), "--business", "bench")

        size_mb = sales.stat().st_size / 1024 / 1024
        load = os.getloadavg()
        print(
            f"Import benchmark {dt.datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} cores, "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        )
        print(
            f"- sales file: {args.rows:,} lines, {orders:,} orders, {size_mb:.1f} MB (written in {made:.1f} s)"
        )
        start = timed_import(env, "customers", masters["customers"], folder)
        print(
            f"- fixed cost, manage.py importing the customers again (nothing changes): {start['seconds']:.2f} s"
        )
        first = timed_import(env, "sales", sales, folder)
        print(
            f"- manage.py import (fresh database): {first['seconds']:.2f} s, peak RSS {first['peak_mb']:.0f} MB"
        )
        print(f"  {first['output']}")
        again = timed_import(env, "sales", sales, folder)
        print(f"- the same file again (nothing changes): {again['seconds']:.2f} s")
        print(f"  {again['output']}")
        floor = ceiling(sales, folder / "ceiling.db")
        print(f"- ceiling, csv.reader + sqlite3 executemany into one table: {floor:.2f} s")
        print(
            f"- ratio import / ceiling: {first['seconds'] / floor:.1f}× (target: at most 5×; peak target 600 MB)"
        )
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
