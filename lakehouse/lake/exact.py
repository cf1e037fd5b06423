"""Numbers read from text without changing a value.

pyarrow's CSV and JSON readers infer a column whose values do not all fit a
long as double, and a double changes some numbers silently: one with more than
``DOUBLE_DIGITS`` significant decimal digits is rounded (``9007199254740993``),
one beyond its range becomes infinity (``1e400``), one below its smallest
normal magnitude (about ``2.2e-308``) becomes 0 or a subnormal that keeps fewer
digits (``1e-400``, ``4.9e-324``). A column holding such a value is read as
``decimal(P,S)`` instead (integers as ``decimal(38,0)``), whether the values
are written as plain digits or with an exponent, when every value fits a
decimal with ``P <= 38``; otherwise it is refused naming the column, file,
place and value, with a hint to name the type.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.errors import IngestError

DOUBLE_DIGITS = 15
MAX_PRECISION = 38
SMALLEST_NORMAL = sys.float_info.min
PLAIN = r"^[+-]?\d+(\.\d+)?$"
# The only ways a text can hold a number a double changes: a run of 16+ digits and dots
# (rounding), or an exponent of three or more digits (overflow, underflow, subnormal).
LONG_NUMBER = re.compile(r"[0-9][0-9.]{15,}|[eE][+-]?0*[1-9][0-9]{2,}")


def significant_digits(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Digits of each number's mantissa without sign, point and leading zeros."""
    mantissa = pc.replace_substring_regex(text, pattern=r"[eE].*$", replacement="")
    digits = pc.replace_substring_regex(mantissa, pattern=r"[^0-9]", replacement="")
    return pc.utf8_length(pc.utf8_ltrim(digits, characters="0"))


def changed_by_double(text: pa.ChunkedArray, doubles: pa.ChunkedArray) -> pa.ChunkedArray:
    """True where the double read from ``text`` is not the number written (null: no value).

    Rounded (more than ``DOUBLE_DIGITS`` digits), overflowed to infinity, or a non-zero
    number below the smallest normal double (0 or a subnormal). ``inf``/``nan`` spelled
    as words have no digits and are the double's own values.
    """
    digits = significant_digits(text)
    out_of_range = pc.or_(pc.is_inf(doubles), pc.less(pc.abs(doubles), SMALLEST_NORMAL))
    return pc.or_(pc.greater(digits, DOUBLE_DIGITS), pc.and_(pc.greater(digits, 0), out_of_range))


def decimal_shape(values: pa.ChunkedArray) -> tuple[int, int] | None:
    """(digits before the point, digits after it) that hold every value exactly, or
    None when one is not a finite number."""
    if pc.all(pc.match_substring_regex(values, pattern=PLAIN)).as_py():
        whole = pc.replace_substring_regex(values, pattern=r"^[+-]|\..*$", replacement="")
        whole_digits = pc.max(pc.utf8_length(pc.utf8_ltrim(whole, characters="0"))).as_py()
        fraction = pc.replace_substring_regex(values, pattern=r"^[^.]*\.?", replacement="")
        return whole_digits or 1, pc.max(pc.utf8_length(fraction)).as_py() or 0
    whole_digits, scale = 1, 0
    for value in pc.unique(values).to_pylist():  # only columns written with an exponent
        try:
            written = Decimal(value).as_tuple()
        except InvalidOperation:
            return None
        if not isinstance(written.exponent, int):
            return None  # nan or infinity
        whole_digits = max(whole_digits, len(written.digits) + written.exponent)
        scale = max(scale, -written.exponent)
    return whole_digits, scale


def exact_type(column: str, label: str, text: pa.ChunkedArray, doubles: pa.ChunkedArray,
               where: Callable[[int], str] | None = None,
               as_text: str = "--type {column}=string") -> pa.DataType | None:  # fmt: skip
    """The exact type of a column of numbers written as ``text`` and read as ``doubles``
    (None: every double is the number written).

    Raises IngestError naming the first changed value (``where(row)`` says where it is,
    0-based row; ``as_text`` says how to keep the column as text) when no decimal(P,S) with P <= 38 holds every value of the column.
    """
    changed = pc.fill_null(changed_by_double(pc.utf8_trim_whitespace(text), doubles), False)
    if not pc.any(changed).as_py():
        return None
    values = pc.utf8_trim_whitespace(pc.drop_null(text))
    shape = decimal_shape(values)
    if shape is not None and shape[0] + shape[1] <= MAX_PRECISION:
        whole_digits, scale = shape
        # Integers get the widest decimal: a later file's larger value still fits.
        return pa.decimal128(MAX_PRECISION if scale == 0 else whole_digits + scale, scale)
    row = pc.index(changed, True).as_py()
    place = where(row) if where else f"row {row + 1}"
    raise IngestError(
        f"Column {column} in {label} holds {text[row].as_py()!r} ({place}), which a double "
        f"would change (it holds {DOUBLE_DIGITS} significant digits, magnitudes from about "
        "2.2e-308 to 1.8e308) and no decimal(P,S) with P <= 38 holds every value of the column.",
        hint=f"Pass --type {column}=decimal(P,S) or "
        + as_text.replace("{column}", column)
        + "; the table was not changed.",
    )


def exact_column(column: str, label: str, text: Sequence[str | None] | pa.ChunkedArray,
                 doubles: pa.ChunkedArray,
                 where: Callable[[int], str] | None = None,
                 as_text: str = "--type {column}=string") -> pa.ChunkedArray | None:  # fmt: skip
    """``text`` as its exact type, or None when ``doubles`` (read from it) are exact."""
    values = text if isinstance(text, pa.ChunkedArray) else pa.chunked_array([pa.array(
        list(text), pa.string())])  # fmt: skip
    kind = exact_type(column, label, values, doubles, where, as_text)
    return None if kind is None else pc.utf8_trim_whitespace(values).cast(kind)
