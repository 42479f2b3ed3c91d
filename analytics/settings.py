"""The one frozen settings object, read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    """Configuration for every front door (app, CLI, daemon). Build with `Settings.from_env()`."""

    database_url: str
    data_dir: Path
    max_upload_bytes: int = 50 * 1024 * 1024
    max_xlsx_expanded_bytes: int = 500 * 1024 * 1024
    snapshot_dir: Path = field(default=Path())

    def __post_init__(self) -> None:
        if self.snapshot_dir == Path():
            object.__setattr__(self, "snapshot_dir", self.data_dir / "snapshots")

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("TALLYBOARD_DATA_DIR", str(PROJECT_ROOT / "data")))
        default_url = f"sqlite:///{data_dir / 'tallyboard.db'}"
        return cls(
            database_url=os.environ.get("DATABASE_URL") or default_url,
            data_dir=data_dir,
            max_upload_bytes=_int_env("TALLYBOARD_MAX_UPLOAD_MB", 50) * 1024 * 1024,
            max_xlsx_expanded_bytes=_int_env("TALLYBOARD_MAX_XLSX_EXPANDED_MB", 500) * 1024 * 1024,
        )

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some fields replaced (tests and tools)."""
        return replace(self, **changes)  # type: ignore[arg-type]
