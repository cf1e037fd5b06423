"""Query results the way Athena gives them: typed ColumnInfo, values as text, the CSV.

Values come from Trino's wire format (JSON, no client-side conversion) and are
written as Athena (engine 3, which is Trino) renders them: numbers and decimals as
Trino prints them (doubles as Java does: ``1.0E20``), dates and timestamps as
Trino's text, arrays ``[1, 2]``, maps ``{a=1}``, rows ``{x=1, y=b}``, varbinary as
space-separated hex. NULL is no value at all (a ``Datum`` without ``VarCharValue``;
an empty, unquoted field in the CSV).

Each finished query keeps its rows twice: ``<id>.csv`` in the output location (what
users read with S3 tools) and a local JSON-lines copy (``rows_path``) that
GetQueryResults pages through by byte offset (the CSV cannot tell NULL from '' once
parsed by Python's csv module, and re-reading it from the start per page is slow).
"""

from __future__ import annotations

import decimal
import io
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

# Trino's type names as Athena reports them in ColumnInfo.Type.
ATHENA_TYPES = {"real": "float", "timestamp with time zone": "timestamp with time zone"}
CASE_SENSITIVE = ("varchar", "char", "varbinary", "json")
MAX_RESULTS = 1000


def column_info(column: dict[str, Any]) -> dict[str, Any]:
    """Athena's ColumnInfo of one Trino column (``{"name", "type", "typeSignature"}``)."""
    signature = column.get("typeSignature") or {"rawType": column["type"], "arguments": []}
    raw = signature["rawType"]
    numbers = [a["value"] for a in signature.get("arguments", []) if a.get("kind") == "LONG"]
    precision, scale = _precision_scale(raw, numbers)
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": column["name"],
        "Label": column["name"],
        "Type": ATHENA_TYPES.get(raw, raw),
        "Precision": precision,
        "Scale": scale,
        "Nullable": "UNKNOWN",
        "CaseSensitive": raw in CASE_SENSITIVE,
    }


def _precision_scale(raw: str, numbers: list[int]) -> tuple[int, int]:
    if raw == "decimal":
        return numbers[0], numbers[1]
    if raw in ("varchar", "char"):
        return (numbers[0] if numbers else 2147483647), 0
    if raw.startswith("timestamp") or raw.startswith("time"):
        return (numbers[0] if numbers else 3), 0
    widths = {"tinyint": 3, "smallint": 5, "integer": 10, "bigint": 19, "real": 17,
              "double": 17, "boolean": 0, "date": 0}  # fmt: skip
    return widths.get(raw, 0), 0


def render(value: Any, signature: dict[str, Any]) -> str | None:
    """Trino's JSON ``value`` of a column typed ``signature`` as Athena's text (None: NULL)."""
    if value is None:
        return None
    return _text(value, signature, nested=False)


def _text(value: Any, signature: dict[str, Any], nested: bool) -> str:
    if value is None:
        return "null"
    raw = signature["rawType"]
    kinds = [a.get("value") for a in signature.get("arguments", [])]
    if raw == "array":
        return "[" + ", ".join(_text(v, kinds[0], True) for v in value) + "]"
    if raw == "map":
        items = value.items() if isinstance(value, dict) else value
        return "{" + ", ".join(f"{_text(_key(k, kinds[0]), kinds[0], True)}="
                               f"{_text(v, kinds[1], True)}" for k, v in items) + "}"  # fmt: skip
    if raw == "row":
        fields = [(kind.get("fieldName", {}).get("name", f"field{i}"), kind["typeSignature"])
                  for i, kind in enumerate(kinds)]  # fmt: skip
        return "{" + ", ".join(f"{name}={_text(v, sig, True)}"
                               for (name, sig), v in zip(fields, value, strict=True)) + "}"  # fmt: skip
    if raw in ("double", "real"):
        return java_float(value, single=raw == "real")
    if raw == "boolean":
        return "true" if value else "false"
    if raw == "varbinary":
        import base64

        return " ".join(f"{byte:02x}" for byte in base64.b64decode(value))
    return str(value)


def _key(key: Any, signature: dict[str, Any]) -> Any:
    """Map keys arrive as JSON object keys (text): numbers back to numbers."""
    if signature["rawType"] in ("tinyint", "smallint", "integer", "bigint") and isinstance(
        key, str
    ):
        return int(key)
    if signature["rawType"] in ("double", "real") and isinstance(key, str):
        return float(key)
    return key


def java_float(value: float | str, single: bool = False) -> str:
    """A double (or real, ``single``) as Java's ``Double.toString`` writes it: the shortest
    digits that read back, plain between 10^-3 and 10^7, else ``d.dddE[-]n``."""
    if isinstance(value, str):  # Trino sends "NaN", "Infinity", "-Infinity" as text
        return value
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    shortest = str(np.float32(number)) if single else repr(number)
    digits = decimal.Decimal(shortest)
    if digits == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    sign, figures, exponent = digits.normalize().as_tuple()
    text = "".join(map(str, figures))
    point = len(text) + int(exponent)  # digits before the decimal point
    prefix = "-" if sign else ""
    if 1e-3 <= abs(number) < 1e7:
        if point <= 0:
            return f"{prefix}0.{'0' * -point}{text}"
        whole, fraction = text[:point].ljust(point, "0"), text[point:]
        return f"{prefix}{whole}.{fraction or '0'}"
    return f"{prefix}{text[0]}.{text[1:] or '0'}E{point - 1}"


def csv_line(values: Iterable[str | None]) -> str:
    """One line of Athena's CSV: every value quoted ("" inside), NULL empty and unquoted."""
    return ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values) + "\n"


def write_rows(path: Path, rows: Iterable[list[str | None]]) -> int:
    """Write rendered rows as JSON lines; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_page(path: Path, offset: int, limit: int) -> tuple[list[list[str | None]], int | None]:
    """Up to ``limit`` rows from byte ``offset`` of a JSON-lines file; and the offset
    after them (None at the end).

    Raises ValueError when ``offset`` is not the start of a row (a NextToken made up
    or altered by the client): a seek into a row would answer a broken one."""
    rows: list[list[str | None]] = []
    with path.open("rb") as source:
        if offset < 0 or offset > path.stat().st_size:
            raise ValueError(f"offset {offset} is outside the results")
        if offset > 0:
            source.seek(offset - 1)
            if source.read(1) != b"\n":
                raise ValueError(f"offset {offset} is not the start of a row")
        source.seek(offset)
        while len(rows) < limit:
            line = source.readline()
            if not line:
                return rows, None
            rows.append(json.loads(line))
        position = source.tell()
        return rows, (position if source.readline() else None)


def datum_rows(rows: Iterable[list[str | None]]) -> list[dict[str, Any]]:
    """Rows in GetQueryResults' shape: ``{"Data": [{"VarCharValue": v} or {}]}``."""
    return [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]


def csv_text(header: list[str] | None, rows: Iterable[list[str | None]]) -> Iterator[bytes]:
    """The CSV file's bytes in chunks of about 1 MB (header first when given)."""
    buffer = io.StringIO()
    if header is not None:
        buffer.write(csv_line(header))
    for row in rows:
        buffer.write(csv_line(row))
        if buffer.tell() > 1 << 20:
            yield buffer.getvalue().encode()
            buffer = io.StringIO()
    yield buffer.getvalue().encode()


def tsv_text(rows: Iterable[list[str | None]]) -> Iterator[bytes]:
    """A DDL statement's ``<id>.txt``: tab-separated values, no header, no quoting."""
    for row in rows:
        yield ("\t".join("" if v is None else v for v in row) + "\n").encode()
