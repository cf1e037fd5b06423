"""PostgreSQL column types as Arrow types, and PostgreSQL text output as Python values.

pgoutput sends every value in its type's text output format. :func:`converter`
builds, once per column type, a function turning that text into the Python value
pyarrow accepts for :func:`arrow_type`; a value that type cannot hold raises
:class:`BadValue` instead of being silently altered.

A column of a domain type maps exactly as the domain's base type (with the base
type's typmod): :func:`with_base_types` replaces it, given the domains the source
looked up in ``pg_type``. Types without a mapping here (interval, arrays, enums,
geometric types, timetz, money, ...) become Arrow strings holding PostgreSQL's
text, so nothing is lost. So do numerics whose precision/scale no Arrow/Iceberg decimal can represent
(precision above 38, negative scale or scale above precision), and unconstrained
``numeric``: its values may have any scale (up to 16,383 decimals) and up to
131,072 integer digits, which no fixed decimal holds, so the text is kept exactly
(as Debezium's ``decimal.handling.mode=string`` and AWS DMS for precision >= 39).
No value is ever rounded: one the mapped type cannot hold exactly raises BadValue
(the row becomes a dead letter, with the reason). The documented table of every
mapping and its edge values is :mod:`lakehouse.sync.typedocs`.

The text must be in the formats of ``DateStyle=ISO`` and ``bytea_output=hex``
(or ``escape``); set ``TimeZone=UTC`` on the peeking session to keep
``timestamptz`` output simple, though any offset is understood.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time
from decimal import MAX_PREC, Context, Decimal, Inexact, InvalidOperation
from functools import lru_cache
from typing import Final, NamedTuple, TypeAlias

import numpy as np
import pyarrow as pa

from lakehouse.sync.pgoutput import Column

Converter: TypeAlias = Callable[[str | None], object]

BOOL, BYTEA, NAME, INT8, INT2, INT4, TEXT, OID, JSON = 16, 17, 19, 20, 21, 23, 25, 26, 114
FLOAT4, FLOAT8, BPCHAR, VARCHAR, DATE, TIME = 700, 701, 1042, 1043, 1082, 1083
TIMESTAMP, TIMESTAMPTZ, NUMERIC, UUID, JSONB = 1114, 1184, 1700, 2950, 3802

_MAX_DECIMAL128_PRECISION = 38
# Exact decimal arithmetic (no rounding) for comparing a value's text with a float.
_EXACT = Context(prec=MAX_PREC)

_FIXED_ARROW_TYPES: Final[dict[int, pa.DataType]] = {
    BOOL: pa.bool_(),
    INT2: pa.int32(),
    INT4: pa.int32(),
    INT8: pa.int64(),
    OID: pa.int64(),  # unsigned 32-bit: an int32 would wrap above 2**31
    FLOAT4: pa.float32(),
    FLOAT8: pa.float64(),
    DATE: pa.date32(),
    TIMESTAMP: pa.timestamp("us"),
    TIMESTAMPTZ: pa.timestamp("us", tz="UTC"),
    TIME: pa.time64("us"),
    BYTEA: pa.binary(),
}

_TYPE_NAMES: Final = {
    BOOL: "boolean",
    BYTEA: "bytea",
    NAME: "name",
    INT8: "bigint",
    OID: "oid",
    INT2: "smallint",
    INT4: "integer",
    TEXT: "text",
    JSON: "json",
    FLOAT4: "real",
    FLOAT8: "double precision",
    BPCHAR: "character",
    VARCHAR: "character varying",
    DATE: "date",
    TIME: "time without time zone",
    TIMESTAMP: "timestamp without time zone",
    TIMESTAMPTZ: "timestamp with time zone",
    NUMERIC: "numeric",
    UUID: "uuid",
    JSONB: "jsonb",
}

_BOOLEANS: Final = {"t": True, "f": False, "true": True, "false": False}


class BadValue(ValueError):
    """A PostgreSQL value that its column's Arrow type cannot hold."""

    def __init__(self, type_label: str, value: str, reason: str) -> None:
        self.type_label = type_label
        self.value = value
        self.reason = reason
        super().__init__(f"cannot convert {type_label} value {value!r}: {reason}")


