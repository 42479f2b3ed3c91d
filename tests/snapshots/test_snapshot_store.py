"""The snapshot store: built from the database by DuckDB, keyed by data token, previous one while refreshing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, select

from core.db import bump_data_version, session_scope
from core.models import Business, SaleLine
from core.settings import Settings
from snapshots.store import SNAPSHOT_TABLES, SnapshotStore
from tests.conftest import new_business
from tests.factories import insert_tiny, raw_frames


def _tiny(engine: Engine) -> Business:
    business = new_business(engine, "Snap")
    insert_tiny(engine, business.id)
    return business


def test_every_table_holds_exactly_the_business_rows(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    business = _tiny(engine)
    other = _tiny(engine)  # a second tenant in the same database must not leak in
    snap = SnapshotStore(engine, tmp_path).current(business.id)
    assert sorted(p.name for p in snap.path.iterdir()) == sorted(
        [*(f"{t}.parquet" for t in SNAPSHOT_TABLES), "built.json"]
    )
    raw = raw_frames(engine, business.id)
    con = snap.connect()
    try:
        lines = con.execute(
            "SELECT line_id, sku, quantity, net_micros FROM lines ORDER BY line_id"
        ).fetchall()
        sales = con.execute("SELECT order_id, quantity, net_micros FROM sales ORDER BY order_id").fetchall()
        order = con.execute("SELECT order_date FROM lines").fetchall()
    finally:
        con.close()
    with session_scope(engine) as s:
        ids = s.scalars(
            select(SaleLine.id).where(SaleLine.business_id == business.id).order_by(SaleLine.id)
        ).all()
        foreign = s.scalars(select(SaleLine.id).where(SaleLine.business_id == other.id)).all()
    assert [r[0] for r in lines] == list(ids) and not set(foreign) & {r[0] for r in lines}
    assert sum(r[3] for r in lines) == sum(r[2] for r in sales)  # each sale's total is its lines'
    assert len(sales) == raw["sales"]["order_id"].nunique()
    assert [r[0] for r in order] == sorted(r[0] for r in order)  # sorted by date for row-group skipping


def test_pages_get_the_previous_snapshot_while_another_process_builds(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    business = _tiny(engine)
    store = SnapshotStore(engine, tmp_path)
    first = store.current(business.id)
    with session_scope(engine) as s:
        bump_data_version(s, business.id)
    # Another builder holds the business's lock (its own open file: flock locks per open file).
    with SnapshotStore(engine, tmp_path).building(business.id):
        served = store.current(business.id, wait=False)
        assert served.refreshing and served.path == first.path and served.token == first.token
    fresh = store.current(business.id, wait=False)
    assert not fresh.refreshing and fresh.token != first.token


def test_the_daemon_tick_builds_only_what_is_missing(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    business = _tiny(engine)
    store = SnapshotStore(engine, tmp_path)
    assert business.id not in store.refresh_outdated()  # no report yet: nothing to keep fresh
    store.current(business.id)
    assert business.id not in store.refresh_outdated()  # nothing new: nothing rebuilt
    with session_scope(engine) as s:
        bump_data_version(s, business.id)
    assert not store.is_current(business.id)
    assert business.id in store.refresh_outdated()
