"""Value-safe conversion of one Arrow column to another type.

``convert`` never changes a value silently: a cast that would truncate,
round, overflow or guess a time zone raises ``Unconvertible`` with the reason
(pyarrow's safe casts name the offending value). Text is parsed: numbers may
carry currency symbols, blanks around them and ``,`` thousands separators in
groups of three (``"1,234.50"``, ``€ 99.90``), but a blank or a comma inside
the digits (``1 2``, ``1,2,3,4``) is refused; integers may be written as
``2.0`` or ``1e3`` when the value is whole (as JSON numbers are); booleans may be true/false, t/f, yes/no, y/n or 1/0, and dates and
timestamps follow ISO 8601 or the user's ``strptime`` formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.lake.column_types import type_name
from lakehouse.lake.exact import significant_digits

TRUE_WORDS = ["true", "t", "yes", "y", "1"]
FALSE_WORDS = ["false", "f", "no", "n", "0"]
# After currency symbols and blanks are gone: digits grouped by "," in threes.
GROUPED = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$"
MAX_DECIMAL_PRECISION = 38


class Unconvertible(ValueError):
    """A column cannot be converted without changing a value; str() says why."""


@dataclass(frozen=True)
class TextFormats:
    """How dates and timestamps are written in text (``strptime`` codes); None: ISO 8601."""

    date_format: str | None = None
    timestamp_format: str | None = None


def is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or kind == pa.string_view()


def same_type(a: pa.DataType, b: pa.DataType) -> bool:
    """Equal, or both text, or both binary (the width of offsets is not a type)."""
    binary = (pa.binary(), pa.large_binary(), pa.binary_view())
    return a == b or (is_text(a) and is_text(b)) or (a in binary and b in binary)


def convert(column: pa.ChunkedArray, target: pa.DataType,
            formats: TextFormats = TextFormats()) -> pa.ChunkedArray:  # fmt: skip
    """``column`` as ``target``, or Unconvertible if any value would change."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)  # decoded: a dictionary is an encoding
    source = column.type
    try:
        if same_type(source, target):
            return column if source == target else column.cast(target)
        if pa.types.is_null(source):
            return pa.chunked_array([pa.nulls(len(column), target)], target)
        if is_text(source):
            return parse_text(column, target, formats)
        return _convert_typed(column, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise Unconvertible(str(exc).splitlines()[0]) from exc


def _convert_typed(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    source = column.type
    numeric = (pa.types.is_integer, pa.types.is_floating, pa.types.is_decimal)
    if any(f(source) for f in numeric) and any(f(target) for f in numeric):
        return _convert_number(column, target)
    if (pa.types.is_integer(source) or pa.types.is_decimal(source)) and is_text(target):
        return column.cast(target)
    if pa.types.is_date(source) and pa.types.is_timestamp(target) and not target.tz:
        return column.cast(target)
    if pa.types.is_timestamp(source) and pa.types.is_timestamp(target):
        if bool(source.tz) != bool(target.tz):
            raise Unconvertible(_zone_reason(target))
        return column.cast(target)
    if pa.types.is_timestamp(source) and pa.types.is_date(target):
        return _timestamp_to_date(column, target)
    if pa.types.is_time(source) and pa.types.is_time(target):
        return column.cast(target)  # safe: a finer unit would fail, not truncate
    lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list,
             pa.types.is_list_view, pa.types.is_large_list_view)  # fmt: skip
    if any(f(source) for f in lists) and any(f(target) for f in lists):
        return column.cast(target)
    nested = (pa.types.is_struct, pa.types.is_map)
    if any(f(source) and f(target) for f in nested):
        return column.cast(target)
    raise Unconvertible(f"{type_name(source)} values cannot be stored as {type_name(target)}")


def _convert_number(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    source = column.type
    if pa.types.is_floating(source) and pa.types.is_decimal(target):
        # The shortest text that reads back as the same double: what the file said.
        return parse_text(column.cast(pa.string()), target, TextFormats())
    widening = pa.types.is_floating(source) and pa.types.is_floating(target)
    if widening and target.bit_width >= source.bit_width:
        return column.cast(target)  # every float16 or float is a double exactly
    if pa.types.is_floating(target) and not pa.types.is_integer(source):
        converted = column.cast(target, safe=False)
        round_trip = pc.all(_same_values(converted.cast(source, safe=False), column)).as_py()
        if round_trip is not False:  # None: no values to compare
            return converted
        raise Unconvertible(
            f"some {type_name(source)} values would lose digits as {type_name(target)}"
        )
    return column.cast(target)


def _same_values(a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.ChunkedArray:
    """Equal values, where a NaN is the same as a NaN (and -0.0 as 0.0, as IEEE says)."""
    equal = pc.equal(a, b)
    if pa.types.is_floating(a.type) and pa.types.is_floating(b.type):
        return pc.or_(equal, pc.and_(pc.is_nan(a), pc.is_nan(b)))
    return equal


def _timestamp_to_date(column: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    dates = column.cast(target, safe=False)
    if pc.all(pc.equal(dates.cast(column.type), column)).as_py() is False:
        raise Unconvertible("some timestamps have a time of day, which a date would drop")
    return dates


def _zone_reason(target: pa.DataType) -> str:
    if target.tz:
        return "timestamps without a zone cannot be stored as timestamptz (which zone?)"
    return "timestamps with a zone cannot be stored as timestamp (without zone)"


def parse_text(
    column: pa.ChunkedArray, target: pa.DataType, formats: TextFormats
) -> pa.ChunkedArray:
    """Text parsed as ``target``; pyarrow's error (naming the value) if a value does not parse."""
    if pa.types.is_integer(target) or pa.types.is_floating(target) or pa.types.is_decimal(target):
        return _parse_numbers(clean_numbers(column), target)
    if pa.types.is_boolean(target):
        return _parse_booleans(column)
    if pa.types.is_date(target):
        if formats.date_format:
            parsed = pc.strptime(column, format=formats.date_format, unit="s")
            return _timestamp_to_date(parsed, target)
        return column.cast(target)
    if pa.types.is_timestamp(target):
        return _parse_timestamps(column, target, formats)
    if pa.types.is_binary(target) or pa.types.is_large_binary(target):
        return column.cast(target)
    raise Unconvertible(f"text cannot be stored as {type_name(target)}")


def _parse_numbers(text: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """Cleaned text as numbers of ``target``; Unconvertible naming the first value that is not one."""
    try:
        numbers = _cast_numbers(text, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    else:
        return _within_range(text, numbers) if pa.types.is_floating(target) else numbers
    for value in pc.unique(text).to_pylist():
        try:
            _cast_numbers(pa.chunked_array([pa.array([value], pa.string())]), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise Unconvertible(f"'{value}' is not a {type_name(target)}") from None
    raise Unconvertible(f"some values are not {type_name(target)} numbers")


def _within_range(text: pa.ChunkedArray, numbers: pa.ChunkedArray) -> pa.ChunkedArray:
    """``numbers`` (floats read from ``text``), or Unconvertible naming the first value
    that overflowed to infinity or underflowed to 0 (rounding is the type's own)."""
    digits = significant_digits(pc.utf8_trim_whitespace(text))
    lost = pc.or_(pc.is_inf(numbers), pc.equal(numbers, 0))
    changed = pc.fill_null(pc.and_(pc.greater(digits, 0), lost), False)
    if not pc.any(changed).as_py():
        return numbers
    value = text[pc.index(changed, True).as_py()].as_py()
    raise Unconvertible(f"'{value}' is beyond the range of a {type_name(numbers.type)}")


def _cast_numbers(text: pa.ChunkedArray, target: pa.DataType) -> pa.ChunkedArray:
    """An integer may be written as a whole decimal (``2.0``, ``1e3``): it is read as
    a decimal, whose cast to the integer fails if a fraction would be dropped."""
    try:
        return text.cast(target)
    except pa.ArrowInvalid:
        if not pa.types.is_integer(target):
            raise
    return text.cast(pa.decimal128(MAX_DECIMAL_PRECISION, 10)).cast(target)


def clean_numbers(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text without currency symbols and the blanks around the number, and without ","
    where it groups thousands; a blank inside the digits stays (and fails to parse)."""
    no_currency = pc.replace_substring_regex(column, pattern=r"\p{Sc}", replacement="")
    bare = pc.utf8_trim_whitespace(no_currency)
    grouped = pc.match_substring_regex(bare, pattern=GROUPED)
    return pc.if_else(grouped, pc.replace_substring(bare, ",", ""), bare)


def _parse_booleans(column: pa.ChunkedArray) -> pa.ChunkedArray:
    words = pc.utf8_lower(pc.utf8_trim_whitespace(column))
    present = pc.drop_null(words)
    known = pc.is_in(present, pa.array(TRUE_WORDS + FALSE_WORDS))
    unknown = pc.filter(present, pc.invert(known))
    if len(unknown):
        raise Unconvertible(
            f"'{unknown[0].as_py()}' is not a boolean (true/false, t/f, yes/no, y/n, 1/0)"
        )
    truth = pc.is_in(words, pa.array(TRUE_WORDS))
    return pc.if_else(pc.is_null(column), pa.scalar(None, pa.bool_()), truth)


def _parse_timestamps(column: pa.ChunkedArray, target: pa.DataType,
                      formats: TextFormats) -> pa.ChunkedArray:  # fmt: skip
    if not formats.timestamp_format:
        return column.cast(target)
    parsed = pc.strptime(column, format=formats.timestamp_format, unit="us")
    if bool(parsed.type.tz) != bool(target.tz):
        raise Unconvertible(_zone_reason(target))
    return parsed.cast(target)


def offending_value(column: pa.ChunkedArray, target: pa.DataType,
                    formats: TextFormats, limit: int = 10_000) -> object | None:  # fmt: skip
    """The first of (up to ``limit``) distinct values that does not convert, if one is found."""
    try:
        values = pc.unique(column.slice(0, limit)).to_pylist()
    except pa.ArrowNotImplementedError:  # nested types have no unique
        return None
    for value in values:
        try:
            convert(pa.chunked_array([pa.array([value], column.type)]), target, formats)
        except Unconvertible:
            return value
    return None


def needed_precision(column: pa.ChunkedArray) -> int:
    """Digits the largest value of a decimal column needs at the column's scale."""
    largest = pc.max(pc.abs(column)).as_py()
    if largest is None:
        return 1
    unscaled = int(Decimal(largest).scaleb(column.type.scale))
    return max(1, len(str(unscaled)))


def widest(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """The type that holds both ``a`` and ``b`` values (None: no such type)."""
    if same_type(a, b) or pa.types.is_null(b):
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_integer(a) and pa.types.is_integer(b):
        return a if a.bit_width >= b.bit_width else b
    numbers = (pa.types.is_integer, pa.types.is_floating)
    if any(f(a) for f in numbers) and any(f(b) for f in numbers):
        return pa.float64()
    if pa.types.is_decimal(a) and pa.types.is_decimal(b):
        scale = max(a.scale, b.scale)
        precision = max(a.precision - a.scale, b.precision - b.scale) + scale
        return pa.decimal128(precision, scale) if precision <= MAX_DECIMAL_PRECISION else None
    pair = {type_name(a), type_name(b)}
    if pair == {"date", "timestamp"}:
        return a if pa.types.is_timestamp(a) else b
    return None
