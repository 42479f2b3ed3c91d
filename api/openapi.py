"""The OpenAPI 3.1 document of the API (GET /api/v1/openapi.json), made from the registry and the
same parameter vocabulary the handlers read (api/params.py)."""

from __future__ import annotations

from typing import Any

from analytics.periods import RELATIVE_PERIODS
from analytics.report import COMPARE_CHOICES, DIMENSIONS
from api.params import (
    COLUMNS_HELP,
    COMPARE_PARAMETERS,
    FORMAT,
    PERIOD_PARAMETERS,
    REPORT_FORMATS,
    TABLE_FORMATS,
)
from exporters import EXPORTERS
from reports.registry import REPORTS
from runs.runner import STATUSES

VERSION = "1.0.0"
PREFIX = "/api/v1"
XLSX = EXPORTERS["xlsx"].mime
FILE_TYPES = ("text/csv", "application/zip", XLSX, "application/pdf")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, *, retry: bool = False, auth: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    headers: dict[str, Any] = {}
    if retry:
        headers["Retry-After"] = {"description": "Seconds to wait", "schema": {"type": "string"}}
    if auth:
        headers["WWW-Authenticate"] = {"schema": {"type": "string"}}
    if headers:
        response["headers"] = headers
    return response


ERRORS: dict[str, Any] = {
    "BadParameter": _error("A query parameter is wrong; `error.parameter` names it."),
    "Unauthorized": _error(
        "No token, or one that is unknown, revoked or expired, or its user disabled.", auth=True
    ),
    "NotFound": _error(
        "No such report, table, run or file for this user (another business's looks the same)."
    ),
    "Unprocessable": _error("The request cannot be carried out (a file over the size limit, say)."),
    "TooManyRequests": _error("Over the hourly generation limit of this user.", retry=True),
    "Unavailable": _error("The data is changing or the database is busy: try again.", retry=True),
}


