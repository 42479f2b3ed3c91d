"""API tokens: making, listing and revoking a user's tokens for the HTTP API, and checking one on a call.

A token is `tb_` and 43 random URL-safe characters (256 bits). Only its SHA-256 is stored: the
token is shown once, when it is made, and cannot be read back. A token acts as its user: the role,
the business and the active flag are read from the database on every call, so a disabled user's
tokens stop at once and a role change applies to the next call. Every user makes and revokes their
own tokens (Account page); admins (Admin page) and the operator (`manage.py tokens`) see and revoke
all of their business's. Every change is audited; the token itself is never written anywhere.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from accounts.users import MANAGES_USERS, acting_user, normalize_username, record_refusal
from analytics.report import Scope
from core.clock import utc_naive
from core.errors import Forbidden, Invalid, NotFound, Unauthorized
from core.ids import storable_id
from core.models import ROLES, ApiToken, Business, User
from reports.audit_log import record_event

PREFIX = "tb_"
MAX_TOKEN_CHARS = 200  # anything longer is no token of ours: refused without a look-up
MAX_NAME = 100
DEFAULT_NAME = "API token"
MAX_EXPIRES_DAYS = 3650
MAKE_ONE = "Make a new one on the Account page."


class TokenRefused(Unauthorized):
    """A call whose token lets nobody in: missing, unknown, revoked, expired, or its user disabled.

    `token_id`, `token_name`, `business_id` and `username` name the token and its owner when the
    token is known (so the refusal can be audited in that business); None/"" for an unknown token."""

    def __init__(
        self,
        message: str,
        *,
        token_id: int | None = None,
        token_name: str = "",
        business_id: int | None = None,
        username: str = "",
    ) -> None:
        super().__init__(message)
        self.token_id = token_id
        self.token_name = token_name
        self.business_id = business_id
        self.username = username


@dataclass(frozen=True)
class TokenInfo:
    """One token as the pages and the command line show it (times naive UTC; never the token)."""

    id: int
    name: str
    user_id: int
    username: str
    created_at: dt.datetime
    created_by: str
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def status(self, now: dt.datetime) -> str:
        """'active', 'expired' or 'revoked' at `now`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= utc_naive(now):
            return "expired"
        return "active"


@dataclass(frozen=True)
class NewToken:
    """A token just made: its details and the token itself, to be shown this once."""

    info: TokenInfo
    token: str


@dataclass(frozen=True)
class TokenHolder:
    """Who a valid token lets in, as the database says now."""

    token_id: int
    token_name: str
    user_id: int
    username: str
    role: str
    business_id: int
    business_code: str
    timezone: str

    @property
    def scope(self) -> Scope:
        return Scope(self.business_id, self.username, self.role)


