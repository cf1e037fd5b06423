"""The documented PostgreSQL -> Iceberg -> OpenSearch type table, built from the code.

Each :class:`TypeCase` names a PostgreSQL column type, the edge values that
arrive unchanged and those that become dead letters. The Iceberg and OpenSearch
columns of the table come from :func:`lakehouse.sync.pgtypes.arrow_type` and the
OpenSearch mapping code, so ``docs/zero-etl-types.md`` (checked by a unit test)
cannot drift from what the sync does, and the integration test
``tests/integration/test_sync_types.py`` syncs every edge value listed here.

Run ``python -m lakehouse.sync.typedocs`` to print the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pyarrow as pa

from lakehouse.sync.opensearch_mapping import field_mapping
from lakehouse.sync.pgtypes import arrow_type

# The OID passed for types whose OIDs are created per database and kept as text (enums).
ANY_OTHER_TYPE = 0


@dataclass(frozen=True)
class TypeCase:
    """One PostgreSQL column type and its edge values (as SQL literals)."""

    sql_type: str
    type_oid: int
    type_modifier: int
    kept: tuple[str, ...]
    # Values the converter refuses: a dead letter on both targets.
    refused: tuple[str, ...] = ()
    # Values Iceberg keeps but OpenSearch cannot store (NaN, infinities).
    refused_by_opensearch: tuple[str, ...] = ()
    note: str = ""
    # The SQL creating ``sql_type`` (an enum or a domain), whose OID is per database.
    created: str = ""

    @property
    def declared(self) -> str:
        """The type as the table's PostgreSQL column shows it."""
        return self.created.removeprefix("CREATE ") or self.sql_type


def _numeric(precision: int, scale: int) -> int:
    return ((precision << 16) | (scale & 0x7FF)) + 4


_AS_BASE = "as its base type"
# A domain maps exactly as its base type (resolved through domains over domains, with
# the base type's typmod): the OID and typmod given are the base type's.
DOMAIN_CASES: tuple[TypeCase, ...] = (
    TypeCase("positive_int", 23, -1, ("1", "2147483647"), note=_AS_BASE,
             created="CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0)"),
    TypeCase("money2", 1700, _numeric(12, 2), ("9999999999.99", "-9999999999.99", "0.01"),
             refused=("'NaN'",), note=f"{_AS_BASE}, with its typmod",
             created="CREATE DOMAIN money2 AS numeric(12,2)"),
    TypeCase("price", 1700, _numeric(12, 2), ("0", "9999999999.99"), refused=("'NaN'",),
             note="a domain over a domain: as the innermost base type, with its typmod",
             created="CREATE DOMAIN price AS money2 CHECK (VALUE >= 0)"),
    TypeCase("ratio", 700, -1, ("1.1", "-0", "3.4028235e+38"), note=_AS_BASE,
             refused_by_opensearch=("'NaN'", "'Infinity'", "'-Infinity'"),
             created="CREATE DOMAIN ratio AS real"),
    TypeCase("birthday", 1082, -1, ("'0001-01-01'", "'1969-12-31'", "'9999-12-31'"),
             refused=("'infinity'", "'0044-03-15 BC'", "'10000-01-01'"), note=_AS_BASE,
             created="CREATE DOMAIN birthday AS date"),
    TypeCase("moment", 1184, -1, ("'1900-01-01 00:00:00+00'", "'9999-12-31 23:59:59.999999+00'"),
             refused=("'-infinity'",), note=_AS_BASE,
             created="CREATE DOMAIN moment AS timestamptz"),
    TypeCase("tags", 1009, -1, ("'{a,NULL,\"b c\"}'", "'{{x,y},{z,w}}'", "'{}'"),
             note=f"{_AS_BASE} (an array: its text)", created="CREATE DOMAIN tags AS text[]"),
    TypeCase("glad", ANY_OTHER_TYPE, -1, ("'happy'",), note=f"{_AS_BASE} (an enum: its label)",
             created="CREATE DOMAIN glad AS mood CHECK (VALUE <> 'sad')"),
    TypeCase("positive_int[]", ANY_OTHER_TYPE, -1, ("'{1,NULL,3}'", "'{}'"),
             note="an array of a domain: text, as any array"),
)  # fmt: skip


