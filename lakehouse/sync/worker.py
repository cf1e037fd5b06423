"""The sync worker process: what bounds a long-running follower's log and memory."""

from __future__ import annotations

import ctypes
import logging
import logging.handlers
import os
import sys
from collections.abc import Mapping

from lakehouse.services.sync import LOG_FILE_VARIABLE

LOG_FILE_BYTES = 5 * 2**20
PR_SET_THP_DISABLE = 41  # <linux/prctl.h>
LOG_FILE_BACKUPS = 3


def _refuse_transparent_huge_pages() -> None:
    """Opt this process out of transparent huge pages (Linux ``PR_SET_THP_DISABLE``).

    An allocator here asks for huge pages (madvise); a 2 MiB page counts in full
    once touched, so half of the worker's resident memory under the sync load
    was huge pages holding little data (266 of 583 MiB measured).
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)


class TracebacksOnlyForErrors(logging.Filter):
    """Below ERROR a record keeps its one line and loses its traceback (unless the root
    logger is at DEBUG): a transient retry is one line, not a urllib3 traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        debugging = logging.getLogger().isEnabledFor(logging.DEBUG)
        if record.levelno < logging.ERROR and record.exc_info and not debugging:
            record.exc_info = None
            record.exc_text = None
        return True


def release_free_memory() -> bool:
    """Hand the C allocator's free pages back to the system (glibc ``malloc_trim``).

    A snapshot or a burst of changes leaves hundreds of MiB freed but kept by
    the allocator; without this the worker stays at its peak while idle.
    Returns whether anything was released (False off glibc).
    """
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(trim(0))


def configure_worker(environ: Mapping[str, str] = os.environ) -> None:
    """Bound what a long-running follower keeps: its log and its idle memory.

    With ``LAKEHOUSE_SYNC_LOG_FILE`` set, warnings and errors (lakehouse's and
    the libraries') go to that file, rotated at 5 MiB with 3 old files kept.
    If Arrow is on jemalloc, it hands freed pages back at once (the sync service
    puts it on the C allocator instead: lakehouse.services.sync.MEMORY_ENV), and
    the process takes no transparent huge pages.
    """
    import pyarrow as pa

    if pa.default_memory_pool().backend_name == "jemalloc":
        pa.jemalloc_set_decay_ms(0)
    _refuse_transparent_huge_pages()
    path = environ.get(LOG_FILE_VARIABLE)
    if not path:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(TracebacksOnlyForErrors())
    # opensearch-py warns (with a traceback) about every failed request; the runner
    # already reports each failed pass in one line naming OpenSearch.
    logging.getLogger("opensearch").setLevel(logging.ERROR)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
