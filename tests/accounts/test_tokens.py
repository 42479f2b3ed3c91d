"""API tokens (accounts/tokens.py): stored only as a hash, shown once, scoped to their business and
user, refused when revoked, expired or their user disabled, with the role read afresh on every check."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select, update

from accounts.tokens import (
    TokenRefused,
    authenticate,
    create_token,
    list_tokens,
    record_use,
    revoke_token,
    token_hash,
)
from accounts.users import operator
from core.db import make_sessionmaker
from core.errors import Forbidden, Invalid, NotFound
from core.models import ApiToken, AuditEvent, User
from tests.tenants import Tenant

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


def make(engine: Engine, tenant: Tenant, who: str, name: str = "", expires_days: int | None = None) -> str:
    with make_sessionmaker(engine)() as s:
        made = create_token(
            s, tenant.scope(who), tenant.users[who][1], now=NOW, name=name, expires_days=expires_days
        )
        s.commit()
        return made.token


def test_a_token_is_shown_once_and_stored_only_as_its_hash(engine: Engine, tenant: Tenant) -> None:
    with make_sessionmaker(engine)() as s:
        made = create_token(
            s, tenant.scope("staff"), tenant.users["staff"][1], now=NOW, name="  my   script "
        )
        s.commit()
        row = s.get(ApiToken, made.info.id)
        assert row is not None
    assert made.token.startswith("tb_") and len(made.token) == 46
    assert row.token_hash == token_hash(made.token) != made.token
    assert made.info.name == "my script" and made.info.username == tenant.users["staff"][1]
    assert made.info.expires_at is None and made.info.status(NOW) == "active"
    with make_sessionmaker(engine)() as s:
        everything = " ".join(str(v) for r in s.execute(select(ApiToken.__table__)).all() for v in r)
        audit = " ".join(str(e.detail) for e in s.scalars(select(AuditEvent)))
    assert made.token not in everything and made.token not in audit


def test_the_token_lets_its_user_in_with_the_role_read_now(engine: Engine, tenant: Tenant) -> None:
    token = make(engine, tenant, "manager", name="bi")
    with make_sessionmaker(engine)() as s:
        holder = authenticate(s, token, now=NOW)
        assert (holder.business_id, holder.username, holder.role, holder.token_name) == (
            tenant.business_id,
            tenant.users["manager"][1],
            "manager",
            "bi",
        )
        s.execute(update(User).where(User.id == tenant.user_id("manager")).values(role="staff"))
        s.commit()
        assert authenticate(s, token, now=NOW).role == "staff"  # demoted: the next call runs as staff
        record_use(s, holder.token_id, now=NOW + dt.timedelta(minutes=5))
        s.commit()
        assert list_tokens(s, tenant.scope("manager"))[0].last_used_at == dt.datetime(2026, 3, 1, 9, 5)


@pytest.mark.parametrize("token", ["", "tb_", "tb_unknown", "not-ours", "tb_" + "x" * 300])
def test_an_unknown_token_lets_nobody_in(engine: Engine, tenant: Tenant, token: str) -> None:
    make(engine, tenant, "admin")
    with make_sessionmaker(engine)() as s, pytest.raises(TokenRefused, match="not valid") as refused:
        authenticate(s, token, now=NOW)
    assert refused.value.http_status == 401 and refused.value.business_id is None


def test_revoked_expired_and_disabled_tokens_stop_at_once(engine: Engine, tenant: Tenant) -> None:
    revoked = make(engine, tenant, "staff", name="old")
    expiring = make(engine, tenant, "staff", name="short", expires_days=1)
    disabled = make(engine, tenant, "staff2")
    with make_sessionmaker(engine)() as s:
        info = next(t for t in list_tokens(s, tenant.scope("staff")) if t.name == "old")
        revoke_token(s, tenant.scope("staff"), info.id, now=NOW)
        s.execute(update(User).where(User.id == tenant.user_id("staff2")).values(active=False))
        s.commit()
        with pytest.raises(TokenRefused, match="'old' was revoked") as refused:
            authenticate(s, revoked, now=NOW)
        assert (refused.value.business_id, refused.value.token_name) == (tenant.business_id, "old")
        authenticate(s, expiring, now=NOW + dt.timedelta(hours=23))
        with pytest.raises(TokenRefused, match="'short' expired on 2026-03-02 09:00 UTC"):
            authenticate(s, expiring, now=NOW + dt.timedelta(days=1))
        with pytest.raises(TokenRefused, match="Your account is disabled"):
            authenticate(s, disabled, now=NOW)
        statuses = {
            t.name: t.status(NOW + dt.timedelta(days=2)) for t in list_tokens(s, tenant.scope("staff"))
        }
    assert statuses == {"old": "revoked", "short": "expired"}


def test_users_make_tokens_for_themselves_only(engine: Engine, tenant: Tenant, other: Tenant) -> None:
    with make_sessionmaker(engine)() as s:
        with pytest.raises(Forbidden, match="for yourself only"):
            create_token(s, tenant.scope("admin"), tenant.users["staff"][1], now=NOW)
        with pytest.raises(NotFound):  # the operator of one business cannot reach another's users
            create_token(s, operator(tenant.business_id), other.users["staff"][1], now=NOW)
        made = create_token(s, operator(tenant.business_id), tenant.users["staff"][1], now=NOW)
        assert made.info.created_by == "cli"
        with pytest.raises(Invalid, match="1 to 3650 days"):
            create_token(s, tenant.scope("staff"), tenant.users["staff"][1], now=NOW, expires_days=0)
        with pytest.raises(Invalid, match="at most 100"):
            create_token(s, tenant.scope("staff"), tenant.users["staff"][1], now=NOW, name="x" * 101)


def test_listing_and_revoking_stay_within_the_business_and_the_user(
    engine: Engine, tenant: Tenant, other: Tenant
) -> None:
    make(engine, tenant, "staff", name="mine")
    make(engine, tenant, "manager", name="managers")
    make(engine, other, "admin", name="foreign")
    with make_sessionmaker(engine)() as s:
        assert [t.name for t in list_tokens(s, tenant.scope("staff"))] == ["mine"]
        everyone = list_tokens(s, tenant.scope("admin"), everyone=True)
        assert sorted(t.name for t in everyone) == ["managers", "mine"]
        assert sorted(t.name for t in list_tokens(s, operator(tenant.business_id), everyone=True)) == [
            "managers",
            "mine",
        ]
        with pytest.raises(Forbidden):
            list_tokens(s, tenant.scope("manager"), everyone=True)
        foreign = list_tokens(s, other.scope("admin"))[0].id
        managers = next(t.id for t in everyone if t.name == "managers")
        for actor, token_id in ((tenant.scope("admin"), foreign), (tenant.scope("staff"), managers)):
            with pytest.raises(NotFound, match=f"No API token with id {token_id}"):
                revoke_token(s, actor, token_id, now=NOW)
        refusals = s.scalars(
            select(AuditEvent.detail).where(
                AuditEvent.business_id == tenant.business_id, AuditEvent.event_type == "access_refused"
            )
        ).all()
        assert {r["reason"] for r in refusals} >= {
            "the token is another business's",
            "the token is another user's",
        }
        assert revoke_token(s, tenant.scope("admin"), managers, now=NOW).revoked_at is not None
        s.commit()
        assert list_tokens(s, other.scope("admin"))[0].revoked_at is None
