"""Businesses and users: creation, validation, bcrypt password hashes, user management scoped to a
business, login attempts with a time-windowed lockout, and the login cookie's signing key."""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import bcrypt
import jwt
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from analytics.report import Scope
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.ids import storable_id
from core.models import ROLES, Business, LoginAttempt, User
from core.settings import Settings
from mail.transports import check_address, one_line
from reports.audit_log import record_event

log = logging.getLogger(__name__)

CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,79}$")
MIN_PASSWORD = 8
MAX_PASSWORD_BYTES = 72  # bcrypt's limit; bcrypt 5 raises beyond it


class AccountError(Invalid):
    """A business or user request that cannot be carried out; the message says why."""


class AccountConflict(Conflict, AccountError):
    """A taken business code or username, or a change that would leave no active admin."""


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
        raise AccountConflict(f"A business with code {code!r} already exists.")
    business = Business(code=code, name=name.strip(), currency=currency, timezone=timezone)
    session.add(business)
    session.flush()
    return business


# --- who is acting ------------------------------------------------------------------------------

OPERATOR = "operator"  # the command line's role: whoever runs manage.py on the server (no user row)
MANAGES_USERS = frozenset({"admin"})


def operator(business_id: int = 0, name: str = "cli") -> Scope:
    """The acting user of the command line (and of setup code) for a business, or (no business) for
    the installation's own settings: may do anything an admin may, and set the installation default."""
    return Scope(business_id, name, OPERATOR)


def record_refusal(
    session: Session,
    business_id: int,
    *,
    user: str,
    action: str,
    reason: str,
    entity: str = "",
    entity_id: str = "",
) -> None:
    """Audit a refused request as `access_refused`, committed in its own transaction: the caller's
    transaction is about to be rolled back by the error, and the refusal must stay on record."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    detail = {"action": action, "reason": reason}
    try:
        with Session(engine) as own:
            if engine.dialect.name == "sqlite":
                # Never wait long on a write lock held by the caller's own transaction.
                own.connection().exec_driver_sql("PRAGMA busy_timeout = 2000")
            try:
                if own.get(Business, business_id) is not None:
                    record_event(
                        own,
                        business_id,
                        "access_refused",
                        user=user,
                        entity=entity,
                        entity_id=entity_id,
                        detail=detail,
                    )
                    own.commit()
            finally:
                if engine.dialect.name == "sqlite":
                    own.rollback()
                    own.connection().exec_driver_sql("PRAGMA busy_timeout = 30000")
    except SQLAlchemyError as exc:
        log.warning("could not audit a refused %s by %s: %s", action, user, exc.__class__.__name__)
    log.info("refused %s by %r in business %s: %s", action, user, business_id, reason)


def acting_user(
    session: Session,
    actor: Scope,
    roles: Collection[str],
    action: str,
    *,
    entity_id: str = "",
    message: str = "",
) -> User | None:
    """The acting user, re-read from the database (None for the operator). Forbidden, audited, unless
    they exist in `actor`'s business, are active and have one of `roles` now (the role in `actor`
    is not trusted: it may be stale or made up)."""
    if actor.role == OPERATOR:
        return None
    user = session.scalar(
        select(User).where(
            func.lower(User.username) == normalize_username(actor.user), User.business_id == actor.business_id
        )
    )
    if user is None or not user.active or user.role not in roles:
        reason = (
            "no such active user in this business"
            if user is None or not user.active
            else f"role {user.role} may not do this"
        )
        record_refusal(
            session,
            actor.business_id,
            user=actor.user,
            action=action,
            reason=reason,
            entity="user" if entity_id else "",
            entity_id=entity_id,
        )
        raise Forbidden(message or f"You are not allowed to {action.replace('_', ' ')}.")
    return user


def _target(session: Session, actor: Scope, user_id: int, action: str) -> User:
    """User `user_id` of the actor's business. Another business's user answers NotFound exactly
    like a missing one, and the attempt is audited in the actor's business."""
    user = session.get(User, user_id) if storable_id(user_id) else None
    if user is None or user.business_id != actor.business_id:
        if user is not None:
            record_refusal(
                session,
                actor.business_id,
                user=actor.user,
                action=action,
                reason="the user belongs to another business",
                entity="user",
                entity_id=str(user_id),
            )
        raise NotFound(f"No user with id {user_id}.")
    return user


# --- looking users up --------------------------------------------------------------------------


def normalize_username(username: str) -> str:
    """Usernames compare case-insensitively (the login library lower-cases them): lower case, trimmed."""
    return username.strip().lower()


