"""The one list of reports, looked up by slug, and `generate`: scope + params in, Report out.

A report is its module under reports/ (its `ReportDefinition` and builder) plus one line in
`REPORTS`; everything else reads the definitions from here. `registered` adds a report for a while
(a test's toy report, a plug-in) without editing the list.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from analytics.definition import ReportDefinition
from analytics.query import ReportContext
from analytics.report import COMPARE_PARAMETERS, ParamError, Report, ReportParams, Scope
from core.clock import aware
from core.errors import NotFound as NotFound  # re-exported: callers import it from here
from core.models import Business
from reports.audit_log import AUDIT_LOG
from reports.credit import CREDIT_AGING
from reports.customers import CUSTOMER_PERFORMANCE
from reports.forecast import FORECAST_ACCURACY, FORECAST_VS_ACTUAL, SUBMISSION_STATUS
from reports.inventory import INVENTORY_VALUATION
from reports.lines import SALES_LINES
from reports.payments import PAYMENTS
from reports.products import PRODUCT_ANALYSIS
from reports.profit import GROSS_PROFIT
from reports.sales import KPI_DASHBOARD, SALES_SUMMARY
from reports.trend_forecast import TREND_FORECAST
from snapshots.store import Snapshot, SnapshotStore

# Registry order is the order of the CLI list, the builder, the templates and the report pages.
REPORTS: list[ReportDefinition] = [
    KPI_DASHBOARD,
    SALES_SUMMARY,
    FORECAST_VS_ACTUAL,
    FORECAST_ACCURACY,
    CUSTOMER_PERFORMANCE,
    PRODUCT_ANALYSIS,
    GROSS_PROFIT,
    PAYMENTS,
    CREDIT_AGING,
    INVENTORY_VALUATION,
    SUBMISSION_STATUS,
    TREND_FORECAST,
    AUDIT_LOG,
    SALES_LINES,
]

REGISTRY: dict[str, ReportDefinition] = {r.slug: r for r in REPORTS}


def register(defn: ReportDefinition) -> ReportDefinition:
    """Add a report after the listed ones; ValueError when its slug is taken."""
    if defn.slug in REGISTRY:
        raise ValueError(f"A report {defn.slug!r} is already registered.")
    REPORTS.append(defn)
    REGISTRY[defn.slug] = defn
    return defn


def unregister(slug: str) -> None:
    """Remove a report `register` added; KeyError for a slug not registered."""
    del REGISTRY[slug]
    REPORTS[:] = [r for r in REPORTS if r.slug != slug]  # in place: importers hold this list


@contextmanager
def registered(*defns: ReportDefinition) -> Iterator[tuple[ReportDefinition, ...]]:
    """The reports registered inside the block, and only there."""
    done: list[str] = []
    try:
        for defn in defns:
            register(defn)
            done.append(defn.slug)
        yield defns
    finally:
        for slug in reversed(done):
            unregister(slug)


def definition(slug: str) -> ReportDefinition:
    try:
        return REGISTRY[slug]
    except KeyError:
        raise ParamError(f"Unknown report {slug!r}; reports are: {', '.join(REGISTRY)}.") from None


def check_params(defn: ReportDefinition, params: ReportParams) -> None:
    """ParamError unless the report takes every filter and option in `params` (and option values
    are among their choices) and, with a comparison other than the default, makes comparisons.
    The period and the column choice are checked where they are used."""
    slug = defn.slug
    if params.compare != "previous" and not defn.compares:
        takers = ", ".join(r.slug for r in REPORTS if r.compares)
        raise ParamError(
            f"Report {slug!r} makes no comparisons, so it takes no compare; reports that do: {takers}.",
            parameter="compare",
        )
    for dim in params.filters:
        if dim not in defn.filters:
            raise ParamError(
                f"Report {slug!r} cannot be filtered by {dim!r}; its filters are: "
                f"{', '.join(defn.filters) or 'none'}."
            )
    known = {o.name: o for o in defn.options}
    compare = COMPARE_PARAMETERS if defn.compares else ()
    for name, value in params.options.items():
        if name not in known:
            raise ParamError(
                f"Report {slug!r} has no parameter {name!r}; it takes: "
                f"{', '.join(['period', 'start', 'end', 'tz', *compare, *known, *defn.filters])}."
            )
        if known[name].choices and value not in known[name].choices:
            raise ParamError(f"{name} must be one of {', '.join(known[name].choices)}, not {value!r}.")


def generate(
    session: Session,
    store: SnapshotStore,
    scope: Scope,
    slug: str,
    params: ReportParams,
    *,
    now: dt.datetime,
    snapshot: Snapshot | None = None,
) -> Report:
    """Build report `slug` for the caller's business, then apply the column choice.

    `now` is the caller's clock reading (naive = UTC): the report's generated_at, and the instant
    a relative period resolves against. `params.now` (the CLI's and the API's `now=`) pins another
    clock for both, so the same parameters give the same document byte for byte, wherever run. The period is resolved
    here, once (`ctx.period` for the builder, `Report.period` for every renderer). `snapshot`
    (default: the store's current one, built if missing) is the one data state the whole report
    reads; a page passes the one it keyed its cache by.
    """
    defn = definition(slug)
    business = session.get(Business, scope.business_id)
    if business is None:
        raise NotFound("No such business.")
    check_params(defn, params)
    instant = aware(params.now or now).astimezone(dt.UTC)
    params = dataclasses.replace(params, now=instant)
    period = params.resolve_period(defn.default_period)
    if snapshot is None:
        snapshot = store.current(business.id)
    elif snapshot.business_id != business.id:
        raise NotFound("No such business.")
    db = snapshot.connect()
    try:
        ctx = ReportContext(session, business, scope, db, snapshot, period=period, now=instant)
        report = defn.build(ctx, params)
    finally:
        db.close()
    return report.with_columns(params.columns)
