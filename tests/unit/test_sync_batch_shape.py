"""The schema of a batch whose changes span an ALTER TABLE (pure logic)."""

from __future__ import annotations

import pyarrow as pa

from lakehouse.sync.postgres_pipeline import later_shape


def test_a_dropped_column_stays_nullable_and_the_later_types_win() -> None:
    earlier = pa.schema([pa.field("id", pa.int64(), nullable=False), ("q", pa.float64()),
                         pa.field("note", pa.string(), nullable=False)])  # fmt: skip
    later = pa.schema([pa.field("id", pa.int64(), nullable=False), ("q", pa.decimal128(10, 2)),
                       ("added", pa.int32())])  # fmt: skip
    shape = later_shape(earlier, later)
    assert shape.names == ["id", "q", "added", "note"]
    assert shape.field("q").type == pa.decimal128(10, 2)
    assert shape.field("note").nullable and not shape.field("id").nullable
    assert later_shape(later, later) is later
