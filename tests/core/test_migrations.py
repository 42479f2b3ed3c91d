"""Migrations build exactly the models' schema, on SQLite and PostgreSQL, and run down and up again."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from core.db import alembic_config, make_engine, migrate
from core.models import Base


def test_migrations_match_models_and_round_trip(fresh_engine: Engine) -> None:
    migrate(fresh_engine)
    with fresh_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    assert diff == []
    assert set(Base.metadata.tables) <= set(inspect(fresh_engine).get_table_names())
    command.downgrade(alembic_config(fresh_engine), "base")
    assert "sales" not in inspect(fresh_engine).get_table_names()
    migrate(fresh_engine)
    migrate(fresh_engine)  # idempotent
    assert "sale_lines" in inspect(fresh_engine).get_table_names()


def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'pragmas.db'}")
    with eng.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    eng.dispose()


def test_upgrading_a_database_with_data_keeps_every_row(fresh_engine: Engine) -> None:
    # Batch mode rebuilds tables on SQLite; with foreign keys on, rebuilding `businesses` once
    # cascade-deleted every sale of every business. Rows written at 0003 must survive to head.
    command.upgrade(alembic_config(fresh_engine), "0003")
    with fresh_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO businesses (id, code, name, currency, timezone, data_version, created_at) "
                "VALUES (1, 'shop', 'Shop', 'EUR', 'UTC', 3, '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO customers (id, business_id, customer_code, name, customer_type, region, "
                "credit_limit_micros, email, active) VALUES (1, 1, 'C1', 'Ann', 'retail', 'North', 0, '', true)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO sales (id, business_id, order_id, order_date, customer_id, sales_rep, status, "
                "net_micros, cost_micros) VALUES (1, 1, 'R1', '2026-01-02', 1, '', 'completed', 5, 3)"
            )
        )
    migrate(fresh_engine)
    with fresh_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sales")).scalar() == 1
        assert conn.execute(text("SELECT data_version FROM businesses")).scalar() == 3
        tokens = conn.execute(text("SELECT data_token FROM businesses")).scalars().all()
        identity = conn.execute(text("SELECT value FROM app_settings WHERE key = 'database_id'")).scalar()
    assert len(tokens) == 1 and len(tokens[0]) == 32
    assert identity
