"""The Arrow snapshot's column conversion equals the per-value converter, value for value.

Pure logic: the text is what PostgreSQL prints (DateStyle=ISO, TimeZone=UTC);
the integration test tests/integration/test_sync_arrow_snapshot.py checks the
same against a real server's COPY output.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from lakehouse.sync import pgtypes
from lakehouse.sync.arrow_snapshot import (
    convert_chunk,
    convert_column,
    csv_records,
    has_duplicate_keys,
    read_text_chunks,
)
from lakehouse.sync.pgoutput import Column
from lakehouse.sync.pgtypes import BadValue, arrow_type, converter


def numeric(precision: int, scale: int) -> int:
    return ((precision << 16) | (scale & 0x7FF)) + 4


EDGE_TEXT: dict[tuple[int, int], list[str | None]] = {
    (pgtypes.BOOL, -1): ["t", "f", None],
    (pgtypes.INT2, -1): ["-32768", "32767", "0", None],
    (pgtypes.INT4, -1): ["-2147483648", "2147483647", None],
    (pgtypes.INT8, -1): ["-9223372036854775808", "9223372036854775807", None],
    (pgtypes.FLOAT4, -1): [
        "1.1",
        "NaN",
        "Infinity",
        "-Infinity",
        "-0",
        "3.4028235e+38",
        "1e-45",
        "0.1",
        None,
    ],
    (pgtypes.FLOAT8, -1): [
        "1.1",
        "NaN",
        "Infinity",
        "-Infinity",
        "-0",
        "1.7976931348623157e+308",
        "5e-324",
        "0.30000000000000004",
        None,
    ],
    (pgtypes.NUMERIC, numeric(10, 2)): [
        "1.23",
        "-99999999.99",
        "0.00",
        "-0.00",
        "NaN",
        "Infinity",
        "-Infinity",
        None,
    ],
    (pgtypes.NUMERIC, numeric(38, 0)): ["9" * 38, "-" + "9" * 38, None],
    (pgtypes.NUMERIC, -1): [
        "1.234567890123456789",
        "0.0000000004",
        "1" * 40,
        "NaN",
        "123.5",
        None,
    ],
    (pgtypes.DATE, -1): [
        "1969-12-31",
        "0001-01-01",
        "9999-12-31",
        "10000-01-01",
        "0044-03-15 BC",
        "infinity",
        "-infinity",
        None,
    ],
    (pgtypes.TIMESTAMP, -1): [
        "1900-01-01 00:00:00",
        "2020-02-29 23:59:59.999999",
        "2020-01-01 10:00:00.5",
        "infinity",
        "0001-01-01 00:00:00 BC",
        "294276-12-31 23:59:59",
        None,
    ],
    (pgtypes.TIMESTAMPTZ, -1): [
        "1969-07-20 20:17:40+00",
        "2020-01-01 10:00:00.123+00",
        "9999-12-31 23:59:59.999999+00",
        "-infinity",
        "2020-01-01 10:00:00+02",
        None,
    ],
    (pgtypes.TIME, -1): ["00:00:00", "23:59:59.999999", "12:30:00.5", "24:00:00", None],
    (pgtypes.BYTEA, -1): ["\\x", "\\xdeadbeef", None],
    (pgtypes.TEXT, -1): ["", 'a,b\n"c"', "ünïcode", None],
    (pgtypes.JSONB, -1): ['{"a": 1}', "[]", None],
    (pgtypes.UUID, -1): ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None],
    (1007, -1): ["{1,NULL,3}", "{}", None],  # int4[]
    (1186, -1): ["1 year 2 mons -3 days 04:05:06.7", None],  # interval
}


def reference(text: list[str | None], column: Column) -> tuple[list[object], dict[int, str]]:
    convert = converter(column.type_oid, column.type_modifier)
    values: list[object] = []
    refused: dict[int, str] = {}
    for row, value in enumerate(text):
        try:
            values.append(convert(value))
        except BadValue as exc:
            values.append(None)
            refused[row] = str(exc)
    return values, refused


def same(left: list[object], right: list[object]) -> bool:
    """Equal, telling -0.0 from 0.0 and NaN equal to NaN (repr does both)."""
    return [repr(v) for v in left] == [repr(v) for v in right]


@pytest.mark.parametrize(("oid", "modifier"), list(EDGE_TEXT))
def test_column_conversion_equals_the_converter(oid: int, modifier: int) -> None:
    column = Column("c", oid, modifier, False)
    text = EDGE_TEXT[(oid, modifier)]
    result = convert_column(pa.array(text, pa.string()), column)
    values, refused = reference(text, column)
    target = arrow_type(oid, modifier)
    assert result.values.type == target
    # Through Arrow on both sides: float32 and tz-aware values compare as stored.
    assert same(result.values.to_pylist(), pa.array(values, type=target).to_pylist())
    assert result.refused == refused


def test_a_refused_row_is_named_by_its_first_refused_column() -> None:
    columns = [
        Column("id", pgtypes.INT4, -1, True),
        Column("d", pgtypes.DATE, -1, False),
        Column("n", pgtypes.NUMERIC, numeric(5, 1), False),
    ]
    text = pa.table(
        {
            "id": ["1", "2", "3"],
            "d": ["2020-01-01", "infinity", "infinity"],
            "n": ["NaN", "1.0", "2.0"],
        }
    )
    chunk = convert_chunk(text, columns)
    assert chunk.rows.column("id").to_pylist() == []
    assert [row for row, _ in chunk.refused] == [0, 1, 2]
    assert chunk.refused[0][1].startswith("column n: cannot convert numeric(5,1) value 'NaN'")
    assert chunk.refused[1][1].startswith("column d: cannot convert date value 'infinity'")


def test_a_null_key_is_refused_as_the_per_row_path_refuses_it() -> None:
    columns = [Column("id", pgtypes.INT4, -1, True)]
    with pytest.raises(pa.ArrowInvalid, match="not nullable"):
        convert_chunk(pa.table({"id": pa.array(["1", None], pa.string())}), columns)


def test_duplicate_keys_are_found() -> None:
    assert has_duplicate_keys(pa.table({"k": [1, 2, 1]}), ["k"])
    assert not has_duplicate_keys(pa.table({"k": [1, 2, 1], "j": [1, 1, 2]}), ["k", "j"])


def test_csv_null_and_empty_string_stay_apart_across_chunks() -> None:
    csv = b'1,,"a\nb"\n2,"",x\n3,"say ""hi""\n,\n""",y\n' * 5000
    blocks = [csv[i : i + 777] for i in range(0, len(csv), 777)]
    chunks = list(read_text_chunks(csv_records(blocks, chunk_bytes=4096), ["a", "b", "c"]))
    table = pa.concat_tables(chunks)
    assert len(chunks) > 1 and table.num_rows == 15_000
    assert table.column("a").to_pylist()[:4] == ["1", "2", "3", "1"]
    assert table.column("b").to_pylist()[:3] == [None, "", 'say "hi"\n,\n"']
    assert table.column("c").to_pylist()[:3] == ["a\nb", "x", "y"]
    assert table.schema.types == [pa.string()] * 3


