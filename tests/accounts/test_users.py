"""User management scoped to a business, password rules, the time-windowed login lockout, audit
events of every account change, demo logins and the login cookie's key."""

from __future__ import annotations

import datetime as dt
import functools
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from accounts import users
from accounts.users import AccountError, operator
from analytics.report import Scope
from core.db import make_sessionmaker
from core.errors import Forbidden
from core.models import AuditEvent, Business, LoginAttempt, User
from core.settings import Settings
from reports.registry import NotFound
from tests.conftest import new_business

NOW = dt.datetime(2026, 11, 20, 12, 0, 0)
PASSWORD = "correct-horse-1"


def _name(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def _user(session: Session, business: Business, role: str = "staff", username: str = "") -> User:
    return users.add_user(session, operator(business.id, "test"), username or _name(), PASSWORD, role)


def _as(user: User) -> Scope:
    """The acting user as the pages pass them (the role in it is not trusted: it is re-read)."""
    return Scope(user.business_id, user.username, user.role)


def _events(session: Session, business_id: int, event_type: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.business_id == business_id)
    if event_type:
        query = query.where(AuditEvent.event_type == event_type)
    return list(session.scalars(query.order_by(AuditEvent.id)))


def _fail(session: Session, username: str, minutes_ago: float, success: bool = False) -> None:
    users.record_login_attempt(session, username, success, at=NOW - dt.timedelta(minutes=minutes_ago))


# --- lockout ---------------------------------------------------------------------------------------


def test_five_failures_within_the_window_lock_until_the_oldest_leaves_it(
    session: Session, settings: Settings
) -> None:
    name = _name()
    for minutes_ago in (10, 8, 6, 4):
        _fail(session, name, minutes_ago)
    assert users.locked_until(session, name, NOW, settings) is None
    _fail(session, name, 2)
    assert users.is_locked_out(session, name, NOW, settings)
    # Locked for the rest of the window: until the oldest of the five is 15 minutes old.
    assert users.locked_until(session, name, NOW, settings) == NOW + dt.timedelta(minutes=5)
    assert users.is_locked_out(session, name, NOW + dt.timedelta(minutes=4, seconds=59), settings)
    assert not users.is_locked_out(session, name, NOW + dt.timedelta(minutes=5), settings)


def test_failures_outside_the_window_do_not_count(session: Session, settings: Settings) -> None:
    name = _name()
    minutes_ago: float
    for minutes_ago in (40, 30, 20, 16):
        _fail(session, name, minutes_ago)
    for minutes_ago in (14, 3, 1, 0.5):
        _fail(session, name, minutes_ago)
    assert not users.is_locked_out(session, name, NOW, settings)
    _fail(session, name, 0.1)
    assert users.is_locked_out(session, name, NOW, settings)


def test_success_after_the_window_and_a_success_resets_the_count(
    session: Session, settings: Settings
) -> None:
    name = _name()
    for minutes_ago in (5, 4, 3, 2, 1):
        _fail(session, name, minutes_ago)
    later = NOW + dt.timedelta(minutes=11)
    assert not users.is_locked_out(session, name, later, settings)
    users.record_login_attempt(session, name, True, at=later)
    # Four failures right after a success are not five, although the window still holds old ones.
    for seconds in (1, 2, 3, 4):
        users.record_login_attempt(session, name, False, at=later + dt.timedelta(seconds=seconds))
    assert not users.is_locked_out(session, name, later + dt.timedelta(seconds=5), settings)


def test_lockout_is_configurable_and_case_insensitive(session: Session, settings: Settings) -> None:
    name = _name()
    strict = settings.with_changes(login_max_failures=2, login_window_minutes=60)
    _fail(session, name.upper(), 50)
    assert not users.is_locked_out(session, name, NOW, strict)
    _fail(session, name, 40)
    assert users.is_locked_out(session, name.upper(), NOW, strict)
    assert not users.is_locked_out(session, name, NOW, settings)  # default: 5 in 15 minutes
    assert not users.is_locked_out(session, name, NOW, settings.with_changes(login_max_failures=0))


def test_login_attempts_are_kept_and_audited_in_the_users_business(
    session: Session, business: Business, settings: Settings
) -> None:
    user = _user(session, business)
    users.record_login_attempt(session, user.username.upper(), False, ip="10.0.0.7", at=NOW)
    users.record_login_attempt(session, user.username, True, ip="10.0.0.7", at=NOW)
    users.record_locked_out(session, user.username, NOW + dt.timedelta(minutes=3), ip="10.0.0.8", at=NOW)
    users.record_logout(session, user.username)
    rows = session.scalars(select(LoginAttempt).where(LoginAttempt.username == user.username)).all()
    assert [(r.success, r.ip, r.at) for r in rows] == [(False, "10.0.0.7", NOW), (True, "10.0.0.7", NOW)]
    events = _events(session, business.id)
    assert [(e.event_type, e.user, e.ip) for e in events[1:]] == [
        ("login_failed", user.username, "10.0.0.7"),
        ("login", user.username, "10.0.0.7"),
        ("locked_out", user.username, "10.0.0.8"),
        ("logout", user.username, ""),
    ]
    assert events[3].detail == {"locked_until": "2026-11-20T12:03:00Z"}


def test_an_unknown_username_is_kept_as_an_attempt_without_an_audit_event(session: Session) -> None:
    name = _name("ghost")
    before = session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1))
    users.record_login_attempt(session, name, False, at=NOW)
    assert session.scalar(select(LoginAttempt.success).where(LoginAttempt.username == name)) is False
    assert session.scalar(select(AuditEvent.id).order_by(AuditEvent.id.desc()).limit(1)) == before


