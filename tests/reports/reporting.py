"""Helpers to build reports in tests through the same path as the CLI, app and daemon."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import Engine

from analytics.report import Report, ReportParams, Scope
from core.db import make_sessionmaker
from reports.registry import generate
from snapshots.store import SnapshotStore

# The clock reading reports are generated at in tests (a pinned `now`: generated_at, relative periods).
NOW = dt.datetime(2025, 4, 2, 8, 30, 15, tzinfo=dt.UTC)


def run_report(
    engine: Engine, snapshot_dir: Path, business_id: int, slug: str, *pairs: str, now: dt.datetime = NOW
) -> Report:
    """Generate `slug` for the business with CLI-style KEY=VALUE parameters, at `now`."""
    store = SnapshotStore(engine, snapshot_dir)
    with make_sessionmaker(engine)() as session:
        return generate(session, store, Scope(business_id), slug, ReportParams.from_pairs(pairs), now=now)
