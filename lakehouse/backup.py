"""Back up the lake (catalog and table files) to a directory, and restore it.

A backup directory holds ``catalog.db`` (a copy of the catalog's SQLite database
made with SQLite's online backup API, consistent while the catalog runs),
``objects/<bucket>/<key>`` (every S3 object the copied catalog references: table
metadata, manifest lists, manifests, data and delete files, statistics) and
``manifest.json`` (format, version, time, counts, sizes and sha256 of each file).

Consistency: the catalog is copied first, then the files it references. Table
files are immutable and writes after the copy only add files, so every file the
copied catalog references still exists, unless snapshot expiry deletes one
meanwhile; then the backup fails naming it, rather than keep a hole.

Restore (:mod:`lakehouse.restore`) checks the whole backup, uploads the objects
under the same keys (so the target's warehouse bucket must have the same name) and
registers each table's metadata file in the target stack's catalog.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lakehouse.backup_manifest import CATALOG_FILE, FORMAT, VERSION, BackupError
from lakehouse.config import Settings
from lakehouse.privacy import make_private_dir, private_umask, write_private

MANIFEST = "manifest.json"
OBJECTS_DIR = "objects"
COPY_THREADS = 4  # S3 round trips overlap; SeaweedFS on 2 cores gains little beyond this

# progress(step, done, total): called as files are copied; total is 0 when unknown.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, order=True)
class TableEntry:
    """One table of the backed-up catalog."""

    namespace: str
    name: str
    metadata_location: str


@dataclass(frozen=True)
class BackupSummary:
    """What a backup or restore covered."""

    path: Path
    tables: int
    objects: int
    bytes: int


def _no_progress(step: str, done: int, total: int) -> None:
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def split_s3(uri: str) -> tuple[str, str]:
    """('bucket', 'key') of ``s3://bucket/key`` (also s3a:// and s3n://)."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if scheme not in ("s3", "s3a", "s3n") or not bucket or not key:
        raise BackupError(f"{uri} is not an s3:// object URI.", hint="Tables must live on S3.")
    return bucket, key


# --- backup ---------------------------------------------------------------------------