# --- user management -------------------------------------------------------------------------------


def test_usernames_are_stored_in_lower_case_and_unique_ignoring_case(
    session: Session, engine: Engine, business: Business
) -> None:
    other = new_business(engine)  # first: the test's session then holds SQLite's write lock
    name = _name("Mixed")
    user = users.add_user(session, operator(business.id), name, PASSWORD, "staff")
    assert user.username == name.lower()
    assert users.user_by_username(session, name.upper()) is user
    with pytest.raises(AccountError, match="already taken"):
        users.add_user(session, operator(other.id), name.upper(), PASSWORD, "staff")


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "at least 8"),
        (" leading-space", "start or end with a space"),
        ("trailing-space ", "start or end with a space"),
        ("é" * 40, "at most 72 bytes"),
    ],
)
def test_password_rules(password: str, message: str) -> None:
    with pytest.raises(AccountError, match=message):
        users.check_password_rules(password)


def test_change_password_needs_the_current_one(session: Session, business: Business) -> None:
    user = _user(session, business)
    with pytest.raises(AccountError, match="current password is not correct"):
        users.change_password(session, _as(user), "wrong-password", "new-password-1")
    with pytest.raises(AccountError, match="must differ"):
        users.change_password(session, _as(user), PASSWORD, PASSWORD)
    with pytest.raises(AccountError, match="at least 8"):
        users.change_password(session, _as(user), PASSWORD, "short")
    users.change_password(session, _as(user), PASSWORD, "new-password-1")
    assert users.verify_password("new-password-1", user.password_hash)
    assert not users.verify_password(PASSWORD, user.password_hash)
    [event] = _events(session, business.id, "password_changed")
    assert (event.user, event.entity, event.entity_id) == (user.username, "user", user.username)


def test_admin_actions_are_audited_with_the_actor(session: Session, business: Business) -> None:
    admin = _user(session, business, "admin")
    user = _user(session, business, "staff")
    users.set_role(session, _as(admin), user.id, "manager")
    users.set_active(session, _as(admin), user.id, False)
    users.set_active(session, _as(admin), user.id, True)
    users.reset_password(session, _as(admin), user.id, "reset-password-1")
    assert user.role == "manager" and user.active
    assert users.verify_password("reset-password-1", user.password_hash)
    events = [(e.event_type, e.user, e.entity_id, e.detail) for e in _events(session, business.id)]
    assert events == [
        ("user_added", "test", admin.username, {"role": "admin"}),
        ("user_added", "test", user.username, {"role": "staff"}),
        ("role_changed", admin.username, user.username, {"from": "staff", "to": "manager"}),
        ("user_disabled", admin.username, user.username, {}),
        ("user_enabled", admin.username, user.username, {}),
        ("password_reset", admin.username, user.username, {}),
    ]
    # Setting what is already set changes and audits nothing.
    users.set_role(session, _as(admin), user.id, "manager")
    users.set_active(session, _as(admin), user.id, True)
    assert len(_events(session, business.id)) == len(events)


