"""Data freshness and import history: per business, never another's."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from core.db import make_sessionmaker
from core.settings import Settings
from ingest.freshness import data_freshness, import_history
from ingest.importer import import_file
from tests.conftest import new_business
from tests.factories import insert_tiny, tiny_rows


def test_freshness_counts_one_business_only(engine: Engine) -> None:
    tiny = new_business(engine, "Tiny")
    insert_tiny(engine, tiny.id)
    empty = new_business(engine, "Empty")
    with make_sessionmaker(engine)() as session:
        fresh = data_freshness(session, tiny.id)
        nothing = data_freshness(session, empty.id)
        with pytest.raises(LookupError):
            data_freshness(session, 10**9)
    assert fresh.data_version == 1 and fresh.updated_at is not None
    assert fresh.rows["Customers"] == len(tiny_rows("customers"))
    assert fresh.rows["Sales lines"] == len(tiny_rows("sales"))
    assert fresh.rows["Orders"] == len({r["order_id"] for r in tiny_rows("sales")})
    assert (nothing.data_version, nothing.updated_at, sum(nothing.rows.values())) == (0, None, 0)


def test_import_history_is_newest_first_and_per_business(engine: Engine, settings: Settings) -> None:
    mine = new_business(engine, "Mine")
    theirs = new_business(engine, "Theirs")
    good = b"customer_code,name,customer_type,region\nA1,Alpha,retail,North\n"
    bad = b"customer_code,name,customer_type,region\nA2,Beta,wholesome,North\n"
    assert import_file(engine, mine.id, "customers", "good.csv", good, settings, username="ann").ok
    assert not import_file(engine, mine.id, "customers", "bad.csv", bad, settings, username="ann").ok
    assert import_file(engine, theirs.id, "customers", "theirs.csv", good, settings).ok
    with make_sessionmaker(engine)() as session:
        records = import_history(session, mine.id)
    assert [(r.filename, r.status, r.error_count, r.username) for r in records] == [
        ("bad.csv", "rejected", 1, "ann"),
        ("good.csv", "imported", 0, "ann"),
    ]
    assert records[1].inserted == 1
