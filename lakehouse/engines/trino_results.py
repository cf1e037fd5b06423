"""Trino results off the wire: spooled segments (or direct rows) as Arrow batches.

With the spooling protocol Trino's nodes write the result as segments of
zstd-compressed JSON (one array of rows each) to the lake's S3, and the
coordinator hands out their URIs; small results come inline. A thread follows
the protocol, downloads and decompresses the next segments while the caller
converts the previous one. A large segment is parsed by DuckDB's JSON reader
(C++, several threads, no Python object per value) into columns of text or
numbers; a small one by ``orjson``. Both end in the same per-column
conversion from Trino's declared types (``trino_arrow``), so the result is the
same either way. A server without spooling answers with the direct
protocol's rows, which are converted in batches of ``BATCH_ROWS``.
"""

from __future__ import annotations

import contextlib
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lz4.block
import orjson
import pyarrow as pa
import zstandard
from trino.client import DecodableSegment, SpooledSegment
from trino.dbapi import Cursor

from lakehouse.engines.trino_arrow import record_batch, text_columns_batch

# Spooled result segments, zstd-compressed JSON (the protocol's fastest encoding here).
ENCODING = "json+zstd"
BATCH_ROWS = 50_000
PREFETCH = 4
# Segments at least this large (uncompressed JSON) are parsed by DuckDB.
DUCKDB_MIN_BYTES = 1 << 20

Columns = list[dict[str, Any]]


@dataclass
class FetchedSegment:
    """One segment's JSON, in memory (small) or in a file (large), and its row count."""

    rows_count: int
    json: bytes = b""
    path: Path | None = None


Fetched = FetchedSegment | list[list[Any]]


def record_batches(cursor: Cursor, columns: Callable[[], Columns]) -> Iterator[pa.RecordBatch]:
    """The executed query's result as batches, typed from ``columns()`` (Trino's declared columns).

    Raises ``ValueError`` when a segment is not what Trino announced (size,
    rows), and the client's errors when the protocol fails.
    """
    duckdb_min_bytes = DUCKDB_MIN_BYTES
    with tempfile.TemporaryDirectory(prefix="lakehouse-trino-") as scratch:
        items: queue.Queue[Fetched | BaseException | None] = queue.Queue(PREFETCH)
        stop = threading.Event()

        def fetch() -> None:
            try:
                for fetched in _fetched(cursor, Path(scratch), duckdb_min_bytes):
                    if stop.is_set():
                        return
                    items.put(fetched)
                items.put(None)
            except BaseException as exc:  # handed to the caller, raised there
                items.put(exc)

        producer = threading.Thread(target=fetch, name="trino-segments", daemon=True)
        producer.start()
        try:
            while (item := items.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield _convert(item, columns())
        finally:
            stop.set()
            _drain(items, producer)


def _drain(items: queue.Queue[Fetched | BaseException | None], producer: threading.Thread) -> None:
    """Wait for the producer to stop (it may be blocked on a full queue) before its files go."""
    while producer.is_alive():
        with contextlib.suppress(queue.Empty):
            items.get(timeout=0.1)


def _convert(item: Fetched, columns: Columns) -> pa.RecordBatch:
    if isinstance(item, list):
        return record_batch(item, columns)
    if item.path is not None:
        batch = text_columns_batch(item.path, columns)
        item.path.unlink()
    else:
        batch = record_batch(orjson.loads(item.json), columns)
    if batch.num_rows != item.rows_count:
        raise ValueError(f"a result segment holds {batch.num_rows} rows, not {item.rows_count}")
    return batch


def _fetched(cursor: Cursor, scratch: Path, duckdb_min_bytes: int) -> Iterator[Fetched]:
    """Per segment its JSON (a file when large); direct-protocol rows in batches."""
    rows: list[list[Any]] = []
    for number, item in enumerate(cursor):
        if isinstance(item, DecodableSegment):
            fetched = FetchedSegment(int(item.segment.metadata["rowsCount"]), _segment_json(item))
            if len(fetched.json) >= duckdb_min_bytes:
                fetched.path = scratch / f"{number}.json"
                fetched.path.write_bytes(fetched.json)
                fetched.json = b""
            yield fetched
            continue
        rows.append(item)
        if len(rows) >= BATCH_ROWS:
            yield rows
            rows = []
    if rows:
        yield rows


def _segment_json(item: DecodableSegment) -> bytes:
    """A segment's JSON text: downloaded, decompressed, size checked, then acknowledged."""
    segment = item.segment
    data = segment.data
    metadata = segment.metadata
    if "uncompressedSize" in metadata:  # below Trino's threshold a segment is sent as is
        expected = int(metadata["uncompressedSize"])
        if item.encoding == "json+zstd":
            data = zstandard.ZstdDecompressor().decompress(data, max_output_size=expected)
        elif item.encoding == "json+lz4":
            data = lz4.block.decompress(data, uncompressed_size=expected)
        if len(data) != expected:
            raise ValueError(f"a result segment has {len(data)} bytes, not {expected}")
    if isinstance(segment, SpooledSegment):
        segment.acknowledge()  # lets Trino delete it from the spooling bucket now
    return bytes(data)
