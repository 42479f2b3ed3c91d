"""API tokens on the Account and Admin pages under AppTest: a user makes a token, sees it once, finds it
in their list and revokes it; an admin sees and revokes every token of their business, never another's."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select
from streamlit.testing.v1 import AppTest

from accounts.tokens import TokenRefused, authenticate, create_token
from accounts.users import operator
from core.db import make_sessionmaker, session_scope
from core.models import ApiToken, Business
from tests.conftest import new_business
from tests.ui.test_admin_pages import click, page
from tests.ui.test_navigation import fresh_caches, make_user

__all__ = ["fresh_caches"]  # the autouse fixture, shared with test_navigation

NOW = dt.datetime.now(dt.UTC)


def tokens_frame(at: AppTest) -> list[dict[str, object]]:
    frame = next(d.value for d in at.dataframe if "Last used" in d.value.columns)
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def test_a_user_makes_a_token_sees_it_once_and_revokes_it(engine: Engine, business: Business) -> None:
    staff = make_user(engine, business, "staff")
    at = page("account", staff)
    assert not at.exception
    assert "API tokens" in [s.value for s in at.subheader]
    at.text_input(key="account_token_name").input("Power BI")
    at.selectbox(key="account_token_expiry").select("90 days")
    click(at, "Make a token")
    assert not at.exception
    shown = [c.value for c in at.code]
    assert len(shown) == 1 and shown[0].startswith("tb_")
    token = shown[0]
    with make_sessionmaker(engine)() as s:
        assert authenticate(s, token, now=NOW).username == staff
        row = s.scalars(
            select(ApiToken).where(ApiToken.name == "Power BI", ApiToken.business_id == business.id)
        ).one()
        assert row.expires_at is not None and (row.expires_at - row.created_at).days == 90
    assert [(r["Name"], r["Status"]) for r in tokens_frame(at)] == [("Power BI", "active")]
    at.run()  # the next run: the token is not shown again
    assert [c.value for c in at.code] == []
    click(at, "Revoke")
    assert any("Revoked 'Power BI'" in str(s.value) for s in at.success)
    assert [(r["Name"], r["Status"]) for r in tokens_frame(at)] == [("Power BI", "revoked")]
    with make_sessionmaker(engine)() as s:
        try:
            authenticate(s, token, now=NOW)
        except TokenRefused as exc:
            assert "revoked" in str(exc)
        else:
            raise AssertionError("a revoked token still works")


def test_an_admin_sees_and_revokes_the_business_tokens_only(engine: Engine, business: Business) -> None:
    other = new_business(engine, "Other Co")
    admin = make_user(engine, business, "admin")
    staff = make_user(engine, business, "staff")
    foreign = make_user(engine, other, "staff")
    with session_scope(engine) as s:
        create_token(s, operator(business.id), staff, now=NOW, name="staff script")
        create_token(s, operator(other.id), foreign, now=NOW, name="foreign script")
    at = page("admin", admin)
    assert not at.exception
    assert [(r["User"], r["Name"], r["Status"]) for r in tokens_frame(at)] == [
        (staff, "staff script", "active")
    ]
    click(at, "Revoke")
    assert [(r["User"], r["Status"]) for r in tokens_frame(at)] == [(staff, "revoked")]
    with make_sessionmaker(engine)() as s:
        statuses = {t.name: t.revoked_at is None for t in s.scalars(select(ApiToken))}
    assert statuses["foreign script"] is True and statuses["staff script"] is False
