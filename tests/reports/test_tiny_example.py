"""The hand-checked tiny example (shared/examples/tiny): every figure of expected.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.models import Business
from core.settings import Settings
from exporters.json_export import report_document
from tests.factories import TINY_DIR, insert_tiny, money
from tests.reports.reporting import run_report

EXPECTED = json.loads((TINY_DIR / "expected.json").read_text(encoding="utf-8"))
PERIOD = ("start=2025-01-01", "end=2025-03-31")


@pytest.fixture
def tiny(engine: Engine, business: Business) -> Business:
    insert_tiny(engine, business.id)
    return business


def _doc(engine: Engine, settings: Settings, business: Business, slug: str) -> dict:  # type: ignore[type-arg]
    return report_document(run_report(engine, settings.snapshot_dir, business.id, slug, *PERIOD))


def test_kpi_dashboard_matches_expected(engine: Engine, settings: Settings, tiny: Business) -> None:
    kpis = _doc(engine, settings, tiny, "kpi_dashboard")["kpis"]
    for key, value in EXPECTED["kpis"].items():
        if key in ("margin_pct",):
            assert kpis[key] == pytest.approx(value, rel=1e-12)
        elif key == "orders":
            assert kpis[key] == value
        else:
            assert money(kpis[key]) == money(value), key


def test_sales_summary_by_month_and_region(engine: Engine, settings: Settings, tiny: Business) -> None:
    tables = _doc(engine, settings, tiny, "sales_summary")["tables"]
    by_month = {r["month"]: r for r in tables["by_month"]}
    assert set(by_month) == {"2025-01", "2025-02", "2025-03"}
    assert by_month["2025-02"]["revenue"] == 0
    for month, figures in EXPECTED["by_month"].items():
        for key, value in figures.items():
            assert money(by_month[month][key]) == money(value), (month, key)
    regions = {r["region"]: r["revenue"] for r in tables["by_region"]}
    assert {k: money(v) for k, v in regions.items()} == {
        k: money(v) for k, v in EXPECTED["by_region"].items()
    }
    customers = [(r["customer_code"], money(r["revenue"])) for r in tables["by_customer"]]
    assert customers == [(k, money(v)) for k, v in EXPECTED["top_customers"].items()]


def test_kpi_dashboard_top_customers_order(engine: Engine, settings: Settings, tiny: Business) -> None:
    top = _doc(engine, settings, tiny, "kpi_dashboard")["tables"]["top_customers"]
    assert [r["customer_code"] for r in top] == list(EXPECTED["top_customers"])


def test_snapshot_is_reused_until_data_changes(engine: Engine, settings: Settings, tiny: Business) -> None:
    run_report(engine, settings.snapshot_dir, tiny.id, "kpi_dashboard", *PERIOD)
    folders = sorted(p.name for p in Path(settings.snapshot_dir, f"b{tiny.id}").glob("v*"))
    run_report(engine, settings.snapshot_dir, tiny.id, "sales_summary", *PERIOD)
    assert sorted(p.name for p in Path(settings.snapshot_dir, f"b{tiny.id}").glob("v*")) == folders