def token_hash(token: str) -> str:
    """The hex SHA-256 stored for `token`."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _info(row: ApiToken, username: str) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        user_id=row.user_id,
        username=username,
        created_at=row.created_at,
        created_by=row.created_by,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _check_name(name: str) -> str:
    name = " ".join(name.split()) or DEFAULT_NAME
    if len(name) > MAX_NAME:
        raise Invalid(f"A token name has at most {MAX_NAME} characters.")
    return name


def _check_expiry(days: int | None) -> int | None:
    if days is not None and not 1 <= days <= MAX_EXPIRES_DAYS:
        raise Invalid(f"A token expires after 1 to {MAX_EXPIRES_DAYS} days (or never), not {days}.")
    return days


def create_token(
    session: Session,
    actor: Scope,
    username: str,
    *,
    now: dt.datetime,
    name: str = "",
    expires_days: int | None = None,
) -> NewToken:
    """Make a token for the active user `username` of the actor's business and return it once.

    Users make tokens for themselves only; the operator for any user of the business (NotFound for
    a user not in it). `expires_days` None: it never expires. Audited as `api_token_created`."""
    acting = acting_user(session, actor, ROLES, "create_api_tokens")
    name, expires_days = _check_name(name), _check_expiry(expires_days)
    wanted = normalize_username(username)
    if acting is not None and wanted != acting.username:
        raise Forbidden("You can make API tokens for yourself only.")
    user = session.scalar(
        select(User).where(func.lower(User.username) == wanted, User.business_id == actor.business_id)
    )
    if user is None:
        raise NotFound(f"No user {username!r} in this business.")
    if not user.active:
        raise Invalid(f"{user.username} is disabled: enable the user first.")
    stamp = utc_naive(now)
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        business_id=actor.business_id,
        user_id=user.id,
        name=name,
        token_hash=token_hash(token),
        created_at=stamp,
        created_by=actor.user[:80],
        expires_at=None if expires_days is None else stamp + dt.timedelta(days=expires_days),
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        actor.business_id,
        "api_token_created",
        user=actor.user,
        entity="api_token",
        entity_id=str(row.id),
        detail={
            "name": name,
            "for": user.username,
            "expires": row.expires_at.isoformat(timespec="seconds") + "Z" if row.expires_at else None,
        },
        at=stamp,
    )
    return NewToken(_info(row, user.username), token)


def list_tokens(session: Session, actor: Scope, *, everyone: bool = False) -> list[TokenInfo]:
    """The actor's own tokens, or with `everyone` (admins and the operator) all of the business's;
    newest first, revoked and expired ones included."""
    if everyone:
        acting_user(session, actor, MANAGES_USERS, "list_api_tokens")
    else:
        acting = acting_user(session, actor, ROLES, "list_api_tokens")
        if acting is None:  # the operator has no tokens of its own
            return []
    query = (
        select(ApiToken, User.username)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.business_id == actor.business_id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    )
    if not everyone:
        query = query.where(User.username == normalize_username(actor.user))
    return [_info(row, username) for row, username in session.execute(query).all()]


def revoke_token(session: Session, actor: Scope, token_id: int, *, now: dt.datetime) -> TokenInfo:
    """Revoke token `token_id` at `now`: one's own, or (admins, the operator) any of the business.
    Another business's token, and for others another user's, answer NotFound like a missing one.
    Revoking a revoked token changes nothing. Audited as `api_token_revoked`."""
    acting = acting_user(session, actor, ROLES, "revoke_api_tokens", entity_id=str(token_id))
    row = session.get(ApiToken, token_id) if storable_id(token_id) else None
    others = (
        acting is not None
        and acting.role not in MANAGES_USERS
        and row is not None
        and row.user_id != acting.id
    )
    if row is None or row.business_id != actor.business_id or others:
        if row is not None:
            record_refusal(
                session,
                actor.business_id,
                user=actor.user,
                action="revoke_api_tokens",
                reason="the token is another business's"
                if row.business_id != actor.business_id
                else "the token is another user's",
                entity="api_token",
                entity_id=str(token_id),
            )
        raise NotFound(f"No API token with id {token_id}.")
    owner = session.get(User, row.user_id)
    username = owner.username if owner else ""
    if row.revoked_at is None:
        row.revoked_at = utc_naive(now)
        session.flush()
        record_event(
            session,
            actor.business_id,
            "api_token_revoked",
            user=actor.user,
            entity="api_token",
            entity_id=str(row.id),
            detail={"name": row.name, "for": username},
            at=row.revoked_at,
        )
    return _info(row, username)


def authenticate(session: Session, token: str, *, now: dt.datetime) -> TokenHolder:
    """The user `token` acts as, read from the database now; TokenRefused when the token is unknown,
    revoked or expired, or its user is disabled or gone. Compares hashes in constant time."""
    token = token.strip()
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_CHARS:
        raise TokenRefused(f"The API token is not valid. {MAKE_ONE}")
    digest = token_hash(token)
    found = session.execute(
        select(ApiToken, User, Business)
        .join(User, User.id == ApiToken.user_id)
        .join(Business, Business.id == ApiToken.business_id)
        .where(ApiToken.token_hash == digest)
    ).first()
    if found is None or not hmac.compare_digest(found[0].token_hash, digest):
        raise TokenRefused(f"The API token is not valid. {MAKE_ONE}")
    row, user, business = found

    def refused(message: str) -> TokenRefused:  # a known token: its owner is named for the audit log
        return TokenRefused(
            message, token_id=row.id, token_name=row.name, business_id=row.business_id, username=user.username
        )

    if row.revoked_at is not None:
        raise refused(f"The API token {row.name!r} was revoked. {MAKE_ONE}")
    if row.expires_at is not None and row.expires_at <= utc_naive(now):
        raise refused(
            f"The API token {row.name!r} expired on {row.expires_at:%Y-%m-%d %H:%M} UTC. {MAKE_ONE}"
        )
    if not user.active or user.business_id != row.business_id or user.role not in ROLES:
        raise refused("Your account is disabled. Ask an administrator to enable it.")
    return TokenHolder(
        token_id=row.id,
        token_name=row.name,
        user_id=user.id,
        username=user.username,
        role=user.role,
        business_id=business.id,
        business_code=business.code,
        timezone=business.timezone,
    )


def record_use(session: Session, token_id: int, *, now: dt.datetime) -> None:
    """Note that token `token_id` was used at `now` (flushed, committed by the caller)."""
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=utc_naive(now)))
