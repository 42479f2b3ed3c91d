"""DuckDB's sqlite and postgres extensions, loaded from their PyPI packages (no download at run time)."""

from __future__ import annotations

import importlib
from pathlib import Path

import duckdb

# extension -> the PyPI package that carries its binary (pinned to duckdb's version in requirements.txt)
PACKAGES = {"sqlite": "duckdb_extension_sqlite", "postgres": "duckdb_extension_postgres"}


def extension_file(name: str) -> Path:
    """The `.duckdb_extension` file of `name` inside its package, for this duckdb's version."""
    package = importlib.import_module(PACKAGES[name])
    folder = Path(package.__file__ or "").parent / "extensions" / f"v{duckdb.__version__}"
    path = folder / f"{name}.duckdb_extension"
    if not path.is_file():
        raise RuntimeError(
            f"DuckDB's {name} extension for duckdb {duckdb.__version__} is missing ({path}); "
            f"install the package {PACKAGES[name].replace('_', '-')}=={duckdb.__version__}."
        )
    return path


def load(con: duckdb.DuckDBPyConnection, name: str, directory: Path) -> None:
    """Install `name` into `directory` (once; a copy of the packaged file) and load it into `con`."""
    directory.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET extension_directory = '{directory.as_posix().replace(chr(39), chr(39) * 2)}'")
    con.execute(f"INSTALL '{extension_file(name).as_posix().replace(chr(39), chr(39) * 2)}'")
    con.execute(f"LOAD {name}")
