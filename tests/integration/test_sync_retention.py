"""What the sync keeps in the lake stays bounded, and nothing is snapshotted twice.

* A synced table's history stays within its retention after every commit, and
  what is stored under its location is what its snapshots reach: expired
  snapshots take their files with them, so disk use plateaus.
* The dead-letter table, which gets a commit per recording pass, is expired too.
* Two integrations recording dead letters at the same moment both land.
* A source table whose snapshot has no rows (empty, or every row refused) is
  checkpointed all the same, so the next run does not snapshot it again.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from psycopg.conninfo import conninfo_to_dict

from lakehouse import Lakehouse, Settings
from lakehouse.lake.catalog import open_catalog
from lakehouse.sync import iceberg_target
from lakehouse.sync.admin import delete_integration
from lakehouse.sync.deadletters import TABLE as DEAD_LETTERS
from lakehouse.sync.deadletters import DeadLetterTable
from lakehouse.sync.iceberg_expire import ReachableFiles, Retention
from lakehouse.sync.iceberg_target import IcebergTarget
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.model import DeadLetter
from tests.integration.test_iceberg_target import SCHEMA, Rows, random_batch, stored_files

pytestmark = pytest.mark.integration


def test_history_and_files_stay_within_the_retention_after_every_commit(
    lake: Lakehouse, namespace: str
) -> None:
    name, rng = f"{namespace}.items", random.Random(12)
    retention = Retention(snapshots=6, max_age_s=0)
    target = IcebergTarget(lake.catalog, "retained", retention=retention)
    rows: Rows = {i: {"id": i, "name": f"item {i}", "qty": 0} for i in range(3_000)}
    target.replace(
        name, ("id",), SCHEMA, [pa.Table.from_pylist(list(rows.values()), SCHEMA)], "0/1"
    )
    next_id, counts = 3_000, []
    for step in range(30):  # updates and deletes all over the table: copy-on-write rewrites
        batch, next_id = random_batch(name, rows, rng, next_id, None, 60, 20)
        target.apply(name, batch, f"1/{step}")
        counts.append(len(lake.catalog.load_table(name).metadata.snapshots))
    assert max(counts) <= retention.snapshots + retention.margin, counts
    assert min(counts[-10:]) >= retention.snapshots  # expired down to the retention, no further
    table = lake.catalog.load_table(name)
    stored = stored_files(lake, table.location())
    reachable = ReachableFiles().of(table, list(table.metadata.snapshots))
    assert {p for p in stored if not p.endswith(".metadata.json")} == reachable
    assert {r["id"]: r for r in table.scan().to_arrow().to_pylist()} == rows


def test_expiry_rides_the_batch_commit_reads_each_list_once_and_deletes_in_batches(
    lake: Lakehouse, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Expiry stalled the sync for seconds: a catalog commit of its own, every retained
    snapshot's manifest list read again at each expiry, and three requests per
    expired file deleted."""
    from minio import Minio
    from pyiceberg.table.snapshots import Snapshot

    reads: Counter[str] = Counter()
    deletes: list[int] = []
    expiring = threading.Event()  # reads by expiry only: planning and commits read too
    manifests, remove_objects = Snapshot.manifests, Minio.remove_objects
    expire = iceberg_target.delete_expired

    def counted_manifests(snapshot: Snapshot, io: Any) -> Any:
        if expiring.is_set():
            reads[snapshot.manifest_list] += 1
        return manifests(snapshot, io)

    def counted_expire(*args: Any) -> int:
        expiring.set()
        try:
            return expire(*args)
        finally:
            expiring.clear()

    def counted_remove(client: Minio, bucket: str, objects: Any, *args: Any) -> Any:
        batch = list(objects)
        deletes.append(len(batch))
        return remove_objects(client, bucket, batch, *args)

    name, rng = f"{namespace}.expired", random.Random(5)
    retention = Retention(snapshots=4, max_age_s=0)
    target = IcebergTarget(lake.catalog, "expired", retention=retention)
    rows: Rows = {i: {"id": i, "name": f"item {i}", "qty": 0} for i in range(500)}
    target.replace(
        name, ("id",), SCHEMA, [pa.Table.from_pylist(list(rows.values()), SCHEMA)], "0/1"
    )
    monkeypatch.setattr(Snapshot, "manifests", counted_manifests)
    monkeypatch.setattr(Minio, "remove_objects", counted_remove)
    monkeypatch.setattr(iceberg_target, "delete_expired", counted_expire)
    commits_before = len(lake.catalog.load_table(name).metadata.metadata_log)
    next_id = 500
    for step in range(20):
        batch, next_id = random_batch(name, rows, rng, next_id, None, 20, 5)
        target.apply(name, batch, f"1/{step}")
    monkeypatch.undo()
    # one catalog commit per batch: the expiry rides in the batch's commit
    assert len(lake.catalog.load_table(name).metadata.metadata_log) - commits_before == 20
    assert sum(reads.values()) > 0 and len(deletes) >= 3, (
        reads,
        deletes,
    )  # expiries ran, each with batched deletes
    assert all(size > 1 for size in deletes), deletes  # not one request per file
    expiry_reads = {path: n for path, n in reads.items() if n > 1}
    assert expiry_reads == {}, f"manifest lists read more than once: {expiry_reads}"
    table = lake.catalog.load_table(name)
    stored = {p for p in stored_files(lake, table.location()) if not p.endswith(".metadata.json")}
    assert stored == ReachableFiles().of(table, list(table.metadata.snapshots))
    assert {r["id"]: r for r in table.scan().to_arrow().to_pylist()} == rows


