"""AWS client code run as users run it: in a process of its own, with only the
environment ``lakehouse env`` exports.

awswrangler 3.17.1 pins pyarrow<26 while the project pins pyarrow 26.0.1, so it
cannot live in ``.venv``: :data:`AWSWRANGLER` is an environment of its own in the
cache (``services/awswrangler/requirements.lock``), installed once with a file lock,
like the MLflow server's. :func:`run_python` runs a script there (or in ``.venv``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from lakehouse.config import Settings
from lakehouse.service_env import ServiceEnv

AWSWRANGLER = ServiceEnv("awswrangler", "3.17.1", "awswrangler (AWS SDK for pandas)")


def wrangler_python(settings: Settings) -> Path:
    """The interpreter of awswrangler's environment (installed on first use)."""
    return AWSWRANGLER.ensure(settings)


def run_python(
    script: str,
    env: dict[str, str],
    python: Path | str = sys.executable,
    timeout: float = 300,
    args: Sequence[str] = (),
) -> str:
    """Run ``script`` (dedented; ``args`` are its sys.argv[1:]) with exactly ``env``;
    returns its stdout.

    Fails the test with the script's stderr when it exits non-zero."""
    done = subprocess.run(
        [str(python), "-c", textwrap.dedent(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"script failed ({done.returncode}):\n{done.stderr[-4000:]}"
    return done.stdout
