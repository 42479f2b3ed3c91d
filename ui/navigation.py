"""The app's table of contents: every page, its section, icon and the roles that may open it.

The app's own pages are listed in `MENU`. The report pages come from the report definitions
(`ReportDefinition.page`), slotted into the menu by section: one page per placement key, in registry
order, open to the roles that may generate every report on it. A report page with a file
pages/{key}.py runs that file; any other is drawn by the generic report page (ui/report_page.py),
so a newly registered report appears in the menu without a page file.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.definition import ReportDefinition
from core.models import ROLES
from core.settings import PROJECT_ROOT
from reports.registry import REPORTS

ALL = ROLES
MANAGERS = ("admin", "manager")
ADMINS = ("admin",)


@dataclass(frozen=True)
class PageSpec:
    key: str  # the URL path (public: keep it); for a page with a file also its name, pages/{key}.py
    title: str
    icon: str
    section: str
    roles: tuple[str, ...]
    reports: tuple[str, ...] = ()  # a report page: the slugs of the reports it shows

    @property
    def path(self) -> str:
        return f"pages/{self.key}.py"

    @property
    def generic(self) -> bool:
        """A report page without a file of its own, drawn by ui/report_page.py."""
        return bool(self.reports) and not (PROJECT_ROOT / self.path).is_file()


@dataclass(frozen=True)
class ReportPages:
    """The place in the menu of the report pages of `section` (in registry order)."""

    section: str


MENU: tuple[PageSpec | ReportPages, ...] = (
    ReportPages("Dashboards"),
    PageSpec("report_builder", "Report builder", ":material/build:", "Reports", ALL),
    PageSpec("history", "History", ":material/history:", "Reports", ALL),
    PageSpec("schedules", "Schedules", ":material/schedule:", "Reports", MANAGERS),
    PageSpec("statistics", "Statistics", ":material/monitoring:", "Reports", MANAGERS),
    PageSpec("data", "Data", ":material/upload_file:", "Manage", MANAGERS),
    ReportPages("Manage"),
    PageSpec("admin", "Admin", ":material/admin_panel_settings:", "Manage", ADMINS),
    PageSpec("account", "Account", ":material/person:", "Manage", ALL),
)


def report_pages() -> list[PageSpec]:
    """One page per placement key of the registered reports, in the registry order of first mention.

    ValueError when the reports on a page give it no title or disagree on its title, icon or section,
    or when a report page would take the key (URL) of one of the app's own pages.
    """
    placed: dict[str, list[ReportDefinition]] = {}
    for defn in REPORTS:
        if defn.page is not None:
            placed.setdefault(defn.page.key, []).append(defn)
    own = {p.key for p in MENU if isinstance(p, PageSpec)}
    pages: list[PageSpec] = []
    for key, defns in placed.items():
        if key in own:
            raise ValueError(f"Report {defns[0].slug!r} is placed on the app's own page {key!r}.")
        titled = {d.page for d in defns if d.page is not None and d.page.title}
        if len(titled) != 1:
            raise ValueError(
                f"Page {key!r} needs exactly one title, icon and section from its reports "
                f"({', '.join(d.slug for d in defns)}); they give {len(titled)}."
            )
        place = titled.pop()
        roles = tuple(r for r in ROLES if all(r in d.roles for d in defns))
        pages.append(
            PageSpec(key, place.title, place.icon, place.section, roles, tuple(d.slug for d in defns))
        )
    return pages


def pages() -> list[PageSpec]:
    """Every page in menu order: the app's own, with the report pages at their section's place
    (those of a section without a place go last)."""
    reports = report_pages()
    slotted = {item.section for item in MENU if isinstance(item, ReportPages)}
    out: list[PageSpec] = []
    for item in MENU:
        if isinstance(item, ReportPages):
            out += [p for p in reports if p.section == item.section]
        else:
            out.append(item)
    return out + [p for p in reports if p.section not in slotted]


def page(key: str) -> PageSpec:
    """The page `key`; KeyError for none."""
    for spec in pages():
        if spec.key == key:
            return spec
    raise KeyError(key)


def pages_for(role: str) -> list[PageSpec]:
    """The pages a role may see, in menu order."""
    return [p for p in pages() if role in p.roles]
