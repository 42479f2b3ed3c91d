"""Process-wide resources for the Streamlit app: settings, engine and snapshot store (created once)."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import Engine

from core.db import make_engine
from core.settings import Settings
from snapshots.store import SnapshotStore


@st.cache_resource
def settings() -> Settings:
    return Settings.from_env()


def _dispose(engine: Engine) -> None:
    engine.dispose()


@st.cache_resource(on_release=_dispose)
def engine() -> Engine:
    return make_engine(settings().database_url)


@st.cache_resource
def snapshot_store() -> SnapshotStore:
    return SnapshotStore(engine(), settings().snapshot_dir)
