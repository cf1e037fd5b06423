"""PostgreSQL types as Arrow types, and PostgreSQL text output as Python values.

The end-to-end cases decode pgoutput messages captured from a real PostgreSQL 18
for this table (TimeZone=UTC unless noted):

    create table all_types (id int primary key, b bool, i2 int2, i8 int8, f4 float4,
      f8 float8, n numeric(12,3), nu numeric, t text, vc varchar(10), bp char(3),
      nm name, u uuid, j json, jb jsonb, d date, ts timestamp, tstz timestamptz,
      tm time, by bytea, iv interval, arr int4[]);
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pyarrow as pa
import pytest

from lakehouse.sync.model import rows_to_arrow
from lakehouse.sync.pgoutput import Column, PgOutputDecoder, Row, Transaction
from lakehouse.sync.pgtypes import (
    BadValue,
    arrow_schema,
    arrow_type,
    convert,
    converter,
    numeric_precision_scale,
    type_label,
)

# B, R, I (row 1), I (row 2: values Arrow cannot hold), C
ALL_TYPES_UTC = [
    bytes.fromhex("4200000000176ef698000304429d768dc300000358"),
    bytes.fromhex(
        "52000042227075626c696300616c6c5f7479706573006400160169640000000017ffffffff0062000000"
        "0010ffffffff0069320000000015ffffffff0069380000000014ffffffff00663400000002bcffffffff"
        "00663800000002bdffffffff006e00000006a4000c0007006e7500000006a4ffffffff00740000000019"
        "ffffffff00766300000004130000000e006270000000041200000007006e6d0000000013ffffffff0075"
        "0000000b86ffffffff006a0000000072ffffffff006a620000000edaffffffff0064000000043affffff"
        "ff007473000000045affffffff007473747a00000004a0ffffffff00746d000000043bffffffff006279"
        "0000000011ffffffff00697600000004a2ffffffff0061727200000003efffffffff"
    ),
    bytes.fromhex(
        "49000042224e001674000000013174000000017474000000062d333237363874000000142d3932323333"
        "37323033363835343737353830387400000003302e31740000000631652b333030740000000d31323334"
        "35363738392e313235740000000d2d302e30303030303030303035740000000668c3a96c6c6f74000000"
        "0776617263686172740000000361202074000000026e6d740000002461306565626339392d396330622d"
        "346566382d626236642d366262396264333830613131740000000d7b2261223a205b312c20325d7d7400"
        "00000b7b2262223a206e756c6c7d740000000a323032342d30322d32397400000015323032342d30322d"
        "32392032333a35393a35392e35740000001d323032342d30322d32392031383a32393a35392e30303030"
        "30312b3030740000000b31333a30313a30322e323574000000085c78303066663130740000000e312064"
        "61792030323a30333a3034740000000a7b312c4e554c4c2c337d"
    ),
    bytes.fromhex(
        "49000042224e00167400000001327400000001666e6e74000000034e614e74000000092d496e66696e69"
        "74796e74000000034e614e6e6e6e6e6e6e6e7400000008696e66696e6974797400000016303034342d30"
        "332d31352031323a30303a303020424374000000092d696e66696e697479740000000832343a30303a30"
        "3074000000025c786e6e"
    ),
    bytes.fromhex("430000000000176ef69800000000176ef6c8000304429d768dc3"),
]
# Row 1 again, peeked by a session with TimeZone=Asia/Kolkata.
ROW_1_KOLKATA = bytes.fromhex(
    "49000042224e001674000000013174000000017474000000062d333237363874000000142d3932323333"
    "37323033363835343737353830387400000003302e31740000000631652b333030740000000d31323334"
    "35363738392e313235740000000d2d302e30303030303030303035740000000668c3a96c6c6f74000000"
    "0776617263686172740000000361202074000000026e6d740000002461306565626339392d396330622d"
    "346566382d626236642d366262396264333830613131740000000d7b2261223a205b312c20325d7d7400"
    "00000b7b2262223a206e756c6c7d740000000a323032342d30322d32397400000015323032342d30322d"
    "32392032333a35393a35392e357400000020323032342d30322d32392032333a35393a35392e30303030"
    "30312b30353a3330740000000b31333a30313a30322e323574000000085c78303066663130740000000e"
    "31206461792030323a30333a3034740000000a7b312c4e554c4c2c337d"
)

NUMERIC_10_2 = 0x000A0006  # typmod of numeric(10,2): (10 << 16 | 2) + 4
NUMERIC, TIMESTAMP, TIMESTAMPTZ, DATE, TIME, BYTEA, BOOL = 1700, 1114, 1184, 1082, 1083, 17, 16


def decode_all_types(row_message: bytes | None = None) -> Transaction:
    messages = list(ALL_TYPES_UTC)
    if row_message is not None:
        messages[2] = row_message
    decoder = PgOutputDecoder()
    transactions = [decoder.feed(message) for message in messages]
    transaction = transactions[-1]
    assert transaction is not None
    return transaction


def convert_row(columns: tuple[Column, ...], row: Row) -> dict[str, object]:
    converters = {c.name: converter(c.type_oid, c.type_modifier) for c in columns}
    converted = {}
    for name, value in row.items():
        assert value is None or isinstance(value, str)  # no UNCHANGED in an insert
        converted[name] = converters[name](value)
    return converted


ROW_1 = {
    "id": 1,
    "b": True,
    "i2": -32768,
    "i8": -(2**63),
    "f4": 0.10000000149011612,  # the float32 nearest to 0.1, exactly
    "f8": 1e300,
    "n": Decimal("123456789.125"),
    "nu": "-0.0000000005",  # unconstrained numeric: PostgreSQL's text, never rounded
    "t": "héllo",
    "vc": "varchar",
    "bp": "a  ",  # char(n) keeps its padding
    "nm": "nm",
    "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "j": '{"a": [1, 2]}',
    "jb": '{"b": null}',
    "d": date(2024, 2, 29),
    "ts": datetime(2024, 2, 29, 23, 59, 59, 500000),
    "tstz": datetime(2024, 2, 29, 18, 29, 59, 1, tzinfo=UTC),  # inserted at +05:30
    "tm": time(13, 1, 2, 250000),
    "by": b"\x00\xff\x10",
    "iv": "1 day 02:03:04",
    "arr": "{1,NULL,3}",
}

ALL_TYPES_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int32(), nullable=False),
        pa.field("b", pa.bool_()),
        pa.field("i2", pa.int32()),
        pa.field("i8", pa.int64()),
        pa.field("f4", pa.float32()),
        pa.field("f8", pa.float64()),
        pa.field("n", pa.decimal128(12, 3)),
        pa.field("nu", pa.string()),
        pa.field("t", pa.string()),
        pa.field("vc", pa.string()),
        pa.field("bp", pa.string()),
        pa.field("nm", pa.string()),
        pa.field("u", pa.string()),
        pa.field("j", pa.string()),
        pa.field("jb", pa.string()),
        pa.field("d", pa.date32()),
        pa.field("ts", pa.timestamp("us")),
        pa.field("tstz", pa.timestamp("us", tz="UTC")),
        pa.field("tm", pa.time64("us")),
        pa.field("by", pa.binary()),
        pa.field("iv", pa.string()),
        pa.field("arr", pa.string()),
    ]
)


def test_captured_row_converts_to_python_values() -> None:
    insert = decode_all_types().changes[0]
    assert insert.new is not None
    converted = convert_row(insert.relation.columns, insert.new)
    assert converted == ROW_1
    timestamptz, timestamp = converted["tstz"], converted["ts"]
    assert isinstance(timestamptz, datetime)
    assert isinstance(timestamp, datetime)
    assert timestamptz.utcoffset() == timedelta(0)
    assert timestamp.tzinfo is None


def test_timestamptz_from_a_session_in_another_time_zone_is_the_same_instant() -> None:
    insert = decode_all_types(ROW_1_KOLKATA).changes[0]
    assert insert.new is not None
    assert insert.new["tstz"] == "2024-02-29 23:59:59.000001+05:30"
    assert convert_row(insert.relation.columns, insert.new) == ROW_1


def test_captured_relation_maps_to_arrow_schema_and_table() -> None:
    insert = decode_all_types().changes[0]
    assert insert.new is not None
    schema = arrow_schema(insert.relation.columns)
    assert schema == ALL_TYPES_SCHEMA
    table = rows_to_arrow([convert_row(insert.relation.columns, insert.new)], schema)
    assert table.schema == ALL_TYPES_SCHEMA
    [back] = table.to_pylist()
    assert back["f4"] == pytest.approx(0.1)
    assert {k: v for k, v in back.items() if k != "f4"} == {
        k: v for k, v in ROW_1.items() if k != "f4"
    }


def test_captured_values_arrow_cannot_hold_raise_bad_value() -> None:
    edge = decode_all_types().changes[1]
    row = edge.new
    assert row is not None
    columns = {column.name: column for column in edge.relation.columns}

    def convert_column(name: str) -> object:
        column, text = columns[name], row[name]
        assert text is None or isinstance(text, str)
        return convert(text, column.type_oid, column.type_modifier)

    assert convert_column("b") is False
    not_a_number = convert_column("f4")
    assert isinstance(not_a_number, float)
    assert math.isnan(not_a_number)
    assert convert_column("f8") == -math.inf
    assert convert_column("by") == b""
    assert convert_column("n") is None
    assert convert_column("nu") == "NaN"  # kept as text: unconstrained numeric
    bad = {"d": "infinity", "ts": "0044-03-15 12:00:00 BC", "tstz": "-infinity"}
    for name, text in {**bad, "tm": "24:00:00"}.items():
        with pytest.raises(BadValue) as raised:
            convert_column(name)
        assert raised.value.value == text


@pytest.mark.parametrize(
    ("type_oid", "type_modifier", "expected"),
    [
        (16, -1, pa.bool_()),
        (21, -1, pa.int32()),
        (23, -1, pa.int32()),
        (20, -1, pa.int64()),
        (700, -1, pa.float32()),
        (701, -1, pa.float64()),
        (NUMERIC, -1, pa.string()),  # unconstrained: any scale, text kept exactly
        (NUMERIC, NUMERIC_10_2, pa.decimal128(10, 2)),
        (NUMERIC, 2490381, pa.decimal128(38, 9)),  # numeric(38,9)
        (NUMERIC, 3276806, pa.string()),  # numeric(50,2): too wide for decimal128
        (NUMERIC, 329730, pa.string()),  # numeric(5,-2): negative scale
        (NUMERIC, 196617, pa.string()),  # numeric(3,5): scale above precision
        (25, -1, pa.string()),
        (1043, 14, pa.string()),
        (1042, 7, pa.string()),
        (19, -1, pa.string()),
        (2950, -1, pa.string()),
        (114, -1, pa.string()),
        (3802, -1, pa.string()),
        (DATE, -1, pa.date32()),
        (TIMESTAMP, -1, pa.timestamp("us")),
        (TIMESTAMP, 3, pa.timestamp("us")),  # timestamp(3)
        (TIMESTAMPTZ, -1, pa.timestamp("us", tz="UTC")),
        (TIME, -1, pa.time64("us")),
        (BYTEA, -1, pa.binary()),
        (1186, -1, pa.string()),  # interval: unmapped, kept as text
        (1007, -1, pa.string()),  # int4[]
        (16660, -1, pa.string()),  # an enum
    ],
)
def test_arrow_type(type_oid: int, type_modifier: int, expected: pa.DataType) -> None:
    assert arrow_type(type_oid, type_modifier) == expected


def test_numeric_typmod_decodes_precision_and_signed_scale() -> None:
    assert numeric_precision_scale(-1) is None
    assert numeric_precision_scale(NUMERIC_10_2) == (10, 2)
    assert numeric_precision_scale(329730) == (5, -2)
    assert numeric_precision_scale(196617) == (3, 5)
    assert type_label(NUMERIC, NUMERIC_10_2) == "numeric(10,2)"
    assert type_label(1043, 14) == "character varying(10)"
    assert type_label(16660, -1) == "type OID 16660"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27 15:32:55.278231+00", datetime(2026, 11, 27, 15, 32, 55, 278231, tzinfo=UTC)),
        ("2026-01-01 00:00:00+05:30", datetime(2025, 12, 31, 18, 30, tzinfo=UTC)),
        ("2026-06-01 02:00:00+02", datetime(2026, 6, 1, 0, 0, tzinfo=UTC)),
        ("2020-01-01 00:00:00.5-03:30", datetime(2020, 1, 1, 3, 30, 0, 500000, tzinfo=UTC)),
        # Local mean time before 1901 gives offsets with seconds (Asia/Kolkata).
        ("1900-01-01 05:21:10+05:21:10", datetime(1900, 1, 1, tzinfo=UTC)),
        ("0001-01-01 00:00:00+00", datetime(1, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamptz_offsets_become_utc(text: str, expected: datetime) -> None:
    value = convert(text, TIMESTAMPTZ, -1)
    assert value == expected
    assert isinstance(value, datetime)
    assert value.tzinfo == UTC


@pytest.mark.parametrize(
    ("text", "type_oid", "type_modifier", "expected"),
    [
        ("t", BOOL, -1, True),
        ("f", BOOL, -1, False),
        ("2147483647", 23, -1, 2147483647),
        ("-Infinity", 700, -1, -math.inf),
        ("12.50", NUMERIC, NUMERIC_10_2, Decimal("12.50")),
        ("-0", NUMERIC, NUMERIC_10_2, Decimal("-0.00")),
        ("3", NUMERIC, -1, "3"),
        ("1.234567890123456789", NUMERIC, -1, "1.234567890123456789"),
        ("0.0000000004", NUMERIC, -1, "0.0000000004"),
        ("1" + "0" * 40 + ".5", NUMERIC, -1, "1" + "0" * 40 + ".5"),
        ("-Infinity", NUMERIC, -1, "-Infinity"),
        ("0.00", NUMERIC, 2490381, Decimal("0E-9")),  # numeric(38,9)
        ("4294967295", 26, -1, 4294967295),  # oid: unsigned 32-bit, as a long
        ("2026-11-27 15:32:55.5", TIMESTAMP, -1, datetime(2026, 11, 27, 15, 32, 55, 500000)),
        ("9999-12-31 23:59:59.999999", TIMESTAMP, -1, datetime(9999, 12, 31, 23, 59, 59, 999999)),
        ("0001-01-01", DATE, -1, date(1, 1, 1)),
        ("00:00:00", TIME, -1, time(0, 0)),
        ("23:59:59.999999", TIME, -1, time(23, 59, 59, 999999)),
        ("\\xDEADbeef", BYTEA, -1, b"\xde\xad\xbe\xef"),
        ("abc\\000\\\\\\377", BYTEA, -1, b"abc\x00\\\xff"),  # bytea_output=escape
        ("0/1726C98", 3220, -1, "0/1726C98"),  # pg_lsn: unmapped, kept as text
    ],
)
def test_convert(text: str, type_oid: int, type_modifier: int, expected: object) -> None:
    value = convert(text, type_oid, type_modifier)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("text", "type_oid", "type_modifier", "reason"),
    [
        ("NaN", NUMERIC, NUMERIC_10_2, r"value 'NaN': decimal128\(10, 2\) has no NaN"),
        ("1.234", NUMERIC, NUMERIC_10_2, "holds 2 decimals; it would round"),
        ("Infinity", NUMERIC, NUMERIC_10_2, r"numeric\(10,2\) value 'Infinity'"),
        ("-Infinity", NUMERIC, 2490381, "has no -Infinity"),
        ("123456789.00", NUMERIC, NUMERIC_10_2, r"more than 8 digits .* decimal128\(10, 2\)"),
        ("1" + "0" * 29, NUMERIC, 2490381, "more than 29 digits before the decimal point"),
        ("twelve", NUMERIC, NUMERIC_10_2, "not numeric text"),
        ("infinity", TIMESTAMPTZ, -1, "datetime cannot hold infinity"),
        ("-infinity", TIMESTAMP, -1, "datetime cannot hold -infinity"),
        ("0044-03-15 12:00:00 BC", TIMESTAMP, -1, r"before year 1 \(BC\)"),
        ("0001-01-01 00:00:00+05:30 BC", TIMESTAMPTZ, -1, r"before year 1 \(BC\)"),
        ("0001-01-01 00:00:00+05:30", TIMESTAMPTZ, -1, "once shifted to UTC"),
        ("9999-12-31 23:00:00-05", TIMESTAMPTZ, -1, "once shifted to UTC"),
        ("12000-01-01 00:00:00+00", TIMESTAMPTZ, -1, "years after 9999"),
        ("2026-01-01 00:00:00", TIMESTAMPTZ, -1, "should carry a UTC offset"),
        ("2026-01-01 00:00:00+00", TIMESTAMP, -1, "should carry no UTC offset"),
        ("infinity", DATE, -1, "date cannot hold infinity"),
        ("0001-01-01 BC", DATE, -1, r"date cannot hold dates before year 1 \(BC\)"),
        ("12000-01-01", DATE, -1, "years after 9999"),
        ("02/29/2024", DATE, -1, "set DateStyle=ISO"),
        ("24:00:00", TIME, -1, "24:00:00 is its end"),
        ("yes", BOOL, -1, "expected 't' or 'f'"),
        ("1.5", 23, -1, "integer value '1.5'"),
        ("\\xZZ", BYTEA, -1, "bytea value"),
    ],
)
def test_values_the_arrow_type_cannot_hold(
    text: str, type_oid: int, type_modifier: int, reason: str
) -> None:
    with pytest.raises(BadValue, match=reason) as raised:
        convert(text, type_oid, type_modifier)
    assert isinstance(raised.value, ValueError)
    assert raised.value.value == text
    assert raised.value.type_label == type_label(type_oid, type_modifier)


@pytest.mark.parametrize("type_oid", [16, 21, 23, 20, 700, 701, 1700, 25, 1082, 1114, 1184, 17])
def test_null_stays_none(type_oid: int) -> None:
    assert convert(None, type_oid, -1) is None


def test_converter_is_built_once_per_type_and_text_passes_through() -> None:
    assert converter(NUMERIC, NUMERIC_10_2) is converter(NUMERIC, NUMERIC_10_2)
    text = "".join(["caf", "é"])
    assert converter(25, -1)(text) is text


def test_arrow_schema_makes_key_columns_non_nullable() -> None:
    schema = arrow_schema(
        [Column("id", 20, -1, is_key=True), Column("price", NUMERIC, NUMERIC_10_2, is_key=False)]
    )
    assert schema == pa.schema(
        [pa.field("id", pa.int64(), nullable=False), pa.field("price", pa.decimal128(10, 2))]
    )


def test_rows_to_arrow_fills_missing_columns_and_refuses_null_keys() -> None:
    schema = arrow_schema([Column("id", 20, -1, is_key=True), Column("name", 25, -1, False)])
    table = rows_to_arrow([{"id": 1, "name": "a"}, {"id": 2}], schema)
    assert table.to_pydict() == {"id": [1, 2], "name": ["a", None]}
    with pytest.raises(ValueError, match="column 'id' is not nullable but 1 rows have null"):
        rows_to_arrow([{"id": None, "name": "a"}], schema)
