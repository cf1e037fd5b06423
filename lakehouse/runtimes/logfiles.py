"""Bounded service logs: the stdout file rotated on start, and the file worth reading.

A service's stdout and stderr go to ``<home>/logs/<name>.log``. Services
outlive the CLI that started them, so the supervisor cannot rotate that file
while one runs; each service with a rotating logger of its own (PostgreSQL's
logging collector, Trino's file logger, OpenSearch's log4j2, the sync
worker's RotatingFileHandler) writes there instead, and names that file in
its spec's ``extra_paths["log"]``. The stdout file then only holds start-up
output and crashes, and is rotated on every start, keeping ``KEEP`` old ones.
"""

from __future__ import annotations

from pathlib import Path

# Old stdout files kept per service: <name>.log.1 (newest) .. <name>.log.KEEP.
KEEP = 3


def rotate(path: Path, keep: int = KEEP) -> None:
    """Shift ``path`` to ``path.1`` (``.1`` to ``.2`` ...), dropping the oldest.

    Nothing happens when ``path`` is missing or empty, so repeated starts that
    wrote nothing do not push real logs out.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    path.with_name(f"{path.name}.{keep}").unlink(missing_ok=True)
    for index in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{index}")
        if older.is_file():
            older.replace(path.with_name(f"{path.name}.{index + 1}"))
    path.replace(path.with_name(f"{path.name}.1"))


def newest_file(path: Path) -> Path | None:
    """``path`` itself when it is a file, else the newest file in directory ``path``."""
    if path.is_file():
        return path
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file()]
        return max(files, key=lambda p: p.stat().st_mtime) if files else None
    return None


def readable_log(stdout_log: Path, own_log: Path | None) -> Path:
    """The log ``lakehouse logs`` shows: the service's own log when it has one and
    it exists (a directory means its newest file), else the stdout file."""
    own = newest_file(own_log) if own_log is not None else None
    return own if own is not None else stdout_log


def readable_tail(stdout_log: Path, own_log: Path | None, lines: int) -> str:
    """The last ``lines`` lines of the log ``lakehouse logs`` shows.

    A service's own log directory holds rotated files (PostgreSQL starts a new
    one every hour): the tail runs across them, newest last, so the lines just
    before a rotation are not lost from view.
    """
    from collections import deque

    files = [readable_log(stdout_log, own_log)]
    if own_log is not None and own_log.is_dir() and files[0] != stdout_log:
        files = sorted(
            (p for p in own_log.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime
        )
    kept: deque[str] = deque(maxlen=lines)
    for path in files:
        with path.open(errors="replace") as handle:
            kept.extend(handle)
    return "".join(kept).rstrip()
