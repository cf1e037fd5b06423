"""Reading a dataset's new files, in parallel: Parquet footers, CSV and JSON rows.

Each file becomes a ``Loaded`` (its columns, rows and typed partition values)
or a ``FileProblem`` naming the file, what is wrong and a hint. Text rows are
fitted to the table's columns by ingest's contract (``fit_frame``), so a value
the table's type cannot hold is refused here, per file, before any commit.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq

from lakehouse.config import Settings
from lakehouse.crawl.discover import FileProblem, PlacedFile, partition_value
from lakehouse.crawl.files import (
    PARQUET_MAGIC,
    decompressed,
    kind_from_name,
    parquet_metadata,
    read_text,
    text_format,
)
from lakehouse.errors import IngestError, LakehouseError
from lakehouse.lake.casting import TextFormats
from lakehouse.lake.contract import fit_frame
from lakehouse.outages import CONNECT_SECONDS, S3_REQUEST_SECONDS

READERS = 8  # objects fetched at once: S3 round trips dominate small files


@dataclass(frozen=True)
class Loaded:
    """A new file, read: its format, columns, rows and typed partition values.

    ``frame`` holds a CSV/JSON file's fitted rows (None for Parquet, which is
    registered where it lies, from ``metadata``)."""

    placed: PlacedFile
    format: str
    columns: pa.Schema
    rows: int
    values: tuple[object, ...]
    frame: pa.Table | None = None
    metadata: pq.FileMetaData | None = None

    @property
    def uri(self) -> str:
        return self.placed.file.uri


def s3_filesystem(settings: Settings) -> pa_fs.S3FileSystem:
    return pa_fs.S3FileSystem(
        access_key=settings.access_key, secret_key=settings.secret_key,
        endpoint_override=settings.s3_endpoint, region=settings.region, scheme="http",
        connect_timeout=CONNECT_SECONDS, request_timeout=S3_REQUEST_SECONDS,
    )  # fmt: skip


def load_files(settings: Settings, files: list[PlacedFile], keys: dict[str, pa.DataType],
               target: pa.Schema | None) -> tuple[list[Loaded], list[FileProblem]]:  # fmt: skip
    """Each file read (in order), or why it cannot be; ``target``: the table's columns."""
    fs = s3_filesystem(settings)
    with ThreadPoolExecutor(READERS) as pool:
        outcomes = list(pool.map(lambda f: _outcome(fs, f, keys, target), files))
    loaded = [o for o in outcomes if isinstance(o, Loaded)]
    return loaded, [o for o in outcomes if isinstance(o, FileProblem)]


def _outcome(fs: pa_fs.FileSystem, placed: PlacedFile, keys: dict[str, pa.DataType],
             target: pa.Schema | None) -> Loaded | FileProblem:  # fmt: skip
    try:
        return _load(fs, placed, keys, target)
    except LakehouseError as exc:
        return FileProblem(placed.file.uri, str(exc))
    except (OSError, pa.ArrowException) as exc:
        return FileProblem(placed.file.uri, (
            f"cannot be read: {str(exc).splitlines()[0]}\nHint: check the object; it was "
            "not registered and the crawl goes on without it."))  # fmt: skip


def _values(placed: PlacedFile, keys: dict[str, pa.DataType]) -> tuple[object, ...]:
    values = []
    for key, text in placed.partition:
        if key not in keys:
            raise IngestError(
                f"{placed.file.uri}: its folder {key}={text} names a partition column {key} "
                f"that the table does not have (its partition columns: "
                f"{', '.join(keys) or 'none'}).",
                hint="Land the file under the table's own key=value folders; it was not "
                "registered.",
            )
        try:
            values.append(partition_value(text, keys[key]))
        except ValueError as exc:
            raise IngestError(
                f"{placed.file.uri}: partition folder {key}={text} does not fit the partition "
                f"column {key} ({keys[key]}): {exc}.",
                hint="Name the folder with a value of that type; the file was not registered.",
            ) from exc
    return tuple(values)


def _load(fs: pa_fs.FileSystem, placed: PlacedFile, keys: dict[str, pa.DataType],
          target: pa.Schema | None) -> Loaded:  # fmt: skip
    file = placed.file
    values = _values(placed, keys)
    kind = kind_from_name(file.key)
    path = f"{file.bucket}/{file.key}"
    if kind.format == "parquet" and kind.compression is None:
        with fs.open_input_file(path) as source:
            return _parquet(placed, parquet_metadata(source, file.uri), values, keys)
    with fs.open_input_stream(path, compression=None) as stream:
        data = decompressed(stream.read(), kind.compression, file.uri)
    fmt = kind.format or ("parquet" if data.startswith(PARQUET_MAGIC) else text_format(data))
    if fmt == "parquet":
        raise IngestError(
            f"{file.uri} is compressed Parquet, which cannot be registered where it lies.",
            hint="Land Parquet uncompressed (it compresses its own pages); the file was not "
            "registered.",
        )
    known = frozenset(n.lower() for n in (target.names if target is not None else []))
    frame = read_text(data, fmt, file.uri, known)
    if frame.num_columns:
        frame = fit_frame(file.uri, frame, target, {}, TextFormats(), [])
    frame = _with_partition_columns(frame, placed, values, keys)
    return Loaded(placed, fmt, frame.schema, len(frame), values, frame=frame)


def _parquet(placed: PlacedFile, metadata: pq.FileMetaData, values: tuple[object, ...],
             keys: dict[str, pa.DataType]) -> Loaded:  # fmt: skip
    columns = metadata.schema.to_arrow_schema()
    inside = [k for k in keys if k in columns.names]
    if inside:
        raise IngestError(
            f"{placed.file.uri} holds column {inside[0]}, which is also its partition "
            f"folder's key ({placed.partition_path}): registering it in place would give "
            "the column two sources.",
            hint="Leave partition columns out of Parquet files under key=value folders (as "
            "Hive, Spark and Firehose do); the file was not registered.",
        )
    columns = pa.schema([pa.field(f.name, f.type, True) for f in columns])
    return Loaded(placed, "parquet", columns, metadata.num_rows, values, metadata=metadata)


def _with_partition_columns(frame: pa.Table, placed: PlacedFile, values: tuple[object, ...],
                            keys: dict[str, pa.DataType]) -> pa.Table:  # fmt: skip
    """``frame`` with one column per partition key holding the path's value; a column of
    that name in the file must hold the same value in every row."""
    if not frame.num_columns:
        return frame
    for (key, text), value in zip(placed.partition, values, strict=True):
        if key in frame.column_names:
            column = pc.cast(frame.column(key), pa.string())
            if not pc.all(pc.equal(column, text)).as_py() or column.null_count:
                raise IngestError(
                    f"{placed.file.uri} has a column {key} whose values are not all {text!r}, "
                    f"the value of its folder {key}={text}.",
                    hint="Put each row under the folder of its own value; the file was not "
                    "registered.",
                )
            frame = frame.drop_columns([key])
        frame = frame.append_column(pa.field(key, keys[key]),
                                    pa.array([value] * len(frame), keys[key]))  # fmt: skip
    return frame
