"""One API call: the token checked, the handler run, any refusal answered as JSON, the call audited.

`endpoint(handler)` makes a Starlette endpoint of a handler `(Call) -> Response`. It runs in
Starlette's thread pool (the handlers block on the database and on report generation). The token's
user is read from the database on every call (role, business, active flag), its last use recorded,
and every call written to the business's audit log as `api_call` (user, token name, method, path,
query, status; never the token). A call without a usable token cannot be tied to a business: an
unknown token is only logged, a known but revoked or expired one is audited in its business.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from accounts import tokens
from accounts.tokens import TokenHolder, TokenRefused
from analytics.report import Scope
from api.errors import error_response, unexpected
from api.services import Services, services
from core.clock import utc_now
from core.errors import TallyboardError
from reports.audit_log import record_event

log = logging.getLogger(__name__)

MISSING_TOKEN = (
    "Send your API token in the header `Authorization: Bearer TOKEN`. Make one on the Account page "
    "(or with `python manage.py tokens create`)."
)


@dataclass(frozen=True)
class Call:
    """What a handler works with: the request, a database session, the token's holder, the resources."""

    request: Request
    session: Session
    holder: TokenHolder
    services: Services
    now: dt.datetime

    @property
    def scope(self) -> Scope:
        return self.holder.scope

    @property
    def query(self) -> list[tuple[str, str]]:
        return list(self.request.query_params.multi_items())


Handler = Callable[[Call], Response]


def bearer_token(request: Request) -> str:
    """The token of `Authorization: Bearer TOKEN`; TokenRefused (401) when there is none."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRefused(MISSING_TOKEN)
    return token.strip()


def endpoint(handler: Handler) -> Callable[[Request], Response]:
    """A Starlette endpoint running `handler` for the holder of the request's token."""

    @functools.wraps(handler)
    def run(request: Request) -> Response:
        now = utc_now()
        holder: TokenHolder | None = None
        refused: TokenRefused | None = None
        try:
            resources = services()
        except Exception as exc:  # a broken setting or database URL: one line, never a traceback
            return error_response(unexpected(exc))
        with resources.session() as session:
            try:
                holder = tokens.authenticate(session, bearer_token(request), now=now)
                response = handler(Call(request, session, holder, resources, now))
            except TallyboardError as exc:
                session.rollback()
                refused = exc if isinstance(exc, TokenRefused) else None
                response = error_response(exc)
            except Exception as exc:
                session.rollback()
                response = error_response(unexpected(exc))
            _record(session, request, response.status_code, holder, refused, now)
        return response

    return run


def _record(
    session: Session,
    request: Request,
    status: int,
    holder: TokenHolder | None,
    refused: TokenRefused | None,
    now: dt.datetime,
) -> None:
    """Audit the call and note the token's use, in a transaction of their own (never fails the call)."""
    client = request.client.host if request.client else ""
    detail = {
        "method": request.method,
        "path": request.url.path[:300],
        "query": request.url.query[:500],
        "status": status,
    }
    try:
        if holder is not None:
            tokens.record_use(session, holder.token_id, now=now)
            business_id, user, token_id = holder.business_id, holder.username, holder.token_id
            detail["token"] = holder.token_name
        elif refused is not None and refused.business_id is not None and refused.token_id is not None:
            business_id, user, token_id = refused.business_id, refused.username, refused.token_id
            detail["token"], detail["refused"] = refused.token_name, str(refused)
        else:
            log.info("API call refused (%s): %s %s from %s", status, request.method, request.url.path, client)
            return
        record_event(
            session,
            business_id,
            "api_call",
            user=user,
            entity="api_token",
            entity_id=str(token_id),
            detail=detail,
            ip=client,
            at=now,
        )
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("could not audit an API call (%s %s): %s", request.method, request.url.path, exc)
