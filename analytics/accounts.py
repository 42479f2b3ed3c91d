"""Businesses and users: creation, validation, bcrypt password hashes, user management scoped to a
business, login attempts with a time-windowed lockout, and the login cookie's signing key."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

import bcrypt
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics.audit import record_event
from analytics.models import ROLES, Business, LoginAttempt, User
from analytics.registry import NotFound
from analytics.settings import Settings

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,79}$")
MIN_PASSWORD = 8
MAX_PASSWORD_BYTES = 72  # bcrypt's limit; bcrypt 5 raises beyond it


class AccountError(ValueError):
    """A business or user request that cannot be carried out; the message says why."""


def hash_password(password: str) -> str:
    check_password_rules(password)
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt()).decode("ascii")


def verify_password(password: str, password_hash: str) -> bool:
    """True when `password` matches the stored bcrypt hash (False for over-long passwords)."""
    data = password.encode("utf-8")
    if len(data) > MAX_PASSWORD_BYTES:
        return False
    try:
        return bcrypt.checkpw(data, password_hash.encode("ascii"))
    except ValueError:
        return False


def check_password_rules(password: str) -> None:
    """Raise AccountError unless `password` is 8+ characters, at most 72 bytes (bcrypt) and has no
    leading or trailing spaces (the login form strips them, so such a password could never match)."""
    if password != password.strip():
        raise AccountError("The password must not start or end with a space.")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"The password must have at least {MIN_PASSWORD} characters.")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise AccountError(f"The password must be at most {MAX_PASSWORD_BYTES} bytes long.")


def add_business(
    session: Session, code: str, name: str, currency: str = "EUR", timezone: str = "UTC"
) -> Business:
    """Create a business; codes are lower-case letters, digits, '-' and '_'."""
    if not CODE_PATTERN.match(code):
        raise AccountError(
            f"Business code {code!r} is not valid: use lower-case letters, digits, '-' or '_' (max 40)."
        )
    if not name.strip():
        raise AccountError("The business needs a name.")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise AccountError(f"Currency {currency!r} must be a three-letter ISO code such as EUR.")
    if session.scalar(select(Business.id).where(Business.code == code)) is not None:
        raise AccountError(f"A business with code {code!r} already exists.")
    business = Business(code=code, name=name.strip(), currency=currency, timezone=timezone)
    session.add(business)
    session.flush()
    return business


def add_user(
    session: Session,
    business_id: int,
    username: str,
    password: str,
    role: str,
    *,
    name: str = "",
    email: str = "",
    actor: str = "",
) -> User:
    """Create an active user of the business with a bcrypt-hashed password (username stored in
    lower case: logins are case-insensitive); audited as `user_added` by `actor`."""
    if not USERNAME_PATTERN.match(username):
        raise AccountError(f"Username {username!r} is not valid: 2-80 letters, digits, '.', '_', '@' or '-'.")
    if role not in ROLES:
        raise AccountError(f"Role {role!r} is not valid; choose one of: {', '.join(ROLES)}.")
    username = normalize_username(username)
    if user_by_username(session, username) is not None:
        raise AccountError(f"The username {username!r} is already taken.")
    user = User(
        business_id=business_id,
        username=username,
        name=name or username,
        email=email,
        password_hash=hash_password(password),
        role=role,
        active=True,
    )
    session.add(user)
    session.flush()
    record_event(
        session,
        business_id,
        "user_added",
        user=actor,
        entity="user",
        entity_id=user.username,
        detail={"role": role},
    )
    return user


# --- looking users up --------------------------------------------------------------------------


def normalize_username(username: str) -> str:
    """Usernames compare case-insensitively (the login library lower-cases them): lower case, trimmed."""
    return username.strip().lower()


def user_by_username(session: Session, username: str) -> User | None:
    """The user with this username in any business, ignoring case (None when there is none)."""
    return session.scalar(select(User).where(func.lower(User.username) == normalize_username(username)))


def active_users(session: Session) -> list[User]:
    """Every active user of every business: the accounts that may log in."""
    return list(session.scalars(select(User).where(User.active.is_(True)).order_by(User.username)))


def user_count(session: Session) -> int:
    """How many users exist at all (0 on a fresh install: the app then explains how to add one)."""
    return int(session.scalar(select(func.count(User.id))) or 0)


def list_users(session: Session, business_id: int) -> list[User]:
    """The users of one business, by username."""
    return list(session.scalars(select(User).where(User.business_id == business_id).order_by(User.username)))


def get_user(session: Session, business_id: int, user_id: int) -> User:
    """The user `user_id` of the business; a user of another business raises NotFound like a missing one."""
    user = session.scalar(select(User).where(User.id == user_id, User.business_id == business_id))
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return user


# --- managing users (admin actions; every one audited) ------------------------------------------


def _active_admins(session: Session, business_id: int) -> int:
    return int(
        session.scalar(
            select(func.count(User.id)).where(
                User.business_id == business_id, User.role == "admin", User.active.is_(True)
            )
        )
        or 0
    )


def _is_last_active_admin(session: Session, user: User) -> bool:
    return user.role == "admin" and user.active and _active_admins(session, user.business_id) <= 1


def set_active(session: Session, business_id: int, user_id: int, active: bool, *, actor: str) -> User:
    """Enable or disable a user of the business. Nobody may disable their own account or the last
    active admin (the business would have no one left to manage users)."""
    user = get_user(session, business_id, user_id)
    if user.active == active:
        return user
    if not active:
        if user.username == normalize_username(actor):
            raise AccountError("You cannot disable your own account; ask another admin.")
        if _is_last_active_admin(session, user):
            raise AccountError(f"{user.username} is the last active admin; make another user admin first.")
    user.active = active
    session.flush()
    event = "user_enabled" if active else "user_disabled"
    record_event(session, business_id, event, user=actor, entity="user", entity_id=user.username)
    return user


def set_role(session: Session, business_id: int, user_id: int, role: str, *, actor: str) -> User:
    """Change a user's role; the last active admin cannot be demoted."""
    if role not in ROLES:
        raise AccountError(f"Role {role!r} is not valid; choose one of: {', '.join(ROLES)}.")
    user = get_user(session, business_id, user_id)
    if user.role == role:
        return user
    if role != "admin" and _is_last_active_admin(session, user):
        raise AccountError(f"{user.username} is the last active admin; make another user admin first.")
    old = user.role
    user.role = role
    session.flush()
    record_event(
        session,
        business_id,
        "role_changed",
        user=actor,
        entity="user",
        entity_id=user.username,
        detail={"from": old, "to": role},
    )
    return user