def _responses(ok: dict[str, Any], *kinds: str) -> dict[str, Any]:
    codes = {
        "BadParameter": "400",
        "Unauthorized": "401",
        "NotFound": "404",
        "Unprocessable": "422",
        "TooManyRequests": "429",
        "Unavailable": "503",
    }
    found: dict[str, Any] = {"200": ok}
    for kind in ("Unauthorized", *kinds, "Unavailable"):
        found[codes[kind]] = {"$ref": f"#/components/responses/{kind}"}
    return found


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _path(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def report_parameters(formats: tuple[str, ...]) -> list[dict[str, Any]]:
    """The query parameters of a report, as in `manage.py report --param KEY=VALUE`."""
    schemas: dict[str, dict[str, Any]] = {
        # Empty is the command line's `period=`: the report's default period.
        "period": {"type": "string", "enum": ["", *RELATIVE_PERIODS]},
        "start": {"type": "string", "format": "date"},
        "end": {"type": "string", "format": "date"},
        "tz": {"type": "string"},
        "now": {"type": "string", "format": "date-time"},
    }
    found = [_query(name, text, schemas[name]) for name, text in PERIOD_PARAMETERS.items()]
    comparing = ", ".join(r.slug for r in REPORTS if r.compares)
    compare_schemas: dict[str, dict[str, Any]] = {
        "compare": {"type": "string", "enum": list(COMPARE_CHOICES)},
        "compare_start": {"type": "string", "format": "date"},
        "compare_end": {"type": "string", "format": "date"},
    }
    found += [
        _query(name, f"{text} (reports: {comparing}).", compare_schemas[name])
        for name, text in COMPARE_PARAMETERS.items()
    ]
    for dim, what in DIMENSIONS.items():
        takes = [r.slug for r in REPORTS if dim in r.filters]
        found.append(
            _query(
                dim, f"Only these {what}, comma-separated (reports: {', '.join(takes)}).", {"type": "string"}
            )
        )
    options: dict[str, list[Any]] = {}
    for r in REPORTS:
        for option in r.options:
            options.setdefault(option.name, []).append((r.slug, option))
    for name, uses in options.items():
        choices = {tuple(option.choices) for _, option in uses}
        schema: dict[str, Any] = {"type": "string"}
        if len(choices) == 1 and next(iter(choices)):
            schema["enum"] = list(next(iter(choices)))
        text = "; ".join(
            f"{slug}: {option.help} (default {option.default or 'none'})" for slug, option in uses
        )
        found.append(_query(name, text, schema))
    found.append(
        _query(FORMAT, "The file to answer with (default json).", {"type": "string", "enum": list(formats)})
    )
    return found


RECORD = {
    "type": "object",
    "additionalProperties": {"type": ["string", "number", "integer", "boolean", "null"]},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "parameter": {"type": "string"},
                },
            }
        },
    },
    "Parameter": {
        "type": "object",
        "required": ["name", "description"],
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "choices": {"type": "array", "items": {"type": "string"}},
            "default": {"type": "string"},
        },
    },
    "ReportSummary": {
        "type": "object",
        "required": ["slug", "title", "description", "url", "parameters"],
        "properties": {
            "slug": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "url": {"type": "string"},
            "default_period": {"type": ["string", "null"]},
            "filters": {"type": "array", "items": {"type": "string"}},
            "parameters": {"type": "array", "items": _ref("Parameter")},
        },
    },
    "ReportList": {
        "type": "object",
        "required": ["reports"],
        "properties": {"reports": {"type": "array", "items": _ref("ReportSummary")}},
    },
    "Record": RECORD,
    "Document": {
        "type": "object",
        "description": "The JSON document of the README's 'The JSON document'; keys per report in docs/reports.md.",
        "required": [
            "report",
            "title",
            "business",
            "currency",
            "parameters",
            "generated_at",
            "kpis",
            "tables",
            "notes",
        ],
        "properties": {
            "report": {"type": "string"},
            "title": {"type": "string"},
            "business": {"type": "string"},
            "currency": {"type": "string"},
            "parameters": {"type": "object"},
            "generated_at": {"type": "string"},
            "kpis": {
                "type": "object",
                "additionalProperties": {"type": ["number", "integer", "string", "null"]},
            },
            "tables": {"type": "object", "additionalProperties": {"type": "array", "items": _ref("Record")}},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
    },
    "RunFile": {
        "type": "object",
        "required": ["name", "format", "mime", "bytes", "available", "url"],
        "properties": {
            "name": {"type": "string"},
            "format": {"type": "string"},
            "mime": {"type": "string"},
            "bytes": {"type": "integer"},
            "available": {"type": "boolean"},
            "url": {"type": "string"},
        },
    },
    "Run": {
        "type": "object",
        "required": ["id", "report", "status", "user", "trigger", "created_at", "files"],
        "properties": {
            "id": {"type": "integer"},
            "report": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "string", "enum": list(STATUSES)},
            "user": {"type": "string"},
            "trigger": {"type": "string"},
            "via": {"type": "string"},
            "cached": {"type": "boolean"},
            "source_run_id": {"type": ["integer", "null"]},
            "rows": {"type": "integer"},
            "bytes": {"type": "integer"},
            "duration_s": {"type": "number"},
            "error": {"type": "string"},
            "formats": {"type": "array", "items": {"type": "string"}},
            "parameters": {"type": "object"},
            "created_at": {"type": "string"},
            "finished_at": {"type": ["string", "null"]},
            "files": {"type": "array", "items": _ref("RunFile")},
        },
    },
    "RunList": {
        "type": "object",
        "required": ["total", "limit", "offset", "runs"],
        "properties": {
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "runs": {"type": "array", "items": _ref("Run")},
        },
    },
}


