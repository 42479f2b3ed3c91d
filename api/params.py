"""A report's query parameters: the command line's `--param KEY=VALUE` vocabulary, read from a URL.

Each parameter is checked alone first, so a refusal names the parameter it is about (400), with
the sentence the command line prints for the same mistake; then all of them together (start with
end, the period resolved). `format` chooses the file and is no report parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analytics.definition import ReportDefinition
from analytics.periods import RELATIVE_PERIODS
from analytics.report import COMPARE_CHOICES, DIMENSIONS, FIRST_DATE, ReportParams
from core.errors import BadParameter, Invalid
from exporters import EXPORTERS
from reports.registry import check_params

FORMAT = "format"
REPORT_FORMATS: tuple[str, ...] = ("json", "csv", "xlsx", "pdf")
TABLE_FORMATS: tuple[str, ...] = ("json", "csv")
# The report parameters every report with a period takes, described once (the OpenAPI document too).
PERIOD_PARAMETERS: dict[str, str] = {
    "period": "A relative period, resolved in `tz` against the current time (or `now`).",
    "start": "First day, YYYY-MM-DD (with `end`, instead of `period`; both inclusive).",
    "end": "Last day, YYYY-MM-DD (with `start`).",
    "tz": "IANA time zone the period is resolved in (default UTC).",
    "now": "ISO 8601 instant the period is resolved against, for reproducible results (default: now).",
}
# What the reports with comparisons compare with (ReportDefinition.compares), described once.
COMPARE_PARAMETERS: dict[str, str] = {
    "compare": "What the KPIs are compared with: previous (the period before: the same days of the "
    "previous month for month to date), last_year (the same period a year before) or custom "
    "(`compare_start` to `compare_end`). Default previous.",
    "compare_start": "First day of the compared period, YYYY-MM-DD (with compare=custom).",
    "compare_end": "Last day of the compared period, YYYY-MM-DD (with compare=custom; inclusive).",
}
COLUMNS_HELP = "`columns.TABLE=col1,col2` chooses and orders the columns of table TABLE."


def chosen_format(query: Sequence[tuple[str, str]], allowed: Sequence[str]) -> str:
    """The `format` asked for (default json); 400 for an unknown one or a repeated parameter."""
    values = [value for key, value in query if key == FORMAT]
    if len(values) > 1:
        raise BadParameter("Parameter 'format' is given twice; give it once.", parameter=FORMAT)
    fmt = values[0].strip().lower() if values else "json"
    if fmt not in allowed:
        raise BadParameter(f"Unknown format {fmt!r}; available: {', '.join(allowed)}.", parameter=FORMAT)
    return fmt


def report_params(defn: ReportDefinition, query: Sequence[tuple[str, str]]) -> ReportParams:
    """The report parameters of a query, as `manage.py report --param KEY=VALUE` reads them."""
    pairs: list[str] = []
    seen: list[str] = []
    for key, value in query:
        if key == FORMAT:
            continue
        if "=" in key or not key.strip():
            raise BadParameter(f"Parameter {key!r} must look like KEY=VALUE.", parameter=key)
        if key in seen:
            raise BadParameter(
                f"Parameter {key!r} is given twice; give it once (several values: {key}=a,b).", parameter=key
            )
        seen.append(key)
        pair = f"{key}={value}"
        try:
            check_params(defn, ReportParams.from_pairs(_alone(key.strip(), value, pair)))
        except Invalid as exc:
            raise BadParameter(str(exc), parameter=key.strip()) from None
        pairs.append(pair)
    try:
        # Checks the period too (start without end, end before start); a relative one resolves
        # when the run is generated, against the call's `now`.
        params = ReportParams.from_pairs(pairs)
    except Invalid as exc:
        named = str(getattr(exc, "parameter", "") or "")
        raise BadParameter(str(exc), parameter=named or _period_parameter(seen)) from None
    return params


def _alone(key: str, value: str, pair: str) -> list[str]:
    """The pairs that check one parameter by itself: one that goes with others gets stand-ins for
    them (a missing partner is refused further down, with all parameters). A date alone is a one-day
    period; a compared date alone a one-day custom comparison; compare=custom compares one day."""
    other = {"start": "end", "end": "start", "compare_start": "compare_end", "compare_end": "compare_start"}
    if key in ("start", "end"):
        return [pair, f"{other[key]}={value}"]
    if key in ("compare_start", "compare_end"):
        return [pair, f"{other[key]}={value}", "compare=custom"]
    if key == "compare" and value.strip() == "custom":
        day = FIRST_DATE.isoformat()
        return [pair, f"compare_start={day}", f"compare_end={day}"]
    return [pair]


def _period_parameter(keys: Sequence[str]) -> str:
    """The parameter to name when the period as a whole is wrong (say start without end)."""
    if "start" in keys and "end" not in keys:
        return "end"
    if "end" in keys and "start" not in keys:
        return "start"
    return "start" if "start" in keys else "period"


def columns_parameter(query: Sequence[tuple[str, str]], message: str) -> str:
    """The `columns.TABLE` parameter a refused column choice is about (the message names its table)."""
    keys = [key for key, _ in query if key.startswith("columns.")]
    for key in keys:
        if repr(key.removeprefix("columns.")) in message:
            return key
    return keys[0] if keys else "columns"


def parameters(defn: ReportDefinition) -> list[dict[str, Any]]:
    """The parameters report `defn` takes, for `GET /api/v1/reports` (name, description, choices, default)."""
    found: list[dict[str, Any]] = []
    if defn.uses_period:
        for name, text in PERIOD_PARAMETERS.items():
            entry: dict[str, Any] = {"name": name, "description": text}
            if name == "period":
                entry |= {"choices": list(RELATIVE_PERIODS), "default": defn.default_period}
            if name == "tz":
                entry["default"] = "UTC"
            found.append(entry)
    if defn.compares:
        for name, text in COMPARE_PARAMETERS.items():
            entry = {"name": name, "description": text}
            if name == "compare":
                entry |= {"choices": list(COMPARE_CHOICES), "default": "previous"}
            found.append(entry)
    for dim in defn.filters:
        found.append({"name": dim, "description": f"Only these {DIMENSIONS[dim]}, comma-separated."})
    for option in defn.options:
        entry = {"name": option.name, "description": option.help, "default": option.default}
        if option.choices:
            entry["choices"] = list(option.choices)
        found.append(entry)
    found.append({"name": "columns.TABLE", "description": COLUMNS_HELP})
    found.append(
        {
            "name": FORMAT,
            "description": "The file to answer with (tables: json or csv).",
            "choices": [f for f in REPORT_FORMATS if f in EXPORTERS],
            "default": "json",
        }
    )
    return found
