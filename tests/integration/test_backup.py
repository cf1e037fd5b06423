"""`lakehouse backup` and `lakehouse restore`: a restored lake reads identically.

The restore target is a second small stack (S3 and catalog) in its own home on
free ports, stopped at the end even when the test fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.backup import MANIFEST, BackupError, backup, restore
from lakehouse.config import load_settings
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def fresh_stack(tmp_path: Path, stack: Settings) -> Iterator[Settings]:
    """S3 and catalog in a new home on free ports, with the session stack's bucket."""
    env = isolated_stack_env(tmp_path / "restored-home")
    settings = load_settings(**{k.removeprefix("LAKEHOUSE_").lower(): v for k, v in env.items()})
    runtime = LocalRuntime(settings)
    try:
        runtime.up(["s3", "catalog"])
        yield settings
    finally:
        runtime.down(["catalog", "s3"])


def table_state(lake: Lakehouse, name: str) -> tuple[list[int], int | None, pa.Table]:
    """Snapshot ids (oldest first), the current one, and the rows sorted by id."""
    table = lake.catalog.load_table(name)
    snapshots = [s.snapshot_id for s in sorted(table.snapshots(), key=lambda s: s.timestamp_ms)]
    current = table.current_snapshot()
    rows = lake.sql(f"SELECT * FROM {name} ORDER BY id")
    return snapshots, current.snapshot_id if current else None, rows


def make_tables(lake: Lakehouse, namespace: str) -> list[str]:
    """Tables with several snapshots, an overwrite and deletes (copy-on-write and a delete file)."""
    orders, events = f"{namespace}.orders", f"{namespace}.events"
    for start in (0, 10, 20):
        lake.ingest(pa.table({"id": list(range(start, start + 10)), "v": ["x"] * 10}), orders)
    lake.catalog.load_table(orders).delete("id < 5")
    lake.ingest(pa.table({"id": [1, 2, 3], "kind": ["a", "b", "c"]}), events)
    lake.ingest(pa.table({"id": [4, 5], "kind": ["d", "e"]}), events, mode="overwrite")
    lake.sql(f"INSERT INTO {events} VALUES (6, 'f'), (7, 'g')")
    lake.sql(f"DELETE FROM {events} WHERE id = 6")
    return [orders, events]


def test_restore_into_a_fresh_home_reads_every_table_identically(
    lake: Lakehouse, namespace: str, fresh_stack: Settings, tmp_path: Path
) -> None:
    names = make_tables(lake, namespace)
    before = {name: table_state(lake, name) for name in names}
    target = tmp_path / "backup"
    run_cli("backup", str(target))
    manifest = json.loads((target / MANIFEST).read_text())
    assert {(t["namespace"], t["name"]) for t in manifest["tables"]} >= {
        tuple(name.split(".")) for name in names
    }
    assert manifest["counts"]["objects"] == len(manifest["objects"]) > 0

    restored = restore(fresh_stack, target)
    assert restored.tables == len(manifest["tables"])
    with Lakehouse(fresh_stack) as other:
        for name in names:
            snapshots, current, rows = table_state(other, name)
            assert (snapshots, current) == before[name][:2], name
            assert rows.equals(before[name][2]), name
        assert sorted(other.tables(namespace)) == sorted(names)
    # With the target's S3 down, a backup of it is one error and leaves nothing behind.
    LocalRuntime(fresh_stack).down(["s3"])
    with pytest.raises(BackupError, match="did not answer") as raised:
        backup(fresh_stack, tmp_path / "while-s3-is-down")
    assert raised.value.hint and not (tmp_path / "while-s3-is-down").exists()


def test_bad_backup_input_is_one_error_with_a_hint(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    lake.ingest(pa.table({"id": [1]}), f"{namespace}.only")
    target = tmp_path / "backup"
    backup(lake.settings, target)
    not_a_backup = tmp_path / "empty"
    not_a_backup.mkdir()
    cases = {"missing path": tmp_path / "nowhere", "not a backup": not_a_backup}
    future = tmp_path / "future"
    future.mkdir()
    manifest = json.loads((target / MANIFEST).read_text())
    (future / MANIFEST).write_text(json.dumps(manifest | {"version": 99}))
    cases["wrong version"] = future
    for what, path in cases.items():
        with pytest.raises(BackupError) as raised:
            restore(lake.settings, path)
        assert raised.value.hint, what
        result = run_cli("restore", str(path), check=False)
        assert result.returncode == 1, (what, result)
        assert "Hint:" in result.stderr and "Traceback" not in result.stderr, result.stderr
    # Into a non-empty target directory, or a stack that has tables: refused.
    with pytest.raises(BackupError, match="not an empty directory"):
        backup(lake.settings, target)
    with pytest.raises(BackupError, match="already has"):
        restore(lake.settings, target)
    # A damaged file is found before anything is written.
    damaged = next((target / "objects").rglob("*.parquet"))
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"!")
    with pytest.raises(BackupError, match="damaged"):
        restore(lake.settings, target, force=True)


def test_backup_cli_is_quiet_when_not_a_terminal(stack: Settings, tmp_path: Path) -> None:
    """No progress bar escapes in a pipe: one summary line on stdout."""
    target = tmp_path / "piped"
    result = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "backup", str(target)],
        capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Backed up ") and "\x1b" not in result.stdout + result.stderr
