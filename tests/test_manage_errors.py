"""The command line answers every TallyboardError the same way: one sentence on stderr, its kind's exit status."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

import manage
from core.errors import KINDS, TallyboardError
from core.models import Business
from core.settings import Settings
from tests.conftest import new_business
from tests.factories import insert_tiny
from tests.test_manage import run_cli


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
def test_one_mapping_for_every_kind(kind: type[TallyboardError], capsys: pytest.CaptureFixture[str]) -> None:
    status = manage.fail(kind("The sentence for people."))
    assert status == kind.exit_status
    captured = capsys.readouterr()
    assert captured.err == "error: The sentence for people.\n" and captured.out == ""


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        # NotFound
        (["report", "kpi_dashboard", "--business", "missing-biz", "--out", "-"], 1, "No business with code"),
        (["schedules", "pause", "999999", "--business", "{code}"], 1, "No such schedule"),
        (["import", "sales", "/no/such/file.csv", "--business", "{code}"], 1, "File not found"),
        # Invalid
        (["report", "kpi_dashboard", "--business", "{code}", "--param", "period=someday", "--out", "-"], 1, "Unknown period"),
        (["report", "kpi_dashboard", "--business", "{code}", "--param", "colour=blue", "--out", "-"], 1, "has no parameter 'colour'"),
        (["schedules", "add", "--report", "payments", "--business", "{code}", "--daily", "25:00", "--to", "a@example.com"], 1, "must look like HH:MM"),
        # UsageError: the command line itself is wrong
        (["report", "kpi_dashboard", "--business", "{code}", "--format", "docx", "--out", "-"], 2, "Unknown format"),
        (["frobnicate"], 2, "invalid choice"),
        (["schedules", "add", "--report", "payments", "--business", "{code}", "--to", "a@example.com"], 2, "exactly one time rule"),
        # Conflict
        (["business", "add", "{code}", "--name", "Again"], 1, "already exists"),
        (["demo", "--business", "{full}"], 1, "already has data"),
    ],
)  # fmt: skip
def test_each_kind_exits_with_its_status_and_one_sentence(
    cli_env: Settings,
    business: Business,
    engine: Engine,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    status: int,
    message: str,
) -> None:
    if "{full}" in args:  # a business that has data of its own
        full = new_business(engine, "Full")
        insert_tiny(engine, full.id)
        args = [full.code if a == "{full}" else a for a in args]
    args = [a.replace("{code}", business.code) for a in args]
    assert manage.main(args) == status
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]


def test_unavailable_before_init_db_and_no_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("TALLYBOARD_DATA_DIR", str(tmp_path))
    proc = run_cli("report", "kpi_dashboard", "--business", "demo", "--out", "-")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: The database has no Tallyboard tables yet")
