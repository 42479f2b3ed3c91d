"""The report pages under AppTest: they render for data and for an empty business, numbers match the
reports, filters change them, staff may open them, and one business never sees another's names."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
import streamlit as st
from sqlalchemy import Engine
from streamlit.testing.v1 import AppTest

from accounts.users import add_user, operator
from analytics.formatting import format_value
from analytics.periods import resolve
from analytics.report import Report, ReportParams, Scope
from core.clock import utc_now
from core.db import bump_data_version, make_sessionmaker
from core.models import ROLES, Business, Customer, User
from core.settings import Settings
from exporters import EXPORTERS
from reports.registry import REGISTRY, generate
from snapshots.store import SnapshotStore
from tests.conftest import new_business
from tests.factories import insert_tiny
from tests.ui.test_navigation import app_test
from ui import resources
from ui.downloads import LABELS, ORDER, file_name, writer
from ui.navigation import page as page_spec
from ui.navigation import report_pages

# The dashboards: the report pages every role may open (the audit log page has tests of its own).
REPORT_PAGES = tuple(p.key for p in report_pages() if set(p.roles) == set(ROLES))
# The tabs after the first on the page files that show several reports (tabs run lazily); the
# generic report page names its tabs by the reports' titles.
PAGE_FILE_TABS = {
    "forecast": ("Accuracy", "Submissions", "Statistical forecast"),
    "products": ("Stock & valuation",),
    "payments": ("Credit & aging",),
}


def later_tabs(name: str) -> tuple[str, ...]:
    spec = page_spec(name)
    if spec.generic:
        return tuple(REGISTRY[slug].title for slug in spec.reports[1:])
    return PAGE_FILE_TABS.get(name, ())


# Every report view: a page, and the tab to open on pages with tabs.
VIEWS = (
    *((name, "") for name in REPORT_PAGES),
    *((name, tab) for name in REPORT_PAGES for tab in later_tabs(name)),
)
TINY_START, TINY_END = dt.date(2025, 1, 1), dt.date(2025, 3, 31)
PASSWORD = "correct-horse-1"


@pytest.fixture(autouse=True)
def fresh_caches(cli_env: Settings) -> Iterator[None]:
    # ui.resources caches settings and engine per process: start each test from the env, and
    # close the pooled connections before dropping an engine (PostgreSQL warns otherwise).
    reset_resources()
    yield
    reset_resources()


def reset_resources() -> None:
    resources.engine().dispose()
    st.cache_resource.clear()
    st.cache_data.clear()


def make_user(engine: Engine, business: Business, role: str = "manager") -> str:
    username = f"{role}_{business.code}"
    with make_sessionmaker(engine)() as session:
        add_user(session, operator(business.id), username, PASSWORD, role, name=role.title())
        session.commit()
    return username


@pytest.fixture
def tiny(engine: Engine) -> Business:
    business = new_business(engine, "Tiny Traders")
    insert_tiny(engine, business.id)
    return business


def page(
    name: str, username: str, *, custom: tuple[dt.date, dt.date] | None = None, tab: str = ""
) -> AppTest:
    at = app_test(name)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = username
    if tab:
        at.session_state[f"{name}_tab"] = tab
    if custom:
        at.session_state[f"{name}_period"] = "custom"
        at.session_state[f"{name}_start"], at.session_state[f"{name}_end"] = custom
    return at.run()


def texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.caption, *at.info, *at.error, *at.warning)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def table_text(at: AppTest) -> str:
    return "\n".join(df.value.to_csv() for df in at.dataframe)


def test_every_report_on_a_dashboard_has_a_view() -> None:
    assert {"overview", "sales", "forecast", "customers", "products", "profit", "payments"} <= set(
        REPORT_PAGES
    )
    for name in REPORT_PAGES:
        assert len(later_tabs(name)) == len(page_spec(name).reports) - 1, f"list the tabs of pages/{name}.py"


@pytest.mark.parametrize(("name", "tab"), VIEWS)
def test_page_renders_tiny_example(engine: Engine, tiny: Business, name: str, tab: str) -> None:
    at = page(name, make_user(engine, tiny), custom=(TINY_START, TINY_END), tab=tab)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert at.metric, "KPI cards expected"
    assert at.dataframe, "tables expected"


def test_the_generation_time_names_the_business_time_zone(engine: Engine) -> None:
    berlin = new_business(engine, "Berlin Traders", timezone="Europe/Berlin")
    insert_tiny(engine, berlin.id)
    at = page("sales", make_user(engine, berlin), custom=(TINY_START, TINY_END))
    captions = [c.value for c in at.caption if " generated " in c.value]
    assert captions, [c.value for c in at.caption]
    zone = ZoneInfo("Europe/Berlin")
    names = {dt.datetime(2025, 1, 15, tzinfo=zone).tzname(), dt.datetime(2025, 7, 15, tzinfo=zone).tzname()}
    assert any(captions[0].endswith(f" {name}") for name in names), (captions[0], names)


@pytest.mark.parametrize(("name", "tab"), VIEWS)
def test_page_shows_empty_state_for_empty_business(engine: Engine, name: str, tab: str) -> None:
    empty = new_business(engine, "Nothing Yet")
    at = page(name, make_user(engine, empty), tab=tab)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    messages = [i.value for i in at.info]
    assert any(m.startswith(("No ", "Nothing")) for m in messages), messages
    assert not at.dataframe


def report_for(engine: Engine, settings: Settings, business: Business, slug: str, **params: object) -> Report:
    store = SnapshotStore(engine, settings.snapshot_dir)
    with make_sessionmaker(engine)() as session:
        return generate(
            session, store, Scope(business.id), slug, ReportParams.from_mapping(params), now=utc_now()
        )


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_overview_kpis_equal_the_kpi_dashboard(engine: Engine, settings: Settings, tiny: Business) -> None:
    at = page("overview", make_user(engine, tiny), custom=(TINY_START, TINY_END))
    report = report_for(
        engine, settings, tiny, "kpi_dashboard", start=TINY_START, end=TINY_END, tz=tiny.timezone
    )
    keys = (
        "revenue",
        "gross_profit",
        "margin_pct",
        "orders",
        "avg_order_value",
        "cash_received",
        "outstanding",
    )
    for key in keys:
        kpi = report.kpi(key)
        assert metric(at, kpi.label) == format_value(kpi.value, kpi.kind, tiny.currency), key
    assert metric(at, "Revenue") != format_value(0, "money", tiny.currency)


def test_a_filter_change_changes_the_numbers(engine: Engine, settings: Settings, tiny: Business) -> None:
    at = page("overview", make_user(engine, tiny), custom=(TINY_START, TINY_END))
    before = metric(at, "Revenue")
    region = at.multiselect(key="overview_f_region")
    assert "North" in region.options
    region.select("North").run()
    assert not at.exception
    after = metric(at, "Revenue")
    north = report_for(
        engine,
        settings,
        tiny,
        "kpi_dashboard",
        start=TINY_START,
        end=TINY_END,
        tz=tiny.timezone,
        region="North",
    )
    assert after != before
    assert after == format_value(north.kpi("revenue").value, "money", tiny.currency)
    assert at.expander[0].label == "Filtered by Region: North"


def test_a_period_change_changes_the_numbers(engine: Engine, tiny: Business) -> None:
    at = page("sales", make_user(engine, tiny), custom=(TINY_START, TINY_END))
    quarter = metric(at, "Revenue")
    at.date_input(key="sales_end").set_value(dt.date(2025, 1, 31)).run()
    assert not at.exception
    assert metric(at, "Revenue") != quarter


def test_an_end_before_the_start_says_what_to_do(engine: Engine, tiny: Business) -> None:
    at = page("sales", make_user(engine, tiny), custom=(TINY_END, TINY_START))
    assert not at.exception
    assert any("before the start date" in e.value for e in at.error)
    assert not at.metric


def test_granularity_option_switches_the_trend_table(engine: Engine, tiny: Business) -> None:
    at = page("sales", make_user(engine, tiny), custom=(TINY_START, TINY_END))
    at.selectbox(key="sales_o_granularity").select("week").run()
    assert not at.exception
    assert any(t.label == "Revenue by week" for t in at.tabs)


@pytest.mark.parametrize("name", REPORT_PAGES)
def test_staff_can_open_report_pages(engine: Engine, tiny: Business, name: str) -> None:
    at = page(name, make_user(engine, tiny, "staff"), custom=(TINY_START, TINY_END))
    assert not at.exception
    assert not at.error
    assert at.metric


def test_a_disabled_user_sees_no_report(engine: Engine, tiny: Business) -> None:
    username = make_user(engine, tiny)
    with make_sessionmaker(engine)() as session:
        session.query(User).filter(User.username == username).update({"active": False})
        session.commit()
    at = page("overview", username, custom=(TINY_START, TINY_END))
    assert not at.metric
    assert any("disabled" in e.value for e in at.error)


@pytest.mark.parametrize(("name", "tab"), VIEWS)
def test_business_b_never_sees_business_a(engine: Engine, tiny: Business, name: str, tab: str) -> None:
    secret = {
        "A1": "Secret Alpha GmbH",
        "B2": "Hidden Beta Ltd",
        "C3": "Private Gamma SA",
        "D4": "Quiet Delta BV",
    }
    with make_sessionmaker(engine)() as session:
        for code, new_name in secret.items():
            session.query(Customer).filter(
                Customer.business_id == tiny.id, Customer.customer_code == code
            ).update({"name": new_name})
        bump_data_version(session, tiny.id)
        session.commit()
    other = new_business(engine, "Other Traders")
    insert_tiny(engine, other.id)
    at = page(name, make_user(engine, other), custom=(TINY_START, TINY_END), tab=tab)
    assert not at.exception
    assert at.dataframe
    shown = texts(at) + table_text(at) + " ".join(str(o) for ms in at.multiselect for o in ms.options)
    assert "Alma Café" in shown or name == "products"  # its own customers are there
    for new_name in secret.values():
        assert new_name not in shown


def test_download_buttons_one_per_format_generated_on_click(
    engine: Engine, settings: Settings, tiny: Business
) -> None:
    at = page("overview", make_user(engine, tiny), custom=(TINY_START, TINY_END))
    # The report's buttons, not the one-table "CSV" buttons beside its tables (ui/tables.csv_button).
    buttons = [b for b in at.get("download_button") if not b.proto.help.startswith("Download “")]
    labels = [b.proto.label for b in buttons]
    assert [label.split(" (")[0] for label in labels] == [
        LABELS.get(f, f.upper()) for f in formats_in_order()
    ]
    assert "CSV (.zip)" in labels  # several tables: one CSV each, zipped
    assert all(b.proto.deferred_file_id for b in buttons), "files are made on click, not on every run"
    report = report_for(
        engine, settings, tiny, "kpi_dashboard", start=TINY_START, end=TINY_END, tz=tiny.timezone
    )
    data = json.loads(writer(report, EXPORTERS["json"])())
    assert data["kpis"]
    assert file_name(report, EXPORTERS["json"]).startswith("kpi_dashboard_")


def formats_in_order() -> list[str]:
    return [f for f in ORDER if f in EXPORTERS] + [f for f in EXPORTERS if f not in ORDER]


def test_custom_range_starts_from_the_preset_dates(engine: Engine, tiny: Business) -> None:
    at = page("sales", make_user(engine, tiny))  # it opens on the latest month with sales (a custom range)
    at.selectbox(key="sales_period").select("last_month").run()
    at.selectbox(key="sales_period").select("custom").run()
    last_month = resolve("last_month", dt.datetime.now(dt.UTC), tiny.timezone)
    assert at.date_input(key="sales_start").value == last_month.start
    assert at.date_input(key="sales_end").value == last_month.end
    assert not at.exception


def test_while_new_data_is_refreshed_elsewhere_the_page_shows_the_previous_figures_and_says_so(
    engine: Engine, settings: Settings, tiny: Business
) -> None:
    from sqlalchemy import update

    from core.models import Sale, SaleLine

    username = make_user(engine, tiny)
    before = page("overview", username, custom=(TINY_START, TINY_END))
    revenue = [m.value for m in before.metric if m.label == "Revenue"]
    assert revenue and not any("Refreshing data" in i.value for i in before.info)
    with make_sessionmaker(engine)() as session:  # an import doubles every line
        session.execute(
            update(SaleLine)
            .where(SaleLine.business_id == tiny.id)
            .values(quantity=SaleLine.quantity * 2, net_micros=SaleLine.net_micros * 2)
        )
        session.execute(
            update(Sale).where(Sale.business_id == tiny.id).values(net_micros=Sale.net_micros * 2)
        )
        bump_data_version(session, tiny.id)
        session.commit()
    with SnapshotStore(engine, settings.snapshot_dir).building(tiny.id):  # another process is building
        during = page("overview", username, custom=(TINY_START, TINY_END))
    assert not during.exception
    assert any("Refreshing data" in i.value for i in during.info)
    assert [m.value for m in during.metric if m.label == "Revenue"] == revenue
    after = page("overview", username, custom=(TINY_START, TINY_END))
    assert not any("Refreshing data" in i.value for i in after.info)
    assert [m.value for m in after.metric if m.label == "Revenue"] != revenue
