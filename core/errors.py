"""The one error tree: every refusal a person can cause is a TallyboardError of one kind.

Each kind maps once, here, to a machine `code`, a CLI exit status and an HTTP status; the message
(str(error)) is the sentence for people. Domain errors (ParamError, SavedError, ...) subclass a
kind and keep the built-in base their callers catch (ValueError, LookupError, RuntimeError); a
domain error with a sentence of another kind subclasses both, that kind first (SavedConflict is a
Conflict and a SavedError). So map an error by its attributes, never by isinstance.

    kind             code           exit  HTTP
    NotFound         not_found        1    404  missing, or another business's (ids leak nothing)
    Forbidden        forbidden        1    403  the caller's role may not do this
    Invalid          invalid          1    422  the input is wrong; the message says what to change
    UsageError       usage            2    400  the command line itself is wrong (CLI flags)
    Conflict         conflict         1    409  clashes with the current state (taken name, last admin)
    TooManyRequests  rate_limited     1    429  over a limit for now; `retry_after` seconds
    Unavailable      unavailable      1    503  cannot be done now (data changing, setup or key missing)
"""

from __future__ import annotations

import math


class TallyboardError(Exception):
    """A request that cannot be carried out; str(error) is the sentence to show."""

    code = "error"
    exit_status = 1
    http_status = 400


class NotFound(TallyboardError, LookupError):
    """The thing asked for does not exist for this caller (missing and foreign look the same)."""

    code = "not_found"
    exit_status = 1
    http_status = 404


class Forbidden(TallyboardError):
    """The caller's role may not do this (the refusal is audited where it happens)."""

    code = "forbidden"
    exit_status = 1
    http_status = 403


class Invalid(TallyboardError, ValueError):
    """The input is wrong; the message says what to change."""

    code = "invalid"
    exit_status = 1
    http_status = 422


class UsageError(Invalid):
    """The command line is wrong (unknown flag value, missing option): exit status 2, as argparse's."""

    code = "usage"
    exit_status = 2
    http_status = 400


class Conflict(TallyboardError):
    """The request clashes with the current state (taken name, last admin, ...)."""

    code = "conflict"
    exit_status = 1
    http_status = 409


class TooManyRequests(TallyboardError):
    """Over a limit for now; `retry_after` is how many seconds to wait (None: unknown)."""

    code = "rate_limited"
    exit_status = 1
    http_status = 429

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = None if retry_after is None else max(0, math.ceil(retry_after))


class Unavailable(TallyboardError):
    """It cannot be done now: the data is being replaced, the database is away, or the installation
    needs its operator (no database tables yet, the secret key missing or wrong). `retry_after`:
    seconds worth waiting before trying again (None: unknown)."""

    code = "unavailable"
    exit_status = 1
    http_status = 503

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BadParameter(Invalid):
    """A request parameter that is wrong; `parameter` names it, the message says how to fix it
    (the HTTP form of a wrong command line)."""

    code = "invalid_parameter"
    exit_status = 1
    http_status = 400

    def __init__(self, message: str, *, parameter: str = "") -> None:
        super().__init__(message)
        self.parameter = parameter


class Unauthorized(TallyboardError):
    """A caller nobody vouches for: a missing, unknown, revoked or expired API token."""

    code = "unauthorized"
    exit_status = 1
    http_status = 401


class Failed(TallyboardError):
    """Something failed that the caller cannot fix (the message says what, never how the code looks)."""

    code = "error"
    exit_status = 1
    http_status = 500


KINDS: tuple[type[TallyboardError], ...] = (
    NotFound,
    Forbidden,
    Invalid,
    UsageError,
    Conflict,
    TooManyRequests,
    Unavailable,
    BadParameter,
    Unauthorized,
    Failed,
)
