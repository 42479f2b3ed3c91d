"""The long-running daemon keeps report data fresh: a snapshot outdated by an import is rebuilt on its tick."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import update

from core.db import bump_data_version, session_scope
from core.models import Sale
from tests.tenants import Jobs, Tenant

ROOT = Path(__file__).resolve().parent.parent.parent


def test_a_running_daemon_rebuilds_a_snapshot_an_import_made_outdated(
    daemon_env: dict[str, str], jobs: Jobs, tenant: Tenant, tmp_path: Path
) -> None:
    store = jobs.store
    first = store.current(tenant.business_id)  # someone looked at the reports once
    with session_scope(jobs.engine) as s:  # then an upload committed in an app process that stopped
        s.execute(update(Sale).where(Sale.business_id == tenant.business_id).values(sales_rep="ana"))
        bump_data_version(s, tenant.business_id)
    assert not store.is_current(tenant.business_id)
    log = tmp_path / "daemon.log"
    with open(log, "wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "scheduler_daemon.py"), "--tick", "1"],
            cwd=ROOT,
            env={**daemon_env, "TALLYBOARD_LOG_LEVEL": "INFO"},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not store.is_current(tenant.business_id) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.is_current(tenant.business_id), log.read_text(encoding="utf-8")[-2000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    fresh = store.current(tenant.business_id)
    assert fresh.token != first.token and not fresh.refreshing