def letters(integration: str, count: int, table: str = "t") -> list[DeadLetter]:
    return [DeadLetter(integration, table, {"id": i}, {"id": i, "v": "NaN"}, "NaN", "0/1")
            for i in range(count)]  # fmt: skip


def test_the_dead_letter_table_is_expired_too(stack: Settings, namespace: str) -> None:
    retention = Retention(snapshots=3, max_age_s=0)
    dead_letters = DeadLetterTable(open_catalog(stack), retention)
    name = f"keep-{namespace[-8:]}".replace("_", "-")
    for step in range(10):
        dead_letters.record(letters(name, 5, table=f"t{step}"))
        history = open_catalog(stack).load_table(DEAD_LETTERS).metadata.snapshots
        # (the sync service may commit to it between two of these reads)
        assert len(history) <= retention.snapshots + retention.margin + 1, step
    assert dead_letters.count(name, since=_epoch()) == 50  # expiry keeps every row
    # Each commit writes a metadata file: only the newest are kept.
    properties = open_catalog(stack).load_table(DEAD_LETTERS).properties
    assert properties.get("write.metadata.delete-after-commit.enabled") == "true"


def test_two_integrations_recording_at_the_same_moment_both_land(
    stack: Settings, namespace: str
) -> None:
    names = [f"race{i}-{namespace[-8:]}".replace("_", "-") for i in range(2)]
    start, errors = threading.Barrier(len(names)), []

    def record(name: str) -> None:
        table = DeadLetterTable(open_catalog(stack))
        try:
            for step in range(4):
                start.wait(timeout=60)  # both commit at the same moment, four times
                table.record(letters(name, 20, table=f"t{step % 2}"))  # t0, t1 twice: replays
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=record, args=(n,)) for n in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    table = DeadLetterTable(open_catalog(stack))
    for name in names:
        assert table.count(name, since=_epoch()) == 40  # two tables x 20, each id once
    ids = (
        open_catalog(stack)
        .load_table(DEAD_LETTERS)
        .scan(row_filter=f"integration = '{names[0]}'", selected_fields=("id",))
        .to_arrow()
    )
    assert ids.num_rows == 40  # a replay replaced its earlier copy


def _epoch() -> Any:
    import datetime as dt

    return dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def empty_and_refused(stack: Settings, postgres_dsn: str) -> Iterator[tuple[str, Integration]]:
    """A database with an empty table and one whose every row Iceberg refuses (NaN
    in a numeric with a scale), and an integration of both into the lake."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE empty_t (id int PRIMARY KEY, note text)")
        conn.execute("CREATE TABLE refused_t (id int PRIMARY KEY, price numeric(10, 2))")
        conn.execute("INSERT INTO refused_t SELECT i, 'NaN' FROM generate_series(1, 3) i")
    database = conninfo_to_dict(postgres_dsn)["dbname"]
    integration = Integration(name=f"e-{database[-8:]}", source="postgres", target="iceberg",
                              tables=("empty_t", "refused_t"), database=database,
                              namespace=database)  # fmt: skip
    IntegrationStore(stack).create(integration)
    yield postgres_dsn, integration
    delete_integration(stack, integration.name)


@pytest.mark.lakehouse_postgres
def test_an_empty_or_all_refused_table_is_snapshotted_once(
    stack: Settings, empty_and_refused: tuple[str, Integration]
) -> None:
    dsn, integration = empty_and_refused
    catalog = open_catalog(stack)
    names = {t: integration.iceberg_target(t, stack) for t in integration.tables}
    with Lakehouse(stack) as lake:
        first = lake.sync(integration.name)
        target = IcebergTarget(catalog, integration.name)
        assert all(target.checkpoint(n) is not None for n in names.values()), first
        histories = {t: len(catalog.load_table(n).metadata.snapshots) for t, n in names.items()}
        again = lake.sync(integration.name)  # a new pipeline: it must not snapshot again
        assert again.snapshot_rows == 0 and again.dead_letters == 0, again
        assert {t: len(catalog.load_table(n).metadata.snapshots)
                for t, n in names.items()} == histories  # fmt: skip
        with psycopg.connect(dsn, autocommit=True) as conn:  # later changes still flow
            conn.execute("INSERT INTO empty_t VALUES (1, 'first')")
            conn.execute("INSERT INTO refused_t VALUES (4, 9.5)")
        lake.sync(integration.name)
    assert catalog.load_table(names["empty_t"]).scan().to_arrow().to_pylist() == [
        {"id": 1, "note": "first"}
    ]
    prices = catalog.load_table(names["refused_t"]).scan().to_arrow().column("price")
    assert [str(p) for p in prices.to_pylist()] == ["9.50"]
    assert DeadLetterTable(catalog).count(integration.name, since=_epoch()) == 3
