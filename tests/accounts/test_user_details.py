"""Issue 12, defect 3: names and email addresses can be given — by an admin, by the user themselves,
and the business's notification address — validated and audited like the other account changes."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from accounts import users
from accounts.users import AccountError, operator
from core.errors import Forbidden, NotFound
from core.models import Business
from tests.accounts.test_users import _as, _events, _user
from tests.conftest import new_business


def test_an_admin_sets_a_users_name_and_email_audited(session: Session, business: Business) -> None:
    admin = _user(session, business, "admin")
    staff = _user(session, business, "staff")
    users.set_email(session, _as(admin), staff.id, "  Staff@Example.com ")
    users.set_name(session, _as(admin), staff.id, " Sam Staff ")
    assert (staff.email, staff.name) == ("Staff@Example.com", "Sam Staff")
    users.set_details(session, _as(admin), staff.id, name="Sam Staff", email="")  # only the email changes
    assert staff.email == ""
    events = [
        (e.event_type, e.user, e.entity_id, e.detail)
        for e in _events(session, business.id)
        if e.event_type.endswith("_changed")
    ]
    assert events == [
        ("email_changed", admin.username, staff.username, {"from": "", "to": "Staff@Example.com"}),
        ("name_changed", admin.username, staff.username, {"from": staff.username, "to": "Sam Staff"}),
        ("email_changed", admin.username, staff.username, {"from": "Staff@Example.com", "to": ""}),
    ]


@pytest.mark.parametrize(
    ("email", "message"),
    [
        ("not-an-address", "is not a valid e-mail address"),
        ("Ann <ann@example.com>", "is not a valid e-mail address"),
        ("a@example.com\r\nBcc: x@example.com", "line break"),
    ],
)
def test_a_bad_email_is_refused_with_the_reason(
    session: Session, business: Business, email: str, message: str
) -> None:
    staff = _user(session, business, "staff")
    with pytest.raises(AccountError, match=message):
        users.set_email(session, operator(business.id), staff.id, email)
    with pytest.raises(AccountError, match=message):
        users.set_notice_email(session, operator(business.id), email)
    with pytest.raises(AccountError, match=message):
        users.add_user(session, operator(business.id), "someone-new", "long-enough-1", "staff", email=email)


def test_a_blank_or_multi_line_name_is_refused(session: Session, business: Business) -> None:
    staff = _user(session, business, "staff")
    with pytest.raises(AccountError, match="must not be empty"):
        users.set_name(session, operator(business.id), staff.id, "   ")
    with pytest.raises(AccountError, match="line break"):
        users.set_name(session, operator(business.id), staff.id, "Sam\nStaff")


def test_only_admins_change_others_and_only_in_their_business(
    session: Session, engine: Engine, business: Business
) -> None:
    manager = _user(session, business, "manager")
    staff = _user(session, business, "staff")
    session.commit()
    with pytest.raises(Forbidden):
        users.set_email(session, _as(manager), staff.id, "x@example.com")
    with pytest.raises(Forbidden):
        users.set_notice_email(session, _as(manager), "x@example.com")
    foreign = new_business(engine, "Foreign")
    with pytest.raises(NotFound):
        users.set_name(session, operator(foreign.id), staff.id, "Taken over")


def test_everyone_sets_their_own_name_and_email(session: Session, business: Business) -> None:
    staff = _user(session, business, "staff")
    users.set_own_details(session, _as(staff), name="Sam", email="sam@example.com")
    assert (staff.name, staff.email) == ("Sam", "sam@example.com")
    [event] = _events(session, business.id, "email_changed")
    assert (event.user, event.entity_id) == (staff.username, staff.username)
    with pytest.raises(Forbidden):
        users.set_own_details(session, operator(business.id), name="x", email="")


def test_the_notification_address_is_stored_on_the_business_and_audited(
    session: Session, business: Business
) -> None:
    admin = _user(session, business, "admin")
    assert users.get_notice_email(session, business.id) == ""
    users.set_notice_email(session, _as(admin), " alerts@example.com ")
    assert users.get_notice_email(session, business.id) == "alerts@example.com"
    [event] = _events(session, business.id, "notice_address_changed")
    assert (event.user, event.detail) == (admin.username, {"from": "", "to": "alerts@example.com"})
    users.set_notice_email(session, _as(admin), "")
    assert users.get_notice_email(session, business.id) == ""
