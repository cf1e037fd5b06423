"""Files lakehouse writes are private to the user: 0600 files, 0700 directories.

A home holds credentials, the catalog and every table's data, and a backup holds
the whole lake: nothing lakehouse writes there may be readable by group or other.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# What services are started with, and the CLI and `up` run under.
PRIVATE_UMASK = 0o077
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


@contextmanager
def private_umask() -> Iterator[None]:
    """Files and directories created inside are 0600/0700 (unless created with an
    explicit mode); the caller's umask is restored after. The umask is per process:
    threads started inside are covered too."""
    caller_umask = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(caller_umask)


def write_private(path: Path, text: str, append: bool = False) -> None:
    """Write (or append) ``text`` to ``path``, which ends up 0600 even if it existed
    with a wider mode. Raises OSError as ``open`` does."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, PRIVATE_FILE)
    with os.fdopen(fd, "a" if append else "w", encoding="utf-8") as out:
        os.fchmod(fd, PRIVATE_FILE)
        out.write(text)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) and make it 0700, even if it existed."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    path.chmod(PRIVATE_DIR)
