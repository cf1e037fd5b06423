"""Ingest never changes a value silently (issue 11, F6): numbers a double would change,
JSON keys an object names twice, CSV quotes never closed. The readers, as pure logic."""

from __future__ import annotations

import json
from decimal import Decimal

import pyarrow as pa
import pytest

from lakehouse.errors import IngestError
from lakehouse.lake.casting import TextFormats, Unconvertible, convert
from lakehouse.lake.readers import ReadOptions, read_csv, read_json

# --- numbers a double would change become exact decimals, or are refused ----------------


@pytest.mark.parametrize(
    ("written", "expected_type", "expected"),
    [
        ("1.2345678901234567e5", pa.decimal128(17, 11), Decimal("123456.78901234567")),
        ("9.007199254740993E15", pa.decimal128(38, 0), Decimal("9007199254740993")),
        ("1e-30", pa.float64(), 1e-30),  # a normal double: the number written
        ("1.5e300", pa.float64(), 1.5e300),
    ],
)
def test_exponent_numbers_are_exact_in_csv_and_json(
    written: str, expected_type: pa.DataType, expected: object
) -> None:
    tables = [
        read_csv(f"id,x\n1,{written}\n".encode(), "n.csv", ReadOptions()),
        read_json(f'{{"id": 1, "x": {written}}}\n'.encode(), "n.json"),
    ]
    for table in tables:
        assert table.schema.field("x").type == expected_type
        assert table.column("x").to_pylist() == [expected]


@pytest.mark.parametrize(
    "written",
    ["1e400", "-1e400", "1e-400", "4.9e-324", "2.5e-310", "1" * 40, "1.2345678901234567e50"],
)
def test_numbers_no_type_holds_are_refused_naming_column_file_line_and_value(
    written: str,
) -> None:
    csv_text = f"id,x\n1,2.5\n2,7\n3,{written}\n"
    with pytest.raises(IngestError, match="which a double would change") as caught:
        read_csv(csv_text.encode(), "n.csv", ReadOptions())
    message = str(caught.value)
    assert "Column x in n.csv" in message and written in message and "line 4" in message
    assert "--type x=decimal(P,S)" in str(caught.value.hint)
    assert "--type x=string" in str(caught.value.hint)
    lines = f'{{"id": 1, "x": 2.5}}\n\n{{"id": 2, "x": {written}}}\n'.encode()
    with pytest.raises(IngestError, match="which a double would change") as caught:
        read_json(lines, "n.jsonl")
    assert "Column x in n.jsonl" in str(caught.value) and "line 3" in str(caught.value)
    assert "JSON strings" in str(caught.value.hint)


def test_csv_line_counts_quoted_fields_that_span_lines() -> None:
    raw = b'id,note,x\n1,"two\nlines",2.5\n2,b,1e400\n'
    with pytest.raises(IngestError, match="line 4"):
        read_csv(raw, "n.csv", ReadOptions())


def test_json_array_names_the_line_of_the_record() -> None:
    raw = json.dumps([{"x": 1.5}, {"x": 2.5}], indent=1).replace("2.5", "1e-400").encode()
    with pytest.raises(IngestError, match="line 5"):
        read_json(raw, "a.json")


def test_infinity_and_zero_written_as_such_stay_doubles() -> None:
    table = read_csv(b"x\ninf\n0\n0.0\n-0.0\n1.5\n", "n.csv", ReadOptions())
    assert table.schema.field("x").type == pa.float64()
    assert table.column("x").to_pylist()[:3] == [float("inf"), 0.0, 0.0]


@pytest.mark.parametrize("target", [pa.float64(), pa.float32()])
@pytest.mark.parametrize("written", ["1e400", "1e-400", "-1e999"])
def test_text_into_a_float_column_never_overflows_or_underflows(
    written: str, target: pa.DataType
) -> None:
    column = pa.chunked_array([pa.array(["1.5", written], pa.string())])
    with pytest.raises(Unconvertible, match=f"'{written}' is beyond the range"):
        convert(column, target, TextFormats())


def test_text_into_a_float_column_keeps_zero_and_small_normals() -> None:
    column = pa.chunked_array([pa.array(["0", "0.000", "1e-30", None], pa.string())])
    assert convert(column, pa.float64(), TextFormats()).to_pylist() == [0.0, 0.0, 1e-30, None]


# --- a JSON object naming a key twice ----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "line", "keys"),
    [
        (b'{"id": 1, "id": 2}\n', 1, "'id' twice"),
        (b'{"id": 1}\n\n{"id": 2, "v": 1, "v": 1}\n', 3, "'v' twice"),
        (b'[{"id": 1},\n {"id": 2, "ID": 3}]', 2, "'id' and 'ID'"),
        (b'{\n "id": 1,\n "n": {"a": 1, "a": 2}\n}', 1, "'a' twice"),
        (b'{"id": 1, "Id": 2}\n', 1, "'id' and 'Id'"),
    ],
)
def test_a_json_key_named_twice_is_refused(raw: bytes, line: int, keys: str) -> None:
    with pytest.raises(IngestError) as caught:
        read_json(raw, "k.json")
    message = str(caught.value)
    assert f"k.json: the record starting on line {line}" in message and keys in message
    assert caught.value.hint


def test_distinct_keys_and_bad_json_are_as_before() -> None:
    rows = read_json(b'{"id": 1, "n": {"id": 2}}\n{"id": 3, "n": {"id": 4}}\n', "ok.json")
    assert rows.column("id").to_pylist() == [1, 3]
    with pytest.raises(IngestError, match=r"Cannot read bad\.json as JSON"):
        read_json(b'{"id": 1}\n{"id": \n', "bad.json")


# --- a CSV quote never closed -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        (b'id,v\n1,a\n2,"unterminated\n3,c\n', 3),
        (b'id,v\n1,"ok\nspans"\n2,"open\n', 4),
        (b'id,v\n1,"', 2),
        (b'id,v\n1,"a""b\n', 2),
        (b'id;v\n1;"x\n', 2),
    ],
)
def test_a_quote_open_at_the_end_of_the_file_is_refused(raw: bytes, line: int) -> None:
    with pytest.raises(IngestError, match=f"opened on line {line}") as caught:
        read_csv(raw, "q.csv", ReadOptions())
    assert "--quote" in str(caught.value.hint)


def test_closed_quotes_spanning_lines_and_literal_quotes_still_read() -> None:
    raw = b'id,v\n1,"a\nb"\n2,a"b\n3,"x"""\n4,""\n5,"c,"\n'
    table = read_csv(raw, "q.csv", ReadOptions())
    assert table.column("v").to_pylist() == ["a\nb", 'a"b', 'x"', "", "c,"]
    apostrophe = read_csv(b"id,v\n1,'open\n", "q.csv", ReadOptions())
    assert apostrophe.column("v").to_pylist() == ["'open"]  # not the quote character


def test_the_quote_option_names_what_opens_a_field() -> None:
    with pytest.raises(IngestError, match="opened on line 2"):
        read_csv(b"id,v\n1,'open\n2,b\n", "q.csv", ReadOptions(quote="'", delimiter=","))


def test_a_repeated_key_is_found_in_any_chunk_of_json_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("lakehouse.lake.json_records.CHUNK_LINES", 2)
    lines = [f'{{"id": {n}}}' for n in range(1, 7)]
    lines[4] = '{"id": 5, "id": 6}'
    with pytest.raises(IngestError, match="record starting on line 6 names the key 'id'"):
        read_json(("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:])).encode(), "c.jsonl")
    assert read_json("\n".join(lines[:4]).encode(), "c.jsonl").num_rows == 4
