"""Businesses and users: creation, validation and bcrypt password hashes."""

from __future__ import annotations

import re

import bcrypt
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.models import ROLES, Business, User

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
) -> User:
    """Create an active user of the business with a bcrypt-hashed password."""
    if not USERNAME_PATTERN.match(username):
        raise AccountError(f"Username {username!r} is not valid: 2-80 letters, digits, '.', '_', '@' or '-'.")
    if role not in ROLES:
        raise AccountError(f"Role {role!r} is not valid; choose one of: {', '.join(ROLES)}.")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
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
    return user
