"""Which files under a table's location no snapshot references (orphans).

A file written for a commit that never landed is referenced by nothing and read
by no one. ``lakehouse.lake.attempt`` removes such files when a commit fails;
this module finds any that are left, for tests, fault suites and maintenance.
"""

from __future__ import annotations

from urllib.parse import urlparse

from pyarrow import fs
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table

from lakehouse.errors import LakehouseError


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
    io = table.io
    if not isinstance(io, PyArrowFileIO):
        raise LakehouseError(f"Cannot list files through {type(io).__name__}.",
                             hint="Open the catalog with lakehouse.connect().")  # fmt: skip
    location = urlparse(table.location())
    filesystem = io.fs_by_scheme(location.scheme, location.netloc)
    base = f"{location.netloc}{location.path}".rstrip("/")
    found = filesystem.get_file_info(fs.FileSelector(base, recursive=True, allow_not_found=True))
    return {
        f"{location.scheme}://{info.path}"
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
