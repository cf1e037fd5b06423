"""Which small data files a commit folds together: size-tiered, so each byte is
rewritten a bounded number of times.

A sync appends one small file per commit. Folding "the smallest files, up to a
byte budget" merged every new file into one growing file, rewriting all of it
at every fold: the bytes rewritten per fold grew with the table, and so did the
history that retained snapshots keep (a 30-minute soak at 1,000 changes/s:
history per live MiB grew 2.47x). Here files fold only with files of about
their own size: ``TIER_FILES`` files of one tier (sizes within a factor
``TIER_FACTOR``) make one file of the next tier up. A byte is rewritten at most
once per tier it climbs, about ``log(limit / TIER_BASE) / log(TIER_FACTOR)``
times, whatever the table's age; the same rule as size-tiered compaction in
log-structured stores (Cassandra's STCS, RocksDB's universal compaction).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TypeVar

# Files under 64 KiB are tier 0, under 256 KiB tier 1, under 1 MiB tier 2, ...
TIER_BASE = 64 * 2**10
TIER_FACTOR = 4
# Files of one tier folded at once; a tier holds fewer than this between folds. A
# simulation of 3,000 commits of 20-60 KiB (tests/unit/test_row_deltas.py): 4 folds in
# a third of the commits and rewrites 3.9x the bytes added; 8 folds in a seventh
# (each fold is a commit's extra reads and writes: lag) and rewrites 2.9x.
TIER_FILES = 8

Item = TypeVar("Item")


def size_tier(size_bytes: int) -> int:
    """The tier of a file of ``size_bytes``: 0 below ``TIER_BASE``, then one more per
    factor ``TIER_FACTOR``."""
    tier, bound = 0, TIER_BASE
    while size_bytes >= bound:
        tier, bound = tier + 1, bound * TIER_FACTOR
    return tier


def tier_group(items: Sequence[Item], size_of: Callable[[Item], int],
               budget_bytes: int, max_files: int | None = None) -> list[Item]:  # fmt: skip
    """The files to fold into one: of the lowest tier holding at least ``TIER_FILES``
    of ``items`` (small files, none of them due for another rewrite), the smallest
    first, as many as ``budget_bytes`` and ``max_files`` allow. Empty when no tier
    is full, or when fewer than two fit (one file rewritten alone folds nothing)."""
    tiers: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        tiers[size_tier(size_of(item))].append(item)
    for tier in sorted(tiers):
        if len(tiers[tier]) < TIER_FILES:
            continue
        chosen: list[Item] = []
        size = 0
        for item in sorted(tiers[tier], key=size_of):
            if size + size_of(item) > budget_bytes or len(chosen) == max_files:
                break
            chosen.append(item)
            size += size_of(item)
        if len(chosen) >= 2:
            return chosen
    return []
