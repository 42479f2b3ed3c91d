"""The Fernet key: from the environment or a 0600 key file, fingerprints, a wrong key, rotation with MultiFernet."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

import manage
from accounts.users import operator
from core.models import SmtpSettings
from core.secret_key import KEY_MISMATCH, SecretKeyError, fingerprint, keyring, rotate, startup_problem
from core.settings import Settings
from mail.smtp_config import get_smtp, load_smtp, save_smtp
from tests.mail.mail_fixtures import quiet_outbox
from tests.tenants import Jobs, Tenant

ROOT = Path(__file__).resolve().parents[2]
OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def no_smtp(jobs: Jobs) -> Iterator[None]:
    quiet_outbox(jobs.engine)
    yield
    quiet_outbox(jobs.engine)


def with_key(settings: Settings, key: str, tmp_path: Path) -> Settings:
    return settings.with_changes(secret_key=key, secret_key_file=tmp_path / "secret.key")


def save(jobs: Jobs, settings: Settings, password: str = "hunter2") -> None:
    with jobs.session() as s:
        save_smtp(
            s,
            settings,
            operator(),
            installation_default=True,
            host="smtp.example.com",
            port=587,
            security="starttls",
            username="mailer",
            password=password,
            from_address="reports@example.com",
        )


def test_fingerprint_is_the_first_16_hex_digits_of_the_keys_sha256() -> None:
    assert fingerprint(OLD) == hashlib.sha256(OLD.encode()).hexdigest()[:16]
    assert fingerprint(OLD.encode()) == fingerprint(f"  {OLD}\n")
    assert fingerprint(OLD) != fingerprint(NEW)


def test_a_key_file_is_created_once_with_mode_0600(jobs: Jobs, tmp_path: Path) -> None:
    settings = with_key(jobs.settings, "", tmp_path / "data")
    path = settings.secret_key_file
    first = keyring(settings)
    assert path.exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keyring(settings).keys == first.keys  # read, not made again
    assert first.source == str(path)
    Fernet(first.keys[0])  # a usable key
    assert [p.name for p in path.parent.iterdir()] == ["secret.key"]  # no temp file left behind


def test_the_environment_key_wins_and_a_malformed_one_is_refused(jobs: Jobs, tmp_path: Path) -> None:
    ring = keyring(with_key(jobs.settings, f" {NEW} , {OLD} ", tmp_path))
    assert ring.primary_fingerprint == fingerprint(NEW)
    assert ring.fingerprints == (fingerprint(NEW), fingerprint(OLD))
    assert not (tmp_path / "secret.key").exists()
    with pytest.raises(SecretKeyError, match="key 2 of 2 is not a Fernet key"):
        keyring(with_key(jobs.settings, f"{NEW},not-a-key", tmp_path))


def test_the_password_is_stored_encrypted_with_the_keys_fingerprint(jobs: Jobs, tmp_path: Path) -> None:
    settings = with_key(jobs.settings, OLD, tmp_path)
    save(jobs, settings)
    with jobs.session() as s:
        row = s.scalars(select(SmtpSettings)).one()
        assert row.password_encrypted and "hunter2" not in row.password_encrypted
        assert row.key_fingerprint == fingerprint(OLD)
        loaded = load_smtp(s, settings)
        config = get_smtp(s, operator(), installation_default=True)
    assert loaded is not None and loaded[1] == "hunter2"
    assert (
        config is not None
        and config.has_password
        and config.describe() == ("smtp.example.com:587 (STARTTLS) as mailer")
    )


def test_a_wrong_key_fails_loudly_with_what_to_do(jobs: Jobs, tmp_path: Path) -> None:
    save(jobs, with_key(jobs.settings, OLD, tmp_path))
    with jobs.session() as s, pytest.raises(SecretKeyError) as caught:
        load_smtp(s, with_key(jobs.settings, NEW, tmp_path))
    assert str(caught.value) == KEY_MISMATCH
    assert "re-enter the SMTP password in Admin" in KEY_MISMATCH


def test_a_stored_fingerprint_with_a_token_no_key_opens_is_also_refused(jobs: Jobs, tmp_path: Path) -> None:
    settings = with_key(jobs.settings, OLD, tmp_path)
    save(jobs, settings)
    with jobs.session() as s:
        row = s.scalars(select(SmtpSettings)).one()
        row.password_encrypted = Fernet(NEW.encode()).encrypt(b"x").decode()
        s.commit()
        with pytest.raises(SecretKeyError, match="does not match"):
            load_smtp(s, settings)


def test_rotation_with_multifernet(jobs: Jobs, tmp_path: Path) -> None:
    save(jobs, with_key(jobs.settings, OLD, tmp_path))
    both = with_key(jobs.settings, f"{NEW},{OLD}", tmp_path)
    with jobs.session() as s:
        loaded = load_smtp(s, both)  # the old key still decrypts
        assert loaded is not None and loaded[1] == "hunter2"
        assert rotate(s, both)
        s.commit()
        row = s.scalars(select(SmtpSettings)).one()
        assert row.key_fingerprint == fingerprint(NEW)
    with jobs.session() as s:
        only_new = load_smtp(s, with_key(jobs.settings, NEW, tmp_path))
        assert only_new is not None and only_new[1] == "hunter2"
        with pytest.raises(SecretKeyError):
            load_smtp(s, with_key(jobs.settings, OLD, tmp_path))


def test_keeping_the_password_when_only_other_fields_change(jobs: Jobs, tmp_path: Path) -> None:
    settings = with_key(jobs.settings, OLD, tmp_path)
    save(jobs, settings)
    with jobs.session() as s:
        save_smtp(
            s,
            settings,
            operator(),
            installation_default=True,
            host="smtp2.example.com",
            port=465,
            security="ssl",
            username="mailer",
            password=None,
            from_address="reports@example.com",
        )
        loaded = load_smtp(s, settings)
    assert loaded is not None and loaded[0].host == "smtp2.example.com" and loaded[1] == "hunter2"


# --- rotating every secret, checking the key, a missing key file, refusing to start ----------------


def save_everywhere(jobs: Jobs, settings: Settings, tenant: Tenant, other: Tenant) -> None:
    """Passwords stored for the installation default and for two businesses."""
    save(jobs, settings)
    for who in (tenant, other):
        with jobs.session() as s:
            save_smtp(
                s,
                settings,
                who.scope("admin"),
                host="smtp.example.com",
                username=f"mailer{who.business_id}",
                password=f"pw-{who.business_id}",
                from_address="reports@example.com",
            )


def stored(jobs: Jobs) -> list[tuple[int | None, str, str]]:
    with jobs.session() as s:
        return [
            (r.business_id, r.key_fingerprint, r.password_encrypted)
            for r in s.scalars(select(SmtpSettings).order_by(SmtpSettings.id))
        ]


def test_secret_key_rotate_re_encrypts_every_stored_secret(
    jobs: Jobs,
    tenant: Tenant,
    other: Tenant,
    tmp_path: Path,
    cli_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    save_everywhere(jobs, with_key(jobs.settings, OLD, tmp_path), tenant, other)
    before = stored(jobs)
    assert {fp for _, fp, _ in before} == {fingerprint(OLD)} and len(before) == 3
    monkeypatch.setenv("TALLYBOARD_SECRET_KEY", f"{NEW},{OLD}")
    assert manage.main(["secret-key", "check"]) == 0
    assert "3 still use an older key" in capsys.readouterr().out
    assert manage.main(["secret-key", "rotate"]) == 0
    assert f"Re-encrypted 3 stored passwords with key {fingerprint(NEW)}" in capsys.readouterr().out
    after = stored(jobs)
    assert [fp for _, fp, _ in after] == [fingerprint(NEW)] * 3
    assert all(a[2] != b[2] for a, b in zip(after, before, strict=True))
    only_new = with_key(jobs.settings, NEW, tmp_path)  # the old key can go now
    with jobs.session() as s:
        for business_id, password in ((None, "hunter2"), (tenant.business_id, f"pw-{tenant.business_id}")):
            loaded = load_smtp(s, only_new, business_id)
            assert loaded is not None and loaded[1] == password
    monkeypatch.setenv("TALLYBOARD_SECRET_KEY", NEW)
    assert manage.main(["secret-key", "check"]) == 0
    assert "opens all 3 stored passwords." in capsys.readouterr().out


def test_secret_key_check_and_rotate_refuse_a_key_that_opens_nothing(
    jobs: Jobs,
    tenant: Tenant,
    other: Tenant,
    tmp_path: Path,
    cli_env: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    save_everywhere(jobs, with_key(jobs.settings, OLD, tmp_path), tenant, other)
    before = stored(jobs)
    monkeypatch.setenv("TALLYBOARD_SECRET_KEY", NEW)
    assert manage.main(["secret-key", "check"]) == 1
    assert capsys.readouterr().err == f"error: {KEY_MISMATCH}\n"
    assert manage.main(["secret-key", "rotate"]) == 1
    assert capsys.readouterr().err == f"error: {KEY_MISMATCH} Nothing was changed.\n"
    assert stored(jobs) == before


def test_a_missing_key_file_is_not_replaced_while_the_database_holds_ciphertext(
    jobs: Jobs, tmp_path: Path
) -> None:
    settings = with_key(jobs.settings, "", tmp_path / "data")
    with jobs.session() as s:
        keyring(settings, session=s)  # no secret stored yet: the file is made on first use
    save(jobs, settings)
    settings.secret_key_file.unlink()  # lost (a new machine, a wiped data folder)
    with (
        jobs.session() as s,
        pytest.raises(SecretKeyError, match="is missing, but the database holds") as caught,
    ):
        load_smtp(s, settings)
    assert "a new key was NOT created" in str(caught.value)
    assert not settings.secret_key_file.exists()
    problem = startup_problem(jobs.engine, settings)
    assert problem is not None and problem.startswith("Tallyboard cannot start: The secret key file")
    assert not settings.secret_key_file.exists()


def test_the_daemon_refuses_to_start_with_a_key_that_does_not_match(
    jobs: Jobs, tmp_path: Path, cli_env: Settings
) -> None:
    save(jobs, with_key(jobs.settings, OLD, tmp_path))
    env = {
        **os.environ,
        "DATABASE_URL": cli_env.database_url,
        "TALLYBOARD_DATA_DIR": str(cli_env.data_dir),
        "TALLYBOARD_SECRET_KEY": NEW,
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "scheduler_daemon.py"), "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == f"error: Tallyboard cannot start: {KEY_MISMATCH}"
    env["TALLYBOARD_SECRET_KEY"] = f"{NEW},{OLD}"  # the right key (among others): it runs
    ok = subprocess.run(
        [sys.executable, str(ROOT / "scheduler_daemon.py"), "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert ok.returncode == 0, ok.stderr
