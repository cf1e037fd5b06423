"""The keyed rewriter's pure logic: key sets, pruning by bounds and partitions, joins."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

from lakehouse.errors import IngestError
from lakehouse.lake.keys import UPSERT, build_key_set, join_type, may_hold, present, without

TYPES = {"region": pa.large_string(), "id": pa.int64()}


def keys_of(region: list[str], ids: list[int]) -> pa.Table:
    return pa.table({"region": region, "id": pa.array(ids, pa.int64())})


def test_deleted_and_upserted_keys_become_one_distinct_set_linked_to_their_images() -> None:
    upserts = keys_of(["a", "b"], [1, 2]).append_column("v", pa.array([10, 20]))
    deleted = keys_of(["b", "c", "c"], [2, 3, 3])  # b/2 also upserted, c/3 twice
    key_set = build_key_set(["region", "id"], TYPES, deleted, upserts)
    rows = {(r["region"], r["id"]): r[UPSERT] for r in key_set.keys.to_pylist()}
    assert rows == {("a", 1): 0, ("b", 2): 1, ("c", 3): None}
    assert key_set.keys.schema.field("region").type == pa.string()  # compared as plain strings


def test_narrower_input_keys_are_cast_to_the_table_type() -> None:
    upserts = pa.table({"region": ["a"], "id": pa.array([1], pa.int32())})
    key_set = build_key_set(["region", "id"], TYPES, None, upserts)
    assert key_set.keys.schema.field("id").type == pa.int64()


@pytest.mark.parametrize(
    ("upserts", "message"),
    [
        (pa.table({"region": ["a", None], "id": [1, 2]}), "Key column region has null values"),
        (pa.table({"region": ["a", "a"], "id": [1, 1]}), "several rows with the same key"),
        (pa.table({"region": ["a"], "id": ["x1"]}), "Key column id of the input is string"),
        (pa.table({"region": ["a"]}), "Key column\\(s\\) id are missing"),
    ],
)
def test_keys_that_would_silently_duplicate_or_misjoin_are_refused(
    upserts: pa.Table, message: str
) -> None:
    with pytest.raises(IngestError, match=message) as caught:
        build_key_set(["region", "id"], TYPES, None, upserts)
    assert "Hint:" in str(caught.value)


def test_a_null_deleted_key_is_refused() -> None:
    with pytest.raises(IngestError, match="null values in the deleted keys"):
        build_key_set(["id"], {"id": pa.int64()}, pa.table({"id": [1, None]}), None)


def test_bounds_prune_only_when_no_key_lies_inside_every_range_at_once() -> None:
    key_set = build_key_set(["region", "id"], TYPES, keys_of(["a", "m"], [50, 5]), None)
    # Each column alone has a key inside its range, but no single key fits both.
    assert not may_hold(key_set, [("region", "a", "c"), ("id", 1, 10)])
    assert may_hold(key_set, [("region", "a", "c"), ("id", 40, 60)])
    assert may_hold(key_set, [("region", None, None), ("id", None, 10)])  # unbounded sides
    assert may_hold(key_set, [])  # no statistics: must be read
    empty = build_key_set(["region", "id"], TYPES, keys_of([], []), None)
    assert not may_hold(empty, [])


@pytest.mark.parametrize(
    ("kind", "values", "inside", "outside"),
    [
        (pa.date32(), [dt.date(2024, 3, 15)], (19797, 19798), (19800, 19900)),  # days
        (pa.timestamp("us", "UTC"), [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)],
         (1704067200000000, 1704067200000000), (0, 1704067199999999)),  # micros
        (pa.decimal128(12, 2), [Decimal("99.90")], (Decimal("10.00"), Decimal("100.00")),
         (Decimal("100.00"), Decimal("200.00"))),
        (pa.large_string(), ["€99.90"], ("€", "€z"), ("a", "z")),
    ],
)  # fmt: skip
def test_bounds_of_every_orderable_key_type(
    kind: pa.DataType,
    values: list[object],
    inside: tuple[object, object],
    outside: tuple[object, object],
) -> None:
    key_set = build_key_set(["k"], {"k": kind}, pa.table({"k": pa.array(values, kind)}), None)
    assert may_hold(key_set, [("k", *inside)])
    assert not may_hold(key_set, [("k", *outside)])


def test_partition_values_prune_with_the_bounds() -> None:
    key_set = build_key_set(["region", "id"], TYPES, keys_of(["a", "b"], [1, 2]), None)
    regions = key_set.keys.column("region").combine_chunks()  # an identity transform
    assert may_hold(key_set, [("id", 1, 1)], [(regions, "a")])
    assert not may_hold(key_set, [("id", 1, 1)], [(regions, "b")])  # b's id is 2
    assert not may_hold(key_set, [], [(regions, None)])  # a null partition holds null keys


def test_present_finds_keys_and_rows_nulls_never_match_and_a_key_may_repeat() -> None:
    key_set = build_key_set(["region", "id"], TYPES, keys_of(["a", "b", "z"], [1, 2, 9]), None)
    file_keys = pa.table({
        "region": pa.array(["a", None, "b", "a", "a"], pa.large_string()),
        "id": pa.array([1, 2, 2, 1, 2], pa.int64()),
    })  # fmt: skip
    found = present(key_set, file_keys)
    assert found.keys.tolist() == [0, 1]  # a/1 and b/2; z/9 is not in the file
    assert found.rows.tolist() == [0, 2, 3]  # a/1 twice; the null region is no b/2
    rows = file_keys.append_column("v", pa.array([0, 1, 2, 3, 4]))
    assert without(rows, found).column("v").to_pylist() == [1, 4]


def test_without_refuses_a_file_that_read_differently_the_second_time() -> None:
    key_set = build_key_set(["id"], {"id": pa.int64()}, pa.table({"id": [1]}), None)
    found = present(key_set, pa.table({"id": pa.array([1, 2], pa.int64())}))
    with pytest.raises(IngestError, match="read 3 rows, then 2"):
        without(pa.table({"id": [1, 2, 3]}), found)


def test_upsert_rows_skip_deleted_keys() -> None:
    upserts = pa.table({"id": pa.array([5, 6], pa.int64())})
    key_set = build_key_set(["id"], {"id": pa.int64()}, pa.table({"id": [7]}), upserts)
    assert key_set.upsert_rows(np.arange(3)).tolist() == [0, 1]


def test_join_types_are_the_plain_storage_types() -> None:
    assert join_type(pa.large_string()) == pa.string()
    assert join_type(pa.large_binary()) == pa.binary()
    assert join_type(pa.uuid()) == pa.binary(16)
    assert join_type(pa.int32()) == pa.int32()


@pytest.mark.parametrize("kind", [pa.float64(), pa.float32()])
def test_negative_zero_key_is_the_key_zero(kind: pa.DataType) -> None:
    types = {"k": kind}
    key_set = build_key_set(["k"], types, None, pa.table({"k": pa.array([-0.0, 1.5], kind)}))
    found = present(key_set, pa.table({"k": pa.array([0.0, 2.0, 1.5], kind)}))
    assert found.rows.tolist() == [0, 2]
    found = present(
        build_key_set(["k"], types, None, pa.table({"k": pa.array([0.0], kind)})),
        pa.table({"k": pa.array([-0.0], kind)}),
    )
    assert found.rows.tolist() == [0]


def test_negative_and_positive_zero_in_one_input_are_the_same_key() -> None:
    with pytest.raises(IngestError, match="several rows with the same key"):
        build_key_set(["k"], {"k": pa.float64()}, None, pa.table({"k": [0.0, -0.0]}))


@pytest.mark.parametrize("where", ["upserts", "deleted"])
def test_nan_keys_are_refused(where: str) -> None:
    keys = pa.table({"k": [1.0, float("nan")]})
    upserts, deleted = (keys, None) if where == "upserts" else (None, keys)
    with pytest.raises(IngestError, match="Key column k has NaN values") as caught:
        build_key_set(["k"], {"k": pa.float64()}, deleted, upserts)
    assert caught.value.hint


@pytest.mark.parametrize(
    "kind", [pa.int32(), pa.int64(), pa.string(), pa.large_string(), pa.float64(), pa.date32()]
)
def test_one_column_lookup_answers_as_the_join_does(kind: pa.DataType) -> None:
    """``present`` takes a set lookup for one-column keys; a composite key (the join)
    over the same values plus a constant must find the same keys and rows."""
    rng = np.random.default_rng(7)
    values = rng.integers(0, 400, 1_000)
    file_values = np.concatenate([values[:600], rng.integers(300, 900, 500)])

    def typed(numbers: np.ndarray) -> pa.Array:
        if pa.types.is_date(kind):
            return pa.array(numbers.astype("int32"), pa.int32()).cast(kind)
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return pa.array([f"k{n}" for n in numbers], kind)
        return pa.array(numbers, pa.int64()).cast(kind)

    touched = np.unique(rng.integers(0, 1_000, 300))
    single = build_key_set(["k"], {"k": kind}, None, pa.table({"k": typed(touched)}))
    double = build_key_set(["k", "c"], {"k": kind, "c": pa.int8()}, None,
                           pa.table({"k": typed(touched), "c": pa.array([1] * len(touched), pa.int8())}))  # fmt: skip
    chunks = [typed(file_values[:700]), typed(file_values[700:])]
    file_keys = pa.table({"k": pa.chunked_array(chunks)})
    by_lookup = present(single, file_keys)
    by_join = present(double, file_keys.append_column("c", pa.array([1] * 1_100, pa.int8())))
    assert by_lookup.rows.tolist() == by_join.rows.tolist() and len(by_lookup.rows) > 0
    assert by_lookup.keys.tolist() == by_join.keys.tolist()
    assert by_lookup.file_rows == 1_100


def test_one_column_lookup_never_matches_a_null_file_key() -> None:
    key_set = build_key_set(["k"], {"k": pa.int64()}, None, pa.table({"k": pa.array([1, 2])}))
    found = present(key_set, pa.table({"k": pa.array([None, 2, None, 1], pa.int64())}))
    assert found.rows.tolist() == [1, 3] and found.keys.tolist() == [0, 1]