def user_by_username(session: Session, username: str) -> User | None:
    """The user with this username in any business, ignoring case (None when there is none).
    For logging in (before anyone is acting); services look users up through the acting user."""
    return session.scalar(select(User).where(func.lower(User.username) == normalize_username(username)))


def active_users(session: Session) -> list[User]:
    """Every active user of every business: the accounts that may log in."""
    return list(session.scalars(select(User).where(User.active.is_(True)).order_by(User.username)))


def user_count(session: Session) -> int:
    """How many users exist at all (0 on a fresh install: the app then explains how to add one)."""
    return int(session.scalar(select(func.count(User.id))) or 0)


def list_users(session: Session, actor: Scope) -> list[User]:
    """The users of the actor's business, by username (admins and the operator)."""
    acting_user(session, actor, MANAGES_USERS, "list_users")
    return list(
        session.scalars(select(User).where(User.business_id == actor.business_id).order_by(User.username))
    )


def get_user(session: Session, actor: Scope, user_id: int) -> User:
    """User `user_id` of the actor's business (admins and the operator); another business's user
    raises NotFound like a missing one."""
    acting_user(session, actor, MANAGES_USERS, "view_users", entity_id=str(user_id))
    return _target(session, actor, user_id, "view_users")


# --- managing users (admin actions; every one audited) ------------------------------------------


def end_sessions(user: User) -> None:
    """Log the user out everywhere: login cookies and open sessions carry the old epoch."""
    user.session_epoch = int(user.session_epoch or 0) + 1


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


def add_user(
    session: Session,
    actor: Scope,
    username: str,
    password: str,
    role: str,
    *,
    name: str = "",
    email: str = "",
) -> User:
    """Create an active user of the actor's business (admins and the operator) with a bcrypt-hashed
    password (username stored in lower case: logins are case-insensitive); audited as `user_added`."""
    acting_user(session, actor, MANAGES_USERS, "add_users")
    if not USERNAME_PATTERN.match(username):
        raise AccountError(f"Username {username!r} is not valid: 2-80 letters, digits, '.', '_', '@' or '-'.")
    if role not in ROLES:
        raise AccountError(f"Role {role!r} is not valid; choose one of: {', '.join(ROLES)}.")
    username = normalize_username(username)
    if user_by_username(session, username) is not None:
        raise AccountConflict(f"The username {username!r} is already taken.")
    email = check_email(email)
    user = User(
        business_id=actor.business_id,
        username=username,
        name=name or username,
        email=email,
        password_hash=hash_password(password),
        role=role,
        active=True,
        session_epoch=0,
    )
    session.add(user)
    session.flush()
    record_event(
        session,
        actor.business_id,
        "user_added",
        user=actor.user,
        entity="user",
        entity_id=user.username,
        detail={"role": role},
    )
    return user


def set_active(session: Session, actor: Scope, user_id: int, active: bool) -> User:
    """Enable or disable a user of the actor's business (admins and the operator). Nobody may
    disable their own account or the last active admin; a disabled user is logged out everywhere."""
    acting_user(session, actor, MANAGES_USERS, "enable_or_disable_users", entity_id=str(user_id))
    user = _target(session, actor, user_id, "enable_or_disable_users")
    if user.active == active:
        return user
    if not active:
        if user.username == normalize_username(actor.user):
            raise AccountError("You cannot disable your own account; ask another admin.")
        if _is_last_active_admin(session, user):
            raise AccountConflict(f"{user.username} is the last active admin; make another user admin first.")
        end_sessions(user)
    user.active = active
    session.flush()
    event = "user_enabled" if active else "user_disabled"
    record_event(session, actor.business_id, event, user=actor.user, entity="user", entity_id=user.username)
    return user


def set_role(session: Session, actor: Scope, user_id: int, role: str) -> User:
    """Change the role of a user of the actor's business (admins and the operator); the last active
    admin cannot be demoted. The user is logged out everywhere (their pages change)."""
    acting_user(session, actor, MANAGES_USERS, "change_roles", entity_id=str(user_id))
    if role not in ROLES:
        raise AccountError(f"Role {role!r} is not valid; choose one of: {', '.join(ROLES)}.")
    user = _target(session, actor, user_id, "change_roles")
    if user.role == role:
        return user
    if role != "admin" and _is_last_active_admin(session, user):
        raise AccountConflict(f"{user.username} is the last active admin; make another user admin first.")
    old = user.role
    user.role = role
    end_sessions(user)
    session.flush()
    record_event(
        session,
        actor.business_id,
        "role_changed",
        user=actor.user,
        entity="user",
        entity_id=user.username,
        detail={"from": old, "to": role},
    )
    return user


