"""The CLI against a private stack (see ``lakehouse.testing.faults.private_stack``)."""

from __future__ import annotations

import os
import subprocess
import sys

from lakehouse.testing.faults import kill_9, private_stack

__all__ = ["CLI", "kill_9", "private_stack", "run_cli"]

CLI = [sys.executable, "-m", "lakehouse.cli"]


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI against the private stack (never the session's)."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )
