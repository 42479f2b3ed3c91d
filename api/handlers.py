"""The API's endpoints: thin handlers over the registry, runs and file store the pages use.

Reports are generated as runs (trigger "api": History, Statistics, the audit log, the run cache
and the hourly limit see them) and answered with the run's stored file, so the JSON is byte for
byte what `manage.py report SLUG --format json` writes for the same parameters and `now`.
A report the caller's role may not run, another business's run and a missing one all answer 404.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any
from urllib.parse import quote

from starlette.responses import JSONResponse, Response, StreamingResponse

from analytics.definition import ReportDefinition
from analytics.report import FIRST_DATE, LAST_DATE, ParamError, ReportParams
from api.calls import Call
from api.errors import LATER_S, of_kind
from api.params import FORMAT, REPORT_FORMATS, TABLE_FORMATS, chosen_format, parameters, report_params
from api.tables import csv_entry, file_chunks, json_array, json_records
from core.errors import BadParameter, Failed, NotFound, TallyboardError, Unavailable
from core.ids import storable_id
from reports.registry import REGISTRY
from runs.access import allowed_reports, report_allowed
from runs.files import FileInfo
from runs.history import RunInfo, count_runs, get_run, list_runs
from runs.runner import STATUSES, TRIGGER_LABELS, RunOutcome, generate_run

PREFIX = "/api/v1"
RUN_HEADER = "Tallyboard-Run-Id"  # the run that made the answer (GET /api/v1/runs/{id} shows it)
CACHED_HEADER = "Tallyboard-Cached"  # "true" when the run reused an identical earlier run's files
MAX_LIMIT = 500
_DIGITS = re.compile(r"[0-9]{1,19}")


# --- reports ----------------------------------------------------------------------------------------


def reports(call: Call) -> Response:
    """GET /api/v1/reports: the reports this user may run, with their parameters."""
    listed = [
        {
            "slug": defn.slug,
            "title": defn.title,
            "description": defn.description,
            "url": f"{PREFIX}/reports/{defn.slug}",
            "default_period": defn.default_period if defn.uses_period else None,
            "filters": list(defn.filters),
            "parameters": parameters(defn),
        }
        for defn in allowed_reports(call.scope)
    ]
    return JSONResponse({"reports": listed})


def report(call: Call) -> Response:
    """GET /api/v1/reports/{slug}: the JSON document, or with format=csv|xlsx|pdf that file."""
    defn = _definition(call, call.request.path_params["slug"])
    fmt = chosen_format(call.query, REPORT_FORMATS)
    params = report_params(defn, call.query)
    outcome = _generate(call, defn, params, (fmt,))
    info, handle = call.services.files.open(call.session, call.scope, outcome.files[0].id)
    name = info.file_name if fmt != "json" else None
    return _stream(file_chunks(handle), info.mime, outcome, size=_size(handle), file_name=name)


def table(call: Call) -> Response:
    """GET /api/v1/reports/{slug}/tables/{table}: one table as a JSON array of flat records, or
    with format=csv as one CSV file."""
    defn = _definition(call, call.request.path_params["slug"])
    name = call.request.path_params["table"]
    fmt = chosen_format(call.query, TABLE_FORMATS)
    params = report_params(defn, call.query)
    files, session, scope = call.services.files, call.session, call.scope
    if fmt == "json":
        outcome = _generate(call, defn, params, ("json",))
        _, handle = files.open(session, scope, outcome.files[0].id)
        try:
            records = json_records(handle, defn.slug, name)
        except BaseException:
            handle.close()
            raise
        return _stream(json_array(records, handle), "application/json", outcome)
    # The CSV of a report with one table has no table name in it: the JSON document has.
    outcome = _generate(call, defn, params, ("csv", "json"))
    stored = {f.fmt: f for f in outcome.files}
    info, handle = files.open(session, scope, stored["csv"].id)
    try:
        found = csv_entry(handle, defn.slug, name)
        if found is None:
            _, document = files.open(session, scope, stored["json"].id)
            with document:
                json_records(document, defn.slug, name)  # NotFound unless it is this table
            found = file_chunks(handle), _size(handle)
    except BaseException:
        handle.close()
        raise
    chunks, size = found
    return _stream(chunks, "text/csv", outcome, size=size, file_name=_table_file_name(info, defn.slug, name))


def _definition(call: Call, slug: str) -> ReportDefinition:
    """The report `slug` if the caller's role may run it; else NotFound, as for an unknown report."""
    defn = REGISTRY.get(slug)
    if defn is None or not report_allowed(call.scope, slug):
        names = ", ".join(d.slug for d in allowed_reports(call.scope))
        raise NotFound(f"Unknown report {slug!r}; reports are: {names}.")
    return defn


