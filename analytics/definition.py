"""A report's declaration: everything the app knows about a report, in one place.

Slug, title, the parameters it takes and the function that builds it; who may generate it; whether
the run cache may answer for it; its system template; and the page that shows it in the web app.
The CLI, the pages and their navigation, the builder, templates, schedules, access checks, the run
cache and the exports all read these fields; nothing else lists reports (see reports/registry.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING

from core.models import ROLES

if TYPE_CHECKING:
    from analytics.query import ReportContext
    from analytics.report import Report, ReportParams


@dataclass(frozen=True)
class OptionSpec:
    """A report-specific parameter (e.g. granularity) with its allowed values and default."""

    name: str
    help: str
    default: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Placement:
    """Where the web app shows a report: the page's key (its URL path, so public), menu title, icon
    and menu section.

    The default, `Placement()`, is a page of the report's own: key = slug, title = the report's
    title, drawn by the generic report page (ui/report_page.py). Several reports may share a page:
    one gives the page's title (and icon, section), the others name only its key,
    `Placement("forecast")`, and appear as its tabs in registry order. A page with a file
    pages/{key}.py runs that file instead of the generic page.
    """

    key: str = ""
    title: str = ""  # "" with a key: this report joins the page another report titles
    icon: str = ":material/description:"
    section: str = "Dashboards"


@dataclass(frozen=True)
class SystemTemplate:
    """The report's system template (one per business, in the builder's template bar): its period
    ("": the report's default period), formats, and option values (options the report does not
    take, or values outside an option's choices, are left out)."""

    period: str = ""
    formats: tuple[str, ...] = ("xlsx",)
    options: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))


@dataclass(frozen=True)
class ReportDefinition:
    slug: str
    title: str
    description: str
    build: Callable[[ReportContext, ReportParams], Report]
    filters: tuple[str, ...] = ()
    options: tuple[OptionSpec, ...] = field(default_factory=tuple)
    uses_period: bool = True
    default_period: str = "last_month"
    # True for a report with comparison KPIs (analytics/kpis.py): it takes compare=, compare_start=
    # and compare_end= (what it compares with); other reports refuse them.
    compares: bool = False
    # The roles that may generate it, anywhere (builder, pages, saved reports, schedules, CLI, API).
    roles: tuple[str, ...] = ROLES
    # True for a report that reads live tables outside the data version (the audit log grows with
    # every click): never answered from the run cache or the page cache.
    live: bool = False
    template: SystemTemplate = SystemTemplate()
    # The page that shows it; None: no page (the builder, CLI, schedules and API still make it).
    page: Placement | None = Placement()

    def __post_init__(self) -> None:
        unknown = set(self.roles) - set(ROLES)
        if not self.roles or unknown:
            raise ValueError(
                f"Report {self.slug!r}: roles must be some of {', '.join(ROLES)}, not {self.roles!r}."
            )
        if self.page is not None and not self.page.key:  # a page of its own
            object.__setattr__(
                self, "page", replace(self.page, key=self.slug, title=self.page.title or self.title)
            )
        if not self.template.period:
            object.__setattr__(self, "template", replace(self.template, period=self.default_period))
