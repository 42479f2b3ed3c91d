"""The users commands `make run` and a locked-out owner rely on: demo logins printed once, list,
set-password (scoped to the business)."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import Engine

from accounts.users import user_by_username, verify_password
from core.db import make_sessionmaker
from core.models import Business
from core.settings import Settings
from manage import main
from tests.conftest import new_business


def test_ensure_demo_prints_three_logins_once(
    cli_env: Settings, engine: Engine, business: Business, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "ensure-demo", "--business", business.code, "--port", "8599"]) == 0
    out = capsys.readouterr().out
    logins = re.findall(r"^  (admin|manager|staff)\s+(\S+)\s+(\S+)$", out, re.MULTILINE)
    assert [role for role, _, _ in logins] == ["admin", "manager", "staff"]
    admin_name, admin_password = logins[0][1], logins[0][2]
    assert f"Log in at http://localhost:8599 as {admin_name} / {admin_password}" in out
    with make_sessionmaker(engine)() as session:
        for role, username, password in logins:
            user = user_by_username(session, username)
            assert user is not None and user.business_id == business.id and user.role == role
            assert verify_password(password, user.password_hash)
    assert main(["users", "ensure-demo", "--business", business.code]) == 0
    again = capsys.readouterr().out
    assert "already has users" in again and admin_password not in again


def test_list_and_set_password_stay_in_the_business(
    cli_env: Settings,
    engine: Engine,
    business: Business,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = new_business(engine)
    assert main(["users", "ensure-demo", "--business", business.code]) == 0
    capsys.readouterr()
    assert main(["users", "list", "--business", business.code]) == 0
    names = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert len(names) == 3
    monkeypatch.setattr("sys.stdin", io.StringIO("a-fresh-password\n"))
    assert main(["users", "set-password", names[0], "--business", other.code]) == 1
    assert f"No user {names[0]!r} in business {other.code!r}" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a-fresh-password\n"))
    assert main(["users", "set-password", names[0], "--business", business.code]) == 0
    with make_sessionmaker(engine)() as session:
        user = user_by_username(session, names[0])
        assert user is not None and verify_password("a-fresh-password", user.password_hash)
    assert main(["users", "list", "--business", other.code]) == 0
    assert "has no users yet" in capsys.readouterr().out


def test_set_email_and_set_name_in_the_business(
    cli_env: Settings, engine: Engine, business: Business, capsys: pytest.CaptureFixture[str]
) -> None:
    other = new_business(engine)
    assert main(["users", "ensure-demo", "--business", business.code]) == 0
    capsys.readouterr()
    assert main(["users", "list", "--business", business.code]) == 0
    username = capsys.readouterr().out.splitlines()[0].split("\t")[0]

    assert main(["users", "set-email", username.upper(), "ann@example.com", "--business", business.code]) == 0
    assert capsys.readouterr().out == f"Email of {username!r} set to ann@example.com.\n"
    assert main(["users", "set-name", username, "Ann Admin", "--business", business.code]) == 0
    assert capsys.readouterr().out == f"Name of {username!r} set to 'Ann Admin'.\n"
    with make_sessionmaker(engine)() as session:
        user = user_by_username(session, username)
        assert user is not None and (user.email, user.name) == ("ann@example.com", "Ann Admin")

    # errors are one line on stderr with exit status 1; nothing changes
    assert main(["users", "set-email", username, "nobody", "--business", business.code]) == 1
    assert "'nobody' is not a valid e-mail address" in capsys.readouterr().err
    assert main(["users", "set-email", username, "x@example.com", "--business", other.code]) == 1
    assert f"No user {username!r} in business {other.code!r}" in capsys.readouterr().err
    assert main(["users", "set-name", username, " ", "--business", business.code]) == 1
    assert "The name must not be empty." in capsys.readouterr().err
    assert main(["users", "set-email", "ghost", "x@example.com", "--business", business.code]) == 1
    assert "No user 'ghost'" in capsys.readouterr().err
    with make_sessionmaker(engine)() as session:
        user = user_by_username(session, username)
        assert user is not None and (user.email, user.name) == ("ann@example.com", "Ann Admin")

    assert main(["users", "set-email", username, "", "--business", business.code]) == 0
    assert capsys.readouterr().out == f"Email of {username!r} removed.\n"
