"""`manage.py report` is a run like any other (trigger "cli"): History, Statistics and the audit log see it.

The file the command writes is the run's stored file, byte for byte; standard output gets the
document as before (a pipe gets a streamed ZIP for the zipped formats, as it always did).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import Engine, select

from analytics.report import Scope
from core.db import make_sessionmaker
from core.models import AuditEvent, Business, Run, RunFile
from core.settings import Settings
from manage import main
from runs.files import FileStore
from runs.history import list_runs, runs_frame
from runs.stats import statistics
from tests.factories import insert_tiny
from tests.test_manage import ROOT, run_cli

PERIOD = ["--param", "start=2025-01-01", "--param", "end=2025-03-31"]


@pytest.fixture
def shop(engine: Engine, business: Business) -> Business:
    insert_tiny(engine, business.id)
    return business


def _report(shop: Business, out: Path | str, fmt: str = "json", *extra: str) -> int:
    return main(
        [
            "report",
            "sales_summary",
            "--business",
            shop.code,
            "--format",
            fmt,
            "--out",
            str(out),
            *PERIOD,
            *extra,
        ]
    )


def run_cli_bytes(*args: str) -> tuple[int, bytes, str]:
    """manage.py in a subprocess: exit status, standard output as bytes, standard error."""
    proc = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        env=os.environ.copy(),
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr.decode()


def _runs(engine: Engine, shop: Business) -> list[Run]:
    with make_sessionmaker(engine)() as s:
        return list(s.scalars(select(Run).where(Run.business_id == shop.id).order_by(Run.id)).all())


def _stored(engine: Engine, settings: Settings, run_id: int) -> tuple[RunFile, bytes]:
    with make_sessionmaker(engine)() as s:
        row = s.scalars(select(RunFile).where(RunFile.run_id == run_id)).one()
        s.expunge(row)
    return row, FileStore.from_settings(settings, engine).absolute(row.path).read_bytes()


def test_a_cli_report_is_in_history_statistics_and_the_audit_log(
    cli_env: Settings, engine: Engine, shop: Business, tmp_path: Path
) -> None:
    out = tmp_path / "summary.json"
    assert _report(shop, out) == 0
    [run] = _runs(engine, shop)
    assert (run.trigger, run.status, run.report_slug, run.formats) == (
        "cli",
        "completed",
        "sales_summary",
        "json",
    )
    assert run.user_id is None and run.username == "cli" and not run.cached
    assert run.parameters["start"] == "2025-01-01" and run.parameters["end"] == "2025-03-31"

    admin = Scope(shop.id, "someone", "admin")
    with make_sessionmaker(engine)() as s:
        [shown] = list_runs(s, admin)
        stats = statistics(s, admin)
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.business_id == shop.id, AuditEvent.entity == "run")
        ).all()
    assert shown.id == run.id and shown.trigger == "cli" and shown.via == "Command line"
    assert [f.fmt for f in shown.available_files] == ["json"]
    frame = runs_frame([shown], "UTC")
    assert frame.iloc[0]["via"] == "Command line" and frame.iloc[0]["user"] == "cli"
    assert (stats.runs, stats.successes, stats.stored_files) == (1, 1, 1)
    assert [r.id for r in stats.recent] == [run.id] and stats.recent[0].trigger == "cli"
    assert list(stats.by_report["slug"]) == ["sales_summary"]
    assert [(e.event_type, e.user, e.entity_id) for e in events] == [("report_generated", "cli", str(run.id))]
    assert events[0].detail["trigger"] == "cli" and events[0].detail["status"] == "completed"

    # the written file is the stored one, byte for byte
    stored, data = _stored(engine, cli_env, run.id)
    assert out.read_bytes() == data and hashlib.sha256(data).hexdigest() == stored.sha256


def test_staff_do_not_see_command_line_runs(
    cli_env: Settings, engine: Engine, shop: Business, tmp_path: Path
) -> None:
    assert _report(shop, tmp_path / "x.json") == 0
    with make_sessionmaker(engine)() as s:
        assert list_runs(s, Scope(shop.id, "cli", "staff")) == []  # no user row: nobody's own run


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx", "pdf"])
def test_every_format_writes_the_stored_file(
    cli_env: Settings, engine: Engine, shop: Business, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"summary.{'zip' if fmt == 'csv' else fmt}"  # sales_summary has several tables
    assert _report(shop, out, fmt) == 0
    [run] = _runs(engine, shop)
    stored, data = _stored(engine, cli_env, run.id)
    assert stored.fmt == fmt and out.read_bytes() == data


def test_standard_output_gets_the_document_and_the_run_is_recorded(
    cli_env: Settings, engine: Engine, shop: Business
) -> None:
    for fmt in ("json", "xlsx"):
        proc = run_cli_bytes(
            "report", "sales_summary", "--business", shop.code, "--format", fmt, "--out", "-", *PERIOD
        )
        assert proc[0] == 0, proc[2]
        run = _runs(engine, shop)[-1]
        assert (run.trigger, run.status, run.formats) == ("cli", "completed", fmt)
        _, data = _stored(engine, cli_env, run.id)
        if fmt == "json":
            assert proc[1] == data and json.loads(proc[1])["report"] == "sales_summary"
        else:  # through a pipe: a streamed ZIP (as before) with the stored file's contents
            piped, kept = zipfile.ZipFile(io.BytesIO(proc[1])), zipfile.ZipFile(io.BytesIO(data))
            assert piped.namelist() == kept.namelist()
            assert all(piped.read(name) == kept.read(name) for name in kept.namelist())


def test_the_command_line_is_neither_cached_nor_rate_limited(
    cli_env: Settings, engine: Engine, shop: Business, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALLYBOARD_RATE_LIMIT_PER_HOUR", "1")
    monkeypatch.setenv("TALLYBOARD_MAX_FILE_MB", "0")  # the web's per-file limit does not apply
    for name in ("a.json", "b.json", "c.json"):
        assert _report(shop, tmp_path / name) == 0
    runs = _runs(engine, shop)
    assert [(r.status, r.cached) for r in runs] == [("completed", False)] * 3  # built afresh each time


def test_a_refused_report_is_a_failed_cli_run(
    cli_env: Settings, engine: Engine, shop: Business, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _report(shop, "-", "json", "--param", "colour=blue") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "has no parameter 'colour'" in err
    [run] = _runs(engine, shop)
    assert (run.trigger, run.status) == ("cli", "failed") and "has no parameter 'colour'" in run.error
    with make_sessionmaker(engine)() as s:
        events = s.scalars(
            select(AuditEvent).where(AuditEvent.business_id == shop.id, AuditEvent.entity == "run")
        ).all()
    assert [(e.event_type, e.detail["trigger"]) for e in events] == [("report_failed", "cli")]


def test_unchanged_output_of_the_unknown_report_message(cli_env: Settings, shop: Business) -> None:
    proc = run_cli("report", "nope", "--business", shop.code, "--out", "-")
    assert proc.returncode == 1 and proc.stdout == ""
    assert (
        proc.stderr.startswith("error: Unknown report 'nope'; reports are: ") and proc.stderr.count("\n") == 1
    )


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx", "pdf"])
def test_the_stored_file_is_what_the_exporter_writes_to_any_file(
    settings: Settings, engine: Engine, shop: Business, tmp_path: Path, fmt: str
) -> None:
    """Why the command copies the stored file to a seekable --out: it is what rendering there gives."""
    from analytics.report import ReportParams
    from exporters import EXPORTERS
    from runs.runner import generate_run
    from snapshots.store import SnapshotStore

    files = FileStore.from_settings(settings, engine)
    scope = Scope(shop.id, "cli")
    params = ReportParams.from_pairs(["start=2025-01-01", "end=2025-03-31"])
    with make_sessionmaker(engine)() as s:
        outcome = generate_run(
            s, SnapshotStore(engine, settings.snapshot_dir), files, settings, scope, None, "sales_summary",
            params, [fmt], trigger="cli",
        )  # fmt: skip
        assert outcome.ok and outcome.report is not None
        _, stored = files.find(s, scope, outcome.files[0].id)
    rendered = io.BytesIO()
    EXPORTERS[fmt].write(outcome.report, rendered)
    with (tmp_path / f"again.{fmt}").open("wb") as handle:
        EXPORTERS[fmt].write(outcome.report, handle)
    assert rendered.getvalue() == stored.read_bytes() == (tmp_path / f"again.{fmt}").read_bytes()


def _through_a_pipe(write: Callable[[IO[bytes]], None]) -> bytes:
    """What `write` puts into a pipe (not seekable, as standard output piped to another program)."""
    read_fd, write_fd = os.pipe()
    received: list[bytes] = []

    def read() -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            received.append(pipe.read())

    reader = threading.Thread(target=read)
    reader.start()
    with os.fdopen(write_fd, "wb") as pipe:
        write(pipe)
    reader.join()
    return received[0]


def _generated_at(engine: Engine, run: Run) -> dt.datetime:
    """The run's generated_at, read back from its file name (..._YYYYmmdd-HHMMSSUTC.ext)."""
    with make_sessionmaker(engine)() as s:
        name = s.scalars(select(RunFile.file_name).where(RunFile.run_id == run.id)).one()
    stamp = name.rsplit("_", 1)[1].split(".")[0]
    return dt.datetime.strptime(stamp, "%Y%m%d-%H%M%SUTC").replace(tzinfo=dt.UTC)


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx", "pdf"])
def test_the_output_is_byte_for_byte_the_report_built_directly(
    cli_env: Settings, engine: Engine, shop: Business, tmp_path: Path, fmt: str
) -> None:
    """What `generate` + the exporter give (the command's output before it made runs), to a file and
    through a pipe, for the same report: its `generated_at` is the only clock reading in it."""
    from analytics.report import ReportParams
    from exporters import EXPORTERS
    from reports.registry import generate
    from snapshots.store import SnapshotStore

    params = ReportParams.from_pairs([p for p in PERIOD if p != "--param"])
    with make_sessionmaker(engine)() as s:
        direct = generate(
            s,
            SnapshotStore(engine, cli_env.snapshot_dir),
            Scope(shop.id, "cli"),
            "sales_summary",
            params,
            now=dt.datetime(2025, 4, 2, tzinfo=dt.UTC),  # replaced by each run's below
        )
    exporter = EXPORTERS[fmt]

    def to_file(run: Run) -> bytes:
        out = io.BytesIO()
        exporter.write(dataclasses.replace(direct, generated_at=_generated_at(engine, run)), out)
        return out.getvalue()

    def to_pipe(run: Run) -> bytes:
        report = dataclasses.replace(direct, generated_at=_generated_at(engine, run))
        return _through_a_pipe(lambda out: exporter.write(report, out))

    out = tmp_path / f"summary.{'zip' if fmt == 'csv' else fmt}"
    assert (
        main(
            ["report", "sales_summary", "--business", shop.code, "--format", fmt, "--out", str(out), *PERIOD]
        )
        == 0
    )
    assert out.read_bytes() == to_file(_runs(engine, shop)[-1])
    status, stdout, stderr = run_cli_bytes(
        "report", "sales_summary", "--business", shop.code, "--format", fmt, "--out", "-", *PERIOD
    )
    assert status == 0, stderr
    assert stdout == to_pipe(_runs(engine, shop)[-1])
    assert [r.trigger for r in _runs(engine, shop)] == ["cli", "cli"]
