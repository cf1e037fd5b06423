"""Snapshot expiry that also deletes the files only the expired snapshots reached.

A sync rewrites files every second (copy-on-write), so the files of expired
snapshots are most of what it ever wrote: pyiceberg's expiry only edits the
metadata, and the lake's disk would fill at the rate of the rewrites. Here a
file is deleted only when no retained snapshot reaches it, by the same
reachability rule as Iceberg's own ``ExpireSnapshots``.

How much history a table keeps is a ``Retention``: the newest ``snapshots``
(setting ``sync_snapshots_kept``) and none older than ``max_age_s`` (setting
``sync_snapshot_max_age_minutes``). Expiry runs as soon as the history exceeds
that by a small margin (a tenth), so a table under steady load holds at most
``snapshots + margin`` snapshots and the files they reach: its disk use
plateaus instead of growing until a far-off threshold.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pyiceberg.manifest import ManifestFile
from pyiceberg.table import Table, Transaction
from pyiceberg.table.snapshots import Snapshot
from pyiceberg.table.update.snapshot import ExpireSnapshots

log = logging.getLogger("lakehouse.sync")
DELETE_THREADS = 8
# Defaults of the settings sync_snapshots_kept and sync_snapshot_max_age_minutes.
KEEP_SNAPSHOTS = 100
MAX_AGE_MINUTES = 24 * 60.0


@dataclass(frozen=True)
class Retention:
    """The history a table keeps: the newest ``snapshots`` snapshots (>= 1), none
    older than ``max_age_s`` seconds (0: no age limit) except the current one, and
    any snapshot a branch or tag holds."""

    snapshots: int = KEEP_SNAPSHOTS
    max_age_s: float = MAX_AGE_MINUTES * 60

    @classmethod
    def of(cls, settings: object) -> Retention:
        """The retention the settings ask for (``sync_snapshots_kept``,
        ``sync_snapshot_max_age_minutes``)."""
        kept = getattr(settings, "sync_snapshots_kept", KEEP_SNAPSHOTS)
        minutes = getattr(settings, "sync_snapshot_max_age_minutes", MAX_AGE_MINUTES)
        return cls(snapshots=max(1, int(kept)), max_age_s=float(minutes) * 60)

    @property
    def margin(self) -> int:
        """Snapshots allowed beyond ``snapshots`` before expiry runs (it reads
        manifests and commits: not on every commit)."""
        return max(2, self.snapshots // 10)

    def due(self, table: Table, adding: int = 0) -> bool:
        """Whether ``table``'s history exceeds the retention by the margin (once a
        commit ``adding`` that many snapshots has landed)."""
        snapshots = table.metadata.snapshots
        if len(snapshots) + adding > self.snapshots + self.margin:
            return True
        if not self.max_age_s or len(snapshots) < 2:
            return False
        oldest_s = min(s.timestamp_ms for s in snapshots) / 1000
        return time.time() - oldest_s > self.max_age_s * 1.1

    def expired(self, table: Table, adding: int = 0) -> list[Snapshot]:
        """The snapshots of ``table`` beyond the retention, newest first (``adding``:
        snapshots a commit is about to add, which count towards the newest kept)."""
        referenced = {ref.snapshot_id for ref in table.metadata.refs.values()}
        newest_first = sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms, reverse=True)
        cutoff_ms = (time.time() - self.max_age_s) * 1000 if self.max_age_s else None
        return [
            s
            for index, s in enumerate(newest_first)
            if index > 0
            and s.snapshot_id not in referenced
            and (
                index >= self.snapshots - adding
                or (cutoff_ms is not None and s.timestamp_ms < cutoff_ms)
            )
        ]


@dataclass
class ReachableFiles:
    """What snapshots reach, each piece read once: the manifests of each manifest list
    and the files of each manifest. Iceberg never rewrites either in place (a new
    version gets a new name), so what was read stays true. Reading them again at
    every expiry (pyiceberg re-reads a manifest list at each call) took seconds per
    table with 100 snapshots kept, and stalled the sync's pass."""

    by_manifest: dict[str, frozenset[str]] = field(default_factory=dict)
    by_list: dict[str, tuple[ManifestFile, ...]] = field(default_factory=dict)

    def of(self, table: Table, snapshots: list[Snapshot]) -> set[str]:
        """Manifest lists, manifests and live data and delete files of ``snapshots``."""
        reached: set[str] = set()
        for snapshot in snapshots:
            reached.add(snapshot.manifest_list)
            for manifest in self._manifests(table, snapshot):
                reached.add(manifest.manifest_path)
                reached |= self._files(table, manifest)
        return reached

    def _manifests(self, table: Table, snapshot: Snapshot) -> tuple[ManifestFile, ...]:
        listed = self.by_list.get(snapshot.manifest_list)
        if listed is None:
            listed = self.by_list[snapshot.manifest_list] = tuple(snapshot.manifests(table.io))
        return listed

    def _files(self, table: Table, manifest: ManifestFile) -> frozenset[str]:
        path = manifest.manifest_path
        if path not in self.by_manifest:
            entries = manifest.fetch_manifest_entry(table.io, discard_deleted=True)
            self.by_manifest[path] = frozenset(e.data_file.file_path for e in entries)
        return self.by_manifest[path]

    def keep_only(self, paths: set[str]) -> None:
        """Forget the manifest lists and manifests not in ``paths`` (what the retained
        snapshots reach)."""
        self.by_manifest = {p: f for p, f in self.by_manifest.items() if p in paths}
        self.by_list = {p: m for p, m in self.by_list.items() if p in paths}


