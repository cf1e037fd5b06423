"""Keep NULL lists and maps NULL through pyiceberg's writer.

pyiceberg 0.12's ``ArrowProjectionVisitor`` (run on every write, before the
Parquet file is made) rebuilds a list of structs, and a map with struct
values, from its offsets and values without the validity, so a NULL list is
written as ``[]`` and a NULL map as ``{}``. ``install()`` wraps those two
steps to put back the input's NULLs; a visitor result whose NULLs already
match is left alone, so a fixed pyiceberg makes this a no-op.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pyiceberg.io import pyarrow as pyiceberg_arrow

_visitor = pyiceberg_arrow.ArrowProjectionVisitor
_PLAIN_LIST = _visitor.list
_PLAIN_MAP = _visitor.map


def _with_nulls_of(source: pa.Array | None, result: pa.Array | None) -> pa.Array | None:
    """``result`` with ``source``'s NULL rows NULL again (it lost them)."""
    if result is None or source is None or result.null_count == source.null_count:
        return result
    mask = source.is_null()
    if isinstance(result, pa.MapArray):
        return pa.MapArray.from_arrays(
            result.offsets, result.keys, result.items, type=result.type, mask=mask
        )
    return type(result).from_arrays(result.offsets, result.values, type=result.type, mask=mask)


def _list(self: Any, list_type: Any, list_array: pa.Array | None, value_array: Any) -> Any:
    return _with_nulls_of(list_array, _PLAIN_LIST(self, list_type, list_array, value_array))


def _map(self: Any, map_type: Any, map_array: pa.Array | None, key: Any, value: Any) -> Any:
    return _with_nulls_of(map_array, _PLAIN_MAP(self, map_type, map_array, key, value))


def install() -> None:
    """Wrap the visitor's list and map steps (idempotent)."""
    _visitor.list = _list  # type: ignore[method-assign]
    _visitor.map = _map  # type: ignore[method-assign,assignment]
