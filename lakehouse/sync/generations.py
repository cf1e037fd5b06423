"""Which incarnation of an integration is current: its generation, and pauses.

A name is not an identity: an integration deleted and created again under the
same name must not trust positions the first one stored. So each integration
has a generation, a random id minted when it is created (or, for one declared
in lakehouse.toml, when it is first seen) and renewed by ``sync reset``.
Every stored position carries it (slot and publication names, the Iceberg
snapshot property, the OpenSearch checkpoint document, the status file); a
position of another generation means "no checkpoint".

``<home>/sync/generations.json`` maps name -> generation. A pause marker
(``<home>/sync/paused/<name>``, holding the pausing process's pid) tells
followers to let go of an integration while ``sync reset`` or ``sync delete``
changes its state; a marker whose process is gone no longer counts.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path

from filelock import FileLock

from lakehouse.config import Settings
from lakehouse.privacy import write_private

GENERATION_HEX_DIGITS = 8


def mint() -> str:
    """A new generation: 8 lower-case hex digits (fits a slot name of a 41-letter name)."""
    return secrets.token_hex(GENERATION_HEX_DIGITS // 2)


class GenerationStore:
    """Reads and atomically updates ``<home>/sync/generations.json`` (under a file lock)."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.home_dir / "sync"
        self.path = self.root / "generations.json"

    def all(self) -> dict[str, str]:
        """Every known name -> generation (names of deleted integrations are gone)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def current(self, name: str) -> str | None:
        return self.all().get(name)

    def ensure(self, names: Iterable[str]) -> dict[str, str]:
        """The generation of each name, minting (and storing) those not seen before."""
        wanted = list(names)
        known = self.all()
        if all(name in known for name in wanted):
            return {name: known[name] for name in wanted}
        with self._updating() as known:
            for name in wanted:
                known.setdefault(name, mint())
            return {name: known[name] for name in wanted}

    def renew(self, name: str) -> str:
        """A new generation for ``name``; positions of the old one stop counting."""
        with self._updating() as known:
            known[name] = generation = mint()
        return generation

    def forget(self, name: str) -> None:
        with self._updating() as known:
            known.pop(name, None)

    @contextlib.contextmanager
    def _updating(self) -> Iterator[dict[str, str]]:
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(self.root / "generations.lock"):
            known = self.all()
            yield known
            staging = self.path.with_suffix(f".{os.getpid()}.tmp")
            write_private(staging, json.dumps(known, indent=2, sort_keys=True))
            os.replace(staging, self.path)

    # -- pauses ---------------------------------------------------------------------
    def pause_path(self, name: str) -> Path:
        return self.root / "paused" / name

    def paused(self, name: str) -> bool:
        """Whether a live process asked followers to let go of ``name``."""
        try:
            pid = int(self.pause_path(name).read_text())
        except (OSError, ValueError):
            return False
        return _alive(pid)

    @contextlib.contextmanager
    def pausing(self, name: str) -> Iterator[None]:
        """Followers let go of ``name`` (within a poll, after their current pass) and
        start none for it until this block ends."""
        path = self.pause_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, str(os.getpid()))
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