def test_users_of_another_business_are_not_found(
    session: Session, engine: Engine, business: Business
) -> None:
    other_business = new_business(engine)
    mine = _user(session, business, "admin")
    theirs = _user(session, other_business, "staff")
    session.commit()  # the refusals are audited in a transaction of their own
    assert [u.username for u in users.list_users(session, _as(mine))] == [mine.username]
    actions: list[Callable[[], object]] = [
        lambda: users.get_user(session, _as(mine), theirs.id),
        lambda: users.set_role(session, _as(mine), theirs.id, "admin"),
        lambda: users.set_active(session, _as(mine), theirs.id, False),
        lambda: users.reset_password(session, _as(mine), theirs.id, "taken-over-1"),
    ]
    for action in actions:
        with pytest.raises(NotFound, match=f"No user with id {theirs.id}"):
            action()
        session.rollback()
    with pytest.raises(NotFound):  # exactly like an id nobody has
        users.get_user(session, _as(mine), 10**9)
    session.refresh(theirs)
    assert theirs.role == "staff" and theirs.active and users.verify_password(PASSWORD, theirs.password_hash)
    assert _events(session, other_business.id)[1:] == []
    refused = [
        (e.user, e.detail["action"], e.entity_id) for e in _events(session, business.id, "access_refused")
    ]
    assert refused == [
        (mine.username, action, str(theirs.id))
        for action in ("view_users", "change_roles", "enable_or_disable_users", "reset_passwords")
    ]


def test_the_last_active_admin_cannot_be_disabled_or_demoted(session: Session, business: Business) -> None:
    first = _user(session, business, "admin")
    staff = _user(session, business, "staff")
    with pytest.raises(AccountError, match="last active admin"):
        users.set_role(session, _as(first), first.id, "manager")
    with pytest.raises(AccountError, match="own account"):
        users.set_active(session, _as(first), first.id, False)
    with pytest.raises(AccountError, match="last active admin"):
        users.set_active(session, operator(business.id), first.id, False)
    second = _user(session, business, "admin")
    users.set_active(session, _as(first), second.id, False)
    # A disabled admin does not count: `first` is still the last active one.
    with pytest.raises(AccountError, match="last active admin"):
        users.set_role(session, _as(first), first.id, "staff")
    users.set_active(session, _as(first), second.id, True)
    users.set_role(session, _as(first), first.id, "manager")  # may demote oneself now
    assert first.role == "manager" and second.role == "admin" and staff.role == "staff"
    with pytest.raises(AccountError, match="Role 'owner' is not valid"):
        users.set_role(session, _as(second), staff.id, "owner")


def test_active_users_and_count(session: Session, business: Business) -> None:
    user = _user(session, business)
    assert user.username in {u.username for u in users.active_users(session)}
    assert users.user_count(session) >= 1
    user.active = False
    session.flush()
    assert user.username not in {u.username for u in users.active_users(session)}


# --- demo logins ---------------------------------------------------------------------------------


def test_demo_users_are_created_once_with_working_passwords(session: Session, engine: Engine) -> None:
    first, second = new_business(engine), new_business(engine)
    logins = users.ensure_demo_users(session, first.id)
    assert [login.role for login in logins] == ["admin", "manager", "staff"]
    for login in logins:
        assert login.username in {login.role, f"{login.role}-{first.code}"}
        user = users.user_by_username(session, login.username)
        assert user is not None and user.business_id == first.id and user.role == login.role
        assert users.verify_password(login.password, user.password_hash)
        assert len(login.password) >= 16
    assert users.ensure_demo_users(session, first.id) == []
    # "admin" & co. are taken now: the business code tells the second business's logins apart.
    assert [login.username for login in users.ensure_demo_users(session, second.id)] == [
        f"{role}-{second.code}" for role in ("admin", "manager", "staff")
    ]


# --- the cookie key --------------------------------------------------------------------------------


def test_cookie_key_from_the_environment_must_be_long_enough(tmp_path: Path, settings: Settings) -> None:
    good = "k" * 32
    assert users.cookie_key(settings.with_changes(cookie_key=good, data_dir=tmp_path)) == good
    with pytest.raises(AccountError, match="at least 32 bytes"):
        users.cookie_key(settings.with_changes(cookie_key="short", data_dir=tmp_path))
    assert not (tmp_path / "cookie.key").exists()
    assert good not in repr(settings.with_changes(cookie_key=good))


def test_cookie_key_file_is_created_once_with_mode_0600(tmp_path: Path, settings: Settings) -> None:
    local = settings.with_changes(cookie_key="", data_dir=tmp_path / "data")
    key = users.cookie_key(local)
    path = tmp_path / "data" / "cookie.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 48 and path.read_text().strip() == key
    assert users.cookie_key(local) == key
    assert [p.name for p in path.parent.iterdir()] == ["cookie.key"]  # no temp file left behind
    os.chmod(path, 0o644)
    assert users.cookie_key(local) == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("too-short\n")
    with pytest.raises(AccountError, match="shorter than 32 bytes"):
        users.cookie_key(local)


# --- every user-management function checks the acting user itself ------------------------------------

