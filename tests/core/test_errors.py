"""The one error tree: every error a person can cause is a TallyboardError of one kind, mapped once.

A kind carries a machine `code`, the CLI's exit status and the HTTP status; a domain error class
(ParamError, SavedError, ...) inherits them from its kind and keeps the built-in base its callers
catch (ValueError, LookupError, RuntimeError).
"""

from __future__ import annotations

import datetime as dt

import pytest

from accounts.users import AccountConflict, AccountError
from analytics.periods import PeriodError
from analytics.report import ParamError
from core.errors import (
    KINDS,
    BadParameter,
    Conflict,
    Failed,
    Forbidden,
    Invalid,
    NotFound,
    TallyboardError,
    TooManyRequests,
    Unauthorized,
    Unavailable,
    UsageError,
)
from core.secret_key import SecretKeyError
from mail.smtp_config import SmtpConfigError
from runs.files import FileGone, FileTooLarge
from runs.runner import RateLimited
from runs.saved import SavedConflict, SavedError, SavedForbidden
from scheduling.schedules import ScheduleConflict, ScheduleError
from scheduling.timerules import RuleError
from snapshots.store import SnapshotChanging

# kind -> (code, CLI exit status, HTTP status): the table in the README.
TABLE = {
    NotFound: ("not_found", 1, 404),
    Forbidden: ("forbidden", 1, 403),
    Invalid: ("invalid", 1, 422),
    UsageError: ("usage", 2, 400),
    Conflict: ("conflict", 1, 409),
    TooManyRequests: ("rate_limited", 1, 429),
    Unavailable: ("unavailable", 1, 503),
    BadParameter: ("invalid_parameter", 1, 400),
    Unauthorized: ("unauthorized", 1, 401),
    Failed: ("error", 1, 500),
}

# Every domain error and the kind it is (and a built-in base callers still catch).
DOMAIN = [
    (ParamError, Invalid, ValueError),
    (PeriodError, Invalid, ValueError),
    (RuleError, Invalid, ValueError),
    (ScheduleError, Invalid, ValueError),
    (ScheduleConflict, Conflict, ScheduleError),
    (SmtpConfigError, Invalid, ValueError),
    (SavedError, Invalid, ValueError),
    (SavedConflict, Conflict, SavedError),
    (SavedForbidden, Forbidden, SavedError),
    (AccountError, Invalid, ValueError),
    (AccountConflict, Conflict, AccountError),
    (FileTooLarge, Invalid, Exception),
    (FileGone, NotFound, LookupError),
    (SecretKeyError, Unavailable, Exception),
    (SnapshotChanging, Unavailable, RuntimeError),
]


def test_each_kind_is_mapped_once() -> None:
    assert set(KINDS) == set(TABLE)
    for kind, (code, exit_status, http_status) in TABLE.items():
        assert issubclass(kind, TallyboardError)
        assert (kind.code, kind.exit_status, kind.http_status) == (code, exit_status, http_status), kind
        assert "code" in vars(kind) and "exit_status" in vars(kind) and "http_status" in vars(kind), kind
    assert len({kind.code for kind in KINDS}) == len(KINDS)


@pytest.mark.parametrize(("error", "kind", "builtin"), DOMAIN, ids=lambda c: getattr(c, "__name__", ""))
def test_every_domain_error_is_one_kind(
    error: type[Exception], kind: type[TallyboardError], builtin: type
) -> None:
    assert issubclass(error, kind) and issubclass(error, builtin)
    for attribute in ("code", "exit_status", "http_status"):
        assert getattr(error, attribute) == getattr(kind, attribute), (error, attribute)
        # mapped once: no domain class sets a status of its own
        assert attribute not in vars(error), (error, attribute)


def test_the_message_is_the_sentence() -> None:
    error = SavedConflict("There is already a saved report or template named 'X'; choose another name.")
    assert str(error) == "There is already a saved report or template named 'X'; choose another name."


def test_rate_limited_says_when_to_retry() -> None:
    at = dt.datetime(2025, 2, 10, 13, 0)
    limited = RateLimited("Try again at 13:00.", at, retry_after=3599.2)
    assert limited.retry_at == at
    assert limited.retry_after == 3600  # whole seconds, rounded up (an HTTP Retry-After header)
    assert TooManyRequests("Slow down.").retry_after is None
