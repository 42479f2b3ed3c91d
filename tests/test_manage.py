"""The command line: happy paths and one-line errors with non-zero exit status, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from accounts.users import verify_password
from core.db import make_sessionmaker
from core.models import Business, User
from core.settings import Settings
from manage import main
from tests.factories import TINY_DIR, insert_tiny, money

ROOT = Path(__file__).resolve().parent.parent


def _code() -> str:
    return f"c{uuid.uuid4().hex[:8]}"


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
    )


def test_init_db_is_idempotent(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init-db"]) == 0
    assert main(["init-db"]) == 0
    assert "Database ready" in capsys.readouterr().out


def test_business_add_and_duplicate(
    cli_env: Settings, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _code()
    assert main(["business", "add", code, "--name", "Acme Ltd"]) == 0
    with make_sessionmaker(engine)() as s:
        assert s.scalar(select(Business.name).where(Business.code == code)) == "Acme Ltd"
    assert main(["business", "add", code, "--name", "Again"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["business", "add", "Bad Code!", "--name", "X"]) == 1


def test_report_json_to_file_and_stdout(
    cli_env: Settings, engine: Engine, business: Business, tmp_path: Path
) -> None:
    insert_tiny(engine, business.id)
    out = tmp_path / "kpi.json"
    status = main(
        [
            "report",
            "kpi_dashboard",
            "--business",
            business.code,
            "--param",
            "start=2025-01-01",
            "--param",
            "end=2025-03-31",
            "--format",
            "json",
            "--out",
            str(out),
        ]
    )
    assert status == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert list(doc)[:2] == ["report", "title"]
    assert {"report", "parameters", "generated_at", "kpis", "tables"} <= set(doc)
    expected = json.loads((TINY_DIR / "expected.json").read_text(encoding="utf-8"))["kpis"]
    assert money(doc["kpis"]["revenue"]) == money(expected["revenue"])
    assert doc["parameters"]["start"] == "2025-01-01"

    proc = run_cli(
        "report",
        "sales_summary",
        "--business",
        business.code,
        "--param",
        "start=2025-01-01",
        "--param",
        "end=2025-03-31",
        "--out",
        "-",
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["kpis"]["orders"] == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "nope", "--business", "{code}", "--out", "-"], "Unknown report 'nope'"),
        (["report", "kpi_dashboard", "--business", "missing-biz", "--out", "-"], "No business with code"),
        (
            ["report", "kpi_dashboard", "--business", "{code}", "--param", "period=someday", "--out", "-"],
            "Unknown period",
        ),
        (
            [
                "report",
                "kpi_dashboard",
                "--business",
                "{code}",
                "--param",
                "start=2025-02-30",
                "--param",
                "end=2025-03-01",
                "--out",
                "-",
            ],
            "not a date",
        ),
        (
            ["report", "kpi_dashboard", "--business", "{code}", "--format", "docx", "--out", "-"],
            "Unknown format",
        ),
        (
            [
                "report",
                "kpi_dashboard",
                "--business",
                "{code}",
                "--param",
                "columns.top_customers=nope",
                "--out",
                "-",
            ],
            "has no column 'nope'",
        ),
        (
            ["report", "kpi_dashboard", "--business", "{code}", "--param", "colour=blue", "--out", "-"],
            "has no parameter 'colour'",
        ),
        (
            ["report", "kpi_dashboard", "--business", "{code}", "--out", "/no/such/folder/x.json"],
            "Folder does not exist",
        ),
        (["frobnicate"], "invalid choice"),
        (["report", "kpi_dashboard"], "required"),
    ],
)
def test_mistakes_get_one_clear_line(
    cli_env: Settings, business: Business, args: list[str], message: str
) -> None:
    proc = run_cli(*[a.replace("{code}", business.code) for a in args])
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]


def test_reports_lists_every_slug(cli_env: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    from reports.registry import REGISTRY

    assert main(["reports"]) == 0
    out = capsys.readouterr().out
    for slug in REGISTRY:
        assert f"{slug}:" in out
    dashboard = out.split("kpi_dashboard:")[1].split("sales_summary:")[0]
    assert "--param compare=previous (previous|last_year|custom)" in dashboard
    assert "compare_start=YYYY-MM-DD compare_end=YYYY-MM-DD" in dashboard
    aging = out.split("credit_aging:")[1].split("inventory_valuation:")[0]
    assert "compare=" not in aging  # only the reports with comparisons take it


def test_users_add_reads_password_from_stdin(cli_env: Settings, engine: Engine, business: Business) -> None:
    name = f"u{uuid.uuid4().hex[:8]}"
    proc = run_cli(
        "users", "add", name, "--business", business.code, "--role", "manager", stdin="s3cret-pass\n"
    )
    assert proc.returncode == 0, proc.stderr
    with make_sessionmaker(engine)() as s:
        user = s.scalar(select(User).where(User.username == name))
        assert user is not None and user.role == "manager" and user.business_id == business.id
        assert verify_password("s3cret-pass", user.password_hash)
        assert not verify_password("wrong-pass", user.password_hash)
    again = run_cli(
        "users", "add", name, "--business", business.code, "--role", "staff", stdin="another-pass\n"
    )
    assert again.returncode == 1 and "already taken" in again.stderr
    short = run_cli(
        "users", "add", name + "x", "--business", business.code, "--role", "staff", stdin="short\n"
    )
    assert short.returncode == 1 and "at least 8" in short.stderr
    role = run_cli(
        "users", "add", name + "y", "--business", business.code, "--role", "owner", stdin="long-enough\n"
    )
    assert role.returncode == 2 and "invalid choice" in role.stderr


def test_commands_before_init_db_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    monkeypatch.setenv("TALLYBOARD_DATA_DIR", str(tmp_path))
    proc = run_cli("reports")
    assert proc.returncode == 0
    proc = run_cli("report", "kpi_dashboard", "--business", "demo", "--out", "-")
    assert proc.returncode == 1
    assert "init-db" in proc.stderr
