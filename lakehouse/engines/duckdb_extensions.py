"""DuckDB connections with the lake's extensions (httpfs, avro, iceberg) loaded.

The extensions come from the pinned ``duckdb-extension-*`` wheels, because
DuckDB cannot download them offline. Loading them took 0.2-0.4 s per
connection, nearly all of it DuckDB checking each file's signature (48 MB for
iceberg). The check is done once per installed file: after a connection has
loaded every file with signatures checked, the file's identity (size, mtime,
ctime, inode, DuckDB version) is recorded in the per-user cache, and later
connections load those same files with ``allow_unsigned_extensions``. A file
that changes in any way (reinstalled, edited: its ctime moves) is checked again.
Whoever could replace the file could equally edit lakehouse's own Python code
in the same environment, so the record gives away nothing the install did not.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import duckdb

from lakehouse.errors import ConfigError

# avro must be loaded before iceberg (measured: iceberg's manifest reader needs it).
EXTENSIONS = ("httpfs", "avro", "iceberg")
RECORD_NAME = "verified-extensions.json"


def extension_path(name: str) -> Path:
    """The ``.duckdb_extension`` file shipped in the ``duckdb-extension-<name>`` wheel."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"The DuckDB extension wheel duckdb-extension-{name} is not installed.",
            hint=f"pip install duckdb-extension-{name}=={duckdb.__version__}",
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(root.glob(f"extensions/*/{name}.duckdb_extension"))
    if not found:
        raise ConfigError(f"No {name}.duckdb_extension inside {root}.", hint="Reinstall the wheel.")
    return found[-1]


def quote(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def file_identity(path: Path) -> str:
    """What must stay the same for an earlier signature check to still hold."""
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:{duckdb.__version__}"


class VerifiedExtensions:
    """The record of extension files whose signatures DuckDB has checked."""

    def __init__(self, cache_dir: Path) -> None:
        self.path = cache_dir / "duckdb" / RECORD_NAME

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def all_verified(self, files: list[Path]) -> bool:
        known = self._read()
        return all(known.get(str(path)) == file_identity(path) for path in files)

    def record(self, files: list[Path]) -> None:
        """Remember ``files`` as checked (best effort: a read-only cache only costs time)."""
        known = self._read() | {str(path): file_identity(path) for path in files}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            staging = self.path.with_name(f"{RECORD_NAME}.{os.getpid()}.tmp")
            staging.write_text(json.dumps(known, indent=2))
            os.replace(staging, self.path)
        except OSError:
            pass


def connect_with_extensions(cache_dir: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with httpfs, avro and iceberg loaded.

    Signatures are checked unless these exact files were checked before (see the
    module docstring). Raises ``ConfigError`` when a wheel is missing and
    ``duckdb.Error`` when DuckDB refuses a file.
    """
    files = [extension_path(name) for name in EXTENSIONS]
    record = VerifiedExtensions(cache_dir)
    checked_before = record.all_verified(files)
    con = duckdb.connect(config={"allow_unsigned_extensions": checked_before})
    for path in files:
        con.execute(f"LOAD {quote(str(path))}")
    if not checked_before:
        record.record(files)
    return con
