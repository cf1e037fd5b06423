"""The crawler against real S3 and the real catalog: discovery, zero-copy Parquet,
incremental re-crawls, a kill mid-crawl, policies, bad input, and three engines."""

from __future__ import annotations

import gzip
import io
import json
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from minio import Minio

from lakehouse import Lakehouse, Settings
from lakehouse.crawl import CrawlReport, run_crawler
from lakehouse.crawl.spec import CrawlerSpec
from lakehouse.errors import LakehouseError
from lakehouse.services.s3 import s3_client
from tests.integration.conftest import CLI, run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def s3(stack: Settings) -> Minio:
    return s3_client(stack.s3_endpoint, stack.access_key, stack.secret_key, stack.region)


@pytest.fixture
def bucket(s3: Minio) -> Iterator[str]:
    """A fresh landing bucket, emptied and removed afterwards."""
    name = f"crawl-{uuid.uuid4().hex[:10]}"
    s3.make_bucket(name)
    yield name
    for obj in s3.list_objects(name, recursive=True):
        s3.remove_object(name, obj.object_name)
    s3.remove_bucket(name)


def put(s3: Minio, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(bucket, key, io.BytesIO(body), len(body))


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def table_rows(lake: Lakehouse, table: str, order: str) -> list[tuple[Any, ...]]:
    result = lake.sql(f"SELECT * FROM {table} ORDER BY {order}")
    return [tuple(r.values()) for r in result.to_pylist()]


def by_table(report: CrawlReport) -> dict[str, Any]:
    return {t.table.split(".", 1)[1]: t for t in report.tables}


def events(first: int, count: int) -> list[dict[str, Any]]:
    return [{"id": i, "kind": f"k{i % 3}", "amount": i * 1.5} for i in range(first, first + count)]


def test_tree_with_partitions_formats_compression_and_a_schema_change(
    lake: Lakehouse, namespace: str, s3: Minio, bucket: str
) -> None:
    put(
        s3,
        bucket,
        "raw/events/dt=2026-11-01/region=eu/a.json.gz",
        gzip.compress(jsonl(events(0, 3))),
    )
    zstd = zstandard.ZstdCompressor().compress(jsonl(events(3, 2)))
    put(s3, bucket, "raw/events/dt=2026-11-01/region=us/firehose-1-2026-11-01-b", zstd)
    put(s3, bucket, "raw/events/dt=2026-11-02/region=eu/c.jsonl", jsonl(events(5, 2)))
    put(s3, bucket, "raw/orders/o1.csv", b"order_id;total\n1;10.5\n2;20\n")
    put(s3, bucket, "raw/orders/o2.csv.gz", gzip.compress(b"order_id;total\n3;7.25\n"))
    put(s3, bucket, "raw/orders/_SUCCESS", b"")
    metrics = pa.table({"name": ["cpu", "mem"], "value": [0.5, 0.75]})
    put(s3, bucket, "raw/metrics/dt=2026-11-01/m.parquet", parquet(metrics))

    report = lake.crawl(f"s3://{bucket}/raw/", namespace=namespace)

    assert report.state == "SUCCEEDED", (report.failures, [t.error for t in report.tables])
    tables = by_table(report)
    assert {n: (t.created, t.files_added) for n, t in tables.items()} == {
        "events": (True, 3), "metrics": (True, 1), "orders": (True, 2)}  # fmt: skip
    assert tables["events"].new_partitions == [
        "dt=2026-11-01/region=eu", "dt=2026-11-01/region=us", "dt=2026-11-02/region=eu"]  # fmt: skip
    partitioning = lake.describe(f"{namespace}.events")["partitioning"]
    assert [p.split(": ")[1] for p in partitioning] == ["dt", "region"]
    assert all("identity" in p for p in partitioning)
    expected = [(r["id"], r["kind"], r["amount"], date(2026, 11, 1 if r["id"] < 5 else 2),
                 "us" if r["id"] in (3, 4) else "eu") for r in events(0, 7)]  # fmt: skip
    assert table_rows(lake, f"{namespace}.events", "id") == expected
    orders = table_rows(lake, f"{namespace}.orders", "order_id")
    assert [(o, float(t)) for o, t in orders] == [(1, 10.5), (2, 20.0), (3, 7.25)]
    assert table_rows(lake, f"{namespace}.metrics", "name") == [
        ("cpu", 0.5, date(2026, 11, 1)), ("mem", 0.75, date(2026, 11, 1))]  # fmt: skip

    # A new day arrives with a new column: the table evolves, only that file is added.
    newer = [{**e, "referrer": "ads"} for e in events(7, 2)]
    put(s3, bucket, "raw/events/dt=2026-11-03/region=eu/d.json.gz", gzip.compress(jsonl(newer)))
    again = by_table(lake.crawl(f"s3://{bucket}/raw/", namespace=namespace))
    assert (again["events"].files_added, again["events"].rows_added) == (1, 2)
    assert again["events"].new_partitions == ["dt=2026-11-03/region=eu"]
    assert any("new column referrer" in c for c in again["events"].schema_changes)
    assert (again["orders"].files_added, again["metrics"].files_added) == (0, 0)
    referrers = lake.sql(f"SELECT id, referrer FROM {namespace}.events ORDER BY id").to_pylist()
    assert [r["referrer"] for r in referrers] == [None] * 7 + ["ads", "ads"]

    # Nothing new: nothing added, no new snapshot.
    before = lake.table(f"{namespace}.events").current_snapshot()
    idle = lake.crawl(f"s3://{bucket}/raw/", namespace=namespace)
    assert idle.files_added == 0 and idle.state == "SUCCEEDED"
    assert lake.table(f"{namespace}.events").current_snapshot() == before


def test_parquet_is_registered_where_it_lies(
    lake: Lakehouse, namespace: str, s3: Minio, bucket: str, stack: Settings
) -> None:
    keys = [f"metrics/dt=2026-11-0{d}/part-{d}.parquet" for d in (1, 2)]
    for day, key in enumerate(keys, start=1):
        put(s3, bucket, key, parquet(pa.table({"host": [f"h{day}"], "load": [day * 0.1]})))
    landing_before = sorted(o.object_name for o in s3.list_objects(bucket, recursive=True))
    warehouse = stack.warehouse_bucket

    def data_objects() -> int:
        return sum(1 for o in s3.list_objects(warehouse, prefix=f"{namespace}/", recursive=True)
                   if "/data/" in o.object_name)  # fmt: skip

    report = lake.crawl(f"s3://{bucket}/metrics/", namespace=namespace)

    assert by_table(report)["metrics"].registered_in_place == 2
    assert sorted(o.object_name for o in s3.list_objects(bucket, recursive=True)) == landing_before
    assert data_objects() == 0  # not a byte copied into the warehouse
    files = lake.table(f"{namespace}.metrics").inspect.files().column("file_path").to_pylist()
    assert sorted(files) == [f"s3://{bucket}/{k}" for k in keys]
    assert table_rows(lake, f"{namespace}.metrics", "host") == [
        ("h1", 0.1, date(2026, 11, 1)), ("h2", 0.2, date(2026, 11, 2))]  # fmt: skip


def test_bad_files_are_reported_and_the_rest_registers(
    lake: Lakehouse, namespace: str, s3: Minio, bucket: str
) -> None:
    put(s3, bucket, "in/sales/a.json", jsonl([{"sku": "x", "qty": 1}]))
    put(s3, bucket, "in/sales/b.json", jsonl([{"sku": "y", "qty": "many"}]))  # qty clashes
    put(s3, bucket, "in/sales/c.json.gz", b"this is not gzip")
    good = parquet(pa.table({"id": list(range(100)), "v": [float(i) for i in range(100)]}))
    put(s3, bucket, "in/points/good.parquet", good)
    put(s3, bucket, "in/points/text.parquet", b"id,v\n1,2\n")
    put(s3, bucket, "in/points/half.parquet", good[: len(good) // 2])  # a half-written upload

    report = lake.crawl(f"s3://{bucket}/in/", namespace=namespace)

    assert report.state == "PARTIAL"
    failed = {f.uri.rsplit("/", 1)[1]: f.reason for f in report.failures}
    assert set(failed) == {"b.json", "c.json.gz", "text.parquet", "half.parquet"}
    assert all("Hint:" in reason for reason in failed.values()), failed
    assert "qty" in failed["b.json"] and f"s3://{bucket}/in/sales/a.json" in failed["b.json"]
    assert "half-written" in failed["half.parquet"]
    assert table_rows(lake, f"{namespace}.sales", "sku") == [("x", 1)]
    assert lake.sql(f"SELECT count(*) AS n FROM {namespace}.points").column("n")[0].as_py() == 100
    # The failed files are not recorded: a re-crawl reports them again and adds nothing twice.
    again = lake.crawl(f"s3://{bucket}/in/", namespace=namespace)
    assert again.files_added == 0 and len(again.failures) == 4
    assert lake.sql(f"SELECT count(*) AS n FROM {namespace}.points").column("n")[0].as_py() == 100


def test_nothing_to_crawl_is_one_clear_message(lake: Lakehouse, bucket: str) -> None:
    tables_before = lake.tables()
    missing = run_cli("crawl", f"s3://{bucket}-absent/x/", check=False)
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr and "Hint:" in missing.stderr
    assert "Traceback" not in missing.stderr
    empty = run_cli("crawl", f"s3://{bucket}/nothing/here/", check=False)
    assert empty.returncode == 1
    assert "No files under" in empty.stderr and "Hint:" in empty.stderr
    assert lake.tables() == tables_before
    shown = json.loads(run_cli("crawler", "show", f"crawl_{bucket.replace('-', '_')}_nothing_here",
                               "--json").stdout)  # fmt: skip
    assert shown["runs"][0]["state"] == "FAILED" and "No files" in shown["runs"][0]["error"]


def test_policies_for_schema_changes_and_deleted_files(
    lake: Lakehouse, namespace: str, s3: Minio, bucket: str, stack: Settings
) -> None:
    def spec(**policies: str) -> CrawlerSpec:
        return CrawlerSpec(name="policies", path=f"s3://{bucket}/p/", namespace=namespace,
                           **policies)  # type: ignore[arg-type]  # fmt: skip

    put(s3, bucket, "p/logs/dt=2026-11-01/a.parquet", parquet(pa.table({"id": [1, 2]})))
    put(s3, bucket, "p/logs/dt=2026-11-02/b.parquet", parquet(pa.table({"id": [3]})))
    put(s3, bucket, "p/notes/n1.json", jsonl([{"id": 1}]))
    put(s3, bucket, "p/clicks/dt=2026-11-01/c.json", jsonl([{"id": 1}]))
    put(s3, bucket, "p/clicks/dt=2026-11-02/c.json", jsonl([{"id": 2}, {"id": 3}]))
    run_crawler(stack, spec())
    put(s3, bucket, "p/notes/n2.json", jsonl([{"id": 2, "extra": "x"}]))

    failed = by_table(run_crawler(stack, spec(schema_change="fail")))["notes"]
    assert failed.error and "schema_change = fail" in failed.error and failed.files_added == 0
    logged = by_table(run_crawler(stack, spec(schema_change="log")))["notes"]
    assert logged.files_added == 0 and "logged" in logged.schema_changes[0]
    assert [c["name"] for c in lake.describe(f"{namespace}.notes")["schema"]] == ["id"]
    updated = by_table(run_crawler(stack, spec(schema_change="update")))["notes"]
    assert updated.files_added == 1
    assert table_rows(lake, f"{namespace}.notes", "id") == [(1, None), (2, "x")]

    s3.remove_object(bucket, "p/logs/dt=2026-11-02/b.parquet")
    gone = f"s3://{bucket}/p/logs/dt=2026-11-02/b.parquet"
    logged_gone = by_table(run_crawler(stack, spec()))["logs"]
    assert logged_gone.deleted_files == [gone]
    assert "queries of the table fail" in logged_gone.notes[0]
    assert gone in lake.table(f"{namespace}.logs").inspect.files().column("file_path").to_pylist()
    removed = by_table(run_crawler(stack, spec(deleted_files="delete")))["logs"]
    assert removed.removed_files == 1
    assert table_rows(lake, f"{namespace}.logs", "id") == [
        (1, date(2026, 11, 1)),
        (2, date(2026, 11, 1)),
    ]
    # A converted partition whose every file is gone loses its rows.
    s3.remove_object(bucket, "p/clicks/dt=2026-11-02/c.json")
    clicks = by_table(run_crawler(stack, spec(deleted_files="delete")))["clicks"]
    assert "deleted the rows of partition(s) dt=2026-11-02" in clicks.notes[0]
    assert table_rows(lake, f"{namespace}.clicks", "id") == [(1, date(2026, 11, 1))]
    s3.remove_object(bucket, "p/notes/n1.json")
    s3.remove_object(bucket, "p/notes/n2.json")
    notes = by_table(run_crawler(stack, spec(deleted_files="delete")))["notes"]
    # Unpartitioned converted rows are not traced to their file: kept, and said so.
    assert len(notes.deleted_files) == 2 and "kept the rows of 2" in notes.notes[0]
    assert lake.sql(f"SELECT count(*) AS n FROM {namespace}.notes").column("n")[0].as_py() == 2


def _record(stack: Settings) -> sqlite3.Connection:
    return sqlite3.connect(stack.home_dir / "crawl" / "record.sqlite", timeout=30)


def _added_batches(stack: Settings, namespace: str) -> int:
    """Batches of ``namespace``'s tables the record holds as added (0: no record yet)."""
    if not (stack.home_dir / "crawl" / "record.sqlite").exists():
        return 0
    try:
        with _record(stack) as db:
            return int(db.execute("SELECT count(*) FROM batches WHERE state = 'added' AND "
                                  "tbl LIKE ?", (f"{namespace}.%",)).fetchone()[0])  # fmt: skip
    except sqlite3.OperationalError:  # the crawl is creating the record's tables
        return 0


def test_a_crawl_killed_mid_way_resumes_without_duplicates(
    lake: Lakehouse, namespace: str, s3: Minio, bucket: str, stack: Settings
) -> None:
    datasets, files, rows = 8, 6, 5
    expected = []
    for d in range(datasets):
        for f in range(files):
            batch = [{"id": d * 1000 + f * 10 + r, "d": d} for r in range(rows)]
            expected += [(r["id"], r["d"]) for r in batch]
            put(s3, bucket, f"k/set{d}/part-{f}.json.gz", gzip.compress(jsonl(batch)))
    name = f"killed_{uuid.uuid4().hex[:6]}"
    command = [*CLI, "crawl", f"s3://{bucket}/k/", "--namespace", namespace, "--name", name]
    crawl = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=os.environ.copy())  # fmt: skip
    deadline = time.monotonic() + 120
    added = 0
    while time.monotonic() < deadline and crawl.poll() is None:
        added = _added_batches(stack, namespace)
        if added:
            break
        time.sleep(0.02)
    crawl.send_signal(signal.SIGKILL)
    crawl.wait(30)
    assert added and added < datasets, f"the kill did not land mid-crawl ({added} tables done)"
    # The worst moment: a commit landed but its record still says pending.
    with _record(stack) as db:
        batch = db.execute("SELECT id FROM batches WHERE state = 'added' AND tbl LIKE ?",
                           (f"{namespace}.%",)).fetchone()[0]  # fmt: skip
        db.execute("UPDATE batches SET state = 'pending' WHERE id = ?", (batch,))
        db.execute("UPDATE files SET state = 'pending' WHERE batch = ?", (batch,))

    resumed = run_cli("crawl", "--name", name, f"s3://{bucket}/k/", "--namespace", namespace,
                      "--json")  # fmt: skip
    report = json.loads(resumed.stdout)
    assert report["state"] == "SUCCEEDED"
    got = []
    for d in range(datasets):
        got += table_rows(lake, f"{namespace}.set{d}", "id")
    assert sorted(got) == sorted(expected)
    runs = json.loads(run_cli("crawler", "show", name, "--json").stdout)["runs"]
    assert [r["state"] for r in runs] == ["SUCCEEDED", "INTERRUPTED"]
    listed = json.loads(run_cli("crawlers", "--json").stdout)
    assert any(c["name"] == name and c["last_run"]["state"] == "SUCCEEDED" for c in listed)


@pytest.mark.lakehouse_trino
@pytest.mark.lakehouse_spark
def test_partition_values_from_paths_read_the_same_on_every_engine(
    lake: Lakehouse, namespace: str, s3: Minio, bucket: str
) -> None:
    for day in (1, 2):
        for region in ("eu", "us"):
            values = pa.table({"n": [day * 10 + i for i in range(3)]})
            put(s3, bucket, f"e/zc/dt=2026-11-0{day}/region={region}/f.parquet", parquet(values))
            rows = [{"n": day * 10 + i} for i in range(2)]
            put(s3, bucket, f"e/cv/dt=2026-11-0{day}/region={region}/f.json.gz",
                gzip.compress(jsonl(rows)))  # fmt: skip
    lake.crawl(f"s3://{bucket}/e/", namespace=namespace)
    for table, per_file in (("zc", 3), ("cv", 2)):
        sql = (f"SELECT dt, region, count(*) AS c, sum(n) AS s FROM {namespace}.{table} "
               "WHERE region = 'us' OR dt = DATE '2026-11-01' GROUP BY dt, region ORDER BY dt, region")  # fmt: skip
        answers = {
            engine: lake.sql(sql, engine=engine).to_pylist()
            for engine in ("duckdb", "trino", "spark")
        }
        expected = [
            {"dt": date(2026, 11, d), "region": r, "c": per_file,
             "s": sum(d * 10 + i for i in range(per_file))}
            for d, r in ((1, "eu"), (1, "us"), (2, "us"))
        ]  # fmt: skip
        for engine, rows in answers.items():
            assert [
                {k: (int(v) if k in ("c", "s") else v) for k, v in r.items()} for r in rows
            ] == expected, engine


def test_the_sample_landing_zone_is_crawled_once(stack: Settings, lake: Lakehouse) -> None:
    from lakehouse.sample_landing import (
        EVENTS_PER_FILE,
        FILES_PER_DAY,
        SAMPLE_DAYS,
        load_landing_sample,
    )

    try:
        landed, rows = load_landing_sample(stack)
        assert landed == len(SAMPLE_DAYS) * FILES_PER_DAY
        assert rows == landed * EVENTS_PER_FILE
        parts = lake.sql("SELECT DISTINCT dt FROM landing.clickstream ORDER BY dt").column("dt")
        assert parts.to_pylist() == list(SAMPLE_DAYS)
        assert load_landing_sample(stack) == (0, 0)  # landed already, nothing new
    finally:
        for table in lake.tables("landing"):
            lake.catalog.purge_table(table)


def test_expiry_keeps_the_landed_files_a_table_no_longer_uses(
    lake: Lakehouse, namespace: str, s3: Minio, bucket: str
) -> None:
    put(s3, bucket, "m/points/p.parquet", parquet(pa.table({"id": [1, 2]})))
    lake.crawl(f"s3://{bucket}/m/", namespace=namespace)
    table = f"{namespace}.points"
    assert lake.table(table).properties["gc.enabled"] == "false"
    # Rewritten (as compaction does): the landed file leaves the current snapshot.
    lake.ingest(pa.table({"id": [1, 2]}), table, mode="overwrite")
    with pytest.raises(LakehouseError, match=r"gc\.enabled=false") as refused:
        lake.expire_snapshots(table, older_than="0s", retain_last=1)
    assert refused.value.hint
    # Even with gc enabled, the lake's expiry deletes nothing outside the table's location.
    with lake.table(table).transaction() as tx:
        tx.set_properties({"gc.enabled": "true"})
    report = lake.expire_snapshots(table, older_than="0s", retain_last=1)
    assert report.snapshots_removed >= 1
    assert [o.object_name for o in s3.list_objects(bucket, recursive=True)] == [
        "m/points/p.parquet"
    ]
    assert table_rows(lake, table, "id") == [(1,), (2,)]