MUTATIONS: dict[str, Callable[[Session, Scope, User], object]] = {
    "add_user": lambda s, actor, target: users.add_user(s, actor, _name("new"), PASSWORD, "admin"),
    "set_role": lambda s, actor, target: users.set_role(s, actor, target.id, "admin"),
    "set_active": lambda s, actor, target: users.set_active(s, actor, target.id, False),
    "reset_password": lambda s, actor, target: users.reset_password(s, actor, target.id, "taken-over-1"),
    "list_users": lambda s, actor, target: users.list_users(s, actor),
    "get_user": lambda s, actor, target: users.get_user(s, actor, target.id),
}
# Who acts (as the page or a hand-made call would pass them) -> the error expected (None: allowed).
ACTORS: dict[str, type[Exception] | None] = {
    "admin": None,
    "operator": None,
    "manager": Forbidden,
    "staff": Forbidden,
    "staff claiming admin": Forbidden,  # the role in the Scope is not trusted: it is re-read
    "disabled admin": Forbidden,
    "admin of another business, claiming this one": Forbidden,
    "admin of another business": NotFound,  # on a user of this business: like a missing id
}


@functools.cache
def _hash() -> str:
    return users.hash_password(PASSWORD)


def _quick_user(session: Session, business: Business, role: str) -> User:
    """A user made without hashing a password again (bcrypt is slow on purpose)."""
    user = User(business_id=business.id, username=_name(), password_hash=_hash(), role=role, active=True)
    session.add(user)
    session.flush()
    return user


@pytest.fixture
def team(engine: Engine, business: Business) -> dict[str, Scope | User]:
    other = new_business(engine)
    with make_sessionmaker(engine)() as s:
        admin = _quick_user(s, business, "admin")
        manager = _quick_user(s, business, "manager")
        staff = _quick_user(s, business, "staff")
        disabled = _quick_user(s, business, "admin")
        disabled.active = False
        target = _quick_user(s, business, "staff")
        foreign = _quick_user(s, other, "admin")
        s.commit()
        people = {"admin": admin, "manager": manager, "staff": staff, "target": target}
        team: dict[str, Scope | User] = {
            "admin": _as(admin),
            "operator": operator(business.id),
            "manager": _as(manager),
            "staff": _as(staff),
            "staff claiming admin": Scope(business.id, staff.username, "admin"),
            "disabled admin": Scope(business.id, disabled.username, "admin"),
            "admin of another business, claiming this one": Scope(business.id, foreign.username, "admin"),
            "admin of another business": _as(foreign),
        }
        for user in people.values():
            s.expunge(user)
        team["target"] = people["target"]
        return team


@pytest.mark.parametrize("who", list(ACTORS))
@pytest.mark.parametrize("action", list(MUTATIONS))
def test_user_management_checks_the_acting_user_and_audits_refusals(
    engine: Engine, business: Business, team: dict[str, Scope | User], action: str, who: str
) -> None:
    actor, target = team[who], team["target"]
    assert isinstance(actor, Scope) and isinstance(target, User)
    expected = ACTORS[who]
    if who == "admin of another business" and action in ("add_user", "list_users"):
        expected = None  # acting on their own business, which is theirs to manage
    with make_sessionmaker(engine)() as s:
        if expected is None:
            MUTATIONS[action](s, actor, target)
            s.commit()
        else:
            with pytest.raises(expected):
                MUTATIONS[action](s, actor, target)
            s.rollback()
    with make_sessionmaker(engine)() as s:
        after = s.get(User, target.id)
        assert after is not None
        unchanged = (after.role, after.active, after.password_hash) == ("staff", True, target.password_hash)
        refusals = _events(s, actor.business_id, "access_refused")
    if expected is None:
        assert unchanged == (
            action in ("add_user", "list_users", "get_user") or actor.business_id != business.id
        )
        assert refusals == []
    else:
        assert unchanged
        [refusal] = refusals
        assert refusal.user == actor.user and refusal.detail["action"]


def test_a_staff_user_cannot_make_themselves_admin_or_reset_the_admins_password(
    engine: Engine, business: Business
) -> None:
    """The issue's two calls, as a staff user would make them by hand."""
    with make_sessionmaker(engine)() as s:
        admin, staff = _user(s, business, "admin"), _user(s, business, "staff")
        s.commit()
        hand_made = Scope(business.id, staff.username, "admin")
        with pytest.raises(Forbidden):
            users.set_role(s, hand_made, staff.id, "admin")
        s.rollback()
        with pytest.raises(Forbidden):
            users.reset_password(s, hand_made, admin.id, "taken-over-1")
        s.rollback()
        s.refresh(staff)
        s.refresh(admin)
        assert staff.role == "staff" and users.verify_password(PASSWORD, admin.password_hash)
        assert [e.detail["action"] for e in _events(s, business.id, "access_refused")] == [
            "change_roles",
            "reset_passwords",
        ]


