"""The MLflow tracking server's own Python environment, created once in the cache.

Full ``mlflow`` pins pyarrow<26, below the project's pyarrow, so its server
cannot share the project's venv (the project uses ``mlflow-skinny``, the
client). Like the JVM artifacts, the server is installed once, pinned, into
``<cache>/mlflow/<version>-<lock digest>/`` and reused by every stack on the
machine; every package is pinned by ``services/mlflow/requirements.lock``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock

from lakehouse.config import Settings
from lakehouse.errors import ArtifactError
from lakehouse.services import service_files_dir

MLFLOW_SERVER_VERSION = "3.17.2"
COMPLETE_MARKER = ".lakehouse-complete"


def requirements_lock() -> Path:
    """mlflow, boto3 (the server writes artifacts to the lake's S3) and every dependency."""
    return service_files_dir() / "mlflow" / "requirements.lock"


def server_env_dir(settings: Settings) -> Path:
    """Where the server's environment lives (it may not exist yet); a changed lock
    gets a new one."""
    digest = hashlib.sha256(requirements_lock().read_bytes()).hexdigest()[:12]
    return settings.cache_dir / "mlflow" / f"{MLFLOW_SERVER_VERSION}-{digest}"


def server_python(settings: Settings) -> Path:
    """The environment's interpreter (``python -m mlflow server`` runs the server)."""
    return server_env_dir(settings) / "bin" / "python"


def ensure_server_env(settings: Settings) -> Path:
    """Create the environment unless a complete one exists; returns its interpreter.

    Safe across processes (a file lock); a failed install leaves nothing behind.
    Raises ArtifactError naming pip's last lines when the install fails.
    """
    root = server_env_dir(settings)
    if (root / COMPLETE_MARKER).is_file():
        return server_python(settings)
    root.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock"):
        if not (root / COMPLETE_MARKER).is_file():
            shutil.rmtree(root, ignore_errors=True)
            try:
                _install(root)
            except BaseException:
                shutil.rmtree(root, ignore_errors=True)
                raise
            shutil.copyfile(requirements_lock(), root / COMPLETE_MARKER)
    return server_python(settings)


def _install(root: Path) -> None:
    print(f"Installing the MLflow server {MLFLOW_SERVER_VERSION} into {root} once...",
          file=sys.stderr)  # fmt: skip
    steps = [
        [sys.executable, "-m", "venv", str(root)],
        [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet",
         "--disable-pip-version-check", "-r", str(requirements_lock())],
    ]  # fmt: skip
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            last = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            raise ArtifactError(
                f"Installing the MLflow server failed: {' '.join(step)}\n{last}",
                hint="Check the network to PyPI (pip's own configuration applies), then run "
                "`lakehouse up` again.",
            )
