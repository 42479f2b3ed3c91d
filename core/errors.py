"""The one error tree: NotFound, Forbidden, Invalid and Conflict under TallyboardError.

Each kind maps once to a sentence for people (the message), a CLI exit status and an HTTP status.
NotFound answers a missing id and another business's id alike, so ids leak nothing across tenants.
"""

from __future__ import annotations


class TallyboardError(Exception):
    """A request that cannot be carried out; str(error) is the sentence to show."""

    exit_status = 1
    http_status = 400


class NotFound(TallyboardError, LookupError):
    """The thing asked for does not exist for this caller (missing and foreign look the same)."""

    http_status = 404


class Forbidden(TallyboardError):
    """The caller's role may not do this (the refusal is audited where it happens)."""

    http_status = 403


class Invalid(TallyboardError, ValueError):
    """The input is wrong; the message says what to change."""

    exit_status = 2
    http_status = 422


class Conflict(TallyboardError):
    """The request clashes with the current state (taken name, last admin, ...)."""

    http_status = 409
