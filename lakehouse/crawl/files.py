"""Classifying and reading one landed file.

The format comes from the extension (``.csv``, ``.tsv``, ``.json``, ``.jsonl``,
``.parquet``, ... as ingest names them), else from the content: Parquet by its
``PAR1`` magic, JSON by a leading ``{`` or ``[``, else CSV. Compression comes
from the extension (``.gz``, ``.gzip``, ``.zst``, ``.zstd``) and from the magic
bytes (gzip ``1f 8b``, zstd ``28 b5 2f fd``), so Firehose's extension-less
objects are read too; an extension that says gzip over bytes that are not is an
error, never guessed around. CSV and JSON are parsed by ingest's readers (its
delimiter detection and exact numbers); a CSV whose first line holds numbers or
dates where a header would hold names is read as headerless (``col_1``, ...).
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.errors import IngestError
from lakehouse.lake.readers import FORMATS, ReadOptions, decode, read_csv, read_json

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
PARQUET_MAGIC = b"PAR1"
COMPRESSION_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}


@dataclass(frozen=True)
class Kind:
    """A file's format ('csv', 'json', 'parquet' or None: from the content) and
    compression ('gzip', 'zstd' or None)."""

    format: str | None
    compression: str | None


def kind_from_name(key: str) -> Kind:
    """What the object's name says about its format and compression."""
    path = PurePosixPath(key)
    compression = COMPRESSION_SUFFIXES.get(path.suffix.lower())
    if compression:
        path = path.with_suffix("")
    return Kind(FORMATS.get(path.suffix.lower()), compression)


def _compression_of(raw: bytes) -> str | None:
    if raw.startswith(GZIP_MAGIC):
        return "gzip"
    if raw.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def decompressed(raw: bytes, named: str | None, label: str) -> bytes:
    """The file's bytes, decompressed by what its magic bytes (or name) say.

    IngestError when the name says compressed but the bytes are not, or they are
    corrupt or cut short."""
    found = _compression_of(raw)
    if named and found != named:
        raise IngestError(
            f"{label} is named as {named}-compressed, but its bytes are not {named} data.",
            hint="Rename the file to its real format, or land it again; it was not registered.",
        )
    try:
        if found == "gzip":
            return gzip.decompress(raw)
        if found == "zstd":
            import zstandard

            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)) as reader:
                return reader.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise IngestError(
            f"{label} is not readable {found} data ({exc}): corrupt, or cut short while it "
            "was written.",
            hint="Land the file again; it was not registered and the crawl goes on without it.",
        ) from exc
    except Exception as exc:  # zstandard.ZstdError has no importable base without the module
        if type(exc).__name__ != "ZstdError":
            raise
        raise IngestError(
            f"{label} is not readable zstd data ({exc}): corrupt, or cut short.",
            hint="Land the file again; it was not registered and the crawl goes on without it.",
        ) from exc
    return raw


def text_format(data: bytes) -> str:
    """'json' for text starting with { or [, else 'csv'."""
    first = data.lstrip()[:1]
    return "json" if first in (b"{", b"[") else "csv"


def read_text(data: bytes, fmt: str, label: str, known: frozenset[str] = frozenset()) -> pa.Table:
    """A CSV or JSON file's rows through ingest's readers; IngestError naming ``label``.

    ``known`` (lower-case names): CSV columns the table already has, read as text
    and parsed by ingest's contract (so ``007`` stays ``007`` in a string column)."""
    text = decode(data, label, "utf-8")
    if not text.strip():
        return pa.table({})
    if fmt == "json":
        return read_json(text.encode(), label)
    options = ReadOptions(text_columns=known)
    return read_csv(_with_header(text, label).encode(), label, options)


def _with_header(text: str, label: str) -> str:
    """``text`` with ``col_1,...`` put above a first line that looks like data."""
    sample = text[:65536]
    from lakehouse.lake.readers import sniff_delimiter

    delimiter = (
        "\t" if label.lower().endswith((".tsv", ".tsv.gz")) else sniff_delimiter(sample, '"')
    )
    first = next(csv.reader(io.StringIO(sample), delimiter=delimiter), [])
    if not first or not any(_looks_like_data(cell) for cell in first):
        return text
    header = delimiter.join(f"col_{i}" for i in range(1, len(first) + 1))
    return f"{header}\n{text}"


def _looks_like_data(cell: str) -> bool:
    """A number or an ISO date: what a header's column name is not."""
    cell = cell.strip()
    if not cell:
        return False
    try:
        float(cell)
        return True
    except ValueError:
        pass
    from lakehouse.crawl.discover import DATE

    return bool(DATE.match(cell))


def parquet_metadata(source: pa.NativeFile, label: str) -> pq.FileMetaData:
    """A Parquet file's footer; IngestError for a file that is not (or not all) Parquet."""
    try:
        return pq.read_metadata(source)
    except (pa.ArrowInvalid, OSError) as exc:
        raise IngestError(
            f"{label} is not a readable Parquet file ({str(exc).splitlines()[0]}): not "
            "Parquet, or half-written (its footer is missing).",
            hint="Land the file again once it is complete; it was not registered and the "
            "crawl goes on without it.",
        ) from exc
