"""The Schedules page offers webhook and Slack URLs and an alert condition (KPI, operator, value),
shows the webhook secret once, and lists each schedule's targets and condition."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, update

from core.db import make_sessionmaker
from core.models import Business, Schedule
from mail.webhooks import ALLOW_PRIVATE_ENV, open_secret
from tests.ui.test_schedules_page import click, fresh_caches, make_user, open_page, schedules, shop, texts

__all__ = ["fresh_caches", "shop"]  # fixtures, used by name


@pytest.fixture(autouse=True)
def no_secret_left(engine: Engine) -> object:
    yield None
    with make_sessionmaker(engine)() as s:  # other tests use other secret keys
        s.execute(update(Schedule).values(webhook_secret_encrypted="", webhook_key_fingerprint=""))
        s.commit()


def test_a_manager_sets_a_webhook_slack_and_a_margin_alert(
    engine: Engine, shop: Business, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ALLOW_PRIVATE_ENV, raising=False)
    manager = make_user(engine, shop, "manager")
    at = open_page("pages/schedules.py", manager)
    at.selectbox(key="schedules_new_kind").select("Weekly")
    at.run()
    at.time_input(key="schedules_new_time").set_value(dt.time(7, 30))
    at.selectbox(key="schedules_new_source").select("Sales summary")
    at.text_area(key="schedules_new_recipients").input("")
    at.text_area(key="schedules_new_webhooks").input("http://127.0.0.1:9/hook")
    at.text_area(key="schedules_new_slack").input("https://hooks.slack.com/services/T0/B0/secret")
    at.selectbox(key="schedules_new_alert_kpi").select("margin_pct")
    at.selectbox(key="schedules_new_alert_op").select("<")
    at.text_input(key="schedules_new_alert_value").input("0.25")
    at.checkbox(key="schedules_new_alert_changes").check()
    at.text_input(key="schedules_new_name").input("Margin alert")
    at = click(at, "Create schedule")
    assert not at.exception, at.exception
    assert any("loopback" in e.value and ALLOW_PRIVATE_ENV in e.value for e in at.error)  # refused
    assert schedules(engine, shop) == []

    at.text_area(key="schedules_new_webhooks").input("https://hooks.example.com/tallyboard")
    at = click(at, "Create schedule")
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    [row] = schedules(engine, shop)
    assert row.recipients == [] and row.webhooks == ["https://hooks.example.com/tallyboard"]
    assert row.slack_webhooks == ["https://hooks.slack.com/services/T0/B0/secret"]
    assert (row.alert_kpi, row.alert_op, row.alert_value, row.alert_on_change) == (
        "margin_pct",
        "<",
        "0.25",
        True,
    )
    [note] = [t for t in texts(at) if "signing secret" in t]
    secret = note.split("give it to the receiver: ")[1].split(" ")[0]
    from core.settings import Settings

    with make_sessionmaker(engine)() as s:
        stored = s.get(Schedule, row.id)
        assert stored is not None and open_secret(s, Settings.from_env(), stored) == secret
    table = at.dataframe[0].value
    assert list(table["Delivers to"]) == ["1 webhook, Slack"]
    assert list(table["Condition"]) == ["Only when margin_pct < 0.25 (when it changes to true)"]

    at = open_page("pages/schedules.py", manager)  # shown once: not on the next visit
    assert not any("signing secret" in t for t in texts(at))
    at.selectbox(key="schedules_pick").select(row.id)
    at = at.run()
    assert any(
        "webhook https://hooks.example.com/tallyboard" in t and "Slack hooks.slack.com/…" in t
        for t in texts(at)
    )
