"""The sync worker's memory bound: its allocator settings and the trim after a pass.

Each check runs a fresh Python, because both settings are read when a process starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.services.sync import MEMORY_ENV, SyncService


def run_python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_the_worker_starts_with_arrow_on_the_trimmable_allocator(tmp_path: Path) -> None:
    # mimalloc, Arrow's default here, kept a snapshot's freed batches for reuse.
    env = SyncService(load_settings(home=tmp_path)).spec().env
    assert env.items() >= MEMORY_ENV.items()
    code = "import pyarrow as pa; print(pa.default_memory_pool().backend_name)"
    assert run_python(code, {**env, "ARROW_DEFAULT_MEMORY_POOL": ""}) != "system"
    assert run_python(code, env) == "system"


TRIM_PROBE = """
from lakehouse.sync.runner import release_free_memory
import pyarrow as pa
import pyarrow.compute as pc

def rss_mib():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

# 200 MiB of Arrow buffers below glibc's mmap threshold, freed but for the last,
# which pins the top of the heap so free() alone cannot shrink it.
base = pa.array(range(8000), pa.int64())
arrays = [pc.add(base, n) for n in range(3200)]  # 62.5 KiB each, written
kept = arrays.pop()
del arrays
before = rss_mib()
released = release_free_memory()
print(released, round(before - rss_mib()))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_free_memory_gives_freed_arrow_memory_back(tmp_path: Path) -> None:
    env = SyncService(load_settings(home=tmp_path)).spec().env
    released, given_back = run_python(TRIM_PROBE, env).split()
    assert released == "True"
    assert int(given_back) > 100, f"only {given_back} MiB given back"
