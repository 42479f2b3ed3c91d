"""The app's table of contents: every page, its section, icon and the roles that may open it."""

from __future__ import annotations

from dataclasses import dataclass

ALL = ("admin", "manager", "staff")
MANAGERS = ("admin", "manager")
ADMINS = ("admin",)


@dataclass(frozen=True)
class PageSpec:
    key: str  # also the file name: pages/{key}.py
    title: str
    icon: str
    section: str
    roles: tuple[str, ...]

    @property
    def path(self) -> str:
        return f"pages/{self.key}.py"


PAGES: tuple[PageSpec, ...] = (
    PageSpec("overview", "Overview", ":material/dashboard:", "Dashboards", ALL),
    PageSpec("sales", "Sales", ":material/trending_up:", "Dashboards", ALL),
    PageSpec("forecast", "Forecast", ":material/query_stats:", "Dashboards", ALL),
    PageSpec("customers", "Customers", ":material/groups:", "Dashboards", ALL),
    PageSpec("products", "Products & Inventory", ":material/inventory_2:", "Dashboards", ALL),
    PageSpec("profit", "Profit", ":material/savings:", "Dashboards", ALL),
    PageSpec("payments", "Payments & Credit", ":material/payments:", "Dashboards", ALL),
    PageSpec("report_builder", "Report builder", ":material/build:", "Reports", ALL),
    PageSpec("history", "History", ":material/history:", "Reports", ALL),
    PageSpec("schedules", "Schedules", ":material/schedule:", "Reports", MANAGERS),
    PageSpec("statistics", "Statistics", ":material/monitoring:", "Reports", MANAGERS),
    PageSpec("data", "Data", ":material/upload_file:", "Manage", MANAGERS),
    PageSpec("audit_log", "Audit log", ":material/policy:", "Manage", ADMINS),
    PageSpec("admin", "Admin", ":material/admin_panel_settings:", "Manage", ADMINS),
    PageSpec("account", "Account", ":material/person:", "Manage", ALL),
)

PAGE_BY_KEY = {p.key: p for p in PAGES}


def pages_for(role: str) -> list[PageSpec]:
    """The pages a role may see, in menu order."""
    return [p for p in PAGES if role in p.roles]
