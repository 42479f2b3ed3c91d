"""The Fernet key that encrypts stored secrets (the SMTP password): where it comes from, its fingerprint, rotation.

The key comes from TALLYBOARD_SECRET_KEY (settings.secret_key): one Fernet key, or several
separated by commas for rotation - the first encrypts, every one decrypts (MultiFernet). Without
it, a key file (settings.secret_key_file, data_dir/secret.key) is created on first use with mode
0600. Losing the key loses the stored password (it must then be entered again in Admin).

Every SMTP settings row keeps the fingerprint of the key that encrypted its password (SHA-256 of
the key, first 16 hex digits), so a wrong key is recognised before anything is decrypted or sent:
the app and the daemon check it at start (`startup_problem`) and refuse to run on a mismatch, and a
missing key file is never replaced by a new key while the database holds passwords encrypted with
the old one. `rotate` re-encrypts every stored secret with the first key (`manage.py secret-key rotate`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.db import make_sessionmaker
from core.errors import Unavailable
from core.models import Schedule, SmtpSettings
from core.settings import Settings

log = logging.getLogger(__name__)

KEY_MISMATCH = (
    "The secret key does not match the one the SMTP password was saved with; set "
    "TALLYBOARD_SECRET_KEY to the original key or re-enter the SMTP password in Admin."
)


class SecretKeyError(Unavailable):
    """The secret key is missing, malformed, or not the one a stored secret was encrypted with."""


def fingerprint(key: bytes | str) -> str:
    """SHA-256 of a Fernet key (its base64 text), first 16 hex digits: safe to store and show."""
    raw = key.encode("ascii") if isinstance(key, str) else key
    return hashlib.sha256(raw.strip()).hexdigest()[:16]


@dataclass(frozen=True)
class Keyring:
    """The available keys, the first one primary (it encrypts)."""

    keys: tuple[bytes, ...]
    source: str  # "TALLYBOARD_SECRET_KEY" or the key file's path, for messages

    @property
    def primary_fingerprint(self) -> str:
        return fingerprint(self.keys[0])

    @property
    def fingerprints(self) -> tuple[str, ...]:
        return tuple(fingerprint(k) for k in self.keys)

    def _fernet(self) -> MultiFernet:
        return MultiFernet([Fernet(k) for k in self.keys])

    def encrypt(self, plain: str) -> str:
        """`plain` encrypted with the primary key, as text."""
        return self._fernet().encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plain text of a token made with any of the keys; SecretKeyError when none fits."""
        try:
            return self._fernet().decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise SecretKeyError(KEY_MISMATCH) from None

    def rotate(self, token: str) -> str:
        """The token re-encrypted with the primary key (SecretKeyError when no key opens it)."""
        try:
            return self._fernet().rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError):
            raise SecretKeyError(KEY_MISMATCH) from None

    def check(self, stored_fingerprint: str) -> None:
        """SecretKeyError (the clear message) when a stored fingerprint matches none of the keys."""
        if stored_fingerprint and stored_fingerprint not in self.fingerprints:
            raise SecretKeyError(KEY_MISMATCH)


def _parse_keys(text: str, source: str) -> tuple[bytes, ...]:
    keys = tuple(part.strip().encode("ascii") for part in text.split(",") if part.strip())
    if not keys:
        raise SecretKeyError(f"{source} holds no key.")
    for i, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            which = f"key {i} of {len(keys)}" if len(keys) > 1 else "the key"
            raise SecretKeyError(
                f"{source}: {which} is not a Fernet key (44 characters of URL-safe base64). Make one with "
                '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.'
            ) from None
    return keys


def _read_or_create_key_file(path: Path) -> str:
    """The key file's text, creating it with a new key (mode 0600) when there is none.

    Created as a private temp file then hard-linked into place, so two processes starting at once
    agree on one key and nobody ever reads a half-written file.
    """
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".secret.", dir=path.parent)  # mkstemp: mode 0600
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, Fernet.generate_key() + b"\n")
        os.fsync(fd)
        os.close(fd)
        try:
            os.link(tmp, path)
            log.warning("created a new secret key file %s (keep it: stored passwords need it)", path)
        except FileExistsError:
            pass  # another process made it first: use theirs
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path.read_text(encoding="ascii")


def stored_secrets(session: Session) -> list[SmtpSettings]:
    """Every settings row holding an encrypted password (the secrets the key protects)."""
    return list(
        session.scalars(
            select(SmtpSettings).where(SmtpSettings.password_encrypted != "").order_by(SmtpSettings.id)
        )
    )


def stored_webhook_secrets(session: Session) -> list[Schedule]:
    """Every schedule holding an encrypted webhook signing secret (mail/webhooks.py)."""
    return list(
        session.scalars(select(Schedule).where(Schedule.webhook_secret_encrypted != "").order_by(Schedule.id))
    )