def numeric_precision_scale(type_modifier: int) -> tuple[int, int] | None:
    """The declared (precision, scale) of a numeric column, or None if unconstrained."""
    if type_modifier < 4:
        return None
    packed = type_modifier - 4  # PostgreSQL's VARHDRSZ offset
    # Since PostgreSQL 15 the scale is an 11-bit signed field (numeric(5,-2)).
    return (packed >> 16) & 0xFFFF, ((packed & 0x7FF) ^ 0x400) - 0x400


def _decimal_fits(precision: int, scale: int) -> bool:
    return 0 < precision <= _MAX_DECIMAL128_PRECISION and 0 <= scale <= precision


def arrow_type(type_oid: int, type_modifier: int) -> pa.DataType:
    """The Arrow type a column of this PostgreSQL type maps to; string if unmapped."""
    fixed = _FIXED_ARROW_TYPES.get(type_oid)
    if fixed is not None:
        return fixed
    declared = numeric_precision_scale(type_modifier) if type_oid == NUMERIC else None
    if declared is not None and _decimal_fits(*declared):
        return pa.decimal128(*declared)
    return pa.string()


def type_label(type_oid: int, type_modifier: int) -> str:
    """A readable name for a PostgreSQL type, for error messages."""
    name = _TYPE_NAMES.get(type_oid, f"type OID {type_oid}")
    if type_oid == NUMERIC:
        declared = numeric_precision_scale(type_modifier)
        return f"numeric({declared[0]},{declared[1]})" if declared else name
    if type_oid in (VARCHAR, BPCHAR) and type_modifier >= 4:
        return f"{name}({type_modifier - 4})"
    return name


def _parse_bool(text: str) -> bool:
    try:
        return _BOOLEANS[text]
    except KeyError:
        raise ValueError("expected 't' or 'f'") from None


def _decimal_parser(precision: int, scale: int) -> Callable[[str], Decimal]:
    exponent = Decimal(1).scaleb(-scale)
    # Inexact is trapped: a value needing rounding is refused, never rounded.
    context = Context(prec=precision, traps=[InvalidOperation, Inexact])
    arrow_name = f"decimal128({precision}, {scale})"

    def parse_decimal(text: str) -> Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise ValueError("not numeric text") from None
        if not value.is_finite():
            raise ValueError(f"{arrow_name} has no {text}")
        try:
            return value.quantize(exponent, context=context)
        except Inexact:
            raise ValueError(f"{arrow_name} holds {scale} decimals; it would round") from None
        except InvalidOperation:
            raise ValueError(
                f"more than {precision - scale} digits before the decimal point "
                f"do not fit {arrow_name}"
            ) from None

    return parse_decimal


def _parse_float4(text: str) -> float:
    """The float32 nearest to a ``real``'s text, as a Python float holding it exactly.

    Reading the text as a double first and narrowing it can round twice (to a
    neighbour of the right float32), so the neighbours are compared exactly.
    """
    value = float(text)
    if not np.isfinite(value):
        return value  # NaN, Infinity and -Infinity are float32 values too
    exact = Decimal(text)
    narrowed = np.float32(value)
    with np.errstate(over="ignore"):  # the float32 maximum's upper neighbour is infinity
        neighbours = (
            narrowed,
            np.nextafter(narrowed, np.float32(-np.inf)),
            np.nextafter(narrowed, np.float32(np.inf)),
        )
    return float(
        min(neighbours, key=lambda c: _EXACT.abs(_EXACT.subtract(Decimal(float(c)), exact)))
    )


def float32_text(value: float) -> str:
    """The shortest decimal text that reads back as ``value`` narrowed to float32.

    PostgreSQL prints a ``real`` the same way (``extra_float_digits`` 1, its
    default), so equal texts mean equal float32 values.
    """
    if not np.isfinite(value):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[str(value)]
    return np.format_float_scientific(np.float32(value), unique=True, trim="-")


def _date_time_reason(text: str, kind: str) -> str:
    """Why PostgreSQL date/time text did not parse as a Python ``kind``."""
    if text in ("infinity", "-infinity"):
        return f"{kind} cannot hold {text}"
    if text.endswith(" BC"):
        return f"{kind} cannot hold dates before year 1 (BC)"
    year = text.partition("-")[0]
    if year.isdigit() and len(year) > 4:
        return f"{kind} cannot hold years after 9999"
    return f"not ISO {kind} text; set DateStyle=ISO on the connection that reads the slot"


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(_date_time_reason(text, "date")) from None


def _parse_timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(_date_time_reason(text, "datetime")) from None
    if value.tzinfo is not None:
        raise ValueError("a timestamp without time zone should carry no UTC offset")
    return value


