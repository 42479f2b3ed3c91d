"""`manage.py report --out PATH` never replaces what PATH is (issue 8, defect 3).

`--out /dev/null` once renamed a temp file over the device and left a 0600 regular file in its
place. These tests use special files they create themselves: a character device with
/dev/null's numbers (needs root, as on the CI machine), a FIFO and symlinks.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.models import Business
from core.settings import Settings
from manage import main
from tests.factories import insert_tiny

PERIOD = ["--param", "start=2025-01-01", "--param", "end=2025-03-31"]


@pytest.fixture
def shop(engine: Engine, business: Business) -> Business:
    insert_tiny(engine, business.id)
    return business


def _report(business: Business, out: Path | str, fmt: str = "json") -> int:
    return main(
        ["report", "kpi_dashboard", "--business", business.code, "--format", fmt, "--out", str(out), *PERIOD]
    )


def test_a_character_device_stays_a_device(cli_env: Settings, shop: Business, tmp_path: Path) -> None:
    null = tmp_path / "null"
    try:
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # the numbers of /dev/null
        os.chmod(null, 0o666)
    except PermissionError:
        pytest.skip("creating a device node needs root")
    assert _report(shop, null) == 0
    after = os.stat(null)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(after.st_mode) == 0o666
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]  # no temp file left beside it


def test_a_fifo_gets_the_document_and_stays_a_fifo(cli_env: Settings, shop: Business, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        assert _report(shop, fifo) == 0
    finally:
        reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(received[0])["kpis"]["orders"] == 4


def test_a_symlink_is_written_through(cli_env: Settings, shop: Business, tmp_path: Path) -> None:
    real = tmp_path / "reports" / "k.json"
    real.parent.mkdir()
    real.write_text("old", encoding="utf-8")
    real.chmod(0o640)
    link = tmp_path / "latest.json"
    link.symlink_to(real)
    assert _report(shop, link) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads(real.read_text(encoding="utf-8"))["kpis"]["orders"] == 4
    assert stat.S_IMODE(os.stat(real).st_mode) == 0o640  # the file keeps its permissions


def test_a_symlink_to_a_device_writes_to_the_device(
    cli_env: Settings, shop: Business, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "out.json"
    link.symlink_to(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        assert _report(shop, link) == 0
    finally:
        reader.join(timeout=30)
    assert link.is_symlink() and stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert json.loads(received[0])["kpis"]["orders"] == 4


def test_a_new_regular_file_gets_the_usual_mode(cli_env: Settings, shop: Business, tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    assert _report(shop, out) == 0
    current = os.umask(0)
    os.umask(current)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~current
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.json"]


def test_a_folder_is_refused_in_one_line(
    cli_env: Settings, shop: Business, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _report(shop, tmp_path) != 0
    err = capsys.readouterr().err.strip()
    assert "is a folder" in err and "\n" not in err
