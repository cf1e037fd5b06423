"""What the soak samples beyond RSS and directory sizes: enough to tell a leak from
a cache filling up to its bound.

- ``jvm_heap_mib``: a JVM's heap by its own ``jstat -gc`` (old generation used and
  committed, metaspace, full collections so far).
- ``jvm_live_heap_mib``: the old generation right after a full collection asked for by
  ``jcmd GC.run``: the live set, once before the load and once after.
- ``postgres_mib``: PostgreSQL's disk split into the databases (the source's live rows),
  pg_wal (recycled at checkpoints, up to ``max_wal_size``) and the WAL the replication
  slots hold back; and its memory split into what its processes share (shared
  buffers, bounded by ``shared_buffers``) and what each holds alone (USS).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import psutil
import psycopg

from lakehouse.config import Settings

POSTGRES_SQL = """
SELECT (SELECT sum(pg_database_size(datname)) FROM pg_database),
       (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()),
       (SELECT coalesce(max(pg_current_wal_lsn() - restart_lsn), 0) FROM pg_replication_slots)
"""


def _jdk_tool(pid: int, tool: str) -> Path | None:
    """``tool`` (jstat, jcmd) of the JDK the JVM ``pid`` runs on: another JDK's tool
    may refuse to attach."""
    try:
        found = Path(psutil.Process(pid).exe()).parent / tool
    except psutil.Error:
        return None
    return found if found.exists() else None


def jvm_heap_mib(pid: int | None) -> dict[str, float] | None:
    """The heap of JVM ``pid`` (MiB; ``full_gcs`` a count); None when it cannot be read."""
    jstat = _jdk_tool(pid, "jstat") if pid else None
    if jstat is None:
        return None
    try:
        out = subprocess.run([str(jstat), "-gc", str(pid)], capture_output=True, text=True,
                             timeout=20, check=True).stdout.split("\n")  # fmt: skip
        row = dict(zip(out[0].split(), out[1].split(), strict=False))
        return {"old_used": round(float(row["OU"]) / 1024, 1),
                "old_committed": round(float(row["OC"]) / 1024, 1),
                "metaspace_used": round(float(row["MU"]) / 1024, 1),
                "full_gcs": float(row["FGC"])}  # fmt: skip
    except (OSError, subprocess.SubprocessError, KeyError, IndexError, ValueError):
        return None


def jvm_live_heap_mib(pid: int | None) -> float | None:
    """MiB of JVM ``pid``'s old generation right after a full collection (its live
    set); None when it cannot be read. It pauses that JVM for the collection."""
    jcmd = _jdk_tool(pid, "jcmd") if pid else None
    if jcmd is None:
        return None
    try:
        subprocess.run([str(jcmd), str(pid), "GC.run"], capture_output=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    heap = jvm_heap_mib(pid)
    return heap["old_used"] if heap else None


def postgres_mib(settings: Settings, pid: int | None) -> dict[str, float] | None:
    """PostgreSQL's disk and memory split (MiB, see the module doc); None while it
    does not answer."""
    try:
        with psycopg.connect(settings.postgres_dsn(), connect_timeout=5) as conn:
            databases, wal, held = conn.execute(POSTGRES_SQL).fetchone()
    except psycopg.Error:
        return None
    figures = {"databases": float(databases), "pg_wal": float(wal), "slots_hold": float(held)}
    result = {name: round(value / 2**20, 1) for name, value in figures.items()}
    memory = _postgres_memory(pid)
    return result | memory if memory else result


def _postgres_memory(pid: int | None) -> dict[str, float] | None:
    """PSS and USS summed over PostgreSQL's processes: PSS - USS is its share of
    shared memory (the buffers), USS what backends hold alone."""
    try:
        processes = [psutil.Process(pid)] if pid else []
        processes += processes[0].children(recursive=True) if processes else []
    except psutil.Error:
        return None
    pss = uss = 0
    for process in processes:
        try:
            info = process.memory_full_info()
        except psutil.Error:  # a backend that just exited
            continue
        pss, uss = pss + info.pss, uss + info.uss
    return {"shared": round((pss - uss) / 2**20, 1), "private": round(uss / 2**20, 1)}
