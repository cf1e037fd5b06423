"""Numbers read from text without losing digits.

pyarrow's CSV and JSON readers infer a column whose values do not all fit a
long as double, so ``9007199254740993`` or ``12345678901234567890.12`` would be
rounded silently. A double holds any number of at most ``DOUBLE_DIGITS``
significant decimal digits exactly (it reads back as the same text); a column
with a longer value is read as ``decimal(P,S)`` instead when every value is
written as plain digits (integers beyond a long as ``decimal(38,0)``), and is
refused otherwise (``1.2345678901234567e5`` has no exact type but the user's).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse.errors import IngestError

DOUBLE_DIGITS = 15
MAX_PRECISION = 38
PLAIN = r"^[+-]?\d+(\.\d+)?$"
# A run of 16+ digits and dots: the only way a JSON text can hold a number a double rounds.
LONG_NUMBER = re.compile(r"[0-9][0-9.]{15,}")


def significant_digits(text: pa.ChunkedArray) -> pa.ChunkedArray:
    """Digits of each number's mantissa without sign, point and leading zeros."""
    mantissa = pc.replace_substring_regex(text, pattern=r"[eE].*$", replacement="")
    digits = pc.replace_substring_regex(mantissa, pattern=r"[^0-9]", replacement="")
    return pc.utf8_length(pc.utf8_ltrim(digits, characters="0"))


def exact_type(column: str, label: str, text: pa.ChunkedArray) -> pa.DataType | None:
    """The exact type of a column of numbers written as ``text`` (None: double is exact).

    Raises IngestError when a value has more digits than a double holds and the
    column has no decimal type that holds every value.
    """
    values = pc.utf8_trim_whitespace(pc.drop_null(text))
    if not len(values) or (pc.max(significant_digits(values)).as_py() or 0) <= DOUBLE_DIGITS:
        return None
    plain = pc.match_substring_regex(values, pattern=PLAIN)
    whole = pc.replace_substring_regex(values, pattern=r"^[+-]|\..*$", replacement="")
    whole_digits = pc.max(pc.utf8_length(pc.utf8_ltrim(whole, characters="0"))).as_py() or 1
    fraction = pc.replace_substring_regex(values, pattern=r"^[^.]*\.?", replacement="")
    scale = pc.max(pc.utf8_length(fraction)).as_py() or 0
    precision = whole_digits + scale
    if pc.all(plain).as_py() and precision <= MAX_PRECISION:
        # Integers get the widest decimal: a later file's larger value still fits.
        return pa.decimal128(MAX_PRECISION if scale == 0 else precision, scale)
    longest = pc.index(significant_digits(values), pc.max(significant_digits(values))).as_py()
    raise IngestError(
        f"Column {column} in {label} holds {values[longest].as_py()!r}, which has more digits "
        f"than a double holds exactly ({DOUBLE_DIGITS}) and no decimal(P,S) with P <= 38 "
        "holds every value of the column.",
        hint=f"Pass --type {column}=decimal(P,S) or --type {column}=double (rounded) or "
        "--type {column}=string; the table was not changed.".replace("{column}", column),
    )


def exact_column(column: str, label: str, text: Sequence[str | None] | pa.ChunkedArray
                 ) -> pa.ChunkedArray | None:  # fmt: skip
    """``text`` as its exact type, or None when a double holds every value exactly."""
    values = text if isinstance(text, pa.ChunkedArray) else pa.chunked_array([pa.array(
        list(text), pa.string())])  # fmt: skip
    kind = exact_type(column, label, values)
    return None if kind is None else pc.utf8_trim_whitespace(values).cast(kind)
