"""The URL of a report page: read like the command line's --param (wrong values named and left out),
written without defaults, a link that always names its period; and under AppTest, a page opened with a
query shows that view and keeps the query in step with its widgets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import streamlit as st
from sqlalchemy import Engine

from analytics.definition import OptionSpec
from analytics.formatting import format_value
from analytics.periods import PERIOD_LABELS
from core.models import Business
from core.settings import Settings
from tests.conftest import new_business
from tests.factories import insert_tiny
from tests.ui.test_navigation import app_test
from tests.ui.test_report_pages import make_user, metric, report_for
from ui import resources
from ui.filters import (
    CUSTOM,
    DEFAULT_PERIOD,
    PeriodChoice,
    explicit_query,
    query_from_view,
    view_from_query,
)

DIMS = ("region", "category", "customer_type")
GRANULARITY = OptionSpec("granularity", "Time buckets", "month", ("day", "week", "month"))
CHOICES = {"region": {"North": "North", "South": "South"}, "category": {"Drinks": "Drinks"}}


def q(**values: str) -> dict[str, list[str]]:
    return {k: [v] for k, v in values.items()}


def test_a_relative_period_and_comma_separated_filters() -> None:
    view = view_from_query(q(period="year_to_date", region="North,South", category="Drinks"), DIMS)
    assert view.period == PeriodChoice("year_to_date")
    assert view.filters == {"region": ("North", "South"), "category": ("Drinks",)}
    assert view.problems == ()


def test_start_and_end_make_a_custom_range_and_win_over_a_period() -> None:
    view = view_from_query(q(period="last_month", start="2025-01-01", end="2025-03-31"), DIMS)
    assert view.period == PeriodChoice(CUSTOM, dt.date(2025, 1, 1), dt.date(2025, 3, 31))


def test_a_time_zone_goes_with_the_period() -> None:
    view = view_from_query(q(period="today", tz="Asia/Manila"), DIMS)
    assert view.period == PeriodChoice("today", tz="Asia/Manila")
    alone = view_from_query(q(tz="Asia/Manila"), DIMS)
    assert alone.period == PeriodChoice(DEFAULT_PERIOD, tz="Asia/Manila")


def test_repeated_keys_read_like_commas() -> None:
    view = view_from_query({"region": ["North", "South"]}, DIMS)
    assert view.filters == {"region": ("North", "South")}


def test_no_period_in_the_url_is_none() -> None:
    assert view_from_query(q(region="North"), DIMS).period is None


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        (q(period="someday"), "Unknown period 'someday'"),
        (q(start="2025-02-30", end="2025-03-31"), "is not a date"),
        (q(start="2025-03-31", end="2025-01-01"), "before it starts"),
        (q(start="2025-01-01"), "a start date but no end date"),
        (q(end="2025-01-01"), "an end date but no start date"),
        (q(start="1800-01-01", end="2025-01-01"), "out of range"),
        (q(tz="Mars/Olympus"), "Unknown time zone 'Mars/Olympus'"),
        (q(region="Atlantis,North"), "Region Atlantis is not in your data."),
        (q(granularity="hour"), "Unknown granularity 'hour'"),
        (q(compare="yesterday"), "Unknown compare 'yesterday'"),
        (q(compare="custom", compare_start="2024-01-01"), "Comparison dates"),
    ],
)
def test_wrong_values_are_named_and_left_out(query: dict[str, list[str]], problem: str) -> None:
    view = view_from_query(query, DIMS, [GRANULARITY], compare=True, choices=CHOICES)
    assert len(view.problems) == 1 and problem in view.problems[0], view.problems
    assert view.period is None
    assert "Atlantis" not in view.filters.get("region", ())
    assert view.filters.get("region", ()) in ((), ("North",))
    assert not view.options and not view.compare


def test_options_and_the_comparison() -> None:
    view = view_from_query(
        q(granularity="week", compare="custom", compare_start="2024-01-01", compare_end="2024-03-31"),
        DIMS,
        [GRANULARITY],
        compare=True,
    )
    assert view.options == {"granularity": "week"}
    assert view.compare == {"compare": "custom", "compare_start": "2024-01-01", "compare_end": "2024-03-31"}
    # A page without the comparison ignores its keys.
    assert view_from_query(q(compare="last_year"), DIMS).compare == {}


def test_the_url_leaves_the_defaults_out() -> None:
    assert (
        query_from_view(
            PeriodChoice(),
            {},
            {"granularity": "day"},
            {"compare": "previous"},
            default_options={"granularity": "day"},
        )
        == {}
    )


def test_the_url_of_a_view_in_the_command_lines_form() -> None:
    query = query_from_view(
        PeriodChoice(CUSTOM, dt.date(2025, 1, 1), dt.date(2025, 3, 31), tz="Asia/Manila"),
        {"category": ("Drinks",), "region": ("North", "South")},
        {"granularity": "week"},
        {"compare": "last_year"},
        default_options={"granularity": "day"},
        dims=DIMS,
    )
    assert query == {
        "start": "2025-01-01",
        "end": "2025-03-31",
        "tz": "Asia/Manila",
        "region": "North,South",  # dimension order, like --param region=North,South
        "category": "Drinks",
        "granularity": "week",
        "compare": "last_year",
    }


@pytest.mark.parametrize(
    "query",
    [
        {"period": "year_to_date"},
        {"start": "2025-01-01", "end": "2025-03-31", "region": "North,South"},
        {"period": "today", "tz": "Asia/Manila", "category": "Drinks", "granularity": "week"},
        {"compare": "custom", "compare_start": "2024-01-01", "compare_end": "2024-01-31"},
    ],
)
def test_reading_then_writing_gives_the_same_url(query: dict[str, str]) -> None:
    view = view_from_query({k: [v] for k, v in query.items()}, DIMS, [GRANULARITY], compare=True)
    period = view.period or PeriodChoice()
    again = query_from_view(
        period, view.filters, view.options, view.compare, default_options={"granularity": "month"}, dims=DIMS
    )
    assert again == query


def test_a_shared_link_always_names_its_period() -> None:
    assert explicit_query(PeriodChoice(), {"region": "North"}) == {
        "period": DEFAULT_PERIOD,
        "region": "North",
    }
    assert explicit_query(PeriodChoice("today"), {"period": "today"}) == {"period": "today"}
    custom = {"start": "2025-01-01", "end": "2025-01-31"}
    assert explicit_query(PeriodChoice(CUSTOM, dt.date(2025, 1, 1), dt.date(2025, 1, 31)), custom) == custom


# --- a page under AppTest ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_caches(cli_env: Settings) -> Iterator[None]:
    resources.engine().dispose()
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    resources.engine().dispose()
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def tiny(engine: Engine) -> Business:
    business = new_business(engine, "Link Traders")
    insert_tiny(engine, business.id)
    return business


def test_a_page_opened_with_a_query_shows_that_view(
    engine: Engine, settings: Settings, tiny: Business
) -> None:
    at = app_test("sales")
    at.session_state["authentication_status"] = True
    at.session_state["username"] = make_user(engine, tiny)
    at.query_params["start"] = "2025-01-01"
    at.query_params["end"] = "2025-03-31"
    at.query_params["region"] = "North"
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="sales_period").value == CUSTOM
    assert at.multiselect(key="sales_f_region").value == ["North"]
    north = report_for(
        engine,
        settings,
        tiny,
        "sales_summary",
        start=dt.date(2025, 1, 1),
        end=dt.date(2025, 3, 31),
        tz=tiny.timezone,
        region="North",
    )
    assert metric(at, "Revenue") == format_value(north.kpi("revenue").value, "money", tiny.currency)
    # A filter picked on the page goes into the URL, comma-separated after the one there.
    at.multiselect(key="sales_f_region").select("South").run()
    assert at.query_params["region"] == "North,South"
    assert at.query_params["start"] == "2025-01-01"


def test_the_view_of_a_link_is_every_widgets_default_in_the_runs_after_it(
    engine: Engine, tiny: Business
) -> None:
    """Streamlit sends a value written to a widget's key to the browser only in the run that wrote it.
    A browser that draws the widget first from a later run (the rerun right after a login that opened
    a link did) starts from the widget's default and sends that back: the link's region was dropped
    after the login (tests/browser/test_shareable). In every later run, each widget's default is the
    view."""
    at = app_test("sales")
    at.session_state["authentication_status"] = True
    at.session_state["username"] = make_user(engine, tiny)
    link = {"start": "2025-01-01", "end": "2025-03-31", "region": "North", "granularity": "week"}
    for key, value in link.items():
        at.query_params[key] = value
    at.run()
    assert at.multiselect(key="sales_f_region").proto.set_value  # the run that applied the link
    at.run()  # a rerun of the same view (the login cookie's component reports back)
    assert not at.exception, at.exception
    region = at.multiselect(key="sales_f_region")
    assert not region.proto.set_value
    assert [region.options[i] for i in region.proto.default] == ["North"]
    dates = [at.date_input(key=f"sales_{k}").proto.default for k in ("start", "end")]
    assert dates == [["2025-01-01"], ["2025-03-31"]]
    period = at.selectbox(key="sales_period")
    assert period.options[period.proto.default] == PERIOD_LABELS[CUSTOM]
    buckets = at.selectbox(key="sales_o_granularity")
    assert buckets.options[buckets.proto.default] == "Week"


def test_a_page_at_its_defaults_keeps_a_bare_url(engine: Engine) -> None:
    empty = new_business(engine, "Empty Traders")  # no sales at all: the default period stays
    at = app_test("overview")
    at.session_state["authentication_status"] = True
    at.session_state["username"] = make_user(engine, empty)
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="overview_period").value == DEFAULT_PERIOD
    assert dict(at.query_params) == {}
    at.selectbox(key="overview_period").select("year_to_date").run()
    assert dict(at.query_params) == {"period": "year_to_date"}


def test_without_sales_in_the_default_period_the_page_opens_on_the_latest_month_with_some(
    engine: Engine, tiny: Business
) -> None:
    at = app_test("overview")
    at.session_state["authentication_status"] = True
    at.session_state["username"] = make_user(engine, tiny)
    at.run()
    assert not at.exception, at.exception
    # The tiny example's latest completed sale is on 1 Apr 2025 (shared/examples/tiny/sales.csv, O6).
    assert at.selectbox(key="overview_period").value == CUSTOM
    assert (at.date_input(key="overview_start").value, at.date_input(key="overview_end").value) == (
        dt.date(2025, 4, 1),
        dt.date(2025, 4, 30),
    )
    assert any("showing 1–30 Apr 2025, the latest month with sales" in i.value for i in at.info)
    assert dict(at.query_params) == {"start": "2025-04-01", "end": "2025-04-30"}
    # Once the user picks a period, the notice goes.
    at.selectbox(key="overview_period").select("year_to_date").run()
    assert not any("latest month with sales" in i.value for i in at.info)


def test_compared_with_the_same_dates_every_card_reads_no_change_without_colour(
    engine: Engine, settings: Settings, tiny: Business
) -> None:
    """A change that rounds to nothing is "+0.0 %" in grey with no arrow (not a red "-0.0 pp"); Side
    by side has nothing to put beside the period's own dates."""
    at = app_test("overview")
    at.session_state["authentication_status"] = True
    at.session_state["username"] = make_user(engine, tiny)
    for key, value in {"start": "2025-01-01", "end": "2025-03-31", "compare": "custom"}.items():
        at.query_params[key] = value
    at.query_params["compare_start"], at.query_params["compare_end"] = "2025-01-01", "2025-03-31"
    at.run()
    assert not at.exception, at.exception
    cards = {m.label: m.proto for m in at.metric if m.proto.delta}
    assert {"Revenue", "Gross profit", "Margin", "Orders"} <= set(cards)
    for label, card in cards.items():
        assert card.delta in ("+0.0 %", "+0.0 pp"), (label, card.delta)
        assert card.color == card.MetricColor.GRAY and card.direction == card.MetricDirection.NONE, label
    assert not [e for e in at.expander if e.label.startswith("Side by side")]