def _binary(*types: str) -> dict[str, Any]:
    return {t: {"schema": {"type": "string", "contentMediaType": t}} for t in types}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every endpoint (the registry's reports as they are now)."""
    slugs = [r.slug for r in REPORTS]
    slug = _path(
        "slug", "A report (GET /api/v1/reports lists those you may run).", {"type": "string", "enum": slugs}
    )
    run_id = _path("run_id", "A run's id.", {"type": "integer", "minimum": 1})
    report_ok = {
        "description": "The JSON document, or the file asked for (with its name in Content-Disposition).",
        "content": {"application/json": {"schema": _ref("Document")}, **_binary(*FILE_TYPES)},
    }
    table_ok = {
        "description": "The table as a JSON array of flat records, or (format=csv) one CSV file.",
        "content": {
            "application/json": {"schema": {"type": "array", "items": _ref("Record")}},
            **_binary("text/csv"),
        },
    }
    generation = ("BadParameter", "NotFound", "Unprocessable", "TooManyRequests")
    json = "application/json"
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tallyboard API",
            "version": VERSION,
            "description": (
                "Reports and runs of your business as JSON and files. Send `Authorization: Bearer TOKEN` "
                "(make a token on the Account page or with `python manage.py tokens create`). Report "
                "parameters are those of `python manage.py report --param KEY=VALUE`; " + COLUMNS_HELP
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": {
            f"{PREFIX}/reports": {
                "get": {
                    "operationId": "listReports",
                    "summary": "The reports you may run, with their parameters",
                    "responses": _responses(
                        {"description": "Reports", "content": {json: {"schema": _ref("ReportList")}}}
                    ),
                }
            },
            f"{PREFIX}/reports/{{slug}}": {
                "get": {
                    "operationId": "getReport",
                    "summary": "Generate a report (a run of trigger 'api')",
                    "parameters": [slug, *report_parameters(REPORT_FORMATS)],
                    "responses": _responses(report_ok, *generation),
                }
            },
            f"{PREFIX}/reports/{{slug}}/tables/{{table}}": {
                "get": {
                    "operationId": "getReportTable",
                    "summary": "One table of a report, as flat records (Power BI, Excel 'From Web') or CSV",
                    "parameters": [
                        slug,
                        _path("table", "A table of the report (docs/reports.md).", {"type": "string"}),
                        *report_parameters(TABLE_FORMATS),
                    ],
                    "responses": _responses(table_ok, *generation),
                }
            },
            f"{PREFIX}/runs": {
                "get": {
                    "operationId": "listRuns",
                    "summary": "History: the runs you may see (staff: your own), newest first",
                    "parameters": [
                        _query("report", "Only runs of this report (slug).", {"type": "string"}),
                        _query(
                            "status",
                            "Only runs in this status (empty: any).",
                            {"type": "string", "enum": ["", *STATUSES]},
                        ),
                        _query(
                            "user", "Only runs of this username (admins and managers).", {"type": "string"}
                        ),
                        _query(
                            "since",
                            "Only runs created since this ISO date or date-time (UTC).",
                            {"type": "string"},
                        ),
                        _query(
                            "limit",
                            "At most this many runs (default 50).",
                            {"type": "integer", "minimum": 1, "maximum": 500},
                        ),
                        _query(
                            "offset",
                            "Skip this many runs.",
                            {"type": "integer", "minimum": 0, "maximum": 10**9},
                        ),
                    ],
                    "responses": _responses(
                        {"description": "Runs", "content": {json: {"schema": _ref("RunList")}}},
                        "BadParameter",
                    ),
                }
            },
            f"{PREFIX}/runs/{{run_id}}": {
                "get": {
                    "operationId": "getRun",
                    "summary": "One run with its files",
                    "parameters": [run_id],
                    "responses": _responses(
                        {"description": "The run", "content": {json: {"schema": _ref("Run")}}}, "NotFound"
                    ),
                }
            },
            f"{PREFIX}/runs/{{run_id}}/files/{{name}}": {
                "get": {
                    "operationId": "getRunFile",
                    "summary": "A stored file of a run",
                    "parameters": [
                        run_id,
                        _path("name", "The file's name (see the run's files).", {"type": "string"}),
                    ],
                    "responses": _responses(
                        {
                            "description": "The file",
                            "content": {json: {"schema": _ref("Document")}, **_binary(*FILE_TYPES)},
                        },
                        "NotFound",
                    ),
                }
            },
            f"{PREFIX}/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document (no token needed)",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {json: {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
            "responses": ERRORS,
        },
    }
