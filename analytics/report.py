"""The Report object every front door renders, and the parameters a report is built from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

import pandas as pd

from analytics.periods import RELATIVE_PERIODS, Period, PeriodError, parse_date, resolve, zone
from core.errors import Invalid

ColumnKind = Literal["text", "int", "quantity", "number", "money", "pct", "date", "month", "datetime"]
ChartKind = Literal["line", "bar", "stacked_bar", "pie", "pareto"]

# Dimension filters a report may accept, and what their values are.
DIMENSIONS: dict[str, str] = {
    "region": "customer region names",
    "category": "product category names",
    "storefront": "storefront codes",
    "customer_type": "retail or wholesale",
    "sales_rep": "sales rep names",
    "customer": "customer codes",
    "product": "product SKUs",
    "payment_method": "payment method codes (cash, card, bank_transfer, mobile, credit_note)",
}


class ParamError(Invalid):
    """A report parameter a user got wrong; the message says how to fix it. `parameter` names the
    parameter when one alone is at fault (the API answers with it), else it is ""."""

    def __init__(self, message: str, *, parameter: str = "") -> None:
        super().__init__(message)
        self.parameter = parameter


# What a report's KPIs are compared with (`compare=`): the period before (`Period.previous`), the
# same period a year before (`Period.year_before`), or the dates `compare_start`..`compare_end`.
# Reports with comparisons always carry the first two; "custom" adds the third.
COMPARE_CHOICES = ("previous", "last_year", "custom")
COMPARE_PARAMETERS = ("compare", "compare_start", "compare_end")


@dataclass(frozen=True)
class Scope:
    """Who is asking: every report and data function is limited to this business."""

    business_id: int
    user: str = ""
    role: str = "admin"


@dataclass(frozen=True)
class ReportParams:
    """Everything a report is built from. `now`, when given, pins the instant relative periods
    resolve against (CLI `now=`, a schedule's due time); otherwise the caller's `now` does.
    `compare` is what comparisons are made with (COMPARE_CHOICES; "custom" with `compare_start`
    and `compare_end`, inclusive)."""

    period: str | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    tz: str = "UTC"
    now: dt.datetime | None = None
    filters: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    compare: str = "previous"
    compare_start: dt.date | None = None
    compare_end: dt.date | None = None

    def resolve_period(self, default: str = "last_month", now: dt.datetime | None = None) -> Period:
        """The inclusive period: explicit start/end win, else the relative name (else `default`)
        resolved in `tz` against `self.now`, else the caller's `now` (naive = UTC). The clock is
        the caller's to read: ValueError for a relative period with neither."""
        if self.start or self.end:
            if not (self.start and self.end):
                raise ParamError("Give both start and end dates, or a relative period.")
            return Period(self.start, self.end)
        instant = self.now or now
        if instant is None:
            raise ValueError("A relative period needs the current time: pass `now`.")
        return resolve(self.period or default, instant, self.tz)

    def option(self, name: str, default: str) -> str:
        return self.options.get(name, default) or default

    def compared_period(self) -> Period | None:
        """The custom period to compare with (compare=custom), else None."""
        if self.compare == "custom" and self.compare_start and self.compare_end:
            return Period(self.compare_start, self.compare_end)
        return None

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able form (stable key order: used in files and cache keys)."""
        out: dict[str, Any] = {}
        if self.period:
            out["period"] = self.period
        if self.start:
            out["start"] = self.start.isoformat()
        if self.end:
            out["end"] = self.end.isoformat()
        out["tz"] = self.tz
        if self.filters:
            out["filters"] = {k: list(v) for k, v in sorted(self.filters.items()) if v}
        if self.columns:
            out["columns"] = {k: list(v) for k, v in sorted(self.columns.items())}
        if self.options:
            out["options"] = dict(sorted(self.options.items()))
        if self.compare != "previous":  # the default is left out: the same report, the same key
            out["compare"] = self.compare
        if self.compare_start and self.compare_end:
            out["compare_start"] = self.compare_start.isoformat()
            out["compare_end"] = self.compare_end.isoformat()
        return out

    @classmethod
    def from_pairs(cls, pairs: Sequence[str], now: dt.datetime | None = None) -> ReportParams:
        """Parse CLI-style KEY=VALUE pairs.

        period=last_month | start=YYYY-MM-DD end=YYYY-MM-DD | tz=Europe/Berlin |
        now=ISO instant | compare=previous|last_year|custom [compare_start=YYYY-MM-DD
        compare_end=YYYY-MM-DD] | <dimension>=a,b | columns.<table>=c1,c2 | any other key = report option.
        """
        values: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            key = key.strip()
            if not sep or not key:
                raise ParamError(f"Parameter {pair!r} must look like KEY=VALUE.")
            values[key] = value.strip()
        return cls.from_mapping(values, now=now)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], now: dt.datetime | None = None) -> ReportParams:
        """Build from a flat mapping (CLI pairs, saved report JSON, form fields)."""
        filters: dict[str, tuple[str, ...]] = {}
        columns: dict[str, tuple[str, ...]] = {}
        options: dict[str, str] = {}
        period = start = end = None
        tz = "UTC"
        compare = "previous"
        compare_dates: dict[str, dt.date] = {}
        for key, raw in values.items():
            if key == "filters" and isinstance(raw, Mapping):
                for dim, vals in raw.items():
                    filters[_check_dimension(dim)] = _as_tuple(vals)
            elif key == "columns" and isinstance(raw, Mapping):
                for table, cols in raw.items():
                    columns[str(table)] = _as_tuple(cols)
            elif key == "options" and isinstance(raw, Mapping):
                options.update({str(k): str(v) for k, v in raw.items()})
            elif key == "period":
                period = str(raw) if raw else None
                if period and period not in RELATIVE_PERIODS:
                    raise ParamError(
                        f"Unknown period {period!r}; choose one of: {', '.join(RELATIVE_PERIODS)}."
                    )
            elif key == "start":
                start = _date_value(raw, "start date")
            elif key == "end":
                end = _date_value(raw, "end date")
            elif key == "tz":
                tz = str(raw)
                try:
                    zone(tz)
                except PeriodError as exc:
                    raise ParamError(str(exc)) from exc
            elif key == "now":
                now = _instant(raw)
            elif key == "compare":
                compare = str(raw).strip() if raw else "previous"
                if compare not in COMPARE_CHOICES:
                    raise ParamError(
                        f"Unknown compare {compare!r}; choose one of: {', '.join(COMPARE_CHOICES)}.",
                        parameter="compare",
                    )
            elif key in ("compare_start", "compare_end"):
                if raw:
                    compare_dates[key] = _date_value(raw, f"{key} date", parameter=key)
            elif key.startswith("columns."):
                columns[key.removeprefix("columns.")] = _as_tuple(raw)
            elif key in DIMENSIONS:
                filters[key] = _as_tuple(raw)
            else:
                options[key] = str(raw)
        _check_compare(compare, compare_dates)
        try:
            params = cls(
                period=period,
                start=start,
                end=end,
                tz=tz,
                now=now,
                filters={k: v for k, v in filters.items() if v},
                columns=columns,
                options=options,
                compare=compare,
                compare_start=compare_dates.get("compare_start"),
                compare_end=compare_dates.get("compare_end"),
            )
            if start or end:
                params.resolve_period()
        except PeriodError as exc:
            raise ParamError(str(exc)) from exc
        return params


def _check_compare(compare: str, dates: Mapping[str, dt.date]) -> None:
    """compare=custom comes with both dates, in order; the dates come with nothing else."""
    if compare == "custom":
        missing = [k for k in ("compare_start", "compare_end") if k not in dates]
        if missing:
            raise ParamError(
                "compare=custom needs compare_start and compare_end (YYYY-MM-DD, both inclusive).",
                parameter=missing[0],
            )
        if dates["compare_end"] < dates["compare_start"]:
            raise ParamError(
                f"The compared period ends ({dates['compare_end']}) before it starts "
                f"({dates['compare_start']}): compare_end must not be before compare_start.",
                parameter="compare_end",
            )
    elif dates:
        name = next(iter(dates))
        raise ParamError(
            f"{name} goes with compare=custom (give compare=custom, compare_start and compare_end).",
            parameter=name,
        )


def _check_dimension(name: str) -> str:
    if name not in DIMENSIONS:
        raise ParamError(f"Unknown filter {name!r}; filters are: {', '.join(DIMENSIONS)}.")
    return name


def _as_tuple(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(v.strip() for v in raw.split(",") if v.strip())
    return tuple(str(v) for v in raw)


# Reports compare a period with the one before it and the year before, and step to month ends: dates
# near the calendar's ends (year 1, year 9999) would overflow there, so parameters stay in this range.
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


def _date_value(raw: Any, what: str, *, parameter: str = "") -> dt.date:
    if isinstance(raw, dt.datetime):
        raw = raw.date()
    if isinstance(raw, dt.date):
        value = raw
    else:
        try:
            value = parse_date(str(raw), what)
        except PeriodError as exc:
            raise ParamError(str(exc), parameter=parameter) from exc
    if not FIRST_DATE <= value <= LAST_DATE:
        raise ParamError(
            f"The {what} {value.isoformat()} is out of range: dates from {FIRST_DATE.isoformat()} "
            f"to {LAST_DATE.isoformat()} are supported.",
            parameter=parameter,
        )
    return value


def _instant(raw: Any) -> dt.datetime:
    if isinstance(raw, dt.datetime):
        value = raw
    else:
        try:
            value = dt.datetime.fromisoformat(str(raw))
        except ValueError as exc:
            raise ParamError(f"now={raw!r} is not an ISO 8601 date-time.") from exc
    value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not FIRST_DATE <= value.date() <= LAST_DATE:
        raise ParamError(
            f"now={value.isoformat()} is out of range: times from {FIRST_DATE.isoformat()} "
            f"to {LAST_DATE.isoformat()} are supported."
        )
    return value


@dataclass(frozen=True)
class Column:
    """A table column: `key` in the data, `label` for people, `kind` for formatting."""

    key: str
    label: str
    kind: ColumnKind = "text"


@dataclass(frozen=True)
class Highlight:
    """A row flag exporters and pages colour: rows where `column` `op` `value` (abs_gt, gt, lt, eq)."""

    column: str
    op: Literal["abs_gt", "gt", "lt", "eq"]
    value: float | str
    meaning: str


# Produces the rows of a streamed table, in batches of tuples, for the given column keys in order.
RowBatches = Callable[[Sequence[str]], Iterator[Sequence[tuple[Any, ...]]]]


@dataclass
class Table:
    """A named table of a report; money columns hold exact Decimals.

    Small tables live in `frame`. A table too large to hold in memory (millions of sales lines)
    has `stream` instead: a function yielding batches of row tuples, with `stream_rows` rows in
    all; its `frame` is then only a preview. Renderers read every table through `batches()`.
    """

    name: str
    title: str
    columns: list[Column]
    frame: pd.DataFrame
    highlights: list[Highlight] = field(default_factory=list)
    stream: RowBatches | None = None
    stream_rows: int = 0

    @property
    def row_count(self) -> int:
        return self.stream_rows if self.stream is not None else len(self.frame)

    def batches(self, size: int = 10_000) -> Iterator[Sequence[tuple[Any, ...]]]:
        """Every row as tuples in column order, a batch at a time (constant memory when streamed)."""
        keys = [c.key for c in self.columns]
        if self.stream is not None:
            yield from self.stream(keys)
            return
        frame = self.frame[keys]
        for start in range(0, len(frame), size):
            yield list(frame.iloc[start : start + size].itertuples(index=False, name=None))

    def column(self, key: str) -> Column:
        for col in self.columns:
            if col.key == key:
                return col
        raise KeyError(key)

    def records(self) -> list[dict[str, Any]]:
        keys = [c.key for c in self.columns]
        return [dict(zip(keys, row, strict=True)) for row in self.frame[keys].itertuples(index=False)]

    def select(self, keys: Sequence[str]) -> Table:
        """A copy with only `keys`, in that order (the user's column choice)."""
        known = [c.key for c in self.columns]
        unknown = [k for k in keys if k not in known]
        if unknown:
            raise ParamError(
                f"Table {self.name!r} has no column {unknown[0]!r}; its columns are: {', '.join(known)}."
            )
        cols = [self.column(k) for k in keys]
        preview = self.frame[[k for k in keys if k in self.frame.columns]].copy()
        kept = [h for h in self.highlights if h.column in keys]
        return Table(self.name, self.title, cols, preview, kept, self.stream, self.stream_rows)


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    value: Decimal | int | float | str | None
    kind: ColumnKind = "number"


@dataclass(frozen=True)
class ChartSpec:
    """A chart declared once and drawn by plotly, Excel and matplotlib alike."""

    key: str
    title: str
    kind: ChartKind
    table: str
    x: str
    y: tuple[str, ...]
    y_kind: ColumnKind = "money"


@dataclass
class Report:
    """What a report builder returns and every renderer consumes: the parameters it was built from
    and the period they resolved to (None for a report over no period). `compared` holds the periods
    its comparison KPIs compare with, by their key suffix ("previous", "year_ago", "compared"; see
    analytics/kpis.py): empty for a report without comparisons."""

    slug: str
    title: str
    business_code: str
    business_name: str
    currency: str
    params: ReportParams
    generated_at: dt.datetime
    period: Period | None
    kpis: list[Kpi]
    tables: dict[str, Table]
    charts: list[ChartSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The business's IANA time zone: every time a person reads (PDF, Excel, email) is shown in it.
    timezone: str = "UTC"
    compared: Mapping[str, Period] = field(default_factory=dict)

    def kpi(self, key: str) -> Kpi:
        for k in self.kpis:
            if k.key == key:
                return k
        raise KeyError(key)

    @property
    def is_empty(self) -> bool:
        """True when no table has a row (the period holds no data)."""
        return all(t.row_count == 0 for t in self.tables.values())

    @property
    def parameters(self) -> dict[str, Any]:
        """The JSON document's "parameters" (a public interface): the request's canonical form
        (`ReportParams.to_dict`) with start and end of the resolved period and, for a report with
        comparisons, each compared period resolved too: `previous_period`, `year_ago_period`
        (and `compared_period` with compare=custom), each {"start", "end", "text"}, where text is
        `Period.describe()` ("1–4 Nov 2026")."""
        out = self.params.to_dict()
        if self.period is not None:
            out["start"] = self.period.start.isoformat()
            out["end"] = self.period.end.isoformat()
        for key, period in self.compared.items():
            out[f"{key}_period"] = {
                "start": period.start.isoformat(),
                "end": period.end.isoformat(),
                "text": period.describe(),
            }
        return out

    def period_label(self) -> str:
        """The period as `Period.describe` writes it; "All time" for a report over no period."""
        return self.period.describe() if self.period else "All time"

    def with_columns(self, choice: Mapping[str, Sequence[str]]) -> Report:
        """Apply a column choice {table: [columns]}; charts whose data was removed are dropped."""
        for name in choice:
            if name not in self.tables:
                raise ParamError(
                    f"Report {self.slug!r} has no table {name!r}; its tables are: {', '.join(self.tables)}."
                )
        tables = {
            name: (t.select(choice[name]) if choice.get(name) else t) for name, t in self.tables.items()
        }
        charts = [c for c in self.charts if {c.x, *c.y} <= {col.key for col in tables[c.table].columns}]
        return replace(self, tables=tables, charts=charts)