CASES: tuple[TypeCase, ...] = (
    TypeCase("boolean", 16, -1, ("true", "false")),
    TypeCase("smallint", 21, -1, ("-32768", "32767")),
    TypeCase("integer", 23, -1, ("-2147483648", "2147483647")),
    TypeCase("bigint", 20, -1, ("-9223372036854775808", "9223372036854775807")),
    TypeCase("oid", 26, -1, ("0", "4294967295"), note="unsigned 32-bit, so a long"),
    TypeCase(
        "real",
        700,
        -1,
        ("1.1", "-0", "3.4028235e+38", "1.1754944e-38"),
        refused_by_opensearch=("'NaN'", "'Infinity'", "'-Infinity'"),
        note="read as the nearest float32 exactly (no double rounding)",
    ),
    TypeCase(
        "double precision",
        701,
        -1,
        ("1.1", "-0", "1.7976931348623157e308", "2.2250738585072014e-308"),
        refused_by_opensearch=("'NaN'", "'Infinity'", "'-Infinity'"),
    ),
    TypeCase(
        "numeric(38,9)",
        1700,
        _numeric(38, 9),
        ("99999999999999999999999999999.999999999", "-0.000000001", "0"),
        refused=("'NaN'",),
        note="a declared numeric that fits 38 digits; PostgreSQL already rounded "
        "to its scale, so nothing rounds here",
    ),
    TypeCase("numeric(10,2)", 1700, _numeric(10, 2), ("12345678.99", "-0.01")),
    TypeCase(
        "numeric",
        1700,
        -1,
        ("1.234567890123456789", "0.0000000004", "1" + "0" * 40 + ".5", "'NaN'", "'Infinity'"),
        note="unconstrained: any scale and size, so PostgreSQL's text is kept "
        "(as Debezium's string mode); cast it in queries",
    ),
    TypeCase(
        "numeric(50,2)",
        1700,
        _numeric(50, 2),
        ("1" + "0" * 47 + ".25",),
        note="more than 38 digits: no decimal holds it, text kept",
    ),
    TypeCase("text", 25, -1, ("'héllo ☃ 𝄞'", "''")),
    TypeCase("varchar(10)", 1043, 14, ("'varchar'",)),
    TypeCase("char(3)", 1042, 7, ("'a'",), note="padded to its length, as PostgreSQL prints it"),
    TypeCase(
        "date",
        1082,
        -1,
        ("'0001-01-01'", "'1969-12-31'", "'9999-12-31'"),
        refused=("'infinity'", "'0044-03-15 BC'", "'10000-01-01'"),
    ),
    TypeCase(
        "timestamp",
        1114,
        -1,
        ("'0001-01-01 00:00:00'", "'1969-12-31 23:59:59.999999'", "'9999-12-31 23:59:59.999999'"),
        refused=("'-infinity'", "'0044-03-15 12:00 BC'"),
    ),
    TypeCase(
        "timestamptz",
        1184,
        -1,
        (
            "'1900-01-01 00:00:00+00'",
            "'1969-12-31 23:59:59.999999+00'",
            "'9999-12-31 23:59:59.999999+00'",
        ),
        refused=("'infinity'",),
        note="held in UTC",
    ),
    TypeCase("time", 1083, -1, ("'00:00:00'", "'23:59:59.999999'"), refused=("'24:00:00'",)),
    TypeCase(
        "timetz",
        1266,
        -1,
        ("'23:59:59.999999+05:30'", "'24:00:00-15:59'"),
        note="text: Iceberg has no time with an offset",
    ),
    TypeCase(
        "interval",
        1186,
        -1,
        ("'1 year 2 mons -3 days 04:05:06.789'", "'-178000000 years'"),
        note="text (IntervalStyle postgres): months and days are not a fixed duration",
    ),
    TypeCase(
        "integer[]",
        1007,
        -1,
        ("'{1,NULL,3}'", "'{{1,2},{3,4}}'", "'{}'"),
        note="text: multi-dimensional arrays and NULL elements kept as written",
    ),
    TypeCase(
        "json",
        114,
        -1,
        ('\'{"n": 123456789012345678901234567890.5, "a": [1, 2]}\'',),
        note="text exactly as stored (big numbers included)",
    ),
    TypeCase("jsonb", 3802, -1, ('\'{"n": 1e400, "s": "é"}\'',), note="text, as jsonb prints it"),
    TypeCase("uuid", 2950, -1, ("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",)),
    TypeCase("bytea", 17, -1, ("'\\x00ff10'", "''")),
    TypeCase("inet", 869, -1, ("'192.168.0.1/24'", "'::1'")),
    TypeCase(
        "money",
        790,
        -1,
        ("'-92233720368547758.08'",),
        note="text in the server's lc_monetary format",
    ),
    TypeCase(
        "mood",
        ANY_OTHER_TYPE,
        -1,
        ("'happy'",),
        created="CREATE TYPE mood AS ENUM ('sad', 'happy')",
        note="its label, as text: a string holds any label, so a label added by "
        "`ALTER TYPE ... ADD VALUE` needs no schema change (as Debezium and DMS)",
    ),
    *DOMAIN_CASES,
)

_ICEBERG_TYPES = {
    "bool": "boolean", "int32": "int", "int64": "long", "float": "float",
    "double": "double", "string": "string", "binary": "binary", "date32[day]": "date",
    "timestamp[us]": "timestamp", "timestamp[us, tz=UTC]": "timestamptz", "time64[us]": "time",
}  # fmt: skip


def iceberg_type(kind: pa.DataType) -> str:
    """The Iceberg type name pyiceberg gives an Arrow type that the sync produces."""
    if pa.types.is_decimal(kind):
        return f"decimal({kind.precision}, {kind.scale})"
    return _ICEBERG_TYPES[str(kind)]


def opensearch_type(kind: pa.DataType) -> str:
    """The OpenSearch mapping of a (non-key) column of this Arrow type, as JSON text."""
    return json.dumps(field_mapping(kind), sort_keys=True)


def _cell(values: tuple[str, ...]) -> str:
    return ", ".join(f"`{value}`" for value in values) or "-"


def markdown_table() -> str:
    """The documented table, one row per :data:`CASES` entry."""
    lines = [
        "| PostgreSQL | Iceberg | OpenSearch | kept exactly (tested) | dead letter | "
        "dead letter in OpenSearch only | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in CASES:
        kind = arrow_type(case.type_oid, case.type_modifier)
        cells = (
            f"`{case.declared}`", f"`{iceberg_type(kind)}`", f"`{opensearch_type(kind)}`",
            _cell(case.kept), _cell(case.refused), _cell(case.refused_by_opensearch),
            case.note or "-",
        )  # fmt: skip
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