def _parse_timestamptz(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(_date_time_reason(text, "datetime")) from None
    if value.tzinfo is None:
        raise ValueError("a timestamp with time zone should carry a UTC offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("datetime cannot hold it once shifted to UTC (year 1 or 9999)") from None


def _parse_time(text: str) -> time:
    if text.startswith("24:"):
        raise ValueError("time64 holds times within a day, and 24:00:00 is its end")
    return time.fromisoformat(text)


def _parse_bytea(text: str) -> bytes:
    if text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    return _unescape_bytea(text)


def _unescape_bytea(text: str) -> bytes:
    """Decode ``bytea_output=escape`` text: ``\\\\`` and ``\\ooo`` octal escapes."""
    raw = text.encode("ascii")
    decoded = bytearray()
    position = 0
    while position < len(raw):
        byte = raw[position]
        if byte != 0x5C:  # backslash
            decoded.append(byte)
            position += 1
        elif raw[position + 1 : position + 2] == b"\\":
            decoded.append(0x5C)
            position += 2
        else:
            decoded.append(int(raw[position + 1 : position + 4], 8))
            position += 4
    return bytes(decoded)


def _text(text: str | None) -> str | None:
    return text


_SIMPLE_PARSERS: Final[dict[int, Callable[[str], object]]] = {
    BOOL: _parse_bool,
    INT2: int,
    INT4: int,
    INT8: int,
    OID: int,
    FLOAT4: _parse_float4,
    FLOAT8: float,
    DATE: _parse_date,
    TIMESTAMP: _parse_timestamp,
    TIMESTAMPTZ: _parse_timestamptz,
    TIME: _parse_time,
    BYTEA: _parse_bytea,
}


def _parser(type_oid: int, type_modifier: int) -> Callable[[str], object] | None:
    """The text parser for a non-string Arrow type; None where the text is kept."""
    target = arrow_type(type_oid, type_modifier)
    if pa.types.is_decimal(target):
        return _decimal_parser(target.precision, target.scale)
    return _SIMPLE_PARSERS.get(type_oid)


@lru_cache(maxsize=1024)
def converter(type_oid: int, type_modifier: int) -> Converter:
    """A function from PostgreSQL text (or None) to the value :func:`arrow_type` holds.

    The function raises BadValue for a value that type cannot hold. Resolve
    pgoutput's UNCHANGED markers before converting; they are not text.
    """
    parse = _parser(type_oid, type_modifier)
    if parse is None:
        return _text
    label = type_label(type_oid, type_modifier)

    def convert_text(text: str | None) -> object:
        if text is None:
            return None
        try:
            return parse(text)
        except (ValueError, ArithmeticError) as error:
            raise BadValue(label, text, str(error)) from None

    return convert_text


def convert(text: str | None, type_oid: int, type_modifier: int) -> object:
    """Convert one value of PostgreSQL text output; see :func:`converter`."""
    return converter(type_oid, type_modifier)(text)


class Domain(NamedTuple):
    """A domain type and its base type, resolved through domains over domains."""

    name: str
    base_oid: int
    # The innermost domain's typmod, as PostgreSQL's getBaseTypeAndTypmod gives it
    # (a domain takes no typmod of its own, so a domain column's is always -1).
    base_modifier: int


def with_base_types(columns: Sequence[Column], domains: Mapping[int, Domain]) -> tuple[Column, ...]:
    """``columns`` with each column of a domain type (a key of ``domains``, by type
    OID) given the domain's base type and typmod instead, and the domain's name."""
    return tuple(
        replace(column, type_oid=domain.base_oid, type_modifier=domain.base_modifier,
                domain=domain.name)
        if (domain := domains.get(column.type_oid)) is not None
        else column
        for column in columns
    )  # fmt: skip


def refused_reason(column: Column, message: str) -> str:
    """A dead letter's reason: the column (and its domain) and why its value was refused."""
    declared = f" (domain {column.domain})" if column.domain else ""
    return f"column {column.name}{declared}: {message}"


def arrow_schema(columns: Sequence[Column]) -> pa.Schema:
    """An Arrow schema for these columns; key columns are non-nullable."""
    return pa.schema(
        [
            pa.field(
                column.name, arrow_type(column.type_oid, column.type_modifier), not column.is_key
            )
            for column in columns
        ]
    )
