"""Engines, sessions and migrations: the only place that opens database connections."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.models import AppSetting, Business, new_data_token
from core.settings import PROJECT_ROOT


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", 30)
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    session = make_sessionmaker(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest migration (idempotent)."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def business_by_code(session: Session, code: str) -> Business | None:
    return session.scalar(select(Business).where(Business.code == code))


def bump_data_version(session: Session, business_id: int) -> None:
    """Mark the business's data as changed (invalidates snapshots and cached runs)."""
    session.execute(
        update(Business)
        .where(Business.id == business_id)
        .values(
            data_version=Business.data_version + 1,
            data_token=new_data_token(),
            data_updated_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        )
    )


DATABASE_ID_KEY = "database_id"


def database_identity(engine: Engine) -> str:
    """This database's random identity (hex), created on first use (`init-db` creates it).

    Snapshots and stored files are filed under it, so two databases sharing one data folder
    never read each other's files. A copy of the database file keeps the identity; that is safe
    because everything is also keyed by the never-reused `Business.data_token`.
    """
    with engine.connect() as conn:
        found = conn.execute(select(AppSetting.value).where(AppSetting.key == DATABASE_ID_KEY)).scalar()
    if isinstance(found, str) and found:
        return found
    try:
        with session_scope(engine) as session:
            session.add(AppSetting(key=DATABASE_ID_KEY, value=secrets.token_hex(8)))
    except IntegrityError:
        pass  # another process created it first: read theirs
    with engine.connect() as conn:
        return str(
            conn.execute(select(AppSetting.value).where(AppSetting.key == DATABASE_ID_KEY)).scalar_one()
        )
