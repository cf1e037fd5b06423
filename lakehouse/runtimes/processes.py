"""What the local runtime reads of a running service's processes and files:
its log's end, its memory and uptime, the attach sockets a JVM leaves behind."""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path

import psutil


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a text file ('' when it does not exist)."""
    if not path.is_file():
        return ""
    with path.open(errors="replace") as handle:
        return "".join(deque(handle, maxlen=lines)).rstrip()


def jvm_attach_sockets(pid: int) -> list[Path]:
    """The HotSpot attach sockets (``/tmp/.java_pid<PID>``, a path the JVM fixes)
    that the process tree of ``pid`` may hold; a killed JVM leaves them behind."""
    try:
        tree = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        tree = [pid]
    return [Path(f"/tmp/.java_pid{member}") for member in tree]


def tree_memory_mb(pid: int, proportional: bool = False) -> float | None:
    """Resident memory of a process and its children, in MiB; None when ``pid`` is gone.

    ``proportional``: the proportional set size (PSS), which counts a page shared by n
    processes as 1/n in each, so the tree's sum counts shared memory (PostgreSQL's
    shared buffers, mapped by every backend) once. Plain RSS counts it once per process.
    """

    def memory(process: psutil.Process) -> int:
        return process.memory_full_info().pss if proportional else process.memory_info().rss

    try:
        root = psutil.Process(pid)
        total = memory(root)
        children = root.children(recursive=True)
    except psutil.Error:
        return None
    for child in children:
        # PostgreSQL forks short-lived backends; one that exits between the
        # listing and the read must not hide the whole tree's memory.
        try:
            total += memory(child)
        except psutil.Error:
            continue
    return total / 2**20


def process_uptime(pid: int | None) -> float | None:
    """Seconds since process ``pid`` started; None when there is none."""
    if pid is None:
        return None
    try:
        return max(0.0, time.time() - psutil.Process(pid).create_time())
    except psutil.Error:
        return None
