"""Issue 13: the demo's audit log names only users the demo business has (who did it, and whom a user
change was about) — the ones `manage.py users ensure-demo` gives it, or its own when it has some."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Engine, select

from accounts.users import add_user, ensure_demo_users, operator
from core.db import make_sessionmaker, session_scope
from core.models import AuditEvent, User
from ingest.demo import load_demo
from tests.conftest import new_business

TODAY = dt.date(2026, 11, 21)


def events(engine: Engine, business_id: int) -> list[tuple[str, str, str]]:
    """The demo's events (before TODAY; setting up users writes events of its own, at the real now)."""
    with make_sessionmaker(engine)() as session:
        rows = session.execute(
            select(AuditEvent.user, AuditEvent.entity, AuditEvent.entity_id).where(
                AuditEvent.business_id == business_id, AuditEvent.at < dt.datetime.combine(TODAY, dt.time())
            )
        ).all()
    return [(str(u), str(e), str(i)) for u, e, i in rows]


def usernames(engine: Engine, business_id: int) -> set[str]:
    with make_sessionmaker(engine)() as session:
        return set(session.scalars(select(User.username).where(User.business_id == business_id)))


def test_the_demo_log_names_only_the_demo_logins(engine: Engine) -> None:
    # as `make run` does it: the demo data first, then its three logins
    summary = load_demo(engine, f"d{uuid.uuid4().hex[:8]}", rows=300, today=TODAY)
    with session_scope(engine) as session:
        logins = {login.username for login in ensure_demo_users(session, summary.business_id)}
    assert usernames(engine, summary.business_id) == logins and len(logins) == 3
    found = events(engine, summary.business_id)
    assert len(found) == summary.audit_events > 100
    assert {user for user, _, _ in found} == logins  # each of them, and nobody else
    about = {entity_id for _, entity, entity_id in found if entity == "user"}
    assert about and about <= logins


def test_a_business_with_users_gets_a_log_of_those_users(engine: Engine) -> None:
    business = new_business(engine, "Has Users")
    mine = {f"boss_{business.code}": "admin", f"clerk_{business.code}": "staff"}
    with session_scope(engine) as session:
        for name, role in mine.items():
            add_user(session, operator(business.id, "tests"), name, "a-long-password", role)
    summary = load_demo(engine, business.code, rows=300, today=TODAY)
    found = events(engine, summary.business_id)
    assert {user for user, _, _ in found} <= set(mine)
    changes = [(user, entity_id) for user, entity, entity_id in found if entity == "user"]
    assert all(user == f"boss_{business.code}" and entity_id in mine for user, entity_id in changes)
