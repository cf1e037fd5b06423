"""Table maintenance on real servers: optimize on Trino (rows equal on DuckDB, Trino and
Spark), expiry and orphan removal while a Zero-ETL sync commits, the orphan floor, and
the scheduler service applying a declared policy."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.errors import LakehouseError
from lakehouse.lake.maintenance import MaintenanceReport, data_files
from lakehouse.lake.orphans import referenced_files, stored_files
from lakehouse.sync.integrations import Integration
from lakehouse.sync.status import StatusStore
from lakehouse.sync.verify import verify
from tests.integration.conftest import run_cli
from tests.integration.test_sync import (  # noqa: F401 - declare and shop are fixtures
    Declare,
    background_traffic,
    declare,
    follower,
    shop,
    wait_for,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lakehouse_trino,
    pytest.mark.lakehouse_spark,
    pytest.mark.lakehouse_postgres,
]
SCHEMA = pa.schema([("id", pa.int64()), ("region", pa.string()), ("amount", pa.float64())])


def small_appends(lake: Lakehouse, name: str, appends: int, partitioned: bool = False) -> None:
    """``appends`` commits of 50 rows each (both regions in every one)."""
    table = lake.catalog.create_table(name, schema=SCHEMA)
    if partitioned:
        with table.update_spec() as spec:
            spec.add_identity("region")
    for step in range(appends):
        ids = range(step * 50, step * 50 + 50)
        table.append(pa.table({"id": list(ids), "region": ["eu" if i % 2 else "us" for i in ids],
                               "amount": [i * 1.25 for i in ids]}, schema=SCHEMA))  # fmt: skip


def rows_everywhere(lake: Lakehouse, name: str) -> dict[str, list[dict[str, object]]]:
    sql = f"SELECT id, region, amount FROM {name} ORDER BY id"
    return {e: lake.sql(sql, engine=e).to_pylist() for e in ("duckdb", "trino", "spark")}


def files_by_partition(lake: Lakehouse, name: str) -> dict[str, int]:
    table = lake.catalog.load_table(name)
    counts: dict[str, int] = {}
    for task in table.scan().plan_files():
        region = str(task.file.partition[0]) if len(task.file.partition) else "-"
        counts[region] = counts.get(region, 0) + 1
    return counts


def test_optimize_compacts_small_appends_and_rows_stay_equal_on_three_engines(
    lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.events"
    small_appends(lake, name, 12, partitioned=True)
    before = rows_everywhere(lake, name)
    assert len(before["duckdb"]) == 600 and before["trino"] == before["duckdb"] == before["spark"]
    assert files_by_partition(lake, name) == {"eu": 12, "us": 12}
    files, size = data_files(lake.catalog.load_table(name))

    report = lake.optimize(name, target_file_size="64MB", where="region = 'eu'")
    compacted = files_by_partition(lake, name)
    assert compacted["us"] == 12 and compacted["eu"] < 12  # only the partition asked
    assert (report.files_before, report.bytes_before) == (files, size) and files == 24
    after = data_files(lake.catalog.load_table(name))
    assert (report.files_after, report.bytes_after) == after
    assert report.files_after == 12 + compacted["eu"]
    assert report.skipped is None and report.seconds > 0

    shown = json.loads(run_cli("optimize", name, "--json").stdout)  # the rest, from the CLI
    assert files_by_partition(lake, name)["us"] < 12
    assert shown["files_before"] == report.files_after
    assert [shown["files_after"], shown["bytes_after"]] == list(
        data_files(lake.catalog.load_table(name))
    )
    assert rows_everywhere(lake, name) == before
    assert lake.catalog.load_table(name).current_snapshot().summary.operation.value == "replace"


def test_bad_optimize_input_is_one_message_and_changes_nothing(
    lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.events"
    small_appends(lake, name, 3, partitioned=True)
    snapshot = lake.catalog.load_table(name).current_snapshot()
    for where in (
        "region = 'eu'; DROP TABLE x",
        "amount > 10",
    ):  # not one predicate / not a partition
        result = run_cli("optimize", name, "--where", where, check=False)
        assert result.returncode == 1, result
        assert "Hint:" in result.stderr and "Traceback" not in result.stderr, result.stderr
    result = run_cli("optimize", name, "--target-file-size", "huge", check=False)
    assert result.returncode == 1 and "Hint:" in result.stderr
    result = run_cli("optimize", f"{namespace}.missing", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert lake.catalog.load_table(name).current_snapshot() == snapshot


def put_orphan(lake: Lakehouse, name: str, label: str) -> tuple[str, int]:
    """A file under the table's data location that no snapshot names: (path, bytes)."""
    location = urlparse(lake.catalog.load_table(name).location())
    key = f"{location.path.strip('/')}/data/{label}-orphan.parquet"
    body = f"not referenced: {label}".encode() * 10
    lake.s3.put_object(location.netloc, key, io.BytesIO(body), len(body))
    return f"s3://{location.netloc}/{key}", len(body)


