"""The one list of reports, looked up by slug, and `generate`: scope + params in, Report out."""

from __future__ import annotations

from sqlalchemy.orm import Session

from analytics.definition import ReportDefinition
from analytics.query import ReportContext
from analytics.report import ParamError, Report, ReportParams, Scope
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
from snapshots.store import Snapshot, SnapshotStore

REPORTS: tuple[ReportDefinition, ...] = (
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
    AUDIT_LOG,
    SALES_LINES,
)

REGISTRY: dict[str, ReportDefinition] = {r.slug: r for r in REPORTS}


def definition(slug: str) -> ReportDefinition:
    try:
        return REGISTRY[slug]
    except KeyError:
        raise ParamError(f"Unknown report {slug!r}; reports are: {', '.join(REGISTRY)}.") from None


def generate(
    session: Session,
    store: SnapshotStore,
    scope: Scope,
    slug: str,
    params: ReportParams,
    *,
    snapshot: Snapshot | None = None,
) -> Report:
    """Build report `slug` for the caller's business, then apply the column choice.

    `snapshot` (default: the store's current one, built if missing) is the one data state the
    whole report reads; a page passes the one it keyed its cache by.
    """
    defn = definition(slug)
    business = session.get(Business, scope.business_id)
    if business is None:
        raise NotFound("No such business.")
    for dim in params.filters:
        if dim not in defn.filters:
            raise ParamError(
                f"Report {slug!r} cannot be filtered by {dim!r}; its filters are: "
                f"{', '.join(defn.filters) or 'none'}."
            )
    known = {o.name: o for o in defn.options}
    for name, value in params.options.items():
        if name not in known:
            raise ParamError(
                f"Report {slug!r} has no parameter {name!r}; it takes: "
                f"{', '.join(['period', 'start', 'end', 'tz', *known, *defn.filters])}."
            )
        if known[name].choices and value not in known[name].choices:
            raise ParamError(f"{name} must be one of {', '.join(known[name].choices)}, not {value!r}.")
    if snapshot is None:
        snapshot = store.current(business.id)
    elif snapshot.business_id != business.id:
        raise NotFound("No such business.")
    db = snapshot.connect()
    try:
        report = defn.build(ReportContext(session, business, scope, db, snapshot), params)
    finally:
        db.close()
    return report.with_columns(params.columns)
