"""What lies under an s3:// prefix: objects, grouped into datasets with partitions.

A dataset is the folder above a file's first Hive-style ``key=value`` folder, or
the file's own folder when it has none; every ``key=value`` folder below it is a
partition (values are URL-decoded; ``__HIVE_DEFAULT_PARTITION__`` is NULL). The
table's name is the dataset folder's path below the crawl's prefix (``a/b`` is
``a_b``), or the prefix's last folder (the bucket's name) for files right there.
Objects whose name starts with ``.`` or ``_`` (``_SUCCESS``, ``.crc``) and folder
markers are skipped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import unquote

import pyarrow as pa

from lakehouse.config import Settings
from lakehouse.errors import CrawlError

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
INTEGER = re.compile(r"^(0|-?[1-9][0-9]{0,17})$")


@dataclass(frozen=True)
class SourceFile:
    """One object: where it is, and what identifies its content (etag, size)."""

    bucket: str
    key: str
    size: int
    etag: str
    modified: datetime | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class PlacedFile:
    """A file of a dataset with its partition folders as written (``dt=2026-11-01``)."""

    file: SourceFile
    partition: tuple[tuple[str, str], ...]

    @property
    def partition_path(self) -> str:
        return "/".join(f"{k}={v}" for k, v in self.partition)


@dataclass
class Dataset:
    """Files of one dataset folder; ``keys`` are its partition keys in folder order."""

    folder: str
    table: str
    keys: tuple[str, ...]
    files: list[PlacedFile] = field(default_factory=list)


@dataclass(frozen=True)
class FileProblem:
    """A file the crawl could not use, and why (a message with its hint)."""

    uri: str
    reason: str


def list_objects(settings: Settings, bucket: str, prefix: str) -> list[SourceFile]:
    """Every object under ``prefix`` (skipping ``.``/``_`` names and folder markers).

    Raises CrawlError for a bucket that does not exist or whose name S3 refuses.
    """
    from minio.error import S3Error
    from minio.helpers import check_bucket_name

    from lakehouse.outages import reported_outages
    from lakehouse.services.s3 import s3_client

    try:  # before any request: the client raises a bare ValueError for it
        check_bucket_name(bucket)
    except ValueError:
        raise CrawlError(f"{bucket!r} is not a valid S3 bucket name, so s3://{bucket}/{prefix} "
                         "cannot be crawled.",
                         hint="A bucket name has 3 to 63 lower-case letters, digits, '.' or "
                         "'-'; nothing was registered.") from None  # fmt: skip

    client = s3_client(settings.s3_endpoint, settings.access_key, settings.secret_key,
                       settings.region)  # fmt: skip
    where = f"s3://{bucket}/{prefix}"
    try:
        with reported_outages(settings, f"crawling {where}", ("s3",)):
            if not client.bucket_exists(bucket):
                raise CrawlError(
                    f"Bucket {bucket} does not exist, so there is nothing to crawl at {where}.",
                    hint="Check the bucket's name (`aws s3 ls` with `lakehouse env` lists "
                    "the buckets); nothing was registered.",
                )
            listed = client.list_objects(bucket, prefix=prefix or None, recursive=True)
            files = [
                SourceFile(
                    bucket, o.object_name, o.size or 0, (o.etag or "").strip('"'), o.last_modified
                )
                for o in listed
                if o.object_name and not o.is_dir and _visible(o.object_name, prefix)
            ]
    except S3Error as exc:
        raise CrawlError(
            f"Cannot list {where}: {exc.code}: {exc.message}",
            hint="Check the path and that the stack's S3 keys may read it; nothing was registered.",
        ) from exc
    return sorted(files, key=lambda f: f.key)


def nothing_under(where: str) -> CrawlError:
    """The error of a crawl whose prefix holds no file (and never held one it added)."""
    return CrawlError(
        f"No files under {where}.",
        hint="Check the prefix (keys are case-sensitive; `aws s3 ls --recursive` shows "
        "them); nothing was registered.",
    )


def vanished(table: str, files: list[tuple[str, str]]) -> Dataset:
    """An empty dataset for ``table``, whose added files ((uri, partition path)) are all
    gone from the listing: its deletions are handled like any other's."""
    uri, partition = files[0]
    folder = uri.rsplit("/", 1)[0]
    if partition:
        folder = folder.removesuffix("/" + partition)
    keys = tuple(pair.split("=", 1)[0] for pair in partition.split("/")) if partition else ()
    return Dataset(folder, table.split(".", 1)[1], keys)


