"""docs/reports.md is generated from the report definitions and the reports themselves (their JSON
keys, built over the tiny example): this test fails when the file is out of date.

Write it afresh with `UPDATE_DOCS=1 .venv/bin/pytest tests/reports/test_reports_doc.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import pytest
from sqlalchemy import Engine

from analytics.definition import OptionSpec, ReportDefinition
from analytics.report import Report
from core.settings import Settings
from reports.registry import REPORTS
from runs.saved import template_setup
from tests.conftest import new_business
from tests.factories import insert_tiny
from tests.reports.reporting import run_report
from ui.navigation import page

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "reports.md"
Q1 = ("start=2025-01-01", "end=2025-03-31", "now=2025-04-15T12:00:00+00:00")
CUSTOM = ("compare=custom", "compare_start=2024-10-01", "compare_end=2024-12-31")

HEADER = """\
# Reports

Generated from the report definitions (`reports/registry.py`, one `ReportDefinition` per report)
and from the reports themselves, built over the tiny example, by
`tests/reports/test_reports_doc.py`, which fails when this file is out of date. Write it afresh
with `UPDATE_DOCS=1 .venv/bin/pytest tests/reports/test_reports_doc.py`. `python manage.py reports`
lists the same reports with their parameters.

`kpis` and `tables` are the keys of the JSON document's `kpis` and `tables` (see the README, "The
JSON document"), each table with the keys of its records. A report keeps these keys; new ones may
be added.
"""


def code(items: Iterable[str]) -> str:
    listed = [f"`{i}`" for i in items]
    return ", ".join(listed) if listed else "none"


def option_text(option: OptionSpec) -> str:
    choices = f" ({'|'.join(option.choices)})" if option.choices else ""
    return f"{option.name}={option.default}{choices}"


def describe(defn: ReportDefinition, report: Report, custom: Report | None = None) -> str:
    """The section of docs/reports.md for one report (`custom`: built with compare=custom)."""
    parameters, formats = template_setup(defn.slug)
    template = [f"period `{parameters['period']}`"]
    template += [f"`{k}={v}`" for k, v in parameters.get("options", {}).items()]
    where = "none (the builder, the CLI and schedules make it)"
    if defn.page is not None:
        shown = page(defn.page.key)
        where = f"{shown.title} (`/{shown.key}`)"
    lines = [
        f"## `{defn.slug}`: {defn.title}",
        "",
        defn.description,
        "",
        f"- Period: {f'default `{defn.default_period}`' if defn.uses_period else 'none'}",
        f"- Filters: {code(defn.filters)}",
        f"- Options: {code(option_text(o) for o in defn.options)}",
        *(
            ["- Compare: `compare=previous (previous|last_year|custom)`, `compare_start`, `compare_end`"]
            if defn.compares
            else []
        ),
        f"- Roles: {', '.join(defn.roles)}",
        f"- Page: {where}",
        f"- System template: {', '.join(template)}; formats {', '.join(formats)}",
    ]
    if defn.live:
        lines.append("- Live: reads outside the data version, never answered from a cache")
    lines.append(f"- `kpis`: {code(k.key for k in report.kpis)}")
    if custom is not None:
        added = [k.key for k in custom.kpis if k.key not in {x.key for x in report.kpis}]
        lines.append(f"- `kpis` added by `compare=custom`: {code(added)}")
    lines.append("- `tables`:")
    lines += [f"  - `{name}`: {code(c.key for c in table.columns)}" for name, table in report.tables.items()]
    return "\n".join(lines) + "\n"


def render(reports: dict[str, Report], custom: dict[str, Report]) -> str:
    return "\n".join([HEADER, *(describe(d, reports[d.slug], custom.get(d.slug)) for d in REPORTS)])


@pytest.fixture(scope="module")
def built(engine: Engine, settings: Settings) -> dict[str, Report]:
    business = new_business(engine, "Docs Traders")
    insert_tiny(engine, business.id)
    built = {d.slug: run_report(engine, settings.snapshot_dir, business.id, d.slug, *Q1) for d in REPORTS}
    for d in REPORTS:
        if d.compares:
            built[f"{d.slug}:custom"] = run_report(
                engine, settings.snapshot_dir, business.id, d.slug, *Q1, *CUSTOM
            )
    return built


def test_docs_reports_md_is_up_to_date(built: dict[str, Report]) -> None:
    custom = {k.removesuffix(":custom"): r for k, r in built.items() if k.endswith(":custom")}
    text = render(built, custom)
    if os.environ.get("UPDATE_DOCS") == "1":
        DOC.write_text(text, encoding="utf-8")
    assert DOC.read_text(encoding="utf-8") == text, (
        "docs/reports.md is out of date: UPDATE_DOCS=1 .venv/bin/pytest tests/reports/test_reports_doc.py"
    )


def test_the_doc_names_every_report_and_the_keys_the_readme_promised(built: dict[str, Report]) -> None:
    text = DOC.read_text(encoding="utf-8")
    for defn in REPORTS:
        assert f"## `{defn.slug}`: {defn.title}\n" in text
    kpi = built["kpi_dashboard"]
    for key in (
        "revenue",
        "gross_profit",
        "margin_pct",
        "orders",
        "avg_order_value",
        "cash_received",
        "outstanding",
    ):
        assert kpi.kpi(key) is not None and f"`{key}`" in text
    assert {"by_month", "by_region", "by_category", "by_customer", "by_product"} <= set(
        built["sales_summary"].tables
    )
    assert {c.key for c in built["credit_aging"].tables["by_customer"].columns} >= {
        "customer_code",
        "bucket_0_30",
        "bucket_31_60",
        "bucket_61_90",
        "bucket_90_plus",
        "total",
    }
