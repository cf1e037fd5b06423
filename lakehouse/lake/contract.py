"""The table's schema is the contract: fit each input to it, then unify the inputs.

Per input (one file, or an Arrow table): names are checked, columns are matched
to the table's without regard to case, ``--type`` columns are converted to
their explicit type, and every column the table has is converted to the
table's type, or to the wider type Iceberg may promote it to (int to long,
float to double, decimal(P,S) to decimal(P',S)) when its values need it.
Anything else is refused, naming the column, both types and the reason.

Across the files of a directory, a column's types are unified by the same
widening rules; a real conflict names both files. A column with no values
never decides a type: it takes the table's, another file's, or an explicit
one, and is refused otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.errors import IngestError
from lakehouse.lake.casting import (
    MAX_DECIMAL_PRECISION,
    TextFormats,
    Unconvertible,
    clean_numbers,
    convert,
    is_text,
    needed_precision,
    offending_value,
    widest,
)
from lakehouse.lake.column_types import type_name
from lakehouse.lake.names import align_to_table, check_columns
from lakehouse.lake.nested_fields import with_input_fields
from lakehouse.lake.readers import CANONICAL_INTEGER, CANONICAL_NUMBER

LOOKS_LIKE_DATE = r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$"
PLAIN_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
TEXT_HINT = (
    "Fix those values. Empty cells and --null markers load as NULL; --date-format and "
    "--timestamp-format say how dates are written."
)
TYPE_HINT = (
    "The table was not changed. Iceberg can only widen int to long, float to double and a "
    "decimal's precision; load other values into a new column or table."
)


def storable(kind: pa.DataType) -> pa.DataType:
    """The Iceberg-storable Arrow type nearest to ``kind`` that holds every value exactly
    (null stays null): dictionaries decoded, unsigned integers and float16 widened,
    large/view strings, binaries and lists as the plain ones, nested types throughout."""
    if pa.types.is_dictionary(kind):
        return storable(kind.value_type)
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", tz="UTC" if kind.tz else None)
    if pa.types.is_unsigned_integer(kind) or kind in (pa.int8(), pa.int16()):
        return pa.int64() if kind in (pa.uint32(), pa.uint64()) else pa.int32()
    if pa.types.is_time(kind):
        return pa.time64("us")
    if pa.types.is_decimal256(kind) and kind.precision <= MAX_DECIMAL_PRECISION:
        return pa.decimal128(kind.precision, kind.scale)
    plain = {pa.float16(): pa.float32(), pa.date64(): pa.date32(), pa.large_string(): pa.string(),
             pa.string_view(): pa.string(), pa.large_binary(): pa.binary(),
             pa.binary_view(): pa.binary()}  # fmt: skip
    if kind in plain:
        return plain[kind]
    return _storable_nested(kind)


def _storable_nested(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_map(kind):
        return pa.map_(storable(kind.key_type), storable(kind.item_field.type))
    lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list,
             pa.types.is_list_view, pa.types.is_large_list_view)  # fmt: skip
    if any(is_list(kind) for is_list in lists):
        return pa.list_(kind.value_field.with_type(storable(kind.value_type)))
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(storable(f.type)) for f in kind])
    return kind


def promotion(kind: pa.DataType) -> pa.DataType | None:
    """The widest type Iceberg lets a column of ``kind`` become, if any."""
    if kind == pa.int32():
        return pa.int64()
    if kind == pa.float32():
        return pa.float64()
    if pa.types.is_decimal(kind) and kind.precision < MAX_DECIMAL_PRECISION:
        return pa.decimal128(MAX_DECIMAL_PRECISION, kind.scale)
    return None


def fit_column(column: pa.ChunkedArray, table_type: pa.DataType,
               formats: TextFormats) -> pa.ChunkedArray:  # fmt: skip
    """``column`` as ``table_type``, or as its Iceberg promotion when the values need it."""
    try:
        return convert(column, table_type, formats)
    except Unconvertible as first:
        wider = promotion(table_type)
        if wider is None:
            raise
        try:
            promoted = convert(column, wider, formats)
        except Unconvertible:
            raise first from None
    if pa.types.is_decimal(wider):
        precision = max(table_type.precision, needed_precision(promoted))
        return promoted.cast(pa.decimal128(precision, wider.scale))
    return promoted


def fit_frame(label: str, data: pa.Table, table: pa.Schema | None,
              explicit: Mapping[str, pa.DataType], formats: TextFormats,
              notices: list[str]) -> pa.Table:  # fmt: skip
    """One input fitted to the table (if any) and to the explicit types (by input column name)."""
    check_columns(data.column_names, label)
    if table is not None:
        data = align_to_table(data, table.names)
    explicit = {name.lower(): kind for name, kind in explicit.items()}
    columns = []
    for name, column in zip(data.column_names, data.columns, strict=True):
        kind = explicit.get(name.lower())
        table_type = table.field(name).type if table is not None and name in table.names else None
        if kind is not None:
            _check_explicit_against_table(name, kind, table_type)
            column = _fitted(label, name, column, kind, formats, "--type")
        column = _fitted(label, name, column, storable(column.type), formats, "storable")
        if table_type is not None and (kind is None or storable(kind) == storable(table_type)):
            target = with_input_fields(table_type, column.type, name, storable)
            column = _fitted(label, name, column, target, formats, "table")
        elif kind is None and is_text(column.type):
            column = infer_text(label, name, column, formats, notices)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=data.column_names)


def _check_explicit_against_table(name: str, given: pa.DataType,
                                  table_type: pa.DataType | None) -> None:  # fmt: skip
    """IngestError when ``--type`` differs from the table's type other than by a promotion
    Iceberg allows (int to long, float to double, a decimal's precision widened)."""
    # Compared as Iceberg types: pyiceberg reads a string column as Arrow large_string,
    # and --type gives string (one Iceberg type, two Arrow spellings).
    if table_type is None or storable(given) == storable(table_type):
        return  # a legal promotion is kept as given: the schema update widens the column
    given, table_type = storable(given), storable(table_type)
    wider = promotion(table_type)
    if wider is not None and pa.types.is_decimal(wider):
        legal = pa.types.is_decimal(given) and given.scale == table_type.scale and (
            given.precision > table_type.precision)  # fmt: skip
    else:
        legal = given == wider
    if not legal:
        raise IngestError(
            f"--type {name}={type_name(given)} conflicts with the table, whose column {name} "
            f"is {type_name(table_type)}.",
            hint="The table's schema is the contract: drop the --type, or promote the column "
            "by Iceberg's rules (int to long, float to double, a wider decimal), or write a new "
            "table; the table was not changed.",
        )


def _fitted(label: str, name: str, column: pa.ChunkedArray, target: pa.DataType,
            formats: TextFormats, against: str) -> pa.ChunkedArray:  # fmt: skip
    try:
        if against == "table":
            return fit_column(column, target, formats)
        return convert(column, target, formats)
    except Unconvertible as exc:
        whose = {"table": "the table's type", "--type": "the --type given"}.get(against, "")
        wanted = (
            f"{whose} is {type_name(target)}" if whose else f"Iceberg needs {type_name(target)}"
        )
        value = offending_value(column, target, formats)
        example = f" (value {value!r})" if value is not None else ""
        raise IngestError(
            f"Column {name} in {label}: {wanted}, the input's is {type_name(column.type)}: "
            f"{exc}{example}.",
            hint=TEXT_HINT if is_text(column.type) else TYPE_HINT,
        ) from exc


def infer_text(label: str, name: str, column: pa.ChunkedArray, formats: TextFormats,
               notices: list[str]) -> pa.ChunkedArray:  # fmt: skip
    """A text column of a new table column: dates or timestamps if every value is one."""
    values = pc.drop_null(column)
    if not len(values):
        return column
    for kind, fmt in _text_candidates(formats):
        try:
            return convert(column, kind, fmt)
        except Unconvertible:
            continue
    _notice_numbers_and_dates(label, name, values, notices)
    return column


def _text_candidates(formats: TextFormats) -> list[tuple[pa.DataType, TextFormats]]:
    """Types a text column is tried as, most specific first: the user's formats, then ISO."""
    candidates: list[tuple[pa.DataType, TextFormats]] = []
    if formats.date_format:
        candidates.append((pa.date32(), TextFormats(date_format=formats.date_format)))
    if formats.timestamp_format:
        zone = "UTC" if "%z" in formats.timestamp_format else None
        stamp = TextFormats(timestamp_format=formats.timestamp_format)
        candidates.append((pa.timestamp("us", zone), stamp))
    iso = TextFormats()
    return [*candidates, (pa.date32(), iso), (pa.timestamp("us", "UTC"), iso),
            (pa.timestamp("us"), iso)]  # fmt: skip


def _notice_numbers_and_dates(label: str, name: str, values: pa.ChunkedArray,
                              notices: list[str]) -> None:  # fmt: skip
    try:
        clean_numbers(values).cast(pa.float64())
        if _notice_number_spelling(label, name, values, notices):
            return
        notices.append(
            f"column {name} in {label} holds numbers written with currency symbols or "
            f"thousands separators; it was stored as text. Pass --type {name}=decimal(P,S) "
            "(or double) to load them as numbers"
        )
        return
    except pa.ArrowInvalid:
        pass
    if pc.all(pc.match_substring_regex(values, LOOKS_LIKE_DATE)).as_py():
        notices.append(
            f"column {name} in {label} holds dates not written as ISO 8601 (YYYY-MM-DD); it "
            "was stored as text. Pass --date-format (e.g. %m/%d/%Y) to load them as dates"
        )


def _notice_number_spelling(label: str, name: str, values: pa.ChunkedArray,
                            notices: list[str]) -> bool:  # fmt: skip
    """A notice for numbers a number type would respell (``007``, ``+1555…``): True if given."""
    if not pc.all(pc.match_substring_regex(values, PLAIN_NUMBER)).as_py():
        return False
    whole = pc.all(pc.match_substring_regex(values, r"^[+-]?[0-9]+$")).as_py()
    canonical = CANONICAL_INTEGER if whole else CANONICAL_NUMBER
    respelled = pc.filter(values, pc.invert(pc.match_substring_regex(values, canonical)))
    why = (
        f"numbers written with leading zeros, a leading + or a bare '.' (e.g. "
        f"{respelled[0].as_py()!r}), which a number would not keep"
        if len(respelled)
        else "numbers written as quoted text"
    )
    notices.append(
        f"column {name} in {label} holds {why}; it was stored as text. "
        f"Pass --type {name}={'long' if whole else 'double'} to load them as numbers"
    )
    return True


def unify(frames: list[tuple[str, pa.Table]], formats: TextFormats) -> pa.Table:
    """One table from several fitted inputs: each column at the type that holds all of them."""
    if len(frames) == 1:
        return frames[0][1]
    types: dict[str, tuple[str, pa.DataType]] = {}
    for label, data in frames:
        for field in data.schema:
            first_label, first = types.setdefault(field.name, (label, field.type))
            both = widest(first, field.type)
            if both is None:
                raise IngestError(
                    f"Files disagree on column {field.name}: {type_name(first)} in {first_label}, "
                    f"{type_name(field.type)} in {label}.",
                    hint=f"Pass --type {field.name}=TYPE to read every file as one type, "
                    "or fix the file; the table was not changed.",
                )
            types[field.name] = (first_label if both == first else label, both)
    target = pa.schema([(name, kind) for name, (_, kind) in types.items()])
    return pa.concat_tables([_to_schema(label, data, target, formats) for label, data in frames])


def _to_schema(label: str, data: pa.Table, target: pa.Schema, formats: TextFormats) -> pa.Table:
    columns = []
    for field in target:
        if field.name in data.column_names:
            column = _fitted(label, field.name, data.column(field.name), field.type, formats, "")
        else:
            column = pa.chunked_array([pa.nulls(len(data), field.type)], field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=target)


def refuse_untyped(data: pa.Table, table: pa.Schema | None) -> None:
    """IngestError if a column the table lacks has no values (so no type to give it)."""
    known = set(table.names) if table is not None else set()
    untyped = [f.name for f in data.schema if pa.types.is_null(f.type) and f.name not in known]
    if not untyped:
        return
    flags = " ".join(f"--type {name}=TYPE" for name in untyped[:3])
    if not len(data):
        raise IngestError(
            f"The input has no rows, so the type of {', '.join(untyped)} cannot be inferred.",
            hint=f"Pass the types: {flags} (or --schema FILE); the table was not changed.",
        )
    raise IngestError(
        f"Column(s) {', '.join(untyped)} have no values in any row, so their type cannot be "
        "inferred (a column of nulls never decides a type).",
        hint=f"Pass {flags} (or --schema FILE); the table was not changed.",
    )
