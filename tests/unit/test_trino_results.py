"""Trino result segments: DuckDB's parse equals orjson's, and a wrong segment is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from lakehouse.engines.trino_arrow import record_batch, text_columns_batch
from lakehouse.engines.trino_results import FetchedSegment, _convert


def sig(raw: str, *arguments: Any) -> dict[str, Any]:
    return {"rawType": raw, "arguments": [{"kind": "X", "value": a} for a in arguments]}


def row_sig(**fields: dict[str, Any]) -> dict[str, Any]:
    values = [{"fieldName": {"name": n}, "typeSignature": s} for n, s in fields.items()]
    return {"rawType": "row", "arguments": [{"kind": "NAMED_TYPE", "value": v} for v in values]}


COLUMNS = [
    {"name": name, "typeSignature": signature}
    for name, signature in {
        "b": sig("bigint"), "t": sig("tinyint"), "r": sig("real"), "d": sig("double"),
        "f": sig("boolean"), "s": sig("varchar", 2147483647), "dec": sig("decimal", 38, 10),
        "day": sig("date"), "ts": sig("timestamp", 6), "tz": sig("timestamp with time zone", 3),
        "bin": sig("varbinary"), "iv": sig("interval day to second"), "tm": sig("time", 3),
        "u": sig("uuid"), "arr": sig("array", sig("bigint")),
        "m": sig("map", sig("varchar", 5), sig("double")),
        "row": row_sig(a=sig("bigint"), b=sig("varchar", 3)),
    }.items()
]  # fmt: skip
ROWS = [
    [9223372036854775807, -128, 1.1, 1.0000000000000002, True, 'a "quoted" é\n\u0000',
     "12345678901234567890.0123456789", "1900-01-01", "1969-07-20 20:17:40.123456",
     "2024-01-01 00:00:00.001 UTC", "AAH/", "-1 02:03:04.005", "23:59:59.999",
     "12151fd2-7586-11e9-8f9e-2a86e4085a59", [1, None], {"k": 2.5, "z": "-Infinity"},
     [7, "x"]],
    [None] * 17,
    [-9223372036854775808, 0, "Infinity", "NaN", False, "", "-0.0000000001", "2262-04-11",
     "0001-01-01 00:00:00.000000", "1970-01-01 00:00:00.000 UTC", "", "0 00:00:00.000",
     "00:00:00.000", "00000000-0000-0000-0000-000000000000", [], {}, [None, None]],
]  # fmt: skip


def segment_file(tmp_path: Path, rows: list[list[Any]]) -> Path:
    path = tmp_path / "segment.json"
    path.write_bytes(orjson.dumps(rows))
    return path


def assert_same(got: pa.RecordBatch, expected: pa.RecordBatch) -> None:
    assert got.schema == expected.schema
    for name in expected.schema.names:
        left, right = got.column(name), expected.column(name)
        if pa.types.is_floating(right.type):
            left, right = (pa.array([str(v) for v in c.to_pylist()]) for c in (left, right))
        assert left.equals(right), name


def test_duckdb_parse_equals_the_per_value_parse(tmp_path: Path) -> None:
    path = segment_file(tmp_path, ROWS)
    assert_same(text_columns_batch(path, COLUMNS), record_batch(ROWS, COLUMNS))


def test_a_segment_with_fewer_rows_than_announced_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="holds 3 rows, not 4"):
        _convert(FetchedSegment(4, orjson.dumps(ROWS)), COLUMNS)
    with pytest.raises(ValueError, match="holds 3 rows, not 2"):
        _convert(FetchedSegment(2, path=segment_file(tmp_path, ROWS)), COLUMNS)


def test_segments_in_memory_and_in_files_convert_alike(tmp_path: Path) -> None:
    in_memory = _convert(FetchedSegment(3, orjson.dumps(ROWS)), COLUMNS)
    in_file = _convert(FetchedSegment(3, path=segment_file(tmp_path, ROWS)), COLUMNS)
    assert_same(in_file, in_memory)
    assert not (tmp_path / "segment.json").exists()  # read once, then removed