def reset_password(
    session: Session, business_id: int, user_id: int, new_password: str, *, actor: str
) -> User:
    """An admin sets a new password for a user of the business (no old password needed)."""
    user = get_user(session, business_id, user_id)
    user.password_hash = hash_password(new_password)
    session.flush()
    record_event(session, business_id, "password_reset", user=actor, entity="user", entity_id=user.username)
    return user


def change_password(
    session: Session, business_id: int, user_id: int, old_password: str, new_password: str
) -> User:
    """A user changes their own password: the current one must match and the new one must differ."""
    user = get_user(session, business_id, user_id)
    if not verify_password(old_password, user.password_hash):
        raise AccountError("The current password is not correct.")
    if new_password == old_password:
        raise AccountError("The new password must differ from the current one.")
    user.password_hash = hash_password(new_password)
    session.flush()
    record_event(
        session, business_id, "password_changed", user=user.username, entity="user", entity_id=user.username
    )
    return user


# --- logins and lockout --------------------------------------------------------------------------


def _naive_utc(at: dt.datetime | None) -> dt.datetime:
    when = at or dt.datetime.now(dt.UTC)
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def locked_until(session: Session, username: str, now: dt.datetime, settings: Settings) -> dt.datetime | None:
    """When the lock on `username` ends (naive UTC), or None when it may try to log in now.

    Locked while `login_max_failures` failed attempts lie within the last `login_window_minutes`
    and after the latest successful login; the lock ends when the oldest of them leaves the window.
    Refused attempts during a lock are audit events, not attempts, so trying again does not extend it.
    """
    limit = settings.login_max_failures
    if limit <= 0:
        return None
    now = _naive_utc(now)
    window = dt.timedelta(minutes=settings.login_window_minutes)
    name = normalize_username(username)
    since = now - window
    last_success = session.scalar(
        select(func.max(LoginAttempt.at)).where(
            LoginAttempt.username == name, LoginAttempt.success.is_(True), LoginAttempt.at > since
        )
    )
    start = max(since, last_success) if last_success is not None else since
    failures = list(
        session.scalars(
            select(LoginAttempt.at)
            .where(LoginAttempt.username == name, LoginAttempt.success.is_(False), LoginAttempt.at > start)
            .order_by(LoginAttempt.at.desc())
            .limit(limit)
        )
    )
    if len(failures) < limit:
        return None
    return failures[-1] + window