def _visible(key: str, prefix: str) -> bool:
    parts = key[len(prefix) :].split("/")
    return not key.endswith("/") and not any(p.startswith((".", "_")) for p in parts if p)


def table_name(text: str) -> str:
    """A name DuckDB, Trino and Spark all address: lower-case a-z, 0-9 and _."""
    name = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "data"
    return name if not name[0].isdigit() else "t_" + name


def _root_name(bucket: str, prefix: str) -> str:
    folders = [p for p in prefix.split("/") if p]
    return table_name(folders[-1] if folders else bucket)


def _placement(rel: str) -> tuple[list[str], list[tuple[str, str]]] | str:
    """(dataset folders, partition pairs) of a key below the prefix, or why it has none."""
    folders = rel.split("/")[:-1]
    first = next((i for i, f in enumerate(folders) if _pair(f) is not None), None)
    if first is None:
        return folders, []
    pairs = [_pair(f) for f in folders[first:]]
    if any(p is None for p in pairs):
        odd = next(f for f in folders[first:] if _pair(f) is None)
        return (
            f"folder {odd!r} sits among partition folders ({'/'.join(folders[first:])}); "
            "every folder below a key=value folder must be key=value too"
        )
    return folders[:first], [p for p in pairs if p is not None]


def _pair(folder: str) -> tuple[str, str] | None:
    key, sep, value = folder.partition("=")
    if not sep or not key or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return None
    return key.lower(), unquote(value)


def group(files: list[SourceFile], bucket: str, prefix: str
          ) -> tuple[list[Dataset], list[FileProblem]]:  # fmt: skip
    """The datasets under the prefix, and the files that fit none (with the reason)."""
    datasets: dict[str, Dataset] = {}
    problems: list[FileProblem] = []
    placed: dict[str, list[tuple[SourceFile, tuple[tuple[str, str], ...]]]] = {}
    for file in files:
        where = _placement(file.key[len(prefix) :])
        if isinstance(where, str):
            problems.append(FileProblem(file.uri, f"{where}. Hint: move the file; it was skipped."))
            continue
        folders, pairs = where
        placed.setdefault("/".join(folders), []).append((file, tuple(pairs)))
    for folder, members in placed.items():
        name = table_name(folder.replace("/", "_")) if folder else _root_name(bucket, prefix)
        layouts = Counter(tuple(k for k, _ in pairs) for _, pairs in members)
        keys = layouts.most_common(1)[0][0]
        dataset = datasets.setdefault(
            folder, Dataset(f"s3://{bucket}/{prefix}{folder}".rstrip("/"), name, keys)
        )
        for file, layout in members:
            found = tuple(k for k, _ in layout)
            if found != keys:
                problems.append(FileProblem(file.uri, (
                    f"its partition folders ({', '.join(found) or 'none'}) differ from the "
                    f"dataset's ({', '.join(keys) or 'none'}) in {dataset.folder}. Hint: every "
                    "file of a dataset sits under the same key=value folders; it was skipped.")))  # fmt: skip
                continue
            dataset.files.append(PlacedFile(file, layout))
    return _unique_tables(list(datasets.values())), problems


def _unique_tables(datasets: list[Dataset]) -> list[Dataset]:
    """Datasets whose names collide (``a_b`` and ``a/b``) get a numbered suffix."""
    seen: Counter[str] = Counter()
    for dataset in sorted(datasets, key=lambda d: d.folder):
        seen[dataset.table] += 1
        if seen[dataset.table] > 1:
            dataset.table = f"{dataset.table}_{seen[dataset.table]}"
    return sorted(datasets, key=lambda d: d.table)


def partition_type(values: list[str]) -> pa.DataType:
    """date when every value is a date, int64 when every one is an integer, else string
    (NULL markers aside)."""
    given = [v for v in values if v != HIVE_NULL]
    if given and all(DATE.fullmatch(v) and _is_date(v) for v in given):
        return pa.date32()
    if given and all(INTEGER.fullmatch(v) for v in given):
        return pa.int64()
    return pa.string()


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def partition_value(text: str, kind: pa.DataType) -> object:
    """The typed value of a partition folder's text; ValueError when it is not of ``kind``."""
    if text == HIVE_NULL:
        return None
    if pa.types.is_date(kind):
        return date.fromisoformat(text)
    if pa.types.is_integer(kind):
        if not INTEGER.fullmatch(text):
            raise ValueError(f"{text!r} is not an integer")
        return int(text)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return text
    raise ValueError(f"partition columns of type {kind} are not supported")
