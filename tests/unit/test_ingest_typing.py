"""Ingest typing as pure logic on Arrow tables: casting, the contract, names, readers."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse.errors import IngestError
from lakehouse.lake.casting import TextFormats, Unconvertible, convert, widest
from lakehouse.lake.column_types import load_schema_file, parse_type, parse_type_flags
from lakehouse.lake.contract import fit_column, fit_frame, refuse_untyped, storable, unify
from lakehouse.lake.ingest import check_mode
from lakehouse.lake.names import check_columns, normalise_table_name
from lakehouse.lake.readers import ReadOptions, read_csv, read_json, sniff_delimiter


def col(values: list[object], kind: pa.DataType | None = None) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(values, kind)])


# --- the table's schema is the contract -------------------------------------------------


@pytest.mark.parametrize(
    ("values", "source", "target", "expected"),
    [
        ([None, None], pa.null(), pa.int64(), [None, None]),
        ([45], pa.int64(), pa.float64(), [45.0]),
        ([7], pa.int32(), pa.int64(), [7]),
        ([1.5], pa.float32(), pa.float64(), [1.5]),
        ([Decimal("1.5")], pa.decimal128(5, 1), pa.decimal128(10, 2), [Decimal("1.50")]),
        ([2.0], pa.float64(), pa.int64(), [2]),
        ([0.1], pa.float64(), pa.decimal128(10, 2), [Decimal("0.10")]),
        ([dt.date(2024, 3, 15)], pa.date32(), pa.timestamp("us"), [dt.datetime(2024, 3, 15)]),
        ([12], pa.int64(), pa.string(), ["12"]),
    ],
    ids=[
        "null",
        "int-double",
        "int-long",
        "float-double",
        "decimal-wider",
        "integral-double",
        "double-decimal",
        "date-timestamp",
        "int-string",
    ],
)
def test_safe_casts_to_the_table_type(
    values: list[object], source: pa.DataType, target: pa.DataType, expected: list[object]
) -> None:
    assert convert(col(values, source), target).to_pylist() == expected


@pytest.mark.parametrize(
    ("values", "source", "target", "reason"),
    [
        ([1.5], pa.float64(), pa.int64(), "truncated"),
        (["abc"], pa.string(), pa.int64(), "abc"),
        ([2**53 + 1], pa.int64(), pa.float64(), "not in range"),
        ([Decimal("1.555")], pa.decimal128(10, 3), pa.decimal128(10, 2), "data loss"),
        ([dt.datetime(2024, 1, 1, 10)], pa.timestamp("us"), pa.date32(), "time of day"),
        ([dt.datetime(2024, 1, 1)], pa.timestamp("us", "UTC"), pa.timestamp("us"), "zone"),
        ([dt.datetime(2024, 1, 1)], pa.timestamp("us"), pa.timestamp("us", "UTC"), "zone"),
        ([True], pa.bool_(), pa.int64(), "cannot be stored"),
        ([1.5], pa.float64(), pa.string(), "cannot be stored"),
        ([5], pa.int64(), pa.timestamp("us"), "cannot be stored"),
    ],
    ids=[
        "double-long",
        "text-long",
        "long-double-precision",
        "decimal-scale",
        "timestamp-date",
        "tz-naive",
        "naive-tz",
        "bool-long",
        "double-string",
        "int-timestamp",
    ],
)
def test_lossy_casts_are_refused(
    values: list[object], source: pa.DataType, target: pa.DataType, reason: str
) -> None:
    with pytest.raises(Unconvertible, match=reason):
        convert(col(values, source), target)


def test_text_numbers_with_grouping_and_currency() -> None:
    text = col(["1,234.50", "€99.90", "-$5", " 12 ", "1,234,567.1", None])
    got = convert(text, pa.decimal128(12, 2)).to_pylist()
    assert got == [Decimal("1234.50"), Decimal("99.90"), Decimal("-5.00"), Decimal("12.00"),
                   Decimal("1234567.10"), None]  # fmt: skip
    # "1.234,50" (a European decimal comma) must not become 1.2345 or 123450.
    for wrong in ("1.234,50", "12,34", "1,2345"):
        with pytest.raises(Unconvertible):
            convert(col([wrong]), pa.decimal128(12, 2))


def test_text_dates_booleans_and_timestamps_with_formats() -> None:
    formats = TextFormats(date_format="%m/%d/%Y", timestamp_format="%d.%m.%Y %H:%M")
    assert convert(col(["03/15/2024"]), pa.date32(), formats).to_pylist() == [dt.date(2024, 3, 15)]
    stamp = convert(col(["15.03.2024 10:30"]), pa.timestamp("us"), formats).to_pylist()
    assert stamp == [dt.datetime(2024, 3, 15, 10, 30)]
    with pytest.raises(Unconvertible):
        convert(col(["2024-03-15"]), pa.date32(), formats)
    flags = convert(col(["yes", "No", "t", "FALSE", "1", None]), pa.bool_()).to_pylist()
    assert flags == [True, False, True, False, True, None]
    with pytest.raises(Unconvertible, match="maybe"):
        convert(col(["maybe"]), pa.bool_())
    zoned = convert(col(["2024-01-01T10:00:00+02:00"]), pa.timestamp("us", "UTC")).to_pylist()
    assert zoned == [dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)]


def test_wider_input_promotes_the_column_by_iceberg_rules() -> None:
    assert fit_column(col([3_000_000_000]), pa.int32(), TextFormats()).type == pa.int64()
    assert fit_column(col([5]), pa.int32(), TextFormats()).type == pa.int32()
    big = col([Decimal("123456789.12")], pa.decimal128(38, 2))
    assert fit_column(big, pa.decimal128(10, 2), TextFormats()).type == pa.decimal128(11, 2)
    assert fit_column(col(["3000000000"]), pa.int32(), TextFormats()).type == pa.int64()
    with pytest.raises(Unconvertible):
        fit_column(col([1.5]), pa.int32(), TextFormats())  # no promotion makes 1.5 an int


def test_fit_frame_names_column_and_both_types() -> None:
    table = pa.schema([("qty", pa.int64())])
    with pytest.raises(IngestError) as info:
        fit_frame("b.csv", pa.table({"qty": [1.5]}), table, {}, TextFormats(), [])
    text = str(info.value)
    assert "qty" in text and "long" in text and "double" in text and "b.csv" in text
    assert "1.5" in text and "Hint:" in text


def test_fit_frame_empty_column_takes_the_table_type() -> None:
    table = pa.schema([("id", pa.int64()), ("qty", pa.int64())])
    data = pa.table({"id": [3, 4], "qty": pa.nulls(2)})
    fitted = fit_frame("b.csv", data, table, {}, TextFormats(), [])
    assert fitted.schema.field("qty").type == pa.int64()


def test_fit_frame_matches_table_columns_without_regard_to_case() -> None:
    table = pa.schema([("Customer ID", pa.int64())])
    fitted = fit_frame("x", pa.table({"customer id": ["7"]}), table, {}, TextFormats(), [])
    assert fitted.column_names == ["Customer ID"] and fitted.column(0).to_pylist() == [7]


def test_columns_without_values_never_decide_a_type() -> None:
    with pytest.raises(IngestError, match="no rows") as info:
        refuse_untyped(pa.table({"id": pa.nulls(0), "name": pa.nulls(0)}), None)
    assert "--type id=TYPE" in str(info.value)
    with pytest.raises(IngestError, match="qty"):
        refuse_untyped(pa.table({"id": [1], "qty": pa.nulls(1)}), None)
    refuse_untyped(pa.table({"qty": pa.nulls(1)}), pa.schema([("qty", pa.int64())]))


def test_unify_files_by_the_same_rules_and_name_both_files() -> None:
    a = pa.table({"id": pa.array([1], pa.int32()), "v": pa.nulls(1)})
    b = pa.table({"id": [2**40], "v": [2.5]})
    merged = unify([("a.csv", a), ("b.csv", b)], TextFormats())
    assert merged.schema.types == [pa.int64(), pa.float64()]
    assert merged.to_pylist() == [{"id": 1, "v": None}, {"id": 2**40, "v": 2.5}]
    with pytest.raises(IngestError) as info:
        unify([("a.csv", pa.table({"v": [1]})), ("b.csv", pa.table({"v": ["x"]}))], TextFormats())
    assert (
        "a.csv" in str(info.value) and "b.csv" in str(info.value) and "column v" in str(info.value)
    )
    assert widest(pa.decimal128(10, 2), pa.decimal128(5, 4)) == pa.decimal128(12, 4)
    assert widest(pa.date32(), pa.timestamp("us")) == pa.timestamp("us")
    assert widest(pa.timestamp("us"), pa.timestamp("us", "UTC")) is None


# --- names ---------------------------------------------------------------------------


def test_table_names_are_lower_cased_and_checked() -> None:
    assert normalise_table_name("walk.customers")[0] == "walk.customers"
    name, notice = normalise_table_name("Walk.Customers_Upper")
    assert name == "walk.customers_upper" and notice and "lower case" in notice
    for bad, suggestion in (("walk.bad-name", "walk.bad_name"), ("walk.1st", "walk.t_1st"),
                            ("my ns.t", "my_ns.t"), ("a.b.c", None), ("nodot", None)):  # fmt: skip
        with pytest.raises(IngestError) as info:
            normalise_table_name(bad)
        assert suggestion is None or f"--table {suggestion}" in str(info.value)


def test_column_names_colliding_without_case_are_refused() -> None:
    with pytest.raises(IngestError, match="'Code' and 'code'"):
        check_columns(["Code", "code"], "c.csv")
    with pytest.raises(IngestError, match="'a' and 'a'"):
        check_columns(["a", "a"], "c.csv")
    with pytest.raises(IngestError, match="without a name"):
        check_columns(["a", ""], "c.csv")
    check_columns(["Customer ID", "amount"], "ok.csv")


# --- options -------------------------------------------------------------------------


def test_key_with_append_or_overwrite_is_refused() -> None:
    for mode in ("append", "overwrite"):
        with pytest.raises(IngestError, match="--mode upsert") as info:
            check_mode(mode, ["id"])
        assert "Hint:" in str(info.value)
    check_mode("upsert", ["id"])


def test_type_names_flags_and_schema_files(tmp_path: Path) -> None:
    assert parse_type("decimal(12, 2)") == pa.decimal128(12, 2)
    assert parse_type("LONG") == pa.int64() and parse_type("timestamptz").tz == "UTC"
    for bad in ("decimal", "decimal(40,2)", "decimal(2,3)", "money"):
        with pytest.raises(IngestError, match="Hint:"):
            parse_type(bad)
    assert parse_type_flags(["amount=decimal(12,2)"]) == {"amount": "decimal(12,2)"}
    with pytest.raises(IngestError, match="COLUMN=TYPE"):
        parse_type_flags(["amount"])
    (tmp_path / "s.json").write_text(json.dumps({"id": "long"}))
    (tmp_path / "s.toml").write_text('id = "long"\n"Customer ID" = "string"\n')
    assert load_schema_file(tmp_path / "s.json") == {"id": "long"}
    assert load_schema_file(tmp_path / "s.toml") == {"id": "long", "Customer ID": "string"}
    (tmp_path / "bad.json").write_text("[1]")
    with pytest.raises(IngestError, match="must map"):
        load_schema_file(tmp_path / "bad.json")


# --- readers -------------------------------------------------------------------------


def test_csv_delimiter_is_detected() -> None:
    assert sniff_delimiter("id;amount\n1;2,5\n2;3,75\n", '"') == ";"
    assert sniff_delimiter('id,amount\n1,"1,234.50"\n', '"') == ","
    assert sniff_delimiter("a\tb\n1\t2\n", '"') == "\t"
    assert sniff_delimiter("a|b\n1|2\n", '"') == "|"
    assert sniff_delimiter("single\n1\n", '"') == ","
    table = read_csv(b"id;amt\n1;2\n", "semi.csv", ReadOptions())
    assert table.column_names == ["id", "amt"]


def test_csv_parse_error_hint_mentions_delimiter() -> None:
    with pytest.raises(IngestError, match="--delimiter"):
        read_csv(b"a,b\n1,2,3\n", "bad.csv", ReadOptions(delimiter=","))


def test_csv_empty_cells_are_null_for_every_type_and_quoted_empty_is_text() -> None:
    raw = b'\xef\xbb\xbfid,name,n,note\n1,,,""\n2,x,3,NA\n'
    table = read_csv(raw, "e.csv", ReadOptions(nulls=("NA",)))
    assert table.column_names == ["id", "name", "n", "note"]  # BOM gone
    assert table.to_pylist() == [
        {"id": 1, "name": None, "n": None, "note": ""},
        {"id": 2, "name": "x", "n": 3, "note": None},
    ]


def test_csv_known_columns_are_read_as_text() -> None:
    raw = b'zip,amount\n007,"1,234.50"\n'
    table = read_csv(raw, "z.csv", ReadOptions(text_columns=frozenset({"zip", "amount"})))
    assert table.to_pylist() == [{"zip": "007", "amount": "1,234.50"}]


def test_tsv_with_quotes() -> None:
    table = read_csv(b'a\tb\n"x\ty"\t2\n', "q.tsv", ReadOptions())
    assert table.to_pylist() == [{"a": "x\ty", "b": 2}]


def test_json_lines_array_and_single_object() -> None:
    rows = [{"id": 1, "s": {"x": 1}}, {"id": 2, "s": {"x": 2}}]
    lines = "\n".join(json.dumps(r) for r in rows).encode()
    assert read_json(lines, "a.jsonl").to_pylist() == rows
    assert read_json(json.dumps(rows, indent=2).encode(), "a.json").to_pylist() == rows
    assert read_json(json.dumps(rows[0], indent=2).encode(), "o.json").to_pylist() == rows[:1]
    assert read_json(b"[]", "empty.json").num_rows == 0
    with pytest.raises(IngestError, match="Hint:"):
        read_json(b"[1, 2]", "n.json")


def test_json_timestamps_keep_their_zone() -> None:
    raw = b'{"at": "2024-01-01T10:00:00+02:00", "day": "2024-03-15"}\n'
    table = read_json(raw, "t.jsonl")
    fitted = fit_frame("t.jsonl", table, None, {}, TextFormats(), [])
    assert fitted.schema.field("at").type == pa.timestamp("us", "UTC")
    assert fitted.schema.field("day").type == pa.date32()
    assert fitted.column("at").to_pylist() == [dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC)]


def test_money_and_us_dates_inferred_as_text_say_so() -> None:
    notices: list[str] = []
    data = pa.table({"amount": ["1,234.50", "€99.90"], "day": ["03/15/2024", "12/01/2023"]})
    fitted = fit_frame("m.csv", data, None, {}, TextFormats(), notices)
    assert fitted.schema.types == [pa.string(), pa.string()]
    assert any("--type amount=decimal" in n for n in notices)
    assert any("--date-format" in n for n in notices)
    dated = fit_frame("m.csv", data, None, {"amount": pa.decimal128(10, 2)},
                      TextFormats(date_format="%m/%d/%Y"), [])  # fmt: skip
    assert dated.schema.types == [pa.decimal128(10, 2), pa.date32()]


# --- issue 10: no digit lost, no value changed --------------------------------------------


@pytest.mark.parametrize(
    ("csv_text", "expected_type", "expected"),
    [
        (
            "id,big\n1,9223372036854775807\n2,9223372036854775808\n3,9007199254740993\n",
            pa.decimal128(38, 0),
            [Decimal(9223372036854775807), Decimal(9223372036854775808), Decimal(9007199254740993)],
        ),
        ("id,big\n1,12345678901234567890.12\n", pa.decimal128(22, 2),
         [Decimal("12345678901234567890.12")]),
        ("id,big\n1,0.1234567890123456789\n2,1.5\n", pa.decimal128(20, 19),
         [Decimal("0.1234567890123456789"), Decimal("1.5")]),
        ("id,big\n1,1.5\n2,-2.25\n", pa.float64(), [1.5, -2.25]),
    ],
)  # fmt: skip
def test_csv_numbers_are_read_exactly(
    csv_text: str, expected_type: pa.DataType, expected: list[object]
) -> None:
    table = read_csv(csv_text.encode(), "t.csv", ReadOptions())
    assert table.schema.field("big").type == expected_type
    assert table.column("big").to_pylist() == expected


def test_number_no_type_holds_is_refused_with_a_hint() -> None:
    with pytest.raises(IngestError, match="which a double would change") as caught:
        read_csv(b"x\n1.2345678901234567e50\n", "t.csv", ReadOptions())
    assert "--type x=decimal" in str(caught.value.hint)
    with pytest.raises(IngestError, match="which a double would change"):
        read_csv(b"x\n" + b"1" * 40 + b"\n", "t.csv", ReadOptions())


@pytest.mark.parametrize(
    "raw",
    [b'{"id":7,"big":9007199254740993.0}\n{"id":8,"big":1.5}\n',
     b'[{"id":7,"big":9007199254740993.0},{"id":8,"big":1.5}]'],
)  # fmt: skip
def test_json_numbers_are_read_exactly(raw: bytes) -> None:
    table = read_json(raw, "t.json")
    assert table.column("big").to_pylist() == [Decimal("9007199254740993.0"), Decimal("1.5")]
    long = fit_column(table.column("big").slice(0, 1), pa.int64(), TextFormats())
    assert long.to_pylist() == [9007199254740993]


def test_json_big_integer_is_a_decimal() -> None:
    table = read_json(b'{"id":99999999999999999999}\n', "t.json")
    assert table.column("id").to_pylist() == [Decimal(99999999999999999999)]


@pytest.mark.parametrize("text", ["1 2", "1,2,3,4", "12-3", "1,23", "- 5"])
def test_blanks_and_bad_grouping_inside_numbers_are_refused(text: str) -> None:
    with pytest.raises(IngestError, match=f"Column x.*'{text}'"):
        fit_frame("t.csv", pa.table({"x": [text]}), pa.schema([("x", pa.int64())]), {},
                  TextFormats(), [])  # fmt: skip


def test_documented_number_decorations_still_parse() -> None:
    parsed = convert(col([" € 1,234.50 ", "$99", "-1,000"]), pa.decimal128(10, 2))
    assert parsed.to_pylist() == [Decimal("1234.50"), Decimal("99.00"), Decimal("-1000.00")]


@pytest.mark.parametrize(
    ("values", "expected"),
    [(["2.0", "1e3", "-4.00"], [2, 1000, -4]), (["9007199254740993.0"], [9007199254740993])],
)
def test_whole_decimals_in_text_become_longs_like_json(
    values: list[str], expected: list[int]
) -> None:
    assert convert(col(values), pa.int64()).to_pylist() == expected


def test_text_number_message_names_the_value_it_failed_on() -> None:
    with pytest.raises(IngestError) as caught:
        fit_frame("t.csv", pa.table({"x": ["2.0", "2.5", "1e3"]}),
                  pa.schema([("x", pa.int64())]), {}, TextFormats(), [])  # fmt: skip
    message = str(caught.value)
    assert "'2.5' is not a long" in message and "(value '2.5')" in message
    assert "'2.0'" not in message and "1e3" not in message


@pytest.mark.parametrize("kind", [pa.float32(), pa.float64()])
def test_nan_inf_and_negative_zero_round_trip(kind: pa.DataType) -> None:
    values = [float("nan"), float("inf"), float("-inf"), -0.0, 1.5, None]
    stored = fit_column(col(values, pa.float64()), kind, TextFormats())
    assert stored.type == kind  # a NaN does not widen a float column to double
    assert str(stored.to_pylist()) == str(values)


def _parquet_round_trip(array: pa.Array) -> pa.Table:
    import io

    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(pa.table({"c": array}), buffer)
    return pq.read_table(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize(
    ("array", "stored"),
    [
        (pa.array([1, 255], pa.uint8()), pa.int32()),
        (pa.array([1, 65535], pa.uint16()), pa.int32()),
        (pa.array([1, 2**32 - 1], pa.uint32()), pa.int64()),
        (pa.array([-1, 2], pa.int8()), pa.int32()),
        (pa.array([-1, 2], pa.int16()), pa.int32()),
        (pa.array([1.5, None], pa.float16()), pa.float32()),
        (pa.array(["a", "b", "a"]).dictionary_encode(), pa.string()),
        (pa.array(["x", None], pa.large_string()), pa.string()),
        (pa.array(["x", None], pa.string_view()), pa.string()),
        (pa.array([b"x", None], pa.large_binary()), pa.binary()),
        (pa.array([[1], [2, None]], pa.large_list(pa.int64())), pa.list_(pa.int64())),
        (pa.array([[1, 2], None], pa.list_(pa.int64(), 2)), pa.list_(pa.int64())),
        (pa.array([1000, None], pa.time32("ms")), pa.time64("us")),
        (pa.array([dt.date(2024, 1, 1), None], pa.date64()), pa.date32()),
        (pa.array([Decimal("1.50"), None], pa.decimal256(10, 2)), pa.decimal128(10, 2)),
        (pa.array([{"a": 1}, None], pa.struct([("a", pa.uint8())])), pa.struct([("a", pa.int32())])),
        (pa.array([[("k", 1)], None], pa.map_(pa.large_string(), pa.uint16())),
         pa.map_(pa.string(), pa.int32())),
    ],
)  # fmt: skip
def test_every_parquet_arrow_type_is_stored_without_change(
    array: pa.Array, stored: pa.DataType
) -> None:
    data = _parquet_round_trip(array)
    fitted = fit_frame("f.parquet", data, None, {}, TextFormats(), [])
    assert fitted.schema.field("c").type.equals(stored, check_metadata=False) or str(
        fitted.schema.field("c").type
    ) == str(stored)
    assert fitted.column("c").to_pylist() == data.column("c").to_pylist()


def test_extensions_that_disagree_are_refused() -> None:
    from lakehouse.lake.readers import check_extensions

    with pytest.raises(IngestError, match=r"different formats.*csv: d/a\.csv.*json: d/b\.json"):
        check_extensions(["d/a.csv", "d/b.json"], "csv", "csv")
    with pytest.raises(IngestError, match="--format json"):
        check_extensions(["d/a.csv", "d/b.csv"], "json", "json")
    check_extensions(["d/a.csv", "d/part-0", "d/b.TXT"], "csv", "csv")  # no/unknown: fine


def test_text_in_another_encoding_is_one_clear_error() -> None:
    from lakehouse.lake.readers import decode

    with pytest.raises(IngestError, match=r"f\.csv is not valid utf-8.*line 3") as caught:
        decode(b"id,name\n2,ok\n1,caf\xe9\n", "f.csv", "utf-8")
    assert "--encoding latin-1" in str(caught.value.hint)
    assert decode(b"1,caf\xe9\n", "f.csv", "latin-1") == "1,café\n"
    with pytest.raises(IngestError, match="Unknown encoding"):
        decode(b"x", "f.csv", "nope-8")


# --- issue 10 §1 (F1b): more values a new user saw changed ----------------------------------


@pytest.mark.parametrize(
    ("column", "written"),
    [("zip", "02134"), ("phone", "+15551234567"), ("code", "007"), ("minus_zero", "-0"),
     ("dot", "1."), ("padded_double", "01.5"), ("plus_double", "+2.5")],
)  # fmt: skip
def test_numbers_a_number_type_would_respell_stay_text_with_a_notice(
    column: str, written: str
) -> None:
    table = read_csv(f"id,{column}\n1,{written}\n2,\n".encode(), "z.csv", ReadOptions())
    notices: list[str] = []
    fitted = fit_frame("z.csv", table, None, {}, TextFormats(), notices)
    assert fitted.schema.field(column).type == pa.string()
    assert fitted.column(column).to_pylist() == [written, None]
    assert fitted.schema.field("id").type == pa.int64()
    assert any(f"--type {column}=" in n and repr(written) in n for n in notices), notices


def test_canonical_numbers_are_still_inferred() -> None:
    table = read_csv(b"a,b,c,d\n0,0.5,-3,1e3\n10,-0.0,7,2.5E-2\n", "n.csv", ReadOptions())
    assert table.schema.types == [pa.int64(), pa.float64(), pa.int64(), pa.float64()]


def test_explicit_type_still_parses_leading_zeros() -> None:
    table = read_csv(b"zip\n02134\n", "z.csv", ReadOptions(text_columns=frozenset({"zip"})))
    fitted = fit_frame("z.csv", table, None, {"zip": pa.int64()}, TextFormats(), [])
    assert fitted.column("zip").to_pylist() == [2134]


def test_numeric_looking_json_strings_stay_strings() -> None:
    table = read_json(b'{"zip": "02134", "n": "12"}\n', "z.jsonl")
    notices: list[str] = []
    fitted = fit_frame("z.jsonl", table, None, {}, TextFormats(), notices)
    assert fitted.to_pylist() == [{"zip": "02134", "n": "12"}]


def test_nested_fields_the_table_lacks_are_kept_at_every_level() -> None:
    inner = pa.struct([("a", pa.int64())])
    table = pa.schema([("m", pa.map_(pa.string(), inner)), ("s", pa.struct([("t", inner)]))])
    data = pa.table({
        "m": pa.array([[("k", {"a": 1, "b": "x"})]], pa.map_(pa.string(), pa.struct(
            [("a", pa.int64()), ("b", pa.string())]))),
        "s": pa.array([{"t": {"a": 2, "c": 1.5}}]),
    })  # fmt: skip
    fitted = fit_frame("n.json", data, table, {}, TextFormats(), [])
    assert fitted.column("m").to_pylist() == [[("k", {"a": 1, "b": "x"})]]
    assert fitted.column("s").to_pylist() == [{"t": {"a": 2, "c": 1.5}}]


def test_new_nested_field_without_values_is_refused_naming_its_path() -> None:
    table = pa.schema([("s", pa.struct([("a", pa.int64())]))])
    data = pa.table({"s": pa.array([{"a": 1, "z": None}])})
    with pytest.raises(IngestError, match=r"s\.z is new"):
        fit_frame("n.json", data, table, {}, TextFormats(), [])


@pytest.mark.parametrize(
    ("table_type", "given"),
    [(pa.string(), pa.decimal128(12, 2)), (pa.int64(), pa.string()), (pa.int64(), pa.int32()),
     (pa.decimal128(10, 2), pa.decimal128(12, 3)), (pa.float64(), pa.float32())],
)  # fmt: skip
def test_type_flag_conflicting_with_the_table_is_refused(
    table_type: pa.DataType, given: pa.DataType
) -> None:
    data = pa.table({"amount": ["1"]})
    with pytest.raises(IngestError, match="conflicts with the table") as caught:
        fit_frame("t.csv", data, pa.schema([("amount", table_type)]), {"amount": given},
                  TextFormats(), [])  # fmt: skip
    assert "contract" in str(caught.value.hint)


@pytest.mark.parametrize(
    ("table_type", "given"),
    [(pa.int32(), pa.int64()), (pa.float32(), pa.float64()),
     (pa.decimal128(10, 2), pa.decimal128(14, 2)), (pa.int64(), pa.int64())],
)  # fmt: skip
def test_type_flag_promoting_the_table_column_is_kept(
    table_type: pa.DataType, given: pa.DataType
) -> None:
    data = pa.table({"amount": ["12"]})
    fitted = fit_frame("t.csv", data, pa.schema([("amount", table_type)]), {"amount": given},
                       TextFormats(), [])  # fmt: skip
    assert fitted.schema.field("amount").type == given


@pytest.mark.parametrize(
    ("table_type", "given"),
    [(pa.large_string(), pa.string()), (pa.large_binary(), pa.binary()),
     (pa.list_(pa.large_string()), pa.list_(pa.string())),
     (pa.timestamp("us", tz="UTC"), pa.timestamp("us", tz="UTC"))],
)  # fmt: skip
def test_type_flag_naming_the_table_type_in_another_arrow_spelling_is_kept(
    table_type: pa.DataType, given: pa.DataType
) -> None:
    # pyiceberg reads an Iceberg string column as Arrow large_string; `--type c=string`
    # on such a table was refused as "string conflicts with the table, whose column is
    # string" (seen re-training the ML features table).
    data = pa.table({"c": pa.array([None], pa.null())})
    fitted = fit_frame("t.csv", data, pa.schema([("c", table_type)]), {"c": given},
                       TextFormats(), [])  # fmt: skip
    assert storable(fitted.schema.field("c").type) == storable(table_type)


@pytest.mark.parametrize(
    ("raw", "column", "where"),
    [(b'{"id":1,"v":1}\n{"id":2,"v":"two"}\n', "v", 'line 2: "two"'),
     (b'{"id":1,"ok":true}\n{"id":2,"ok":[1]}\n', "ok", "line 2: [1]"),
     (b'[{"m":{"a":1}},{"m":{"a":"x"}}]', "m.a", "")],
)  # fmt: skip
def test_json_type_conflict_is_named_not_called_bad_json(
    raw: bytes, column: str, where: str
) -> None:
    with pytest.raises(IngestError) as caught:
        read_json(raw, "m.jsonl")
    message = caught.value.message if hasattr(caught.value, "message") else str(caught.value)
    assert f"Column {column} in m.jsonl holds JSON" in message and where in message
    assert "JSON Lines" not in str(caught.value.hint)
