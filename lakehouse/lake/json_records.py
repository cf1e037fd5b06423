"""The records of a JSON text as Python values, every number as written.

pyarrow's JSON reader keeps the last value of a key an object names twice
(``{"id": 1, "id": 2}`` reads as ``id = 2``) and reads numbers through a
double. ``records`` parses the text once more, refusing an object whose keys
repeat (or differ only by case, which engines cannot tell apart), and keeping
each number as a ``Decimal`` or ``int``, with the line each record starts on.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from lakehouse.errors import IngestError
from lakehouse.lake.names import shown

BLANKS = re.compile(r"[ \t\r\n]*")
CHUNK_LINES = 10_000


class _RepeatedKey(Exception):  # not a ValueError: the decoder must not call it bad JSON
    def __init__(self, first: str, second: str) -> None:
        super().__init__(first, second)
        self.first, self.second = first, second
        self.line = 0


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    unique = dict(pairs)
    if len(unique) == len(pairs) and len(set(map(str.lower, unique))) == len(unique):
        return unique  # the common case, without a Python loop
    seen: dict[str, str] = {}
    for key, _ in pairs:
        if key.lower() in seen:
            raise _RepeatedKey(seen[key.lower()], key)
        seen[key.lower()] = key
    return unique


EXACT = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_float=Decimal)
FAST = json.JSONDecoder(object_pairs_hook=_unique_keys)


def records(text: str, path: str, keep: bool = True) -> list[tuple[int, Any]] | None:
    """(line, value) for each record: each value of JSON Lines, each element of a
    top-level array, or the one object; numbers as ``Decimal`` or ``int``. With ``keep``
    False the text is only checked, and the list may be empty. None when the text is not
    JSON (the caller's reader says why). IngestError naming the key, file and line when
    an object names a key twice."""
    decoder = EXACT if keep else FAST
    try:
        if not text.lstrip().startswith("["):
            try:
                return _json_lines(text, decoder, keep)
            except ValueError:
                pass  # not one value per line: e.g. a pretty-printed object
        return _json_values(text, decoder)
    except _RepeatedKey as repeated:
        raise _repeated_key_error(path, repeated.line, repeated) from None
    except (ValueError, RecursionError):
        return None


def _json_lines(text: str, decoder: json.JSONDecoder, keep: bool) -> list[tuple[int, Any]]:
    """One value per non-blank line, decoded as arrays of ``CHUNK_LINES`` lines (a decode
    per line costs twice as much) and dropped unless ``keep``; lines are decoded one by
    one only to name the line of a repeated key."""
    lines = text.split("\n")
    numbers = [number for number, line in enumerate(lines, start=1) if line.strip()]
    found: list[tuple[int, Any]] = []
    for first in range(0, len(numbers), CHUNK_LINES):
        chunk = numbers[first : first + CHUNK_LINES]
        try:
            values = decoder.decode("[" + ",".join(lines[n - 1] for n in chunk) + "]")
        except _RepeatedKey:
            values = [_decode_line(decoder, lines[n - 1], n) for n in chunk]  # raises
        if len(values) != len(chunk):
            raise ValueError("a line holds more than one value")
        if keep:
            found.extend(zip(chunk, values, strict=True))
    return found


def _decode_line(decoder: json.JSONDecoder, line: str, number: int) -> Any:
    try:
        return decoder.decode(line)
    except _RepeatedKey as repeated:
        repeated.line = number
        raise


def _json_values(text: str, decoder: json.JSONDecoder) -> list[tuple[int, Any]]:
    """The values of a top-level array, or whitespace-separated values, with the line
    each starts on."""
    found: list[tuple[int, Any]] = []
    line, counted = 1, 0
    position = _after_blanks(text, 0)
    array = text.startswith("[", position)
    position += array
    try:
        while True:
            start = _after_blanks(text, position)
            if start >= len(text) or (array and text.startswith("]", start)):
                return found
            line, counted = line + text.count("\n", counted, start), start
            value, position = decoder.raw_decode(text, start)
            found.append((line, value))
            if array:
                after = _after_blanks(text, position)
                position = after + text.startswith(",", after)
    except _RepeatedKey as repeated:
        repeated.line = line
        raise


def _after_blanks(text: str, position: int) -> int:
    return BLANKS.match(text, position).end()  # type: ignore[union-attr]


def _repeated_key_error(path: str, line: int, repeated: _RepeatedKey) -> IngestError:
    first, second = shown(repeated.first), shown(repeated.second)
    if repeated.first == repeated.second:
        what = f"names the key '{first}' twice (a JSON reader would keep only the last value)"
    else:
        what = (f"has the keys '{first}' and '{second}', which engines cannot tell apart "
                "(they resolve names without regard to case)")  # fmt: skip
    return IngestError(
        f"{path}: the record starting on line {line} {what}.",
        hint="Give every key of an object its own name; the table was not changed.",
    )
