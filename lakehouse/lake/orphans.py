"""Which files under a table's location no snapshot references (orphans).

A file written for a commit that never landed is referenced by nothing and read
by no one. ``lakehouse.lake.attempt`` removes such files when a commit fails;
this module finds any that are left, for tests, fault suites and maintenance,
and ``remove_orphans`` deletes them: a writer killed (SIGKILL) between writing
its files and its commit removes nothing, so a long-running writer (the sync)
sweeps its tables now and then.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from urllib.parse import urlparse

from pyarrow import fs
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table

from lakehouse.errors import LakehouseError

log = logging.getLogger("lakehouse.lake")
# Files younger than this may belong to a commit still in flight (any writer's).
ORPHAN_MIN_AGE_S = 15 * 60.0


def referenced_files(table: Table) -> set[str]:
    """Every data, delete, manifest and manifest-list file some kept snapshot names
    (also the files a snapshot removed: older snapshots still read them)."""
    paths: set[str] = set()
    for snapshot in table.snapshots():
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            paths.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                paths.add(entry.data_file.file_path)
    return paths


def stored_files(table: Table) -> set[str]:
    """Data files and Avro metadata (manifests, manifest lists) under the table's
    location, as ``s3://bucket/key`` paths. Metadata JSON files, which the catalog
    writes and expires itself, are not listed."""
    return set(stored_file_ages(table))


def stored_file_ages(table: Table) -> dict[str, float]:
    """``stored_files`` with each file's age in seconds (since it was last written)."""
    return {path: age for path, (age, _) in stored_file_infos(table).items()}


def stored_file_infos(table: Table) -> dict[str, tuple[float, int]]:
    """``stored_files`` with each file's age in seconds and its size in bytes."""
    io = table.io
    if not isinstance(io, PyArrowFileIO):
        raise LakehouseError(f"Cannot list files through {type(io).__name__}.",
                             hint="Open the catalog with lakehouse.connect().")  # fmt: skip
    location = urlparse(table.location())
    filesystem = io.fs_by_scheme(location.scheme, location.netloc)
    base = f"{location.netloc}{location.path}".rstrip("/")
    found = filesystem.get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
    now = time.time()
    return {
        f"{location.scheme}://{info.path}": (
            now - info.mtime.timestamp() if info.mtime else 0.0,
            info.size or 0,
        )
        for info in found
        if info.type == fs.FileType.File and not info.path.endswith(".metadata.json")
    }


def orphan_files(table: Table) -> list[str]:
    """Files under the table's location that no snapshot references, sorted.

    Only meaningful while no commit to the table is in flight (a writer's files
    exist before its commit names them). Expiry that dropped snapshots without
    deleting their files also leaves orphans.
    """
    table.refresh()
    return sorted(stored_files(table) - referenced_files(table))


def orphan_sizes(table: Table, referenced: Iterable[str], min_age_s: float) -> dict[str, int]:
    """The orphans (path -> bytes): files under ``table``'s location that
    ``referenced`` (every file the table's snapshots reach, as of ``table``'s
    metadata) and the table's statistics files do not name, at least ``min_age_s``
    old. The one definition of an orphan, for the sync's sweeps and for
    ``lakehouse remove-orphan-files`` alike."""
    named = set(referenced)
    named |= {s.statistics_path for s in table.metadata.statistics}
    named |= {s.statistics_path for s in table.metadata.partition_statistics}
    return {path: size for path, (age, size) in stored_file_infos(table).items()
            if path not in named and age >= min_age_s}  # fmt: skip


def remove_orphans(table: Table, referenced: Iterable[str],
                   min_age_s: float = ORPHAN_MIN_AGE_S) -> list[str]:  # fmt: skip
    """Delete the files under ``table``'s location that ``referenced`` (every file the
    table's snapshots and statistics reach, as of ``table``'s metadata) does not
    name and that are older than ``min_age_s``; returns their paths, sorted.

    The age keeps the files of a commit still in flight (this writer's or
    another's) out of reach. A file that cannot be deleted is logged and left.
    """
    gone = sorted(orphan_sizes(table, referenced, min_age_s))
    for path in gone:
        try:
            table.io.delete(path)
        except FileNotFoundError:
            continue
        except Exception as exc:  # left for the next sweep: never fatal to the writer
            log.warning("could not delete orphan file %s: %s", path, exc)
    return gone
