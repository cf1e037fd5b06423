"""Arrow columns from the generator's arrays: exact money, labels, ids, dates; and draw helpers."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sample_data.calendar import _US_PER_DAY
from sample_data.records import FloatArray, IntArray, Rng

_MONEY = pa.decimal128(12, 2)
_TS = pa.timestamp("us")
_CENT = pa.scalar(Decimal("0.01"), pa.decimal128(3, 2))


def _decimal(cents: IntArray) -> pa.Array:
    """Exact ``decimal128(12, 2)`` from integer cents (no float rounding involved)."""
    whole = pa.array(cents, pa.int64()).cast(pa.decimal128(19, 0))
    return pc.multiply(whole, _CENT).cast(_MONEY)


def _labels(values: Sequence[str | None], idx: IntArray) -> pa.Array:
    """String array ``values[idx]``; negative indices and ``None`` values become null."""
    return pa.array(values, pa.string()).take(pa.array(idx, pa.int64(), mask=idx < 0))


def _ids(prefix: str, numbers: IntArray, width: int) -> pa.Array:
    """Zero-padded string ids like ``S000000042``; null where ``numbers < 0``."""
    text = pa.array(numbers, pa.int64(), mask=numbers < 0).cast(pa.string())
    return pc.binary_join_element_wise(prefix, pc.utf8_lpad(text, width, "0"), "")


def _nullable(index: IntArray) -> pa.Array:
    """int64 ids ``index + 1``, null where ``index < 0``."""
    return pa.array(index + 1, pa.int64(), mask=index < 0)


def _dates(us: IntArray) -> pa.Array:
    """date32 of microsecond timestamps."""
    return pa.array((us // _US_PER_DAY).astype(np.int32), pa.date32())


def _p(weights: Sequence[float]) -> FloatArray:
    """Weights normalised to probabilities."""
    w = np.asarray(weights, dtype=np.float64)
    p: FloatArray = w / w.sum()
    return p


def _in_groups(rng: Rng, group: IntArray, groups: Sequence[Sequence[str]]) -> IntArray:
    """Uniform index into ``flatten(groups)``, restricted to the member's group."""
    size = np.array([len(g) for g in groups], dtype=np.int64)
    offset = np.cumsum(size) - size
    return offset[group] + np.floor(rng.random(len(group)) * size[group]).astype(np.int64)