def expire_when_due(table: Table, retention: Retention, reachable: ReachableFiles) -> int:
    """``expire_snapshots`` if ``retention.due(table)`` (after a refresh); else 0."""
    if not retention.due(table):
        return 0
    table.refresh()
    return expire_snapshots(table, retention, reachable) if retention.due(table) else 0


def expire_snapshots(table: Table, retention: Retention | int, reachable: ReachableFiles) -> int:
    """Expire the snapshots beyond ``retention`` (an int: keep that many newest) and
    delete the files no retained snapshot reaches. Returns the number deleted.
    Raises what the catalog raises when the expiry's commit is refused (the
    files of the expired snapshots are then untouched)."""
    if isinstance(retention, int):
        retention = Retention(snapshots=retention, max_age_s=0)
    old = retention.expired(table)
    if not old:
        return 0
    table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in old]).commit()
    return delete_expired(table, old, reachable)


def stage_expiry(tx: Transaction, table: Table, retention: Retention) -> list[Snapshot]:
    """When ``retention.due(table)`` (``tx`` staged on ``table``, its write done): stage in ``tx`` the removal of the snapshots
    beyond the retention, so that the commit of a sync's batch also expires them (an
    expiry of its own was one more catalog commit, every tenth pass). Returns the
    snapshots staged for removal: once ``tx`` has landed, ``delete_expired`` deletes
    their files."""
    # the snapshots the staged write adds (its view of the metadata has them): they
    # count towards the newest kept, as if the expiry ran after the commit
    adding = len(tx.table_metadata.snapshots) - len(table.metadata.snapshots)
    if not retention.due(table, adding):
        return []
    old = retention.expired(table, adding)
    if old:
        ExpireSnapshots(tx).by_ids([s.snapshot_id for s in old]).commit()
    return old


def delete_expired(table: Table, old: list[Snapshot], reachable: ReachableFiles) -> int:
    """Delete the files only the expired snapshots ``old`` reached: ``table`` is loaded
    after their removal was committed. Returns the number deleted."""
    before = reachable.of(table, old)
    after = reachable.of(table, list(table.metadata.snapshots))
    reachable.keep_only(after)
    garbage = sorted(path for path in before - after if owned(table.location(), path))
    failures = delete_files(table, garbage)
    if failures:
        # Left behind, not lost: a later orphan-file sweep can still remove them.
        log.warning("could not delete %d expired file(s): %s", len(failures), failures[0])
    return len(garbage) - len(failures)


def delete_files(table: Table, paths: list[str]) -> list[object]:
    """Delete ``paths`` through the table's FileIO: in batches where it can
    (lakehouse's ``LakeFileIO.delete_many``), else one by one on ``DELETE_THREADS``
    threads. Returns what went wrong per file not deleted (none fatal)."""
    delete_many = getattr(table.io, "delete_many", None)
    if delete_many is not None and paths:
        try:
            return list(delete_many(paths))
        except Exception as exc:  # S3 unreachable: the sweep removes them later
            return [exc for _ in paths]
    with ThreadPoolExecutor(max_workers=DELETE_THREADS) as pool:
        return [exc for exc in pool.map(lambda p: _delete(table, p), paths) if exc]


def owned(location: str, path: str) -> bool:
    """Whether ``path`` lies under the table's ``location``: a data file registered where
    it lies (the crawler's Parquet, add_files) belongs to whoever landed it, and expiry
    never deletes it."""
    return path.startswith(location.rstrip("/") + "/")


def _delete(table: Table, path: str) -> Exception | None:
    try:
        table.io.delete(path)
    except FileNotFoundError:
        return None
    except Exception as exc:  # reported by the caller: a leftover file is never fatal
        return exc
    return None
