"""Lag over time, per integration: what the console's Zero-ETL chart draws.

The runner calls :func:`record_pass` after every pass it reports; samples go to
``<home>/sync/lag/<name>.jsonl`` (time, lag seconds, rows applied, position).
Only the runner holding an integration's lock writes its file, so appending
needs no lock of its own. The file keeps the newest ``SAMPLE_LIMIT`` samples:
once it holds twice that many it is rewritten with the newest, atomically.

An idle follower passes every half second; a sample that says nothing new
(nothing applied, the same lag and position as the last one written) is
written at most every ``QUIET_SECONDS``, so the history spans hours, not minutes.
A failure to write is logged and never stops the sync.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakehouse.config import Settings
    from lakehouse.sync.postgres_pipeline import PassResult
    from lakehouse.sync.status import SyncStatus

log = logging.getLogger("lakehouse.sync")
SAMPLE_LIMIT = 2_000
QUIET_SECONDS = 10.0


@dataclass(frozen=True)
class LagSample:
    """One pass: ``at`` epoch seconds, ``lag_seconds`` (None: unknown), ``rows``
    applied by the pass (snapshot rows included), the position it reached."""

    at: float
    lag_seconds: float | None
    rows: int
    position: str


# The last sample written per file, by this process (to skip quiet repeats).
_last_written: dict[Path, LagSample] = {}
_guard = threading.Lock()


def lag_path(settings: Settings, name: str) -> Path:
    return settings.home_dir / "sync" / "lag" / f"{name}.jsonl"


def record_pass(settings: Settings, result: PassResult, status: SyncStatus) -> None:
    """Add the pass that produced ``result`` (as ``status`` now reports it). Never raises."""
    sample = LagSample(
        at=time.time(),
        lag_seconds=status.lag_seconds,
        rows=result.changes + result.snapshot_rows,
        position=status.position,
    )
    try:
        append(lag_path(settings, status.name), sample)
    except Exception as exc:  # the chart loses a point; the sync must go on
        log.warning("%s: recording its lag failed: %s", status.name, exc)


def append(path: Path, sample: LagSample, limit: int = SAMPLE_LIMIT) -> bool:
    """Append ``sample`` unless it repeats the last one within QUIET_SECONDS; returns
    whether it was written."""
    with _guard:
        last = _last_written.get(path)
        if last is not None and _quiet_repeat(last, sample):
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(asdict(sample)) + "\n")
        _last_written[path] = sample
        if path.stat().st_size > 200 * limit and len(_lines(path)) > 2 * limit:
            _keep_newest(path, limit)
        return True


def _quiet_repeat(last: LagSample, sample: LagSample) -> bool:
    same = (sample.rows == 0 and last.rows == 0 and sample.lag_seconds == last.lag_seconds
            and sample.position == last.position)  # fmt: skip
    return same and sample.at - last.at < QUIET_SECONDS


def _keep_newest(path: Path, limit: int) -> None:
    lines = _lines(path)[-limit:]
    staging = path.with_suffix(f".{os.getpid()}.tmp")
    staging.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    os.replace(staging, path)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


def samples(settings: Settings, name: str, since: float | None = None) -> list[LagSample]:
    """The samples of integration ``name``, oldest first (at or after ``since``, epoch
    seconds, when given). A line being written (cut short) is skipped."""
    found = []
    for line in _lines(lag_path(settings, name)):
        try:
            sample = LagSample(**json.loads(line))
        except (ValueError, TypeError):
            continue
        if since is None or sample.at >= since:
            found.append(sample)
    return found
