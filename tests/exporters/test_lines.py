"""sales_lines: the tiny example by hand, a pandas oracle on demo data, and the streaming in batches."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, cast

import duckdb
import pandas as pd
import pytest
from sqlalchemy import Engine, update

from analytics.periods import Period
from analytics.query import ReportContext
from analytics.report import ParamError, Report, Scope
from core.db import bump_data_version, make_sessionmaker, session_scope
from core.models import Business, SaleLine
from core.settings import Settings
from ingest.demo import load_demo
from reports.lines import COLUMNS, half_even_cents_sql, lines_table, plan_chunks
from snapshots.store import SnapshotStore
from tests.factories import insert_tiny, raw_frames
from tests.reports.reporting import NOW, run_report

Q1 = ("start=2025-01-01", "end=2025-03-31")
DEMO_TODAY = dt.date(2025, 6, 30)
KEYS = [c.key for c in COLUMNS]
MONEY = ("unit_price", "net", "cost", "profit")
CENT = Decimal("0.01")


def rows_of(report: Report) -> list[tuple[Any, ...]]:
    return [row for batch in report.tables["lines"].batches() for row in batch]


def cents(value: Any) -> Decimal:
    """A stream money value (float at cents) as an exact Decimal."""
    return Decimal(f"{value:.2f}")


@pytest.fixture(scope="module")
def tiny(engine: Engine) -> Business:
    from tests.conftest import new_business

    business = new_business(engine, "Tiny lines")
    insert_tiny(engine, business.id)
    return business


@pytest.fixture(scope="module")
def demo(engine: Engine) -> Iterator[tuple[int, pd.DataFrame]]:
    summary = load_demo(engine, f"ln{uuid.uuid4().hex[:8]}", rows=3000, seed=7, today=DEMO_TODAY)
    yield summary.business_id, raw_frames(engine, summary.business_id)["lines"]


# --- the tiny example, by hand ------------------------------------------------------------------


def test_tiny_lines_by_hand(engine: Engine, settings: Settings, tiny: Business) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny.id, "sales_lines", *Q1)
    rows = [dict(zip(KEYS, r, strict=True)) for r in rows_of(report)]
    got = [
        (r["order_id"], r["order_date"].isoformat(), r["sku"], r["status"], *(cents(r[k]) for k in MONEY))
        for r in rows
    ]
    d = Decimal
    assert got == [
        ("O1", "2025-01-05", "P1", "completed", d("15.00"), d("150.00"), d("100.00"), d("50.00")),
        ("O1", "2025-01-05", "P2", "completed", d("10.00"), d("45.00"), d("20.00"), d("25.00")),
        ("O9", "2025-01-30", "P1", "completed", d("15.00"), d("30.00"), d("20.00"), d("10.00")),
        ("O2", "2025-01-31", "P1", "completed", d("14.00"), d("1330.00"), d("1000.00"), d("330.00")),
        ("O3", "2025-02-01", "P2", "draft", d("10.00"), d("200.00"), d("80.00"), d("120.00")),
        ("O4", "2025-02-14", "P1", "void", d("15.00"), d("60.00"), d("40.00"), d("20.00")),
        ("O8", "2025-03-01", "P1", "refunded", d("15.00"), d("30.00"), d("20.00"), d("10.00")),
        ("O5", "2025-03-31", "P2", "completed", d("10.00"), d("30.00"), d("12.00"), d("18.00")),
    ]
    first = rows[1]
    assert (first["customer_code"], first["customer_name"], first["customer_type"], first["region"]) == (
        "A1",
        "Alma Café",
        "retail",
        "North",
    )
    assert (first["storefront_code"], first["storefront_name"], first["sales_rep"]) == (
        "M",
        "Main Street",
        "ana",
    )
    assert (first["product_name"], first["category"], first["quantity"], first["discount"]) == (
        "Plantain Chips",
        "Snacks",
        5.0,
        pytest.approx(0.1),
    )
    kpis = {k.key: k.value for k in report.kpis}
    assert kpis == {
        "lines": 8,
        "orders": 4,
        "quantity": 120.0,
        "revenue": Decimal("1585"),
        "cost": Decimal("1152"),
        "gross_profit": Decimal("433"),
        "margin_pct": pytest.approx(433 / 1585),
        "other_lines": 3,
    }
    assert report.notes  # says that draft, void and refunded lines are listed but not counted
    assert report.tables["lines"].row_count == 8


def test_tiny_completed_only_and_filters(engine: Engine, settings: Settings, tiny: Business) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny.id, "sales_lines", *Q1, "status=completed")
    assert [r[0] for r in rows_of(report)] == ["O1", "O1", "O9", "O2", "O5"]
    assert report.kpi("other_lines").value == 0 and report.notes == []
    snacks = run_report(engine, settings.snapshot_dir, tiny.id, "sales_lines", *Q1, "category=Snacks")
    assert [(r[0], r[10]) for r in rows_of(snacks)] == [("O1", "P2"), ("O3", "P2"), ("O5", "P2")]
    assert snacks.kpi("revenue").value == Decimal("75")
    with pytest.raises(ParamError, match="status must be one of"):
        run_report(engine, settings.snapshot_dir, tiny.id, "sales_lines", *Q1, "status=void")


def test_preview_frame_holds_exact_decimals(engine: Engine, settings: Settings, tiny: Business) -> None:
    report = run_report(engine, settings.snapshot_dir, tiny.id, "sales_lines", *Q1)
    frame = report.tables["lines"].frame
    assert list(frame.columns) == KEYS and len(frame) == 8
    assert list(frame["net"][:2]) == [Decimal("150.00"), Decimal("45.00")]
    assert all(isinstance(v, Decimal) for k in MONEY for v in frame[k])


def test_empty_period(engine: Engine, settings: Settings, tiny: Business) -> None:
    report = run_report(
        engine, settings.snapshot_dir, tiny.id, "sales_lines", "start=2030-01-01", "end=2030-01-31"
    )
    assert report.is_empty and rows_of(report) == [] and report.tables["lines"].frame.empty
    assert report.kpi("revenue").value == 0 and report.kpi("margin_pct").value is None


def test_column_choice_streams_only_those_columns(engine: Engine, settings: Settings, tiny: Business) -> None:
    report = run_report(
        engine, settings.snapshot_dir, tiny.id, "sales_lines", *Q1, "columns.lines=net,order_id"
    )
    assert [c.key for c in report.tables["lines"].columns] == ["net", "order_id"]
    assert rows_of(report)[0] == (150.0, "O1")


# --- demo data against a pandas oracle ------------------------------------------------------------


def oracle(lines: pd.DataFrame, start: str, end: str, **where: str) -> list[tuple[Any, ...]]:
    """The expected rows from the raw database rows: Decimal money rounded half-even to cents."""
    frame = lines[
        (lines["order_date"] >= dt.date.fromisoformat(start))
        & (lines["order_date"] <= dt.date.fromisoformat(end))
    ]
    for column, value in where.items():
        frame = frame[frame[column] == value]
    frame = frame.sort_values(["order_date", "order_id", "sku", "line_id"])

    def half_even(amount: Decimal) -> Decimal:
        return amount.quantize(CENT, rounding=ROUND_HALF_EVEN)

    out = []
    for r in cast("Iterator[Any]", frame.itertuples(index=False)):  # pandas-stubs: fields typed any scalar
        net, cost = Decimal(r.net), Decimal(r.cost)
        out.append(
            (
                r.order_id,
                r.order_date,
                r.status,
                r.customer_code,
                r.customer_name,
                r.customer_type,
                r.region,
                r.storefront_code,
                r.storefront_name,
                r.sales_rep,
                r.sku,
                r.product_name,
                r.category,
                float(r.quantity),
                half_even(Decimal(int(r.unit_price_micros)) / 1_000_000),
                pytest.approx(float(r.discount)),
                half_even(net),
                half_even(cost),
                half_even(net - cost),
            )
        )
    return out


def normalised(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    money_at = {KEYS.index(k) for k in MONEY}
    return [tuple(cents(v) if i in money_at else v for i, v in enumerate(row)) for row in rows]


@pytest.mark.parametrize(
    ("pairs", "where"),
    [
        ((), {}),
        (("region=North",), {"region": "North"}),
        (("status=completed", "category=Beverages"), {"status": "completed", "category": "Beverages"}),
    ],
)
def test_demo_rows_match_pandas_oracle(
    engine: Engine,
    settings: Settings,
    demo: tuple[int, pd.DataFrame],
    pairs: tuple[str, ...],
    where: dict[str, str],
) -> None:
    business_id, lines = demo
    start, end = "2024-07-01", "2025-06-30"
    report = run_report(
        engine, settings.snapshot_dir, business_id, "sales_lines", f"start={start}", f"end={end}", *pairs
    )
    expected = oracle(lines, start, end, **where)
    assert len(expected) > 20
    assert report.tables["lines"].row_count == len(expected)
    assert normalised(rows_of(report)) == expected
    done = [r for r in expected if r[2] == "completed"]
    raw = lines[(lines["order_date"] >= dt.date(2024, 7, 1)) & (lines["order_date"] <= dt.date(2025, 6, 30))]
    for column, value in where.items():
        raw = raw[raw[column] == value]
    raw = raw[raw["status"] == "completed"]
    assert report.kpi("revenue").value == sum(raw["net"], Decimal(0))
    assert report.kpi("gross_profit").value == sum(raw["net"], Decimal(0)) - sum(raw["cost"], Decimal(0))
    assert report.kpi("orders").value == raw["order_id"].nunique()
    assert report.kpi("lines").value == len(expected)
    assert report.kpi("other_lines").value == len(expected) - len(done)


# --- streaming ------------------------------------------------------------------------------------


def test_stream_reads_in_small_batches_on_its_own_connection(
    engine: Engine, settings: Settings, demo: tuple[int, pd.DataFrame]
) -> None:
    business_id, lines = demo
    period = Period(dt.date(2025, 1, 1), dt.date(2025, 3, 31))
    snapshot = SnapshotStore(engine, settings.snapshot_dir).current(business_id)
    with make_sessionmaker(engine)() as session:
        business = session.get(Business, business_id)
        assert business is not None
        db = snapshot.connect()
        ctx = ReportContext(session, business, Scope(business_id), db, snapshot, period=period, now=NOW)
        table = lines_table(ctx, period, "all", {}, chunk_rows=50, batch_rows=7)
        db.close()  # the stream must not need the builder's connection
    batches = [list(b) for b in table.batches()]
    total = sum(len(b) for b in batches)
    assert total == table.row_count == len(oracle(lines, "2025-01-01", "2025-03-31")) > 100
    assert max(len(b) for b in batches) == 7 and len(batches) >= total / 7
    assert normalised([r for b in batches for r in b]) == oracle(lines, "2025-01-01", "2025-03-31")
    # a second read streams again from the start
    assert sum(len(b) for b in table.batches()) == total


def test_a_stream_keeps_reading_its_own_snapshot_after_new_data(engine: Engine, settings: Settings) -> None:
    from tests.conftest import new_business

    business = new_business(engine, "Changing")
    insert_tiny(engine, business.id)
    report = run_report(engine, settings.snapshot_dir, business.id, "sales_lines", *Q1)
    before = rows_of(report)
    with session_scope(engine) as s:
        s.execute(
            update(SaleLine).where(SaleLine.business_id == business.id).values(quantity=SaleLine.quantity * 2)
        )
        bump_data_version(s, business.id)
    newer = run_report(engine, settings.snapshot_dir, business.id, "sales_lines", *Q1)  # builds the new one
    assert rows_of(newer) != before
    assert rows_of(report) == before  # the export that started earlier stays on its own data


def test_stream_after_its_snapshot_was_removed_says_so(engine: Engine, settings: Settings) -> None:
    from tests.conftest import new_business

    business = new_business(engine, "Changing")
    insert_tiny(engine, business.id)
    report = run_report(engine, settings.snapshot_dir, business.id, "sales_lines", *Q1)
    with session_scope(engine) as s:
        bump_data_version(s, business.id)
    # A store that keeps no replaced snapshot: building the new one removes the old at once.
    SnapshotStore(engine, settings.snapshot_dir, keep_old=dt.timedelta(0)).refresh(business.id)
    with pytest.raises(RuntimeError, match="generate the report again"):
        rows_of(report)


def test_plan_chunks_never_splits_a_day() -> None:
    d = [dt.date(2025, 1, i) for i in range(1, 6)]
    counts = list(zip(d, [3, 4, 10, 1, 1], strict=True))
    assert plan_chunks(counts, 5) == [(d[0], d[0]), (d[1], d[1]), (d[2], d[2]), (d[3], d[4])]
    assert plan_chunks(counts, 100) == [(d[0], d[4])]
    assert plan_chunks([], 5) == []


@pytest.mark.parametrize(
    "micros",
    [0, 1, -1, 4999, 5000, 5001, 15000, 25000, -5000, -15000, -25000, -25001, 12_345_675_000, 10**15 + 5000],
)
def test_half_even_cents_sql_matches_decimal(micros: int) -> None:
    (value,) = duckdb.sql(f"SELECT {half_even_cents_sql(str(micros) + '::BIGINT')}").fetchone() or (None,)
    exact = (Decimal(micros) / 1_000_000).quantize(CENT, rounding=ROUND_HALF_EVEN)
    assert f"{value:.2f}" == str(exact if exact != 0 else Decimal("0.00"))
    assert value == float(exact)
