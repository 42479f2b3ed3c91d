"""The alert "an anomaly was found": a schedule of trend_forecast with the condition `anomalies > 0`
sends when last month held an unusual day and says why it sent nothing when it did not (a real
tick, the real outbox)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, cast

import numpy as np
import pytest
from sqlalchemy import Engine, select, update

import mail.delivery as delivery
from core.db import make_sessionmaker
from core.models import OutboxMessage, Schedule, ScheduleRun, User
from core.settings import Settings
from scheduling.schedules import ScheduleSpec, create_schedule
from scheduling.tick import Outbox, process_due
from tests.conftest import new_business
from tests.mail.mail_fixtures import quiet_outbox
from tests.reports.test_trend_forecast import daily_series, insert_daily
from tests.tenants import Jobs, Tenant, park_leftover_work
from ui.schedule_view import ALERT_KPIS

DUE = dt.datetime(2025, 2, 10, 8, 0)  # "last month" is January 2025
FIRST_DAY = dt.date(2024, 9, 2)  # a Monday: four months before January as a baseline
UNUSUAL_DAY = dt.date(2025, 1, 15)


@pytest.fixture(autouse=True)
def clean(jobs: Jobs) -> None:
    park_leftover_work(jobs)
    quiet_outbox(jobs.engine)


@pytest.fixture
def mail(jobs: Jobs, tmp_path: Any) -> Settings:
    return jobs.settings.with_changes(mail_jitter=0.0, outbox_dir=tmp_path / "outbox")


def shop(engine: Engine, *, unusual: bool) -> Tenant:
    """A business with generated daily sales up to the day before DUE (January's 15th at 40 % of its
    usual figure when `unusual`) and a manager who owns the schedule."""
    business = new_business(engine, "Anomaly Alerts")
    rng = np.random.default_rng(11)
    days = [FIRST_DAY + dt.timedelta(days=i) for i in range((DUE.date() - FIRST_DAY).days)]
    values = daily_series(rng, len(days))
    if unusual:
        values[days.index(UNUSUAL_DAY)] *= 0.4
    insert_daily(engine, business.id, [(d, Decimal(f"{v:.2f}")) for d, v in zip(days, values, strict=True)])
    with make_sessionmaker(engine)() as s:
        user = User(
            business_id=business.id,
            username=f"manager-{uuid.uuid4().hex[:8]}",
            name="Manager",
            password_hash="x",
            role="manager",
            email="manager@example.com",
        )
        s.add(user)
        s.commit()
        return Tenant(business.id, {"manager": (user.id, user.username)})


def schedule(jobs: Jobs, tenant: Tenant, mail: Settings) -> int:
    with jobs.session() as s:
        info = create_schedule(
            s,
            tenant.scope("manager"),
            ScheduleSpec(
                report_slug="trend_forecast",
                rule_kind="daily",
                rule={"time": DUE.strftime("%H:%M")},
                recipients=("team@example.com",),
                formats=("pdf",),
                timezone="UTC",
                period="last_month",
                condition="anomalies > 0",
            ),
            now=DUE - dt.timedelta(minutes=1),
            settings=mail,
        )
    with jobs.session() as s:
        s.execute(update(Schedule).where(Schedule.id == info.id).values(next_due_at=DUE))
        s.commit()
    return info.id


def window(jobs: Jobs, mail: Settings, sid: int) -> tuple[ScheduleRun, list[OutboxMessage]]:
    process_due(
        jobs.engine,
        mail,
        jobs.store,
        jobs.files,
        now=DUE + dt.timedelta(seconds=20),
        daemon_id="d1",
        outbox=cast(Outbox, delivery),
    )
    with jobs.session() as s:
        run = s.scalars(select(ScheduleRun).where(ScheduleRun.schedule_id == sid)).one()
        messages = list(s.scalars(select(OutboxMessage).where(OutboxMessage.schedule_run_id == run.id)))
        s.expunge_all()
    return run, messages


def test_an_anomaly_sends_the_report(engine: Engine, jobs: Jobs, mail: Settings) -> None:
    sid = schedule(jobs, shop(engine, unusual=True), mail)
    run, messages = window(jobs, mail, sid)
    assert run.status == "queued", run.error
    assert run.alert_held is True and run.alert_seen is not None and int(run.alert_seen) >= 1
    assert [m.recipient for m in messages if m.kind == "report"] == ["team@example.com"]


def test_no_anomaly_sends_nothing_and_says_why(engine: Engine, jobs: Jobs, mail: Settings) -> None:
    sid = schedule(jobs, shop(engine, unusual=False), mail)
    run, messages = window(jobs, mail, sid)
    assert run.status == "skipped" and run.alert_held is False and run.alert_seen == "0"
    assert "anomalies was 0" in (run.error or "") and "did not hold" in (run.error or "")
    assert not [m for m in messages if m.kind == "report"]


def test_the_schedule_form_offers_the_anomaly_alert() -> None:
    assert "anomaly was found" in ALERT_KPIS["anomalies"]
