"""Adding a report is three steps (README, "Add a report"): a definition + builder, one registry
line, a test. A toy report registered in one place appears everywhere the app lists reports: the
CLI, the report builder, the page navigation (for its roles only), system templates, access checks
and every export format."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

import openpyxl
import pandas as pd
import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, func, select
from streamlit.testing.v1 import AppTest

from analytics.definition import Placement, ReportDefinition, SystemTemplate
from analytics.labels import label
from analytics.query import ReportContext, make_report
from analytics.report import Column, Kpi, Report, ReportParams, Scope, Table
from core.db import make_sessionmaker
from core.models import AuditEvent, Business, Run, Sale, SaleLine, SavedReport
from core.settings import Settings
from exporters import EXPORTERS
from manage import main
from reports.audit_log import record_event
from reports.registry import REGISTRY, REPORTS, definition, generate, registered
from runs import saved
from runs.access import allowed_reports, report_allowed
from runs.files import FileStore
from runs.runner import generate_run
from snapshots.store import SnapshotStore
from tests.conftest import new_business
from tests.factories import insert_tiny
from tests.ui.test_navigation import ROOT, fresh_caches, logged_in, make_user, open_page
from ui.navigation import page, pages, pages_for

__all__ = ["fresh_caches"]  # the UI tests' cache reset, used here too

START, END = dt.date(2025, 1, 1), dt.date(2025, 3, 31)  # the tiny example's quarter
SLUG = "toy_line_count"


# --- the toy report: step 1 of 3, a module's definition and builder --------------------------------


def build_toy(ctx: ReportContext, params: ReportParams) -> Report:
    """Sales lines of the period by order status, counted over the snapshot."""
    period = ctx.period
    frame = ctx.frame(
        "SELECT status, COUNT(*) AS lines FROM lines WHERE order_date BETWEEN $start AND $end "
        "GROUP BY status ORDER BY status",
        {"start": period.start, "end": period.end},
    )
    frame["lines"] = frame["lines"].astype("int64")
    table = Table(
        "by_status",
        "Sales lines by status",
        [Column("status", "Status"), Column("lines", "Lines", "int")],
        frame,
    )
    total = int(frame["lines"].sum())
    return make_report(
        ctx, TOY.slug, TOY.title, params, period, [Kpi("lines", "Sales lines", total, "int")], [table]
    )


TOY = ReportDefinition(
    slug=SLUG,
    title="Toy line count",
    description="Sales lines of the period by order status (a test's toy report).",
    build=build_toy,
    roles=("admin", "manager"),  # not staff
    template=SystemTemplate(formats=("csv", "json")),
    page=Placement(icon=":material/toys:"),  # a page of its own, without a page file
)


# --- step 2 of 3, registered in one place (here for the test's duration) ---------------------------


@pytest.fixture
def toy() -> Iterator[ReportDefinition]:
    with registered(TOY) as (defn,):
        yield defn
    assert SLUG not in REGISTRY and TOY not in REPORTS
    assert SLUG not in {p.key for p in pages()}


@pytest.fixture
def tiny(engine: Engine) -> Business:
    business = new_business(engine, "Toy Traders")
    insert_tiny(engine, business.id)
    return business


def expected_counts(engine: Engine, business: Business) -> dict[str, int]:
    """Lines per status in the quarter, counted by the ORM (not by the report's SQL)."""
    with make_sessionmaker(engine)() as session:
        rows = session.execute(
            select(Sale.status, func.count(SaleLine.id))
            .join(SaleLine, SaleLine.sale_id == Sale.id)
            .where(Sale.business_id == business.id, Sale.order_date.between(START, END))
            .group_by(Sale.status)
        ).all()
    return {str(status): int(n) for status, n in rows}


def toy_report(engine: Engine, settings: Settings, business: Business) -> Report:
    with make_sessionmaker(engine)() as session:
        return generate(
            session,
            SnapshotStore(engine, settings.snapshot_dir),
            Scope(business.id, "tester", "manager"),
            SLUG,
            ReportParams(start=START, end=END),
            now=dt.datetime(2025, 4, 2, tzinfo=dt.UTC),
        )


def test_the_toy_counts_the_lines_of_the_period(
    engine: Engine, settings: Settings, tiny: Business, toy: ReportDefinition
) -> None:
    counts = expected_counts(engine, tiny)
    assert counts == {"completed": 5, "draft": 1, "refunded": 1, "void": 1}  # 31 Dec and 1 Apr left out
    report = toy_report(engine, settings, tiny)
    assert report.kpi("lines").value == 8
    frame = report.tables["by_status"].frame
    assert dict(zip(frame["status"], frame["lines"], strict=True)) == counts


def test_the_cli_lists_it(
    cli_env: Settings, toy: ReportDefinition, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reports"]) == 0
    out = capsys.readouterr().out
    assert f"{SLUG}: Toy line count\n    {TOY.description}\n" in out
    assert out.index(f"{SLUG}:") > out.index("sales_lines:")  # after the listed reports


def test_access_checks_follow_its_roles(
    engine: Engine, settings: Settings, tiny: Business, toy: ReportDefinition
) -> None:
    for role, allowed in (("admin", True), ("manager", True), ("staff", False)):
        scope = Scope(tiny.id, role, role)
        assert report_allowed(scope, SLUG) is allowed
        assert (toy in allowed_reports(scope)) is allowed
    files = FileStore.from_settings(settings)
    store = SnapshotStore(engine, settings.snapshot_dir)
    params = ReportParams(start=START, end=END)
    with make_sessionmaker(engine)() as session:
        refused = generate_run(
            session, store, files, settings, Scope(tiny.id, "", "staff"), None, SLUG, params, ["json"]
        )
        done = generate_run(
            session, store, files, settings, Scope(tiny.id, "", "manager"), None, SLUG, params, ["json"]
        )
    assert (refused.status, refused.error) == ("failed", f"Your role cannot generate the {SLUG!r} report.")
    assert done.ok and done.rows == 4


def test_it_gets_a_system_template(engine: Engine, tiny: Business, toy: ReportDefinition) -> None:
    assert saved.template_setup(SLUG) == ({"period": "last_month"}, ("csv", "json"))
    with make_sessionmaker(engine)() as session:
        saved.ensure_system_templates(session, tiny.id)
        row = session.scalars(
            select(SavedReport).where(SavedReport.business_id == tiny.id, SavedReport.report_slug == SLUG)
        ).one()
        assert (row.system, row.name, row.formats) == (True, "Toy line count", "csv,json")
        manager = [i.slug for i in saved.list_saved(session, Scope(tiny.id, "m", "manager"), None)]
        staff = [i.slug for i in saved.list_saved(session, Scope(tiny.id, "s", "staff"), None)]
    assert SLUG in manager and SLUG not in staff
    assert manager[-1] == SLUG  # system templates in registry order: it comes last


def exported_rows(fmt: str, data: bytes) -> list[list[str]]:
    """Every row or line of text of an exported file, as lists of cell strings."""
    if fmt == "csv":
        return [row for row in csv.reader(io.StringIO(data.decode("utf-8-sig")))]
    if fmt == "json":
        doc: dict[str, Any] = json.loads(data)
        rows = [[doc["title"]], *([k, str(v)] for k, v in doc["kpis"].items())]
        return rows + [[str(v) for v in rec.values()] for rec in doc["tables"]["by_status"]]
    if fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(data))
        return [
            [str(v) for v in row if v is not None]
            for sheet in book.worksheets
            for row in sheet.iter_rows(values_only=True)
        ]
    assert fmt == "pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    return [line.split() for line in text.splitlines()]


def test_the_export_formats_are_the_four() -> None:
    assert set(EXPORTERS) == {"csv", "xlsx", "pdf", "json"}


@pytest.mark.parametrize("fmt", list(EXPORTERS))
def test_every_format_exports_it(
    engine: Engine, settings: Settings, tiny: Business, toy: ReportDefinition, fmt: str
) -> None:
    out = io.BytesIO()
    EXPORTERS[fmt].write(toy_report(engine, settings, tiny), out)
    rows = exported_rows(fmt, out.getvalue())
    for status, n in expected_counts(engine, tiny).items():
        shown = status if fmt == "json" else str(label("status", status))  # people read labels, JSON codes
        assert [shown, str(n)] in rows, (shown, rows)
    if fmt != "csv":  # CSV holds the tables only
        text = " ".join(" ".join(r) for r in rows)
        assert "Toy line count" in text and "lines 8" in text, rows  # the title and the KPI


# --- the web app ----------------------------------------------------------------------------------


def test_the_navigation_shows_its_page_to_its_roles_only(toy: ReportDefinition) -> None:
    spec = page(SLUG)
    assert (spec.title, spec.icon, spec.section, spec.reports, spec.generic) == (
        "Toy line count",
        ":material/toys:",
        "Dashboards",
        (SLUG,),
        True,
    )
    assert SLUG in {p.key for p in pages_for("admin")} & {p.key for p in pages_for("manager")}
    assert SLUG not in {p.key for p in pages_for("staff")}
    keys = [p.key for p in pages()]
    assert keys.index(SLUG) == keys.index("payments") + 1  # the last dashboard; other URLs unchanged


def test_its_page_shows_it_and_the_app_lists_it(
    engine: Engine, tiny: Business, toy: ReportDefinition
) -> None:
    manager = make_user(engine, tiny, "manager")
    at = logged_in(ROOT / "dashboard.py", manager)  # the app builds its navigation with the generic page
    assert not at.exception, at.exception
    at = open_page_for_quarter(SLUG, manager)
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Toy line count"]
    assert [(m.label, m.value) for m in at.metric] == [("Sales lines", "8")]
    shown = at.dataframe[0].value
    shown_counts = {str(s).lower(): int(n) for s, n in zip(shown["status"], shown["lines"], strict=True)}
    assert shown_counts == expected_counts(engine, tiny)  # the page shows statuses capitalised

    refused = open_page(SLUG, make_user(engine, tiny, "staff"))
    assert [e.value for e in refused.error] == ["You do not have access to Toy line count."]
    assert not refused.metric


def open_page_for_quarter(key: str, username: str) -> AppTest:
    at = open_page(key, username)
    at.session_state[f"{key}_period"] = "custom"
    at.session_state[f"{key}_start"], at.session_state[f"{key}_end"] = START, END
    return at.run()


def test_the_report_builder_offers_and_generates_it(
    engine: Engine, tiny: Business, toy: ReportDefinition
) -> None:
    manager = make_user(engine, tiny, "manager")
    at = AppTest.from_file(str(ROOT / "pages" / "report_builder.py"), default_timeout=60)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = manager
    at.session_state["builder_report"] = SLUG
    at.session_state["builder_period"] = "custom"
    at.session_state["builder_start"], at.session_state["builder_end"] = START, END
    at.run()
    assert not at.exception, at.exception
    assert "Toy line count" in at.selectbox(key="builder_report").options
    assert TOY.description in [c.value for c in at.caption]
    next(b for b in at.button if b.label == "Generate").click().run()
    assert not at.exception, at.exception
    assert at.status[0].state == "complete", at.status[0].label
    with make_sessionmaker(engine)() as session:
        run = session.scalars(select(Run).where(Run.business_id == tiny.id, Run.report_slug == SLUG)).one()
    assert (run.status, run.trigger, run.rows) == ("completed", "builder", 4)

    staff = AppTest.from_file(str(ROOT / "pages" / "report_builder.py"), default_timeout=60)
    staff.session_state["authentication_status"] = True
    staff.session_state["username"] = make_user(engine, tiny, "staff")
    staff.run()
    assert not staff.exception, staff.exception
    assert "Toy line count" not in staff.selectbox(key="builder_report").options
    assert "Payments" in staff.selectbox(key="builder_report").options
    assert definition(SLUG) is toy


# --- `live`: read by the run cache and the page cache ---------------------------------------------


def build_event_count(ctx: ReportContext, params: ReportParams) -> Report:
    """The business's audit events, read live from the database (outside the data version)."""
    events = ctx.session.scalar(
        select(func.count(AuditEvent.id)).where(AuditEvent.business_id == ctx.business.id)
    )
    table = Table("events", "Events", [Column("events", "Events", "int")], pd.DataFrame({"events": [events]}))
    return make_report(
        ctx, "toy_events", "Toy events", params, None, [Kpi("events", "Events", events, "int")], [table]
    )


def events_toy(live: bool) -> ReportDefinition:
    return ReportDefinition("toy_events", "Toy events", "Audit events (a toy).", build_event_count, live=live)


@pytest.mark.parametrize("live", [True, False])
def test_the_run_cache_never_answers_for_a_live_report(
    engine: Engine, settings: Settings, tiny: Business, live: bool
) -> None:
    files = FileStore.from_settings(settings)
    store = SnapshotStore(engine, settings.snapshot_dir)
    scope = Scope(tiny.id, "", "manager")
    params = ReportParams(start=START, end=END)
    with registered(events_toy(live)), make_sessionmaker(engine)() as session:
        runs = [
            generate_run(session, store, files, settings, scope, None, "toy_events", params, ["json"])
            for _ in "ab"
        ]
    assert [r.cached for r in runs] == [False, not live]


@pytest.mark.parametrize("live", [True, False])
def test_the_page_cache_never_answers_for_a_live_report(engine: Engine, tiny: Business, live: bool) -> None:
    with registered(events_toy(live)):
        at = open_page("toy_events", make_user(engine, tiny, "manager"))
        before = int(at.metric[0].value)
        with make_sessionmaker(engine)() as session:
            record_event(session, tiny.id, "toy_event")
            session.commit()
        at.run()
        assert int(at.metric[0].value) == (before + 1 if live else before)
