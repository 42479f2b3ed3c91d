"""A snapshot answers only for the database state it was built from (issue 8, defect 1).

Both scenarios run through the command line, as a user would, on two real databases that share
one data folder (the default): SQLite files, or PostgreSQL schemas when TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from core.db import make_engine
from manage import main
from tests.conftest import fresh_database_url
from tests.factories import TINY_DIR

TINY_ORDER = ("storefronts", "customers", "products", "sales", "payments", "forecasts", "inventory")
PERIOD = ("--param", "start=2025-01-01", "--param", "end=2025-03-31")
PG_URL = os.environ.get("TEST_DATABASE_URL")


class Databases:
    """Fresh, empty databases (SQLite files or PostgreSQL schemas) and how to back one up."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.opened = ExitStack()

    def new(self, name: str) -> str:
        return self.opened.enter_context(fresh_database_url(self.tmp, name))

    def backup(self, url: str) -> Path:
        target = self.tmp / f"backup-{uuid.uuid4().hex[:6]}"
        if not PG_URL:
            src = sqlite3.connect(make_url(url).database or "")
            dst = sqlite3.connect(target)
            src.backup(dst)  # SQLite's online backup API
            src.close()
            dst.close()
            return target
        schema = self._schema(url)
        subprocess.run(
            ["pg_dump", *self._pg_args(), "-d", self._dbname(), "-n", schema, "-Fc", "-f", str(target)],
            check=True,
            timeout=120,
        )
        return target

    def restore(self, url: str, backup: Path) -> None:
        if not PG_URL:
            path = Path(make_url(url).database or "")
            for leftover in (Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
            shutil.copyfile(backup, path)
            return
        schema = self._schema(url)
        self._sql(f'DROP SCHEMA "{schema}" CASCADE')
        subprocess.run(
            ["pg_restore", *self._pg_args(), "-d", self._dbname(), str(backup)], check=True, timeout=120
        )

    def close(self) -> None:
        self.opened.close()

    # -- PostgreSQL plumbing -------------------------------------------------------------------
    def _sql(self, statement: str) -> None:
        assert PG_URL
        admin = make_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(statement))
        admin.dispose()

    @staticmethod
    def _schema(url: str) -> str:
        return str(make_url(url).query["options"]).split("=", 1)[1]

    @staticmethod
    def _dbname() -> str:
        return make_url(PG_URL or "").database or ""

    def _pg_args(self) -> list[str]:
        u = make_url(PG_URL or "")
        return ["-h", u.host or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres"]


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[Databases]:
    dbs = Databases(tmp_path)
    try:
        yield dbs
    finally:
        dbs.close()


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """Run manage.py in-process against `url`, always with the same data folder."""
    data_dir = tmp_path / "data"

    def run(url: str, *args: str) -> int:
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("TALLYBOARD_DATA_DIR", str(data_dir))
        return main(list(args))

    return run


def _tiny_folder(tmp: Path, factor: int) -> Path:
    """The tiny example, with every sales quantity multiplied by `factor`."""
    folder = tmp / f"tiny-x{factor}"
    folder.mkdir()
    for entity in TINY_ORDER:
        shutil.copyfile(TINY_DIR / f"{entity}.csv", folder / f"{entity}.csv")
    with open(TINY_DIR / "sales.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        row["quantity"] = str(Decimal(row["quantity"]) * factor)
        writer.writerow(row)
    (folder / "sales.csv").write_text(out.getvalue(), encoding="utf-8")
    return folder


def _load(cli: Callable[..., int], url: str, folder: Path, entities: tuple[str, ...] = TINY_ORDER) -> None:
    for entity in entities:
        assert cli(url, "import", entity, str(folder / f"{entity}.csv"), "--business", "shop") == 0, entity


def _kpis(cli: Callable[..., int], url: str, tmp: Path) -> dict[str, object]:
    out = tmp / f"kpi-{uuid.uuid4().hex[:6]}.json"
    assert (
        cli(
            url,
            "report",
            "kpi_dashboard",
            "--business",
            "shop",
            "--format",
            "json",
            "--out",
            str(out),
            *PERIOD,
        )
        == 0
    )
    kpis: dict[str, object] = json.loads(out.read_text(encoding="utf-8"))["kpis"]
    return kpis


def _new_shop(cli: Callable[..., int], url: str) -> None:
    assert cli(url, "init-db") == 0
    assert cli(url, "business", "add", "shop", "--name", "Shop") == 0


def test_two_databases_in_one_data_folder_never_share_numbers(
    databases: Databases, cli: Callable[..., int], tmp_path: Path
) -> None:
    a, b = databases.new("a"), databases.new("b")
    for url in (a, b):
        _new_shop(cli, url)
    _load(cli, a, _tiny_folder(tmp_path, 1))
    assert Decimal(str(_kpis(cli, a, tmp_path)["revenue"])) == Decimal("1585.00")
    _load(cli, b, _tiny_folder(tmp_path, 2))
    # Same business id, same data version in both databases: B must still answer with B's rows.
    assert Decimal(str(_kpis(cli, b, tmp_path)["revenue"])) == Decimal("3170.00")
    assert Decimal(str(_kpis(cli, a, tmp_path)["revenue"])) == Decimal("1585.00")


def test_a_restored_backup_never_reads_a_snapshot_of_later_data(
    databases: Databases, cli: Callable[..., int], tmp_path: Path
) -> None:
    url = databases.new("a")
    _new_shop(cli, url)
    tiny = _tiny_folder(tmp_path, 1)
    _load(cli, url, tiny, ("storefronts", "customers", "products", "sales"))
    before = _kpis(cli, url, tmp_path)
    backup = databases.backup(url)
    _load(cli, url, tiny, ("payments",))  # more data after the backup; its snapshot gets built
    after_payments = _kpis(cli, url, tmp_path)
    assert after_payments["cash_received"] != before["cash_received"]

    databases.restore(url, backup)
    # As many imports since the backup as before the restore: a counter comes back to the version
    # whose snapshot (with the payments) was built before the restore.
    _load(cli, url, _tiny_folder(tmp_path, 2), ("sales",))
    kpis = _kpis(cli, url, tmp_path)
    assert Decimal(str(kpis["revenue"])) == Decimal("3170.00")
    assert kpis["cash_received"] == before["cash_received"]
