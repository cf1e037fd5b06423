"""`lakehouse backup` and `lakehouse restore`: a restored lake reads identically.

The restore target is a second small stack (S3 and catalog) in its own home on
free ports, stopped at the end even when the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.backup import MANIFEST, BackupError, backup, sha256_of
from lakehouse.config import load_settings
from lakehouse.restore import restore
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


def edit_manifest(source: Path, target: Path, change: Callable[[dict[str, Any]], object]) -> Path:
    """A copy of the backup at ``source`` in ``target`` whose manifest ``change`` edited."""
    shutil.copytree(source, target)
    manifest = json.loads((target / MANIFEST).read_text())
    change(manifest)
    (target / MANIFEST).write_text(json.dumps(manifest))
    return target


def test_restore_force_checks_everything_before_changing_a_table(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    """An edited or damaged backup changes nothing: the breaker's restore --force dropped
    the table, then failed with 'unexpected ServerError ... a bug'."""
    name = f"{namespace}.kept"
    lake.ingest(pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"]}), name)
    good = tmp_path / "good"
    backup(lake.settings, good)
    lake.ingest(pa.table({"id": [4], "v": ["d"]}), name)  # the state a bad restore must keep
    before = table_state(lake, name)
    metadata = next(t["metadata_location"] for t in json.loads((good / MANIFEST).read_text())
                    ["tables"] if f"{t['namespace']}.{t['name']}" == name)  # fmt: skip

    def point_at_missing_file(m: dict[str, Any]) -> None:
        for t in m["tables"]:
            t["metadata_location"] = t["metadata_location"] + ".edited"

    def escape_the_backup(m: dict[str, Any]) -> None:
        m["objects"][0]["uri"] = "s3://warehouse/../../../../etc/hostname"

    def garbage_metadata(m: dict[str, Any]) -> None:
        entry = next(o for o in m["objects"] if o["uri"] == metadata)
        local = tmp_path / "garbage" / "objects" / Path(*metadata.removeprefix("s3://").split("/"))
        local.write_text('{"format-version": 2, "not": "iceberg"}')
        m["counts"]["bytes"] += local.stat().st_size - entry["bytes"]
        entry.update(bytes=local.stat().st_size, sha256=sha256_of(local))

    def other_bytes_at_a_live_key(m: dict[str, Any]) -> None:
        """A data file of the live table, same size, other bytes: uploading would change it."""
        entry = next(o for o in m["objects"] if f"/{name.split('.')[1]}/data/" in o["uri"])
        local = (
            tmp_path / "clash" / "objects" / Path(*entry["uri"].removeprefix("s3://").split("/"))
        )
        data = bytearray(local.read_bytes())
        data[len(data) // 2] ^= 0xFF
        local.write_bytes(bytes(data))
        entry.update(sha256=sha256_of(local))

    cases = {
        "with other content": other_bytes_at_a_live_key,
        "damaged manifest": point_at_missing_file,
        "plain object key": escape_the_backup,
        "not Iceberg table metadata": garbage_metadata,
        "damaged manifest: objects": lambda m: m.pop("objects"),
        "damaged manifest: tables": lambda m: m.update(tables=None),
    }
    for index, (message, change) in enumerate(cases.items()):
        special = {garbage_metadata: "garbage", other_bytes_at_a_live_key: "clash"}
        where = tmp_path / special.get(change, f"edited-{index}")
        edited = edit_manifest(good, where, change)
        result = run_cli("restore", str(edited), "--force", check=False)
        assert result.returncode == 1, (message, result)
        assert message in result.stderr and "Hint:" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "bug" not in result.stderr, result.stderr
        with pytest.raises(BackupError, match=message):
            restore(lake.settings, edited, force=True)
        after = table_state(lake, name)
        assert after[:2] == before[:2] and after[2].equals(before[2]), message


def test_restore_force_swaps_a_table_back_to_the_backup(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    """Replacing an existing table goes through a staged name; none is left behind."""
    name = f"{namespace}.swapped"
    lake.ingest(pa.table({"id": [1, 2], "v": ["a", "b"]}), name)
    saved = table_state(lake, name)
    target = tmp_path / "backup"
    backup(lake.settings, target)
    lake.ingest(pa.table({"id": [3], "v": ["c"]}), name)
    result = run_cli("restore", str(target), "--force")
    assert result.stdout.startswith("Restored "), result
    restored = table_state(lake, name)
    assert restored[:2] == saved[:2] and restored[2].equals(saved[2])
    assert lake.tables(namespace) == [name]


def test_backup_cli_is_quiet_when_not_a_terminal(stack: Settings, tmp_path: Path) -> None:
    """No progress bar escapes in a pipe: one summary line on stdout."""
    target = tmp_path / "piped"
    result = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "backup", str(target)],
        capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Backed up ") and "\x1b" not in result.stdout + result.stderr
