"""The snapshot's CSV reader takes records of any size (pyarrow's blocks are 1 MiB)."""

from __future__ import annotations

import pytest

from lakehouse.errors import SyncStoppedError
from lakehouse.sync.arrow_snapshot import SnapshotReadError, csv_records, read_text_chunks


def _blocks(data: bytes, size: int = 65_536) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("mib", [2, 20])
def test_a_record_larger_than_a_parser_block_is_read_whole(mib: int) -> None:
    big = "y" * (mib * 2**20 - 3) + '"\n,'  # a quote, a newline and a comma inside the value
    data = b'1,small\n2,"' + big.replace('"', '""').encode() + b'"\n3,\n4,""\n'
    chunks = list(read_text_chunks(csv_records(_blocks(data), 4 * 2**20), ["id", "t"]))
    rows = [row for chunk in chunks for row in chunk.to_pylist()]
    assert [row["id"] for row in rows] == ["1", "2", "3", "4"]
    assert rows[1]["t"] == big
    assert rows[0]["t"] == "small" and rows[2]["t"] is None and rows[3]["t"] == ""


def test_csv_that_cannot_be_parsed_is_our_fault_not_the_users_column_types() -> None:
    chunks = read_text_chunks([b"1,2,3\n"], ["id", "t"])  # a column too many
    with pytest.raises(SnapshotReadError) as caught:
        list(chunks)
    assert isinstance(caught.value, SyncStoppedError)
    assert "column type" not in str(caught.value).lower()
    assert "bug in lakehouse" in str(caught.value)