# --- sessions end: the epoch in the cookie --------------------------------------------------------

KEY = "k" * 40


@pytest.mark.parametrize(
    "change",
    [
        lambda s, admin, user: users.record_logout(s, user.username),
        lambda s, admin, user: users.change_password(s, _as(user), PASSWORD, "a-new-password-1"),
        lambda s, admin, user: users.reset_password(s, _as(admin), user.id, "a-new-password-1"),
        lambda s, admin, user: users.set_role(s, _as(admin), user.id, "manager"),
        lambda s, admin, user: users.set_active(s, _as(admin), user.id, False),
    ],
    ids=["logout", "password change", "password reset", "role change", "disabled"],
)
def test_a_cookie_issued_before_a_logout_or_account_change_logs_nobody_in(
    session: Session, business: Business, change: object
) -> None:
    admin, user = _user(session, business, "admin"), _user(session, business, "staff")
    cookie = users.session_token(user.username, user.session_epoch, KEY, expiry_days=7, now=NOW)
    claim = users.read_session_token(cookie, KEY, now=NOW)
    assert claim == users.SessionClaim(user.username, 0)
    assert users.session_user(session, claim) is user
    change(session, admin, user)  # type: ignore[operator]
    assert users.session_user(session, claim) is None
    if user.active:  # a new login gets a cookie with the new epoch, which works
        fresh = users.read_session_token(
            users.session_token(user.username, user.session_epoch, KEY, expiry_days=7, now=NOW),
            KEY,
            now=NOW,
        )
        assert fresh is not None and users.session_user(session, fresh) is user


def _forged(header: dict[str, object], claims: dict[str, object], key: str = KEY) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = part(json.dumps(header).encode()) + "." + part(json.dumps(claims).encode())
    if header.get("alg") == "none":
        return head + "."
    digest = hashlib.sha512 if header.get("alg") == "HS512" else hashlib.sha256
    return head + "." + part(hmac.new(key.encode(), head.encode(), digest).digest())


LATER = NOW.replace(tzinfo=dt.UTC).timestamp() + 86400


@pytest.mark.parametrize(
    "token",
    [
        _forged(
            {"alg": "none", "typ": "JWT"},
            {"username": "admin", "epoch": 0, "exp_date": LATER, "exp": int(LATER)},
        ),
        _forged(
            {"alg": "HS512", "typ": "JWT"},
            {"username": "admin", "epoch": 0, "exp_date": LATER, "exp": int(LATER)},
        ),
        _forged({"alg": "HS256", "typ": "JWT"}, {"username": "admin", "epoch": 0}),  # no expiry
        _forged({"alg": "HS256", "typ": "JWT"}, {"username": "admin", "exp_date": LATER, "exp": int(LATER)}),
        _forged(
            {"alg": "HS256", "typ": "JWT"},
            {"username": "admin", "epoch": 0, "exp_date": "soon", "exp": int(LATER)},
        ),
        _forged(
            {"alg": "HS256", "typ": "JWT"},
            {"username": ["admin"], "epoch": 0, "exp_date": LATER, "exp": int(LATER)},
        ),
        _forged(
            {"alg": "HS256", "typ": "JWT"},
            {"username": "admin", "epoch": 0, "exp_date": LATER, "exp": int(LATER)},
            "x" * 40,
        ),
        _forged({"alg": "HS256", "typ": "JWT"}, {"username": "admin", "epoch": 0, "exp_date": 1.0, "exp": 1}),
        "not.a.jwt",
        "",
        "é" * 10,
        "a" * 10_000,
    ],
    ids=[
        "alg none",
        "HS512",
        "no expiry",
        "no epoch",
        "text expiry",
        "list username",
        "other key",
        "expired",
        "garbage",
        "empty",
        "non-ascii",
        "huge",
    ],
)
def test_a_malformed_or_forged_cookie_reads_as_logged_out(token: str) -> None:
    assert users.read_session_token(token, KEY, now=NOW) is None


def test_the_library_cookie_without_an_epoch_no_longer_logs_in() -> None:
    """Cookies made before the upgrade (streamlit-authenticator's own: username + exp_date only)."""
    import jwt

    old = jwt.encode({"username": "admin", "exp_date": LATER}, KEY, algorithm="HS256")
    assert users.read_session_token(old, KEY, now=NOW) is None