def test_csv_records_end_only_at_a_newline_outside_quotes() -> None:
    blocks = [b'1,"x\n', b"y\n", b'z"\n2,w\n', b"3,v"]
    chunks = list(csv_records(blocks, chunk_bytes=1))
    assert b"".join(chunks) == b"".join(blocks)
    assert chunks == [b'1,"x\ny\nz"\n2,w\n', b"3,v"]


CANONICAL = {
    (pgtypes.BOOL, -1): ["t", "f"],
    (pgtypes.INT4, -1): ["-5", "7"],
    (pgtypes.INT8, -1): ["9223372036854775807"],
    (pgtypes.FLOAT4, -1): ["1.1", "NaN", "-Infinity"],
    (pgtypes.FLOAT8, -1): ["1e+300", "-0"],
    (pgtypes.NUMERIC, numeric(10, 2)): ["1.23"],
    (pgtypes.DATE, -1): ["1969-12-31"],
    (pgtypes.TIMESTAMP, -1): ["2020-01-01 10:00:00.5"],
    (pgtypes.TIMESTAMPTZ, -1): ["2020-01-01 10:00:00+00"],
    (pgtypes.TIME, -1): ["23:59:59.999999"],
    (pgtypes.TEXT, -1): ["x"],
}


@pytest.mark.parametrize(("oid", "modifier"), list(CANONICAL))
def test_canonical_text_takes_the_arrow_path(
    oid: int, modifier: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakehouse.sync import arrow_snapshot

    def per_value(*args: object) -> None:
        raise AssertionError("converted one value at a time")

    monkeypatch.setattr(arrow_snapshot, "_per_value", per_value)
    result = convert_column(pa.array(CANONICAL[(oid, modifier)]), Column("c", oid, modifier, False))
    assert result.refused == {}