def _generate(call: Call, defn: ReportDefinition, params: ReportParams, formats: Sequence[str]) -> RunOutcome:
    """A run of trigger "api" by the token's user; the refusal it failed with, as the API answers it."""
    services = call.services
    outcome = generate_run(
        call.session,
        services.store,
        services.files,
        services.settings,
        call.scope,
        call.holder.user_id,
        defn.slug,
        params,
        formats,
        trigger="api",
        now=call.now,
    )
    if outcome.ok:
        return outcome
    raise _failure(outcome, call.query)


def _failure(outcome: RunOutcome, query: Sequence[tuple[str, str]]) -> TallyboardError:
    if outcome.passing:
        return Unavailable(outcome.error, retry_after=LATER_S)
    if outcome.kind is None:
        return Failed(outcome.error)
    if issubclass(outcome.kind, ParamError):  # one the builder checks: a column choice, an option's value
        return BadParameter(outcome.error, parameter=_named_parameter(query, outcome.error))
    return of_kind(outcome.kind, outcome.error)


def _named_parameter(query: Sequence[tuple[str, str]], message: str) -> str:
    """The query parameter a refusal's sentence is about: the `columns.TABLE` whose table it quotes,
    else the first parameter it names."""
    keys = [key for key, _ in query if key != FORMAT]
    for key in keys:
        if key.startswith("columns.") and repr(key.removeprefix("columns.")) in message:
            return key
    for key in keys:
        if re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.])", message):
            return key
    return next((key for key in keys if key.startswith("columns.")), keys[0] if keys else "")


def _table_file_name(info: FileInfo, slug: str, table: str) -> str:
    """`{slug}_{table}_{period}_{time}.csv` from the run file `{slug}_{period}_{time}.{ext}`."""
    stem = info.file_name.rsplit(".", 1)[0].removeprefix(f"{slug}_")
    return f"{slug}_{table}_{stem}.csv"


def _size(handle: IO[bytes]) -> int:
    return os.fstat(handle.fileno()).st_size


def _stream(
    chunks: Iterator[bytes],
    media_type: str,
    outcome: RunOutcome,
    *,
    size: int | None = None,
    file_name: str | None = None,
) -> Response:
    headers = {RUN_HEADER: str(outcome.run_id), CACHED_HEADER: "true" if outcome.cached else "false"}
    if size is not None:
        headers["Content-Length"] = str(size)
    if file_name is not None:
        headers["Content-Disposition"] = content_disposition(file_name)
    return StreamingResponse(chunks, media_type=media_type, headers=headers)


def content_disposition(file_name: str) -> str:
    """`attachment` with the file name (RFC 6266: an ASCII fallback, and the UTF-8 name when it differs)."""
    ascii_name = file_name.encode("ascii", "replace").decode("ascii").replace('"', "_").replace("\\", "_")
    value = f'attachment; filename="{ascii_name}"'
    if ascii_name != file_name:
        value += f"; filename*=UTF-8''{quote(file_name, safe='')}"
    return value


# --- runs -------------------------------------------------------------------------------------------

RUNS_PARAMETERS = ("report", "status", "user", "since", "limit", "offset")


def runs(call: Call) -> Response:
    """GET /api/v1/runs: History as the caller may see it (staff: their own runs), newest first."""
    query = _single(call.query, RUNS_PARAMETERS)
    limit = _whole(query, "limit", 50, 1, MAX_LIMIT)
    offset = _whole(query, "offset", 0, 0, 10**9)
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadParameter(
            f"Unknown status {status!r}; choose one of: {', '.join(STATUSES)}.", parameter="status"
        )
    filters: dict[str, Any] = {
        "slug": query.get("report") or None,
        "status": status,
        "user": query.get("user") or None,
        "since": _since(query.get("since")),
    }
    found = list_runs(call.session, call.scope, limit=limit, offset=offset, **filters)
    total = count_runs(call.session, call.scope, **filters)
    return JSONResponse(
        {"total": total, "limit": limit, "offset": offset, "runs": [run_document(r) for r in found]}
    )


