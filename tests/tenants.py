"""Fixtures for the jobs package: two businesses with the tiny data and a user of every role in each."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from analytics.report import ReportParams, Scope
from core.db import make_sessionmaker
from core.models import User
from core.settings import Settings
from runs.files import FileStore
from runs.runner import Progress, RunOutcome, Trigger, generate_run
from snapshots.store import SnapshotStore
from tests.conftest import new_business
from tests.factories import insert_tiny

# The tiny example's sales run from December 2024 to April 2025: "last month" here is January 2025.
NOW = dt.datetime(2025, 2, 10, 12, 0, tzinfo=dt.UTC)
ROLES = ("admin", "manager", "staff", "staff2")


@dataclass(frozen=True)
class Tenant:
    business_id: int
    users: dict[str, tuple[int, str]]  # role key -> (user id, username)

    def scope(self, who: str) -> Scope:
        return Scope(self.business_id, self.users[who][1], "staff" if who.startswith("staff") else who)

    def user_id(self, who: str) -> int:
        return self.users[who][0]


def make_tenant(engine: Engine, name: str) -> Tenant:
    business = new_business(engine, name)
    insert_tiny(engine, business.id)
    users: dict[str, tuple[int, str]] = {}
    with make_sessionmaker(engine)() as s:
        for who in ROLES:
            user = User(
                business_id=business.id,
                username=f"{who}-{uuid.uuid4().hex[:8]}",
                name=who.title(),
                password_hash="x",  # never logs in: these tests call the jobs functions directly
                role="staff" if who.startswith("staff") else who,
            )
            s.add(user)
            s.flush()
            users[who] = (user.id, user.username)
        s.commit()
    return Tenant(business.id, users)


@pytest.fixture
def tenant(engine: Engine) -> Tenant:
    return make_tenant(engine, "Alpha Trading")


@pytest.fixture
def other(engine: Engine) -> Tenant:
    return make_tenant(engine, "Beta Wholesale")


@pytest.fixture
def jobs_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.with_changes(reports_dir=tmp_path / "reports")


@pytest.fixture
def files(jobs_settings: Settings) -> FileStore:
    return FileStore.from_settings(jobs_settings)


@pytest.fixture
def store(engine: Engine, settings: Settings) -> SnapshotStore:
    return SnapshotStore(engine, settings.snapshot_dir)


def last_month(**extra: object) -> ReportParams:
    return ReportParams.from_mapping({"period": "last_month", **extra})


@dataclass
class Jobs:
    """The jobs functions bound to the test database, reports folder and snapshot store."""

    engine: Engine
    store: SnapshotStore
    files: FileStore
    settings: Settings

    def session(self) -> Session:
        return make_sessionmaker(self.engine)()

    def generate(
        self,
        tenant: Tenant,
        who: str = "admin",
        slug: str = "sales_summary",
        params: ReportParams | None = None,
        formats: Sequence[str] = ("json",),
        *,
        now: dt.datetime = NOW,
        settings: Settings | None = None,
        trigger: Trigger = "builder",
        progress: Progress | None = None,
    ) -> RunOutcome:
        with self.session() as s:
            return generate_run(
                s,
                self.store,
                self.files,
                settings or self.settings,
                tenant.scope(who),
                tenant.user_id(who),
                slug,
                params or last_month(),
                formats,
                trigger=trigger,
                now=now,
                progress=progress,
            )


@pytest.fixture
def jobs(engine: Engine, store: SnapshotStore, files: FileStore, jobs_settings: Settings) -> Jobs:
    return Jobs(engine, store, files, jobs_settings)


def park_leftover_work(jobs: Jobs, *, outbox: bool = True) -> None:
    """Daemons serve every business in the database: park the schedules, windows and (with
    `outbox`) messages that earlier tests left behind."""
    from sqlalchemy import update

    from core.models import OutboxMessage, Schedule, ScheduleRun

    with jobs.session() as s:
        s.execute(update(Schedule).values(active=False))
        s.execute(
            update(ScheduleRun)
            .where(ScheduleRun.status.in_(("requested", "claimed", "generating", "retrying")))
            .values(status="failed", error="left by an earlier test")
        )
        if outbox:
            s.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status.in_(("pending", "sending")))
                .values(status="failed", last_error="left by an earlier test")
            )
        s.commit()


@pytest.fixture
def daemon_env(cli_env: Settings, jobs: Jobs) -> dict[str, str]:
    """The environment of a scheduler_daemon.py subprocess on the test database and data folder."""
    import os

    env = os.environ.copy()
    env.update(
        DATABASE_URL=jobs.settings.database_url,
        TALLYBOARD_DATA_DIR=str(jobs.settings.data_dir),
        TALLYBOARD_LOG_LEVEL="WARNING",
        PYTHONPATH=str(Path(__file__).resolve().parent.parent.parent),
        PYTHONFAULTHANDLER="1",  # a hung daemon prints its threads' stacks when killed by a test
    )
    env.pop("TALLYBOARD_FAKE_NOW", None)
    return env
