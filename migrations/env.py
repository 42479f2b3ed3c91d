"""Alembic environment: runs against the engine handed in by analytics.db.migrate or DATABASE_URL."""

from __future__ import annotations

from alembic import context

from analytics.db import make_engine
from analytics.models import Base
from analytics.settings import Settings

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or make_engine(Settings.from_env().database_url)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