def run(call: Call) -> Response:
    """GET /api/v1/runs/{run_id}: one run with its files."""
    found = get_run(call.session, call.scope, _run_id(call))
    return JSONResponse(run_document(found))


def run_file(call: Call) -> Response:
    """GET /api/v1/runs/{run_id}/files/{name}: a stored file of a run the caller may see."""
    found = get_run(call.session, call.scope, _run_id(call))
    name = call.request.path_params["name"]
    matching = sorted((f for f in found.files if f.file_name == name), key=lambda f: (not f.deleted, f.id))
    if not matching:
        raise NotFound(f"Run {found.id} has no file {name!r}.")
    info, handle = call.services.files.open(call.session, call.scope, matching[-1].id)
    return StreamingResponse(
        file_chunks(handle),
        media_type=info.mime,
        headers={
            "Content-Length": str(_size(handle)),
            "Content-Disposition": content_disposition(info.file_name),
            RUN_HEADER: str(found.id),
        },
    )


def run_document(info: RunInfo) -> dict[str, Any]:
    """One run as the API shows it (times ISO 8601 in UTC)."""
    return {
        "id": info.id,
        "report": info.slug,
        "title": info.title,
        "status": info.status,
        "user": info.username,
        "trigger": info.trigger,
        "via": TRIGGER_LABELS.get(info.trigger, info.trigger),
        "cached": info.cached,
        "source_run_id": info.source_run_id,
        "rows": info.rows,
        "bytes": info.bytes,
        "duration_s": info.duration_s,
        "error": info.error,
        "formats": list(info.formats),
        "parameters": info.parameters,
        "created_at": _iso(info.created_at),
        "finished_at": _iso(info.finished_at),
        "files": [
            {
                "name": f.file_name,
                "format": f.fmt,
                "mime": f.mime,
                "bytes": f.bytes,
                "available": not f.deleted,
                "url": f"{PREFIX}/runs/{info.id}/files/{quote(f.file_name, safe='')}",
            }
            for f in info.files
        ],
    }


def _iso(stored: dt.datetime | None) -> str | None:
    return None if stored is None else stored.replace(tzinfo=dt.UTC).isoformat(timespec="seconds")


def _run_id(call: Call) -> int:
    """The run id of the path; anything but a storable id names no run (404, like a missing one)."""
    raw = call.request.path_params["run_id"]
    value = int(raw) if _DIGITS.fullmatch(raw) else 0
    if not storable_id(value):
        raise NotFound("No such run.")
    return value


def _single(query: Sequence[tuple[str, str]], known: Sequence[str]) -> Mapping[str, str]:
    """The query as a mapping; 400 for a parameter not in `known` or given twice."""
    found: dict[str, str] = {}
    for key, value in query:
        if key not in known:
            raise BadParameter(f"Unknown parameter {key!r}; this takes: {', '.join(known)}.", parameter=key)
        if key in found:
            raise BadParameter(f"Parameter {key!r} is given twice; give it once.", parameter=key)
        found[key] = value.strip()
    return found


def _whole(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name, "")
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,10}", raw) or not low <= int(raw) <= high:
        raise BadParameter(
            f"{name} must be a whole number from {low} to {high}, not {raw!r}.", parameter=name
        )
    return int(raw)


def _since(raw: str | None) -> dt.datetime | None:
    """`since` as an instant: an ISO date (midnight UTC) or date-time (UTC unless it says otherwise)."""
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise BadParameter(
            f"since={raw!r} is not an ISO 8601 date or date-time.", parameter="since"
        ) from None
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not FIRST_DATE <= value.date() <= LAST_DATE:
        raise BadParameter(f"since={raw!r} is out of range: {FIRST_DATE} to {LAST_DATE}.", parameter="since")
    return value
