"""`manage.py tokens create|list|revoke`: the token alone on stdout, once; the list never shows it;
revoking stops it; every command stays inside its business."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, update

from accounts.tokens import TokenRefused, authenticate
from core.clock import utc_now
from core.db import make_sessionmaker
from core.models import User
from core.settings import Settings
from manage import main
from tests.tenants import Tenant


def test_create_prints_only_the_token_then_list_and_revoke(
    cli_env: Settings, engine: Engine, tenant: Tenant, other: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    code = business_code(engine, tenant)
    staff = tenant.users["staff"][1]
    args = ["tokens", "create", staff, "--business", code, "--name", "Power BI", "--expires-days", "30"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert re.fullmatch(r"tb_[A-Za-z0-9_-]{43}\n", out)
    token = out.strip()
    assert f"for {staff!r}" in err and "shown only this once" in err and token not in err
    with make_sessionmaker(engine)() as s:
        assert authenticate(s, token, now=utc_now()).username == staff

    assert main(["tokens", "list", "--business", code]) == 0
    listed = capsys.readouterr().out
    fields = listed.strip().split("\t")
    assert fields[1:3] == [staff, "Power BI"] and fields[4] == "never used" and fields[6] == "active"
    assert token not in listed
    assert main(["tokens", "list", "--business", business_code(engine, other)]) == 0
    assert capsys.readouterr().out == ""  # another business's list does not show it

    token_id = fields[0]
    assert main(["tokens", "revoke", token_id, "--business", business_code(engine, other)]) == 1
    assert f"No API token with id {token_id}." in capsys.readouterr().err
    assert main(["tokens", "revoke", token_id, "--business", code]) == 0
    assert capsys.readouterr().out == f"Revoked API token {token_id} 'Power BI' of {staff!r}.\n"
    with make_sessionmaker(engine)() as s, pytest.raises(TokenRefused, match="revoked"):
        authenticate(s, token, now=utc_now())


def test_create_refuses_with_one_line(
    cli_env: Settings, engine: Engine, tenant: Tenant, other: Tenant, capsys: pytest.CaptureFixture[str]
) -> None:
    code = business_code(engine, tenant)
    assert main(["tokens", "create", other.users["staff"][1], "--business", code]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: No user") and err.count("\n") == 1
    assert (
        main(["tokens", "create", tenant.users["staff"][1], "--business", code, "--expires-days", "0"]) == 1
    )
    assert "1 to 3650 days" in capsys.readouterr().err
    assert (
        main(["tokens", "create", tenant.users["staff"][1], "--business", code, "--expires-days", "x"]) == 2
    )
    with make_sessionmaker(engine)() as s:
        s.execute(update(User).where(User.id == tenant.user_id("staff")).values(active=False))
        s.commit()
    assert main(["tokens", "create", tenant.users["staff"][1], "--business", code]) == 1
    assert "is disabled" in capsys.readouterr().err


def business_code(engine: Engine, tenant: Tenant) -> str:
    from core.models import Business

    with make_sessionmaker(engine)() as s:
        found = s.get(Business, tenant.business_id)
        assert found is not None
        return found.code