def test_orphans_under_the_floor_are_refused_and_ages_are_respected(
    lake: Lakehouse, stack: Settings, namespace: str
) -> None:
    name = f"{namespace}.events"
    small_appends(lake, name, 3)
    old, old_size = put_orphan(lake, name, "old")
    with pytest.raises(LakehouseError) as refused:  # the default floor is a day
        lake.remove_orphan_files(name, older_than="1h")
    assert "floor" in str(refused.value) and refused.value.hint
    result = run_cli("remove-orphan-files", name, "--older-than", "90m", check=False)
    assert result.returncode == 1 and "Hint:" in result.stderr, result
    assert old in stored_files(lake.catalog.load_table(name))  # nothing deleted

    low_floor = Lakehouse(stack.model_copy(update={"maintenance_orphan_floor_seconds": 1.0}))
    time.sleep(3.0)  # the one wait here: the first orphan must age past the threshold
    young, _ = put_orphan(lake, name, "young")
    rows = lake.sql(f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py()
    report = low_floor.remove_orphan_files(name, older_than="2s")
    table = lake.catalog.load_table(name)
    stored = stored_files(table)
    assert old not in stored and young in stored
    assert (report.files_deleted, report.bytes_deleted) == (1, old_size)
    assert {task.file.file_path for task in table.scan().plan_files()} <= stored
    assert lake.sql(f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py() == rows == 150


def test_expire_keeps_the_newest_and_deletes_only_their_files(
    lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.events"
    small_appends(lake, name, 6)
    history = [s.snapshot_id for s in lake.history(name)]
    shown = json.loads(run_cli("expire-snapshots", name, "--older-than", "0s",
                               "--retain-last", "2", "--json").stdout)  # fmt: skip
    assert shown["snapshots_removed"] == 4 and shown["files_deleted"] > 0
    assert [s.snapshot_id for s in lake.history(name)] == history[-2:]
    table = lake.catalog.load_table(name)
    assert stored_files(table) == referenced_files(table)  # no file left behind, none missing
    assert lake.sql(f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py() == 300
    with pytest.raises(LakehouseError):
        lake.sql(f"SELECT count(*) FROM {name}", as_of=history[0])
    again = lake.expire_snapshots(name, older_than="0s", retain_last=2)
    assert again.snapshots_removed == 0 and again.files_deleted == 0
    result = run_cli("expire-snapshots", name, "--retain-last", "0", check=False)
    assert result.returncode == 1 and "Hint:" in result.stderr
    small_appends(lake, f"{name}_shared", 3)  # gc.enabled=false: Iceberg's "files may be shared"
    with lake.catalog.load_table(f"{name}_shared").transaction() as tx:
        tx.set_properties({"gc.enabled": "false"})
    kept = lake.history(f"{name}_shared")
    for refused in (lambda: lake.expire_snapshots(f"{name}_shared", "0s"),
                    lambda: lake.remove_orphan_files(f"{name}_shared", "3d")):  # fmt: skip
        with pytest.raises(LakehouseError, match=r"gc\.enabled"):
            refused()
    assert lake.history(f"{name}_shared") == kept


@pytest.fixture
def synced_orders(
    stack: Settings,
    declare: Declare,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> Iterator[tuple[Integration, str]]:
    integration = declare("postgres", "iceberg", ("orders",))
    process = follower([integration], tmp_path / "follower.log")
    try:
        wait_for(lambda: all(r.ok for r in verify(stack, integration)), 120, "the snapshot")
        yield integration, integration.iceberg_target("orders", stack)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_expire_and_orphan_removal_while_a_sync_commits(
    stack: Settings,
    shop: str,  # noqa: F811 - the fixture
    synced_orders: tuple[Integration, str],
) -> None:
    integration, name = synced_orders
    lake = Lakehouse(stack.model_copy(update={"maintenance_orphan_floor_seconds": 5.0}))
    planted, _ = put_orphan(lake, name, "planted")
    planted_at = time.monotonic()
    stop, traffic = background_traffic(shop, rate=100)
    reports: list[MaintenanceReport] = []
    try:
        table = lake.catalog.load_table(name)
        wait_for(lambda: len(table.refresh().metadata.snapshots) >= 8, 120, "sync commits")
        while time.monotonic() - planted_at < 12 or len(reports) < 6:
            reports.append(lake.expire_snapshots(name, older_than="0s", retain_last=2))
            reports.append(lake.remove_orphan_files(name, older_than="10s"))
            reports.append(lake.optimize(name))  # conflicts with the sync's rewrites: retried
    finally:
        stop.set()
        traffic.join(timeout=30)
    assert sum(r.snapshots_removed for r in reports) > 0
    assert sum(r.files_deleted for r in reports if r.action == "remove-orphan-files") >= 1
    assert planted not in stored_files(lake.catalog.load_table(name))
    for report in reports:  # a conflict is retried or skipped, and said so
        assert report.skipped is None or report.conflicts_retried == 3, report
    wait_for(lambda: all(r.ok for r in verify(stack, integration)), 120, "the sync to catch up")
    status = StatusStore(stack).read(integration.name)
    assert status.last_error == "", status  # no commit of the sync failed


def test_the_scheduler_applies_a_declared_policy_and_status_shows_it(
    lake: Lakehouse, stack: Settings, namespace: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from lakehouse.lake.maintenance_policy import last_runs
    from lakehouse.runtimes.local import LocalRuntime

    name = f"{namespace}.events"
    small_appends(lake, name, 6)
    config = tmp_path / "lakehouse.toml"
    config.write_text(f'[maintenance."{namespace}"]\ntarget_file_size = "64MB"\n'
                      'min_snapshots_to_keep = 1\nmax_snapshot_age = "0s"\n')  # fmt: skip
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(config))
    runtime = LocalRuntime(stack.model_copy(update={"maintenance_tick_seconds": 1.0}))
    runtime.up(["scheduler"])
    try:
        wait_for(lambda: {"optimize", "expire-snapshots"} <= set(last_runs(stack).get(name, {})),
                 180, "the scheduler's first runs")  # fmt: skip
    finally:
        runtime.stop("scheduler")
    runs = last_runs(stack)[name]
    assert runs["optimize"]["ok"] and runs["optimize"]["report"]["files_before"] == 6
    table = lake.catalog.load_table(name)
    assert data_files(table)[0] == 1 and len(table.metadata.snapshots) == 1
    assert lake.sql(f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py() == 300
    status = run_cli("status", check=False)
    assert "Maintenance (last runs" in status.stdout and name in status.stdout, status.stdout
    listed = run_cli("maintenance", "--json")
    assert name in json.loads(listed.stdout)["last_runs"]
