"""The Admin, Account and Audit log pages under AppTest: an admin manages the users of their own
business only, the last admin is protected, a user changes their password, and the audit log shows
this business's events with its filters."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, delete, select
from streamlit.testing.v1 import AppTest

from accounts.users import verify_password
from core.db import session_scope
from core.models import AuditEvent, Business, User
from core.settings import Settings
from reports.audit_log import record_event
from tests.conftest import new_business
from tests.ui.test_navigation import PASSWORD, ROOT, fresh_caches, logged_in, make_user

__all__ = ["fresh_caches"]  # the autouse fixture, shared with test_navigation


def page(key: str, username: str) -> AppTest:
    return logged_in(ROOT / "pages" / f"{key}.py", username)


def user(engine: Engine, username: str) -> User:
    with session_scope(engine) as session:
        found = session.scalars(select(User).where(User.username == username)).one()
        session.expunge(found)
        return found


def click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return at.run()


def texts(at: AppTest) -> list[str]:
    return [str(e.value) for e in (*at.success, *at.error, *at.info)]


def test_admin_lists_only_the_users_of_their_business(engine: Engine, business: Business) -> None:
    other = new_business(engine, "Other Co")
    admin = make_user(engine, business, "admin")
    staff = make_user(engine, business, "staff")
    foreign = make_user(engine, other, "admin")
    at = page("admin", admin)
    assert not at.exception
    assert sorted(at.dataframe[0].value["Username"]) == sorted([admin, staff])
    assert not any(foreign in option for option in at.selectbox(key="admin_user").options)
    assert {"Email", "Scheduler"} <= {s.value for s in at.subheader}  # SMTP form and heartbeat


def test_admin_adds_a_user_to_their_business(engine: Engine, business: Business) -> None:
    admin = make_user(engine, business, "admin")
    new = f"new_{business.code}"
    at = page("admin", admin)
    at.text_input(key="admin_new_username").input(new)
    at.selectbox(key="admin_new_role").select("manager")
    at.text_input(key="admin_new_name").input("New Person")
    at.text_input(key="admin_new_password").input("a-new-password")
    at.text_input(key="admin_new_repeat").input("a-new-password")
    click(at, "Add user")
    assert f"Added manager {new}." in texts(at)
    added = user(engine, new)
    assert (added.business_id, added.role, added.name, added.active) == (
        business.id,
        "manager",
        "New Person",
        True,
    )
    assert verify_password("a-new-password", added.password_hash)
    with session_scope(engine) as session:
        actor = session.scalar(select(AuditEvent.user).where(AuditEvent.entity_id == new))
    assert actor == admin


def test_adding_a_user_explains_what_is_wrong(engine: Engine, business: Business) -> None:
    admin = make_user(engine, business, "admin")
    at = page("admin", admin)
    at.text_input(key="admin_new_username").input(f"x_{business.code}")
    at.text_input(key="admin_new_password").input("a-new-password")
    at.text_input(key="admin_new_repeat").input("another-password")
    click(at, "Add user")
    assert "The two passwords differ." in texts(at)
    at.text_input(key="admin_new_username").input(admin)
    at.text_input(key="admin_new_password").input("a-new-password")
    at.text_input(key="admin_new_repeat").input("a-new-password")
    click(at, "Add user")
    assert f"The username {admin!r} is already taken." in texts(at)


def test_admin_changes_role_disables_and_resets_a_password(engine: Engine, business: Business) -> None:
    admin = make_user(engine, business, "admin")
    staff = make_user(engine, business, "staff")
    target = user(engine, staff)
    at = page("admin", admin)
    at.selectbox(key="admin_user").select(target.id).run()
    at.selectbox(key=f"admin_role_{target.id}").select("manager")
    click(at, "Change role")
    assert f"{staff} is now manager." in texts(at)
    assert user(engine, staff).role == "manager"
    at.selectbox(key="admin_user").select(target.id).run()
    click(at, f"Disable {staff}")
    assert f"{staff} is disabled." in texts(at)
    assert user(engine, staff).active is False
    at.selectbox(key="admin_user").select(target.id).run()
    at.text_input(key="admin_reset_password").input("reset-by-admin")
    click(at, "Reset password")
    assert verify_password("reset-by-admin", user(engine, staff).password_hash)


def test_the_last_admin_cannot_disable_or_demote_themselves(engine: Engine, business: Business) -> None:
    admin = make_user(engine, business, "admin")
    me = user(engine, admin)
    at = page("admin", admin)
    at.selectbox(key="admin_user").select(me.id).run()
    click(at, f"Disable {admin}")
    assert "You cannot disable your own account; ask another admin." in texts(at)
    at.selectbox(key=f"admin_role_{me.id}").select("staff")
    click(at, "Change role")
    assert f"{admin} is the last active admin; make another user admin first." in texts(at)
    assert (user(engine, admin).role, user(engine, admin).active) == ("admin", True)


def test_account_shows_my_details_and_changes_my_password(engine: Engine, business: Business) -> None:
    username = make_user(engine, business, "staff")
    at = page("account", username)
    details = " ".join(m.value for m in at.markdown)
    assert username in details and business.name in details and "Staff" in details
    at.text_input(key="account_current").input("wrong-password")
    at.text_input(key="account_new").input("brand-new-pass")
    at.text_input(key="account_repeat").input("brand-new-pass")
    click(at, "Change password")
    assert "The current password is not correct." in texts(at)
    at.text_input(key="account_current").input(PASSWORD)
    at.text_input(key="account_new").input("brand-new-pass")
    at.text_input(key="account_repeat").input("brand-new-typo")
    click(at, "Change password")
    assert "The two new passwords differ; type the new password twice." in texts(at)
    at.text_input(key="account_current").input(PASSWORD)
    at.text_input(key="account_new").input("brand-new-pass")
    at.text_input(key="account_repeat").input("brand-new-pass")
    click(at, "Change password")
    assert "Password changed. Your other sessions have been logged out." in texts(at)
    assert verify_password("brand-new-pass", user(engine, username).password_hash)


def test_audit_log_shows_this_business_only_and_filters(engine: Engine, business: Business) -> None:
    other = new_business(engine, "Other Co")
    admin = make_user(engine, business, "admin")
    now = dt.datetime.now(dt.UTC)
    with session_scope(engine) as session:
        record_event(session, business.id, "login", user="alice", at=now)
        record_event(session, business.id, "export", user="bob", at=now)
        record_event(session, business.id, "login_failed", user="bob", at=now)
        record_event(session, other.id, "login", user="mallory", at=now)
    at = page("audit_log", admin)
    assert not at.exception
    events = at.dataframe[0].value
    assert set(events["user"]) == {"alice", "bob", "cli"}  # "cli": make_user adds the admin as the operator
    assert "mallory" not in at.multiselect(key="audit_log_user").options
    assert "Login failed" in at.multiselect(key="audit_log_event_type").options  # a label, not the code
    at.multiselect(key="audit_log_event_type").select("export").run()
    assert list(at.dataframe[0].value["user"]) == ["bob"]
    assert [m.value for m in at.metric][:1] == ["1"]


def test_admin_page_edits_only_its_business_email_and_never_shows_the_default(
    engine: Engine, business: Business, cli_env: Settings
) -> None:
    from accounts.users import operator
    from core.models import SmtpSettings
    from mail.smtp_config import save_smtp

    admin = make_user(engine, business, "admin")
    with session_scope(engine) as session:
        session.execute(delete(SmtpSettings))
    try:
        with session_scope(engine) as session:
            save_smtp(
                session,
                cli_env,
                operator(),
                installation_default=True,
                host="default-relay.example",
                security="none",
                port=25,
                from_address="noreply@default-relay.example",
            )
        at = page("admin", admin)
        assert not at.exception
        assert at.text_input(key="admin_smtp_host").value == ""
        shown = " ".join([*texts(at), *(str(t.value) for t in at.text_input)])
        assert "default-relay" not in shown
        assert any("installation's mail server (set up by the operator)" in t for t in texts(at))
        at.text_input(key="admin_smtp_host").input("smtp.mine.example")
        at.text_input(key="admin_smtp_from").input("reports@mine.example")
        click(at, "Save SMTP settings")
        assert not at.error, [e.value for e in at.error]
        with session_scope(engine) as session:
            rows = {r.business_id: r.host for r in session.scalars(select(SmtpSettings))}
        assert rows == {None: "default-relay.example", business.id: "smtp.mine.example"}
        at.run()
        click(at, "Remove our email settings")
        with session_scope(engine) as session:
            rows = {r.business_id: r.host for r in session.scalars(select(SmtpSettings))}
        assert rows == {None: "default-relay.example"}
    finally:
        with session_scope(engine) as session:
            session.execute(delete(SmtpSettings))


# --- issue 13: forms keep what was typed when it is refused ---------------------------------------

ADD_FIELDS = ("username", "name", "email", "password", "repeat")


def typed(at: AppTest, prefix: str, fields: tuple[str, ...]) -> dict[str, str]:
    return {f: str(at.text_input(key=f"{prefix}{f}").value) for f in fields}


def test_a_refused_new_user_keeps_what_was_typed_and_an_added_one_clears_it(
    engine: Engine, business: Business
) -> None:
    admin = make_user(engine, business, "admin")
    at = page("admin", admin)
    entered = {
        "username": f"newbie_{business.code}",
        "name": "New Person",
        "email": "newbie@example.com",
        "password": "a-new-password",
        "repeat": "another-password",
    }
    for field, value in entered.items():
        at.text_input(key=f"admin_new_{field}").input(value)
    at.selectbox(key="admin_new_role").select("manager")
    click(at, "Add user")
    assert "The two passwords differ." in texts(at)
    assert typed(at, "admin_new_", ADD_FIELDS) == entered
    assert at.selectbox(key="admin_new_role").value == "manager"

    at.text_input(key="admin_new_username").input(admin)  # taken: refused by accounts.users
    at.text_input(key="admin_new_repeat").input("a-new-password")
    click(at, "Add user")
    assert f"The username {admin!r} is already taken." in texts(at)
    assert typed(at, "admin_new_", ADD_FIELDS) == {**entered, "username": admin, "repeat": "a-new-password"}

    at.text_input(key="admin_new_username").input(entered["username"])
    click(at, "Add user")
    assert f"Added manager {entered['username']}." in texts(at)
    assert typed(at, "admin_new_", ADD_FIELDS) == dict.fromkeys(ADD_FIELDS, "")  # ready for the next one
    assert at.selectbox(key="admin_new_role").value == "staff"


def test_refused_smtp_settings_keep_what_was_typed(
    engine: Engine, business: Business, cli_env: Settings
) -> None:
    from core.models import SmtpSettings

    admin = make_user(engine, business, "admin")
    with session_scope(engine) as session:
        session.execute(delete(SmtpSettings))
    try:
        at = page("admin", admin)
        entered = {
            "host": "smtp.mine.example",
            "user": "mailer",
            "password": "s3cret-pass",
            "from": "not an address",  # refused by mail.smtp_config
            "from_name": "Shop reports",
            "reply_to": "boss@example.com",
        }
        for field, value in entered.items():
            at.text_input(key=f"admin_smtp_{field}").input(value)
        at.number_input(key="admin_smtp_port").set_value(2525)
        at.selectbox(key="admin_smtp_security").select("ssl")
        click(at, "Save SMTP settings")
        assert at.error, "a bad From address is refused"
        assert typed(at, "admin_smtp_", tuple(entered)) == entered
        assert (
            at.number_input(key="admin_smtp_port").value,
            at.selectbox(key="admin_smtp_security").value,
        ) == (
            2525,
            "ssl",
        )
        with session_scope(engine) as session:
            assert (
                session.scalar(select(SmtpSettings.id).where(SmtpSettings.business_id == business.id)) is None
            )

        at.text_input(key="admin_smtp_from").input("reports@mine.example")
        click(at, "Save SMTP settings")
        assert not at.error, [e.value for e in at.error]
        assert at.text_input(key="admin_smtp_host").value == "smtp.mine.example"
        assert at.text_input(key="admin_smtp_password").value == ""  # stored encrypted, not kept in the form
    finally:
        with session_scope(engine) as session:
            session.execute(delete(SmtpSettings))