def reset_password(session: Session, actor: Scope, user_id: int, new_password: str) -> User:
    """An admin (or the operator) sets a new password for a user of their business, no old password
    needed; the user is logged out everywhere."""
    acting_user(session, actor, MANAGES_USERS, "reset_passwords", entity_id=str(user_id))
    user = _target(session, actor, user_id, "reset_passwords")
    user.password_hash = hash_password(new_password)
    end_sessions(user)
    session.flush()
    record_event(
        session, actor.business_id, "password_reset", user=actor.user, entity="user", entity_id=user.username
    )
    return user


MAX_NAME = 200


def check_name(name: str) -> str:
    """A person's display name, trimmed: one line, 1-200 characters; AccountError otherwise."""
    try:
        one_line(name, "name")
    except ValueError as exc:
        raise AccountError(str(exc)) from None
    name = name.strip()
    if not name:
        raise AccountError("The name must not be empty.")
    if len(name) > MAX_NAME:
        raise AccountError(f"The name must be at most {MAX_NAME} characters long.")
    return name


def check_email(email: str, what: str = "email address") -> str:
    """A plain email address (name@example.com), trimmed, or "" for none; AccountError otherwise."""
    if not email.strip():
        return ""
    try:
        return check_address(email, what)
    except ValueError as exc:
        raise AccountError(str(exc)) from None


def _change_details(
    session: Session, actor: Scope, user: User, *, name: str | None, email: str | None
) -> User:
    """Set the user's name and/or email (validated) and audit each change that happened."""
    changes: list[tuple[str, str, str]] = []
    if name is not None:
        new_name = check_name(name)
        if new_name != user.name:
            changes.append(("name_changed", user.name, new_name))
            user.name = new_name
    if email is not None:
        new_email = check_email(email)
        if new_email != user.email:
            changes.append(("email_changed", user.email, new_email))
            user.email = new_email
    session.flush()
    for event, old, new in changes:
        record_event(
            session,
            actor.business_id,
            event,
            user=actor.user,
            entity="user",
            entity_id=user.username,
            detail={"from": old, "to": new},
        )
    return user


def set_name(session: Session, actor: Scope, user_id: int, name: str) -> User:
    """Change the display name of a user of the actor's business (admins and the operator);
    audited as `name_changed`."""
    acting_user(session, actor, MANAGES_USERS, "change_names", entity_id=str(user_id))
    user = _target(session, actor, user_id, "change_names")
    return _change_details(session, actor, user, name=name, email=None)


def set_email(session: Session, actor: Scope, user_id: int, email: str) -> User:
    """Change (or, with "", remove) the email address of a user of the actor's business (admins and
    the operator); audited as `email_changed`. Notices and subscriptions follow the address."""
    acting_user(session, actor, MANAGES_USERS, "change_emails", entity_id=str(user_id))
    user = _target(session, actor, user_id, "change_emails")
    return _change_details(session, actor, user, name=None, email=email)


def set_details(session: Session, actor: Scope, user_id: int, *, name: str, email: str) -> User:
    """An admin (or the operator) changes a user's name and email at once (the Admin page)."""
    acting_user(session, actor, MANAGES_USERS, "change_user_details", entity_id=str(user_id))
    user = _target(session, actor, user_id, "change_user_details")
    return _change_details(session, actor, user, name=name, email=email)


def set_own_details(session: Session, actor: Scope, *, name: str, email: str) -> User:
    """The acting user changes their own name and email (the Account page); audited like an
    admin's change, with themselves as the actor."""
    user = acting_user(session, actor, ROLES, "change_own_details")
    if user is None:
        raise Forbidden("The command line changes users with `manage.py users set-name` / `set-email`.")
    return _change_details(session, actor, user, name=name, email=email)


# --- the business's notification address -------------------------------------------------------


def get_notice_email(session: Session, business_id: int) -> str:
    """The business's notification address ("" when none is set)."""
    business = session.get(Business, business_id)
    return (business.notice_email or "").strip() if business is not None else ""