def backup(settings: Settings, target: Path, progress: Progress | None = None) -> BackupSummary:
    """Write a consistent backup of the stack's catalog and table files into ``target``.

    ``target`` must be absent or an empty directory. Raises BackupError (nothing is
    left behind) when the catalog database is missing or a referenced file vanished.
    """
    from lakehouse.services.catalog import catalog_db

    report = progress or _no_progress
    source_db = catalog_db(settings.home_dir)
    if not source_db.is_file():
        raise BackupError(
            f"No catalog database at {source_db}.",
            hint="Back up on the machine that runs the stack (`lakehouse status`), "
            "from its project directory or with --home.",
        )
    _require_empty(target, "back up into")
    # A backup is the whole lake: 0700 directories, 0600 files (as in the home).
    make_private_dir(target)
    try:
        with private_umask():
            copy_catalog_db(source_db, target / CATALOG_FILE)
            tables = read_tables(target / CATALOG_FILE)
            objects = _copy_objects(settings, tables, target, report)
            manifest = _manifest(target, tables, objects)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    write_private(target / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    total = sum(o["bytes"] for o in objects)
    return BackupSummary(target, len(tables), len(objects), total)


def copy_catalog_db(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent snapshot even while the catalog commits."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        # One self-contained file: readers of the copy leave no -wal/-shm beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
    finally:
        dst.close()
        src.close()


def read_tables(db: Path) -> list[TableEntry]:
    """Tables (not views) recorded in a catalog database, sorted by name."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        columns = {row[1] for row in con.execute("PRAGMA table_info(iceberg_tables)")}
        where = (
            " WHERE iceberg_type IS NULL OR iceberg_type = 'TABLE'"
            if "iceberg_type" in columns
            else ""
        )
        rows = con.execute(
            f"SELECT table_namespace, table_name, metadata_location FROM iceberg_tables{where}"
        ).fetchall()
    return sorted(TableEntry(*row) for row in rows)


def referenced_files(settings: Settings, table: TableEntry) -> tuple[set[str], set[str]]:
    """(required, optional) s3:// URIs a table's metadata references.

    Required: the metadata file, every snapshot's manifest list, manifests, data and
    delete files, statistics files. Optional: earlier metadata files of the log.
    """
    from pyiceberg.table import StaticTable

    from lakehouse.config import catalog_properties

    static = StaticTable.from_metadata(table.metadata_location, catalog_properties(settings))
    meta, io = static.metadata, static.io
    required = {table.metadata_location}
    required |= {s.statistics_path for s in meta.statistics}
    manifests: dict[str, Any] = {}
    for snapshot in meta.snapshots:
        required.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            manifests.setdefault(manifest.manifest_path, manifest)
    for path, manifest in manifests.items():
        required.add(path)
        required |= {e.data_file.file_path for e in manifest.fetch_manifest_entry(io)}
    optional = {entry.metadata_file for entry in meta.metadata_log} - required
    return required, optional


def _copy_objects(
    settings: Settings, tables: list[TableEntry], target: Path, report: Progress
) -> list[dict[str, Any]]:
    from lakehouse.client import Lakehouse

    with Lakehouse(settings) as lake:
        required: dict[str, str] = {}
        optional: set[str] = set()
        for done, table in enumerate(tables, 1):
            report("reading table metadata", done, len(tables))
            with _s3_errors(settings, table.metadata_location, f"{table.namespace}.{table.name}"):
                needed, extra = referenced_files(settings, table)
            required |= dict.fromkeys(needed, f"{table.namespace}.{table.name}")
            optional |= extra

        def fetch(uri: str) -> dict[str, Any] | None:
            bucket, key = split_s3(uri)
            local = target / OBJECTS_DIR / bucket / key
            with _s3_errors(settings, uri, required.get(uri)) as vanished:
                lake.s3.fget_object(bucket, key, str(local))
            if vanished:
                return None  # an earlier metadata file, already cleaned up: not needed to read
            return {"uri": uri, "bytes": local.stat().st_size, "sha256": sha256_of(local)}

        uris = sorted(set(required) | optional)
        copied = _in_parallel(fetch, uris, "copying table files", report)
        return [entry for entry in copied if entry is not None]


def _in_parallel(
    work: Callable[[str], Any], items: list[str], step: str, report: Progress
) -> list[Any]:
    """``work`` over ``items`` on a few threads (S3 round trips overlap), results in order."""
    from concurrent.futures import ThreadPoolExecutor

    results = []
    with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
        for done, result in enumerate(pool.map(work, items), 1):
            report(step, done, len(items))
            results.append(result)
    return results


class _Vanished:
    """Truthy once the object turned out to be missing (and was optional)."""

    def __init__(self) -> None:
        self.missing = False

    def __bool__(self) -> bool:
        return self.missing


@contextmanager
def _s3_errors(settings: Settings, uri: str, table: str | None) -> Iterator[_Vanished]:
    """S3 failures as one BackupError; a missing optional object (``table`` None) is skipped."""
    from minio.error import S3Error
    from urllib3.exceptions import HTTPError

    vanished = _Vanished()
    try:
        yield vanished
    except S3Error as exc:
        if exc.code == "NoSuchKey" and table is None:
            vanished.missing = True
            return
        if exc.code == "NoSuchKey":
            raise BackupError(
                f"{uri}, a file of table {table} in the copied catalog, was deleted after "
                "the catalog was copied.",
                hint="Snapshot expiry removed it meanwhile; run the backup again.",
            ) from exc
        raise BackupError(f"S3 refused {uri}: {exc.code} {exc.message}",
                          hint="Check the stack's S3 keys (`lakehouse env`).") from exc  # fmt: skip
    except (HTTPError, OSError) as exc:
        raise BackupError(
            f"S3 at {settings.s3_endpoint} did not answer while reading {uri} ({exc}).",
            hint="Check `lakehouse status`; start S3 with `lakehouse up`, then run it again.",
        ) from exc


def _manifest(
    target: Path, tables: list[TableEntry], objects: list[dict[str, Any]]
) -> dict[str, Any]:
    from lakehouse import __version__

    db = target / CATALOG_FILE
    return {
        "format": FORMAT,
        "version": VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lakehouse_version": __version__,
        "catalog": {"file": CATALOG_FILE, "bytes": db.stat().st_size, "sha256": sha256_of(db)},
        "tables": [
            {"namespace": t.namespace, "name": t.name, "metadata_location": t.metadata_location}
            for t in tables
        ],
        "counts": {
            "tables": len(tables),
            "objects": len(objects),
            "bytes": sum(o["bytes"] for o in objects),
        },
        "objects": objects,
    }


def _require_empty(target: Path, verb: str) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(
            f"Cannot {verb} {target}: it exists and is not an empty directory.",
            hint="Name a new directory (it is created), or empty this one.",
        )
