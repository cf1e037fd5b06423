"""Snapshot expiry that also deletes the files only the expired snapshots reached.

A sync rewrites files every second (copy-on-write), so the files of expired
snapshots are most of what it ever wrote: pyiceberg's expiry only edits the
metadata, and the lake's disk would fill at the rate of the rewrites. Here a
file is deleted only when no retained snapshot reaches it, by the same
reachability rule as Iceberg's own ``ExpireSnapshots``.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pyiceberg.table import Table
from pyiceberg.table.snapshots import Snapshot

log = logging.getLogger("lakehouse.sync")
DELETE_THREADS = 8


@dataclass
class ReachableFiles:
    """Data files per manifest path (manifests never change once written)."""

    by_manifest: dict[str, frozenset[str]] = field(default_factory=dict)

    def of(self, table: Table, snapshots: list[Snapshot]) -> set[str]:
        """Manifest lists, manifests and live data and delete files of ``snapshots``."""
        reached: set[str] = set()
        for snapshot in snapshots:
            reached.add(snapshot.manifest_list)
            for manifest in snapshot.manifests(table.io):
                reached.add(manifest.manifest_path)
                reached |= self._files(table, manifest)
        return reached

    def _files(self, table: Table, manifest: object) -> frozenset[str]:
        path: str = manifest.manifest_path  # type: ignore[attr-defined]
        if path not in self.by_manifest:
            entries = manifest.fetch_manifest_entry(table.io, discard_deleted=True)  # type: ignore[attr-defined]
            self.by_manifest[path] = frozenset(e.data_file.file_path for e in entries)
        return self.by_manifest[path]

    def keep_only(self, paths: set[str]) -> None:
        self.by_manifest = {p: f for p, f in self.by_manifest.items() if p in paths}


def expire_snapshots(table: Table, keep: int, reachable: ReachableFiles) -> int:
    """Expire all but the newest ``keep`` snapshots (and any a branch or tag holds);
    delete the files no retained snapshot reaches. Returns the number deleted."""
    referenced = {ref.snapshot_id for ref in table.metadata.refs.values()}
    newest_first = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True)
    old = [s for s in newest_first[keep:] if s.snapshot_id not in referenced]
    if not old:
        return 0
    before = reachable.of(table, old)
    table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in old]).commit()
    after = reachable.of(table, list(table.metadata.snapshots))
    reachable.keep_only(after)
    garbage = sorted(before - after)
    with ThreadPoolExecutor(max_workers=DELETE_THREADS) as pool:
        failures = [exc for exc in pool.map(lambda p: _delete(table, p), garbage) if exc]
    if failures:
        # Left behind, not lost: a later orphan-file sweep can still remove them.
        log.warning("could not delete %d expired file(s): %s", len(failures), failures[0])
    return len(garbage) - len(failures)


def _delete(table: Table, path: str) -> Exception | None:
    try:
        table.io.delete(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # reported by the caller: a leftover file is never fatal
        return exc
    return None
