"""Every file lakehouse writes is private: the home after `up` (with OpenSearch,
whose prepare() copies config files), a `sync create` and a backup.

A home holds credentials, the catalog and all table data; a backup holds the
whole lake. Nothing in either may be readable by group or other.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from tests.integration.conftest import run_cli

pytestmark = [pytest.mark.integration, pytest.mark.lakehouse_opensearch]


def open_to_others(root: Path) -> list[str]:
    """Files and directories under ``root`` (itself included) that group or other
    may read, write or enter; symbolic links and sockets aside."""
    found = []
    for path in [root, *root.rglob("*")]:
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:  # a service removed it meanwhile
            continue
        if mode & 0o077 and not (stat.S_ISLNK(mode) or stat.S_ISSOCK(mode)):
            found.append(f"{stat.filemode(mode)} {path}")
    return found


def test_nothing_in_the_home_is_open_to_others(
    stack: Settings, lake: Lakehouse, namespace: str
) -> None:
    name = "privacy_check"
    # sync create checks that its source table exists.
    lake.ingest(pa.table({"id": [1]}), f"{namespace}.items")
    # The CLI, not `up`, writes this file (a caller with the common umask 022).
    caller_umask = os.umask(0o022)
    try:
        run_cli("sync", "create", name, "--source", "iceberg", "--target", "opensearch",
                "--tables", f"{namespace}.items", "--key", "id")  # fmt: skip
    finally:
        os.umask(caller_umask)
    try:
        assert (stack.home_dir / "sync" / "integrations.json").is_file()
        # SeaweedFS writes a volume's .vif (volume metadata, no data or keys) 0644
        # itself when a first write allocates the volume, after `up` returned; `up`
        # narrows those it finds at start. The 0700 home keeps others out meanwhile.
        found = [line for line in open_to_others(stack.home_dir) if not line.endswith(".vif")]
        assert found == [], "\n".join(found)
    finally:
        run_cli("sync", "delete", name, check=False)


def test_a_backup_is_private(
    stack: Settings, lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    lake.ingest(pa.table({"id": [1, 2, 3]}), f"{namespace}.items")
    target = tmp_path / "backup"
    caller_umask = os.umask(0o022)
    try:
        run_cli("backup", str(target))
    finally:
        os.umask(caller_umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert (target / "manifest.json").is_file() and (target / "catalog.db").is_file()
    found = open_to_others(target)
    assert found == [], "\n".join(found)