def is_locked_out(session: Session, username: str, now: dt.datetime, settings: Settings) -> bool:
    """True while too many recent failed logins lock `username` (see `locked_until`)."""
    return locked_until(session, username, now, settings) is not None


def record_login_attempt(
    session: Session, username: str, success: bool, *, ip: str = "", at: dt.datetime | None = None
) -> LoginAttempt:
    """Keep one checked login attempt and audit it (`login` / `login_failed`) in the user's business;
    an unknown username is kept as an attempt only (it has no business)."""
    when = _naive_utc(at)
    name = normalize_username(username)[:80]
    attempt = LoginAttempt(username=name, at=when, success=success, ip=ip[:64])
    session.add(attempt)
    session.flush()
    user = user_by_username(session, name)
    if user is not None:
        event = "login" if success else "login_failed"
        record_event(
            session, user.business_id, event, user=name, entity="user", entity_id=name, ip=ip, at=when
        )
    return attempt


def record_locked_out(
    session: Session, username: str, until: dt.datetime, *, ip: str = "", at: dt.datetime | None = None
) -> None:
    """Audit a login refused because the username is locked (the password was not checked)."""
    user = user_by_username(session, username)
    if user is not None:
        record_event(
            session,
            user.business_id,
            "locked_out",
            user=user.username,
            entity="user",
            entity_id=user.username,
            detail={"locked_until": until.isoformat(timespec="seconds") + "Z"},
            ip=ip,
            at=_naive_utc(at),
        )


def record_logout(session: Session, username: str, *, ip: str = "") -> None:
    """Audit a logout."""
    user = user_by_username(session, username)
    if user is not None:
        record_event(
            session,
            user.business_id,
            "logout",
            user=user.username,
            entity="user",
            entity_id=user.username,
            ip=ip,
        )


# --- first users ---------------------------------------------------------------------------------

DEMO_ROLES = ("admin", "manager", "staff")


@dataclass(frozen=True)
class NewLogin:
    """A user created with a generated password, to be shown once."""

    username: str
    role: str
    password: str


def ensure_demo_users(session: Session, business_id: int) -> list[NewLogin]:
    """Give a business without users an admin, a manager and a staff user (usernames = roles, or
    `{role}-{business code}` when taken by another business) with random passwords, returned once.
    A business that already has users gets none (returns [])."""
    if list_users(session, business_id):
        return []
    business = session.get(Business, business_id)
    if business is None:
        raise NotFound(f"No business with id {business_id}.")
    created = []
    for role in DEMO_ROLES:
        username = role if user_by_username(session, role) is None else f"{role}-{business.code}"
        password = secrets.token_urlsafe(12)
        add_user(session, business_id, username, password, role, name=f"Demo {role}", actor="setup")
        created.append(NewLogin(username, role, password))
    return created


# --- the login cookie's key ------------------------------------------------------------------------

MIN_COOKIE_KEY_BYTES = 32
COOKIE_KEY_FILE = "cookie.key"


def cookie_key(settings: Settings) -> str:
    """The key that signs login cookies: TALLYBOARD_COOKIE_KEY when set (at least 32 bytes), else the
    file data_dir/cookie.key, created on first use with mode 0600 and 48 random bytes."""
    if settings.cookie_key:
        if len(settings.cookie_key.encode("utf-8")) < MIN_COOKIE_KEY_BYTES:
            raise AccountError(
                f"TALLYBOARD_COOKIE_KEY must be at least {MIN_COOKIE_KEY_BYTES} bytes long; make one with "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        return settings.cookie_key
    return _key_file(settings.data_dir / COOKIE_KEY_FILE)


def _key_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written in full to a private temp file, then linked into place: a second process starting
        # at the same moment either wins the link or reads the complete file, never half of it.
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # readable by others: tighten it (the owner's own file)
    key = path.read_text(encoding="utf-8").strip()
    if len(key.encode("utf-8")) < MIN_COOKIE_KEY_BYTES:
        raise AccountError(
            f"{path} holds a key shorter than {MIN_COOKIE_KEY_BYTES} bytes; delete it to make a new one "
            "(everyone will have to log in again)."
        )
    return key
