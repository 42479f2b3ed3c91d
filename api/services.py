"""The API's process-wide resources: settings, database engine, snapshot store and file store, made once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db import make_engine, make_sessionmaker
from core.settings import Settings
from runs.files import FileStore
from snapshots.store import SnapshotStore


@dataclass(frozen=True)
class Services:
    """What every handler works with; one per server process (see `services()`)."""

    settings: Settings
    engine: Engine
    store: SnapshotStore
    files: FileStore
    sessions: sessionmaker[Session]

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            store=SnapshotStore(engine, settings.snapshot_dir),
            files=FileStore.from_settings(settings, engine),
            sessions=make_sessionmaker(engine),
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session:
            yield session


_lock = threading.Lock()
_services: Services | None = None


def services() -> Services:
    """The server's resources, made from the environment on the first call (no connection is
    opened at import time: the app's module is imported before anything is configured)."""
    global _services
    with _lock:
        if _services is None:
            _services = Services.from_settings(Settings.from_env())
        return _services
