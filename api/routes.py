"""The API's URLs: the table app.py hands to `st.App(..., routes=ROUTES)`.

Every other path under /api answers JSON too (404, or 405 for a known path with another method),
never the dashboard's page.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route

from api import handlers
from api.calls import endpoint
from api.errors import error_response
from api.openapi import PREFIX, document
from core.errors import NotFound

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


def openapi(request: Request) -> Response:
    """GET /api/v1/openapi.json: no token needed."""
    return JSONResponse(document())


API_ROUTES: list[BaseRoute] = [
    Route(f"{PREFIX}/openapi.json", openapi, methods=["GET"]),
    Route(f"{PREFIX}/reports", endpoint(handlers.reports), methods=["GET"]),
    Route(f"{PREFIX}/reports/{{slug}}", endpoint(handlers.report), methods=["GET"]),
    Route(f"{PREFIX}/reports/{{slug}}/tables/{{table}}", endpoint(handlers.table), methods=["GET"]),
    Route(f"{PREFIX}/runs", endpoint(handlers.runs), methods=["GET"]),
    Route(f"{PREFIX}/runs/{{run_id}}", endpoint(handlers.run), methods=["GET"]),
    Route(f"{PREFIX}/runs/{{run_id}}/files/{{name}}", endpoint(handlers.run_file), methods=["GET"]),
]


def elsewhere(request: Request) -> Response:
    """Any other request under /api: 405 for a known path asked with another method, else 404."""
    scope = {**request.scope, "method": "GET"}
    if any(route.matches(scope)[0] == Match.FULL for route in API_ROUTES):
        response = JSONResponse(
            {
                "error": {
                    "code": "method_not_allowed",
                    "message": f"{request.method} is not allowed here; use GET.",
                }
            },
            status_code=405,
            headers={"Allow": "GET, HEAD"},
        )
        return response
    return error_response(NotFound(f"No such API address: {request.url.path}. See {PREFIX}/openapi.json."))


ROUTES: list[BaseRoute] = [
    *API_ROUTES,
    Route("/api", elsewhere, methods=METHODS),
    Route("/api/{rest:path}", elsewhere, methods=METHODS),
]
