"""Column types as users write them (``--type``, ``--schema``) and as messages name them.

The names are Iceberg's: string, int, long, float, double, boolean, date,
timestamp (no zone), timestamptz (UTC instant), decimal(P,S) with P <= 38,
binary. A schema file is a JSON object or a TOML document whose top-level
keys are column names and whose values are those type names.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from lakehouse.errors import IngestError

SIMPLE_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(), "varchar": pa.string(), "text": pa.string(),
    "int": pa.int32(), "integer": pa.int32(), "int32": pa.int32(),
    "long": pa.int64(), "bigint": pa.int64(), "int64": pa.int64(),
    "float": pa.float32(), "real": pa.float32(), "float32": pa.float32(),
    "double": pa.float64(), "float64": pa.float64(),
    "boolean": pa.bool_(), "bool": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"), "timestamptz": pa.timestamp("us", tz="UTC"),
    "binary": pa.binary(),
}  # fmt: skip
DECIMAL = re.compile(r"(?:decimal|numeric)\(\s*(\d+)\s*,\s*(\d+)\s*\)")
TYPE_NAMES = "string, int, long, float, double, boolean, date, timestamp, timestamptz, \
decimal(P,S), binary"


def parse_type(text: str, column: str = "") -> pa.DataType:
    """The Arrow type for a type name such as ``long`` or ``decimal(12,2)``."""
    name = text.strip().lower()
    if name in SIMPLE_TYPES:
        return SIMPLE_TYPES[name]
    found = DECIMAL.fullmatch(name)
    if found:
        precision, scale = int(found.group(1)), int(found.group(2))
        if 1 <= precision <= 38 and scale <= precision:
            return pa.decimal128(precision, scale)
    where = f" for column {column}" if column else ""
    raise IngestError(
        f"Unknown type '{text}'{where}.",
        hint=f"Use one of {TYPE_NAMES} (decimal precision 1 to 38, scale at most the precision).",
    )


def type_name(kind: pa.DataType) -> str:
    """Iceberg's name for an Arrow type, as messages show it."""
    if pa.types.is_null(kind):
        return "no values (all null)"
    if pa.types.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    if pa.types.is_timestamp(kind):
        return "timestamptz" if kind.tz else "timestamp"
    names = {pa.int8(): "int", pa.int16(): "int", pa.int32(): "int", pa.int64(): "long",
             pa.float32(): "float", pa.float64(): "double", pa.bool_(): "boolean",
             pa.date32(): "date", pa.large_string(): "string", pa.string(): "string",
             pa.binary(): "binary", pa.large_binary(): "binary"}  # fmt: skip
    return names.get(kind, str(kind))


def parse_type_options(values: Mapping[str, str | pa.DataType]) -> dict[str, pa.DataType]:
    """{column: Arrow type} from {column: type name or Arrow type}."""
    return {
        column: kind if isinstance(kind, pa.DataType) else parse_type(str(kind), column)
        for column, kind in values.items()
    }


def parse_type_flags(flags: tuple[str, ...] | list[str]) -> dict[str, str]:
    """{column: type name} from ``col=TYPE`` flags."""
    types: dict[str, str] = {}
    for flag in flags:
        column, sep, kind = flag.partition("=")
        if not sep or not column.strip() or not kind.strip():
            raise IngestError(
                f"--type '{flag}' is not COLUMN=TYPE.", hint="E.g. --type amount=decimal(12,2)."
            )
        types[column.strip()] = kind.strip()
    return types


def load_schema_file(path: str | Path) -> dict[str, str]:
    """{column: type name} from a JSON object or a TOML document of ``column = "type"``."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
        loaded = tomllib.loads(text) if file.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise IngestError(
            f"Cannot read the schema file {path}: {exc}",
            hint='Write a JSON object like {"id": "long", "amount": "decimal(12,2)"} '
            "(or the same keys in a .toml file).",
        ) from exc
    if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
        raise IngestError(
            f"The schema file {path} must map column names to type names.",
            hint='E.g. {"id": "long", "amount": "decimal(12,2)"}.',
        )
    return {str(k): v for k, v in loaded.items()}
