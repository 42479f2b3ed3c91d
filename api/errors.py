"""Errors as the API answers them: `{"error": {"code", "message"}}` with the kind's HTTP status.

A refusal is mapped by its attributes (core/errors.py: `code`, `http_status`, `retry_after`, and
`parameter` for a BadParameter), never by its class; every kind, the API's 400/401/500 included,
is declared once in core/errors.py.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse

from core.errors import Failed, TallyboardError, Unavailable
from runs.failures import explain

log = logging.getLogger(__name__)

LATER_S = 30  # Retry-After of a passing failure (the database busy, data changing)


def of_kind(kind: type[TallyboardError], message: str) -> TallyboardError:
    """An error answering like `kind` with `message` (kinds may need more arguments to be built)."""
    error = TallyboardError(message)
    error.code, error.http_status = kind.code, kind.http_status
    return error


def unexpected(exc: Exception) -> TallyboardError:
    """The answer to an exception outside the error tree: 503 when trying again may help, else 500."""
    failure = explain(exc)
    if failure.passing:
        return Unavailable(f"{failure.text} Try again in a moment.", retry_after=LATER_S)
    log.error("API call failed", exc_info=exc)
    return Failed(f"{failure.text} Try again; if it keeps failing, tell your administrator.")


def error_response(error: TallyboardError) -> JSONResponse:
    """The JSON answer to a refusal, with WWW-Authenticate (401) and Retry-After (429, 503) headers."""
    body: dict[str, Any] = {"code": error.code, "message": str(error)}
    parameter = getattr(error, "parameter", None)
    if isinstance(parameter, str):
        body["parameter"] = parameter
    headers: dict[str, str] = {}
    if error.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tallyboard"'
    retry_after = getattr(error, "retry_after", None)
    if isinstance(retry_after, int | float):
        headers["Retry-After"] = str(max(1, int(retry_after)))
    return JSONResponse({"error": body}, status_code=error.http_status, headers=headers)