def _missing_key_file(path: Path, session: Session | None) -> None:
    """SecretKeyError when the key file is missing but the database holds secrets made with a key:
    a new key could not open them, and creating one would hide that the old one is lost."""
    if session is None:
        return
    held = sorted(
        {row.key_fingerprint or "?" for row in stored_secrets(session)}
        | {row.webhook_key_fingerprint or "?" for row in stored_webhook_secrets(session)}
    )
    if held:
        raise SecretKeyError(
            f"The secret key file {path} is missing, but the database holds SMTP passwords encrypted with "
            f"key {', '.join(held)}. Put the original key file back (or set TALLYBOARD_SECRET_KEY to the "
            "original key); a new key was NOT created. If the key is lost, run `python manage.py smtp "
            "clear` (and `--business CODE` for each business) and enter the passwords again."
        )


def keyring(settings: Settings, *, session: Session | None = None) -> Keyring:
    """The keys from TALLYBOARD_SECRET_KEY, else from the key file, created on first use - but only
    when `session`'s database holds no encrypted secret (else SecretKeyError: the key is missing)."""
    if settings.secret_key.strip():
        return Keyring(_parse_keys(settings.secret_key, "TALLYBOARD_SECRET_KEY"), "TALLYBOARD_SECRET_KEY")
    path = settings.secret_key_file
    if not path.exists():
        _missing_key_file(path, session)
    try:
        text = _read_or_create_key_file(path)
    except OSError as exc:
        raise SecretKeyError(
            f"Cannot read or create the secret key file {path}: {exc.strerror or exc}."
        ) from exc
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("the secret key file %s is readable by others (mode %o); chmod 600 it", path, mode)
    return Keyring(_parse_keys(text, str(path)), str(path))


@dataclass(frozen=True)
class KeyCheck:
    """What `check` found: the key in use, how many secrets it opens, how many still need `rotate`."""

    source: str
    primary_fingerprint: str
    fingerprints: tuple[str, ...]
    secrets: int
    on_older_keys: int

    def __str__(self) -> str:
        keys = f"{len(self.fingerprints)} keys" if len(self.fingerprints) > 1 else "1 key"
        text = (
            f"The secret key ({self.source}, {keys}, primary {self.primary_fingerprint}) opens all "
            f"{self.secrets} stored password{'s' if self.secrets != 1 else ''}."
        )
        if self.on_older_keys:
            text += (
                f" {self.on_older_keys} still use an older key: run `python manage.py secret-key rotate`, "
                "then the older keys can be removed from TALLYBOARD_SECRET_KEY."
            )
        return text


def check(session: Session, settings: Settings) -> KeyCheck:
    """Check that the available keys open every stored secret: fingerprints first, then each token
    is decrypted. SecretKeyError (the clear message) on the first that does not open."""
    ring = keyring(settings, session=session)
    rows = stored_secrets(session)
    for row in rows:
        ring.check(row.key_fingerprint)
        ring.decrypt(row.password_encrypted)
    hooks = stored_webhook_secrets(session)
    for hook in hooks:
        ring.check(hook.webhook_key_fingerprint)
        ring.decrypt(hook.webhook_secret_encrypted)
    older = sum(1 for row in rows if row.key_fingerprint != ring.primary_fingerprint)
    older += sum(1 for hook in hooks if hook.webhook_key_fingerprint != ring.primary_fingerprint)
    return KeyCheck(ring.source, ring.primary_fingerprint, ring.fingerprints, len(rows) + len(hooks), older)


def startup_problem(engine: Engine, settings: Settings) -> str | None:
    """Why the app or the daemon must not start with this key (None when it may): the sentence to show."""
    try:
        with make_sessionmaker(engine)() as session:
            check(session, settings)
    except SecretKeyError as exc:
        return f"Tallyboard cannot start: {exc}"
    except SQLAlchemyError:
        return None  # no schema yet, or the database is down: the start-up says so elsewhere
    return None


def rotate(session: Session, settings: Settings, *, now: dt.datetime | None = None) -> int:
    """Re-encrypt every stored secret with the primary key (MultiFernet.rotate) and store its
    fingerprint (flushes, does not commit). Returns how many were re-encrypted (0: none stored);
    SecretKeyError, before anything changes, when a secret opens with none of the keys."""
    ring = keyring(settings, session=session)
    rows = stored_secrets(session)
    hooks = stored_webhook_secrets(session)
    for row in rows:  # all or nothing: check every secret before changing one
        ring.check(row.key_fingerprint)
        ring.decrypt(row.password_encrypted)
    for hook in hooks:
        ring.check(hook.webhook_key_fingerprint)
        ring.decrypt(hook.webhook_secret_encrypted)
    stamp = now or dt.datetime.now(dt.UTC)
    naive = stamp.astimezone(dt.UTC).replace(tzinfo=None) if stamp.tzinfo else stamp
    for row in rows:
        row.password_encrypted = ring.rotate(row.password_encrypted)
        row.key_fingerprint = ring.primary_fingerprint
        row.updated_at = naive
    for hook in hooks:
        hook.webhook_secret_encrypted = ring.rotate(hook.webhook_secret_encrypted)
        hook.webhook_key_fingerprint = ring.primary_fingerprint
    session.flush()
    return len(rows) + len(hooks)
