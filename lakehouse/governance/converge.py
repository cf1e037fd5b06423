"""Derived enforcement state catches up with the stored policy.

A policy change is stored first, then Trino's rules file, SeaweedFS's identities
and the catalog's access file are rewritten (``store.ON_CHANGE``). A process killed between the two leaves the
policy changed and the enforcers stale: a revoked principal would keep reading
through a direct Trino client or its S3 key. Each derived file records the policy
revision it was written from; :func:`converge` rewrites whichever is behind. It
runs at every ``lakehouse`` command and whenever Trino or S3 starts (their
``prepare`` writes the files from the stored policy), so the window closes at the
next command or start. When both are current it reads three small files and
imports nothing heavy; Trino's rules are also rewritten when a table they guard for
a column-list grant changed its schema (:mod:`.trino_guard`: one catalog request
per such table).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakehouse.config import Settings

log = logging.getLogger("lakehouse.governance")


def _revision(path: Path) -> int | None:
    try:
        value = json.loads(path.read_text()).get("revision")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) else None


def stale_enforcers(settings: Settings) -> list[str]:
    """``trino``, ``s3`` and/or ``catalog`` when their file was written from an older (or no)
    revision of the stored policy; empty when governance is off or no policy is
    stored (nothing to catch up with: a home that does not exist is not created)."""
    if not settings.governance_enabled:
        return []
    folder = settings.home_dir / "governance"
    try:
        stored = json.loads((folder / "policy.json").read_text()).get("revision", 0)
    except FileNotFoundError:
        return []  # no policy stored: Trino and S3 write their files when they start
    except (OSError, ValueError, AttributeError):
        stored = -1  # unreadable: let the enforcers' writers report it
    stale = []
    if _revision(folder / "trino-rules.state.json") != stored:
        stale.append("trino")
    if _revision(folder / "s3-identities.state.json") != stored:
        stale.append("s3")
    if _revision(folder / "catalog-access.json") != stored:
        stale.append("catalog")
    return stale


def converge(settings: Settings) -> list[str]:
    """Rewrite the enforcers' files that lag the stored policy (S3's identities are
    reloaded by a running SeaweedFS; Trino re-reads its rules within a second); the
    names of those rewritten."""
    stale = stale_enforcers(settings)
    if "trino" not in stale and _guarded_columns_changed(settings):
        stale.insert(0, "trino")
    if "trino" in stale:
        from lakehouse.governance.trino_rules import write_rules

        write_rules(settings)
    if "s3" in stale:
        from lakehouse.governance.s3_access import refresh

        refresh(settings)
    if "catalog" in stale:
        from lakehouse.governance.catalog_access import write_access

        write_access(settings)
    if stale:
        log.info("governance: %s rewritten from the stored policy", ", ".join(stale))
    return stale


def _guarded_columns_changed(settings: Settings) -> bool:
    """A table whose rules guard a column-list grant has another schema now (only
    asked when there is such a table: one catalog request each)."""
    try:
        state = json.loads(
            (settings.home_dir / "governance" / "trino-rules.state.json").read_text()
        )
    except (OSError, ValueError):
        return False
    guarded = state.get("guarded") if isinstance(state, dict) else None
    if not guarded or not settings.governance_enabled:
        return False
    from lakehouse.governance.trino_guard import guarded_tables_changed

    return guarded_tables_changed(settings, guarded)
