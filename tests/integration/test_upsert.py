"""Upsert is a join: exact at scale, one snapshot, any key, on the real catalog and S3.

Every expected table is computed independently, in DuckDB, from the inputs.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan

from lakehouse import Lakehouse
from lakehouse.errors import IngestError
from lakehouse.lake import catalog as cat
from lakehouse.lake import ingest as ingest_module
from lakehouse.lake import rewrite
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration
KEY = ["region", "id"]


def orders(n: int, seed: int, first_id: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "region": pa.array([f"r{i % 7}" for i in range(n)]),
        "id": pa.array(np.arange(first_id, first_id + n) // 7, pa.int64()),
        "amount": pa.array(rng.random(n)),
        "note": pa.array([f"seed {seed} row {i}" for i in range(n)]),
    })  # fmt: skip


def expected_upsert(before: pa.Table, upserts: pa.Table, key: list[str]) -> pa.Table:
    """Rows of ``before`` whose key is not upserted, plus the upserts (DuckDB)."""
    using = ", ".join(key)
    con = duckdb.connect()
    con.register("b", before)
    con.register("u", upserts)
    return con.sql(f"SELECT * FROM b ANTI JOIN u USING ({using}) UNION ALL SELECT * FROM u").arrow()


def same_rows(actual: pa.Table, expected: pa.Table | pa.RecordBatchReader) -> bool:
    if isinstance(expected, pa.RecordBatchReader):
        expected = expected.read_all()
    order = [(name, "ascending") for name in actual.column_names]
    actual = actual.sort_by(order)
    expected = expected.select(actual.column_names).cast(actual.schema).sort_by(order)
    return actual.equals(expected)


def test_a_40000_row_upsert_on_a_two_column_key_is_exact_and_one_snapshot(
    lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.orders"
    before = orders(100_000, seed=1)
    lake.ingest(before, name)
    # 36,000 changed rows spread over the table, 4,000 new keys.
    changed = before.take(np.random.default_rng(2).choice(100_000, 36_000, replace=False))
    changed = changed.set_column(2, "amount", pa.array(-np.arange(36_000, dtype=float)))
    upserts = pa.concat_tables([changed, orders(4_000, seed=3, first_id=200_000)])
    first = lake.history(name)[-1].snapshot_id
    result = lake.ingest(upserts, name, mode="upsert", key=KEY)
    history = lake.history(name)
    assert len(history) == 2 and history[-1].operation == "overwrite"
    assert result.snapshot_id == history[-1].snapshot_id
    expected = expected_upsert(before, upserts, KEY)
    assert same_rows(lake.table(name).scan().to_arrow(), expected)
    # --as-of either snapshot: all keys present, never a half-applied upsert.
    count = f"SELECT count(*) AS n, count(DISTINCT (region, id)) AS k FROM {name}"
    assert lake.sql(count, as_of=first).to_pylist() == [{"n": 100_000, "k": 100_000}]
    assert lake.sql(count, as_of=result.snapshot_id).to_pylist() == [{"n": 104_000, "k": 104_000}]
    assert history[-1].total_records == 104_000


@pytest.mark.parametrize(
    ("key_type", "values"),
    [
        (pa.string(), ["ä-1", "b", "€99.90", "z" * 40]),  # long strings: truncated bounds
        (pa.date32(), [dt.date(2024, 3, 15), dt.date(1999, 12, 31), dt.date(2024, 3, 16),
                       dt.date(2100, 1, 1)]),
        (pa.decimal128(12, 2), [Decimal("1234.50"), Decimal("-3.25"), Decimal("0.00"),
                                Decimal("9999999999.99")]),
        (pa.timestamp("us", "UTC"), [dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                                     dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
                                     dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
                                     dt.datetime(2038, 1, 19, tzinfo=dt.UTC)]),
    ],
)  # fmt: skip
def test_keys_of_every_orderable_type(
    lake: Lakehouse, namespace: str, key_type: pa.DataType, values: list[Any]
) -> None:
    name = f"{namespace}.typed"
    rows = pa.table({"k": pa.array(values[:3], key_type), "v": [1, 2, 3]})
    lake.ingest(rows, name)
    lake.ingest(pa.table({"k": pa.array(values[3:], key_type), "v": [4]}), name)  # a second file
    upserts = pa.table({"k": pa.array([values[1], values[3]], key_type), "v": [20, 40]})
    lake.ingest(upserts, name, mode="upsert", key=["k"])
    got = {r["k"]: r["v"] for r in lake.table(name).scan().to_arrow().to_pylist()}
    assert got == {values[0]: 1, values[1]: 20, values[2]: 3, values[3]: 40}
    assert lake.history(name)[-1].operation == "overwrite"


def test_null_keys_are_refused_and_change_nothing(lake: Lakehouse, namespace: str) -> None:
    name = f"{namespace}.t"
    lake.ingest(orders(10, seed=1), name)
    before = lake.history(name)
    bad = orders(3, seed=2).set_column(0, "region", pa.array(["r0", None, "r1"]))
    with pytest.raises(IngestError, match="region has null values") as caught:
        lake.ingest(bad, name, mode="upsert", key=KEY)
    assert "Hint:" in str(caught.value)
    assert lake.history(name) == before


def test_a_key_held_by_several_files_ends_as_one_row(lake: Lakehouse, namespace: str) -> None:
    name = f"{namespace}.dup"
    first = orders(100, seed=1)
    lake.ingest(first, name)
    lake.ingest(first.slice(0, 10), name)  # an append that repeats 10 keys in a second file
    upserts = first.slice(5, 10).set_column(2, "amount", pa.array([7.0] * 10))
    lake.ingest(upserts, name, mode="upsert", key=KEY)
    # Keys 5-9 were in both files and are upserted; 0-4 stay twice (not touched).
    expected = expected_upsert(pa.concat_tables([first, first.slice(0, 10)]), upserts, KEY)
    assert same_rows(lake.table(name).scan().to_arrow(), expected)


def test_only_files_that_hold_a_key_are_rewritten(lake: Lakehouse, namespace: str) -> None:
    name = f"{namespace}.files"
    for part in range(6):  # six files with disjoint id ranges
        lake.ingest(orders(700, seed=part, first_id=700 * part), name)
    before = {t.file.file_path for t in lake.table(name).scan().plan_files()}
    upserts = orders(700, seed=9, first_id=1400).slice(0, 50)  # all inside the third file
    table = lake.table(name)
    with table.transaction() as tx:
        result = rewrite.rewrite_by_key(tx, table.io, KEY, None, upserts, {})
    after = {t.file.file_path for t in lake.table(name).scan().plan_files()}
    assert (result.files_scanned, result.files_rewritten) == (1, 1)
    assert len(before - after) == 1 and len(after - before) == 1
    assert result.rows_removed == 50 and result.rows_written == 700


def test_a_rewrite_in_small_batches_is_as_exact(
    lake: Lakehouse, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rewrite, "BATCH_BYTES", 1)  # one file per batch
    name = f"{namespace}.batches"
    before = pa.concat_tables([orders(500, seed=s, first_id=500 * s) for s in range(4)])
    for s in range(4):
        lake.ingest(before.slice(500 * s, 500), name)
    upserts = before.take(list(range(0, 2000, 9))).set_column(3, "note", pa.array(["u"] * 223))
    lake.ingest(upserts, name, mode="upsert", key=KEY)
    assert same_rows(lake.table(name).scan().to_arrow(), expected_upsert(before, upserts, KEY))


def test_a_partitioned_table_gets_each_row_in_its_partition(
    lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.parts"
    rows = pa.table({
        "region": pa.array(["eu", "us", "eu", "ap"]),
        "id": pa.array([1, 2, 3, 4], pa.int64()),
        "day": pa.array([dt.date(2024, 1, d) for d in (1, 1, 2, 3)], pa.date32()),
    })  # fmt: skip
    table = lake.catalog.create_table(name, schema=rows.schema)
    with table.update_spec() as spec:
        spec.add_identity("region")
        spec.add_identity("day")  # not a key column: an upsert can move a row to another
    table.append(rows)
    # id 3 moves to another day (a non-key partition column), id 5 is new.
    moved = pa.array([dt.date(2024, 1, 9)], pa.date32())
    new = {"region": ["us"], "id": pa.array([5], pa.int64()), "day": rows.column("day").take([0])}
    upserts = pa.concat_tables([rows.take([2]).set_column(2, "day", moved), pa.table(new)])
    lake.ingest(upserts, name, mode="upsert", key=KEY)
    table = lake.table(name)
    assert same_rows(table.scan().to_arrow(), expected_upsert(rows, upserts, KEY))
    for task in table.scan().plan_files():  # every file holds only its partition's rows
        held = ArrowScan(table.metadata, table.io, table.schema(), AlwaysTrue()).to_table([task])
        days = {(day - dt.date(1970, 1, 1)).days for day in held.column("day").to_pylist()}
        assert set(held.column("region").to_pylist()) == {task.file.partition[0]}
        assert days == {task.file.partition[1]}


def test_a_concurrent_commit_makes_the_upsert_re_plan_on_the_new_state(
    lake: Lakehouse, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{namespace}.race"
    before = orders(1000, seed=1)
    lake.ingest(before, name)
    outsider = orders(7, seed=5, first_id=10_000)
    real = ingest_module.rewrite_by_key
    tries = []

    def rewrite_then_someone_commits(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        tries.append(1)
        if len(tries) == 1:  # lands before the first try commits
            lake.catalog.load_table(name).append(outsider)
        return result

    monkeypatch.setattr(ingest_module, "rewrite_by_key", rewrite_then_someone_commits)
    upserts = before.slice(0, 100).set_column(2, "amount", pa.array([0.5] * 100))
    lake.ingest(upserts, name, mode="upsert", key=KEY)
    assert len(tries) == 2
    table = lake.table(name)
    expected = expected_upsert(pa.concat_tables([before, outsider]), upserts, KEY)
    assert same_rows(table.scan().to_arrow(), expected)
    # The files the failed upsert wrote are gone too: nothing but what snapshots reach.
    reachable = {t.file.file_path for s in table.snapshots()
                 for t in table.scan(snapshot_id=s.snapshot_id).plan_files()}  # fmt: skip
    stored = {f"s3://{o}" for o in _data_files(lake, table.location())}
    assert stored == reachable


def _data_files(lake: Lakehouse, location: str) -> set[str]:
    bucket, _, prefix = location.removeprefix("s3://").partition("/")
    objects = lake.s3.list_objects(bucket, prefix=prefix + "/data/", recursive=True)
    return {f"{bucket}/{o.object_name}" for o in objects if o.object_name.endswith(".parquet")}


def test_a_keyed_rewrite_never_retries_on_top_of_another_commit(
    lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.retry"
    lake.ingest(orders(100, seed=1), name)
    stale = lake.catalog.load_table(name)
    lake.catalog.load_table(name).append(orders(5, seed=2, first_id=500))
    tx = stale.transaction()  # a plain transaction, which pyiceberg would retry
    rewrite.rewrite_by_key(tx, stale.io, KEY, None, orders(3, seed=3), {})
    with pytest.raises(Exception, match="changed during the commit"):
        tx.commit_transaction()
    assert lake.table(name).scan().to_arrow().num_rows == 105


@pytest.mark.lakehouse_trino
def test_counts_after_a_trino_delete_and_an_upsert_over_its_position_deletes(
    lake: Lakehouse, namespace: str
) -> None:
    name = f"{namespace}.deleted"
    before = orders(20, seed=1)
    lake.ingest(before, name)
    lake.sql(f"DELETE FROM {name} WHERE id < 2", engine="trino")  # merge-on-read: 14 rows go
    table = lake.table(name)
    assert any(t.delete_files for t in table.scan().plan_files()), "Trino wrote no delete file"
    seen = lake.sql(f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py()
    assert seen == 6
    assert cat.describe(table)["row_count"] == seen and lake.history(name)[-1].total_records == seen
    assert "rows: 6*" in run_cli("describe", name).stdout
    # An upsert rewriting that file applies its deletes: deleted rows stay deleted.
    upserts = before.slice(14, 6).set_column(2, "amount", pa.array([1.0] * 6))
    upserts = pa.concat_tables([upserts, before.slice(0, 1)])  # one deleted key comes back
    lake.ingest(upserts, name, mode="upsert", key=KEY)
    expected = expected_upsert(before.slice(14, 6), upserts, KEY)
    assert same_rows(lake.table(name).scan().to_arrow(), expected)
    trino = lake.sql(f"SELECT count(*) AS n FROM {name}", engine="trino").column("n")[0].as_py()
    history = lake.history(name)
    assert trino == 7 == history[-1].total_records == cat.describe(lake.table(name))["row_count"]
    assert [h.total_records for h in history] == [20, 6, 7]


def test_an_upsert_lacking_table_columns_is_refused_not_nulled(
    lake: Lakehouse, namespace: str, tmp_path: Any
) -> None:
    name = f"{namespace}.partial"
    base = pa.table({"id": [1, 2], "v": ["a", "b"], "amt": [Decimal("1.50"), Decimal("2.50")]})
    lake.ingest(base, name)
    before = lake.table(name).current_snapshot().snapshot_id
    with pytest.raises(IngestError, match="lacks column\\(s\\) amt") as caught:
        lake.ingest(pa.table({"id": [2], "v": ["x"]}), name, mode="upsert", key=["id"])
    assert "Include every column" in str(caught.value.hint)
    source = tmp_path / "up.csv"
    source.write_text("id,v\n2,x\n")
    result = run_cli("ingest", str(source), "--table", name, "--mode", "upsert", "--key", "id",
                     check=False)  # fmt: skip
    assert result.returncode == 1 and "Hint:" in result.stderr and "amt" in result.stderr
    assert lake.table(name).current_snapshot().snapshot_id == before
    assert lake.sql(f"SELECT * FROM {name} ORDER BY id").to_pylist()[1]["amt"] == Decimal("2.50")


def test_keys_match_columns_without_regard_to_case(lake: Lakehouse, namespace: str) -> None:
    name = f"{namespace}.key_case"
    lake.ingest(pa.table({"id": [1, 2], "v": ["a", "b"]}), name)
    lake.ingest(pa.table({"ID": [2, 3], "V": ["x", "y"]}), name, mode="upsert", key=["ID"])
    lake.ingest(pa.table({"id": [3], "v": ["z"]}), name, mode="upsert", key=["Id"])
    assert lake.sql(f"SELECT * FROM {name} ORDER BY id").to_pylist() == [
        {"id": 1, "v": "a"}, {"id": 2, "v": "x"}, {"id": 3, "v": "z"}
    ]  # fmt: skip


def test_negative_zero_and_nan_float_keys(lake: Lakehouse, namespace: str) -> None:
    name = f"{namespace}.float_keys"
    lake.ingest(pa.table({"k": [0.0, 1.5], "v": ["a", "b"]}), name)
    lake.ingest(pa.table({"k": [-0.0], "v": ["z"]}), name, mode="upsert", key=["k"])
    assert lake.sql(f"SELECT v FROM {name} ORDER BY k").to_pylist() == [{"v": "z"}, {"v": "b"}]
    before = lake.table(name).current_snapshot().snapshot_id
    with pytest.raises(IngestError, match="NaN"):
        lake.ingest(pa.table({"k": [float("nan")], "v": ["n"]}), name, mode="upsert", key=["k"])
    assert lake.table(name).current_snapshot().snapshot_id == before