def set_notice_email(session: Session, actor: Scope, email: str) -> str:
    """Set (or, with "", remove) the actor's business's notification address: failure notices and
    the weekly summary go there when neither the owner nor an admin has an address (admins and the
    operator); audited as `notice_address_changed`."""
    acting_user(session, actor, MANAGES_USERS, "change_the_notification_address")
    business = session.get(Business, actor.business_id)
    if business is None:
        raise NotFound(f"No business with id {actor.business_id}.")
    address = check_email(email, "notification address")
    old = business.notice_email or ""
    if address != old:
        business.notice_email = address
        session.flush()
        record_event(
            session,
            actor.business_id,
            "notice_address_changed",
            user=actor.user,
            entity="business",
            entity_id=business.code,
            detail={"from": old, "to": address},
        )
    return address


def change_password(session: Session, actor: Scope, old_password: str, new_password: str) -> User:
    """The acting user changes their own password: the current one must match and the new one must
    differ. Their other sessions and cookies end (the returned user carries the new epoch)."""
    user = acting_user(session, actor, ROLES, "change_password")
    if user is None:
        raise Forbidden("The command line sets passwords with `manage.py users set-password`.")
    if not verify_password(old_password, user.password_hash):
        raise AccountError("The current password is not correct.")
    if new_password == old_password:
        raise AccountError("The new password must differ from the current one.")
    user.password_hash = hash_password(new_password)
    end_sessions(user)
    session.flush()
    record_event(
        session,
        user.business_id,
        "password_changed",
        user=user.username,
        entity="user",
        entity_id=user.username,
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
    """End the user's sessions everywhere (a copied cookie no longer logs in) and audit the logout."""
    user = user_by_username(session, username)
    if user is not None:
        end_sessions(user)
        session.flush()
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
    setup = operator(business_id, "setup")
    if list_users(session, setup):
        return []
    business = session.get(Business, business_id)
    if business is None:
        raise NotFound(f"No business with id {business_id}.")
    created = []
    for role in DEMO_ROLES:
        username = role if user_by_username(session, role) is None else f"{role}-{business.code}"
        password = secrets.token_urlsafe(12)
        add_user(session, setup, username, password, role, name=f"Demo {role}")
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


# --- the login cookie ------------------------------------------------------------------------------

COOKIE_ALGORITHM = "HS256"
MAX_COOKIE_CHARS = 4096


@dataclass(frozen=True)
class SessionClaim:
    """What a valid login cookie says: who, and the session epoch it was issued under."""

    username: str
    epoch: int


def session_token(username: str, epoch: int, key: str, *, expiry_days: float, now: dt.datetime) -> str:
    """The login cookie: an HS256 JWT signed with the cookie key, carrying the username, the user's
    session epoch and the expiry (`exp`, and `exp_date` as streamlit-authenticator writes it)."""
    expires = (now if now.tzinfo else now.replace(tzinfo=dt.UTC)) + dt.timedelta(days=expiry_days)
    claims = {
        "username": normalize_username(username),
        "epoch": int(epoch),
        "exp_date": expires.timestamp(),
        "exp": math.floor(expires.timestamp()),
    }
    return jwt.encode(claims, key, algorithm=COOKIE_ALGORITHM)


def read_session_token(token: object, key: str, *, now: dt.datetime) -> SessionClaim | None:
    """The claim of a login cookie, or None for anything but a well-formed, unexpired HS256 token
    signed with `key` that carries a username and an epoch: `alg: none`, another algorithm, a bad
    signature, a missing or past expiry, wrong types or plain garbage all read as "logged out"."""
    if not isinstance(token, str) or not token or len(token) > MAX_COOKIE_CHARS:
        return None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[COOKIE_ALGORITHM],
            # The expiry is checked below against `now` (tests pin it), not against the wall clock.
            options={"require": ["exp"], "verify_exp": False},
        )
    except Exception:  # PyJWT's errors, and anything a hand-made token can provoke: logged out
        return None
    if not isinstance(claims, dict):
        return None
    username, epoch, expires = claims.get("username"), claims.get("epoch"), claims.get("exp_date")
    if not isinstance(username, str) or not username.strip():
        return None
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        return None
    if isinstance(expires, bool) or not isinstance(expires, int | float) or not math.isfinite(expires):
        return None
    stamp = (now if now.tzinfo else now.replace(tzinfo=dt.UTC)).timestamp()
    if expires <= stamp:
        return None
    return SessionClaim(normalize_username(username), epoch)


def session_user(session: Session, claim: SessionClaim) -> User | None:
    """The active user a cookie's claim names, when the claim's epoch is still the user's (None after
    a logout, a password, role or status change, or for a user who is gone or disabled)."""
    user = user_by_username(session, claim.username)
    if user is None or not user.active or int(user.session_epoch or 0) != claim.epoch:
        return None
    return user
