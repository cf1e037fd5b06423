"""Python environments of their own for services whose pins clash with the project's.

The MLflow server (full ``mlflow`` pins pyarrow<26) and Superset (numpy<2.3,
pandas<2.2, pyarrow<19, SQLAlchemy<2) cannot share the project's venv. Like
the JVM artifacts, each is installed once, pinned, into
``<cache>/<name>/<version>-<lock digest>/`` and reused by every stack on the
machine. Every package is pinned by ``services/<name>/requirements.lock`` (a
``pip freeze`` of a fresh install); a changed lock gets a new directory.

The install is safe across processes (a file lock), complete or absent (a
marker written last; a failed or interrupted install is removed), shows pip's
progress with rich on a terminal and one line otherwise, and fails with
:class:`~lakehouse.errors.ArtifactError` naming pip's last lines.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from lakehouse.config import Settings
from lakehouse.errors import ArtifactError
from lakehouse.services import service_files_dir

COMPLETE_MARKER = ".lakehouse-complete"
# pip's lines kept for an error message.
ERROR_TAIL_LINES = 12


@dataclass(frozen=True)
class ServiceEnv:
    """One service's pinned environment: ``name`` is its folder under ``services/``
    and under the cache, ``version`` the service's release, ``title`` what users
    read ("the MLflow server")."""

    name: str
    version: str
    title: str

    def requirements_lock(self) -> Path:
        """``services/<name>/requirements.lock``: every package, pinned."""
        return service_files_dir() / self.name / "requirements.lock"

    def root(self, settings: Settings) -> Path:
        """Where the environment lives (it may not exist yet)."""
        digest = hashlib.sha256(self.requirements_lock().read_bytes()).hexdigest()[:12]
        return settings.cache_dir / self.name / f"{self.version}-{digest}"

    def python(self, settings: Settings) -> Path:
        """The environment's interpreter."""
        return self.root(settings) / "bin" / "python"

    def executable(self, settings: Settings, script: str) -> Path:
        """A console script the environment installed (``superset``, ``gunicorn``)."""
        return self.root(settings) / "bin" / script

    def is_installed(self, settings: Settings) -> bool:
        return (self.root(settings) / COMPLETE_MARKER).is_file()

    def ensure(self, settings: Settings) -> Path:
        """Create the environment unless a complete one exists; returns its interpreter.

        Raises ArtifactError with pip's last lines and a hint when the install
        fails; nothing of a failed or interrupted install is left behind.
        """
        root = self.root(settings)
        if self.is_installed(settings):
            return self.python(settings)
        root.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(root) + ".lock"):
            if not self.is_installed(settings):
                shutil.rmtree(root, ignore_errors=True)
                try:
                    self._install(root)
                except BaseException:
                    shutil.rmtree(root, ignore_errors=True)
                    raise
                shutil.copyfile(self.requirements_lock(), root / COMPLETE_MARKER)
        return self.python(settings)

    def _install(self, root: Path) -> None:
        started = time.monotonic()
        what = f"{self.title} {self.version}"
        print(f"Installing {what} into {root} once (a few minutes)...", file=sys.stderr)
        python = str(root / "bin" / "python")
        pip_args = ["install", "--disable-pip-version-check", "--no-input",
                    "-r", str(self.requirements_lock())]  # fmt: skip
        if importlib.util.find_spec("pip") is not None:
            # Our own pip installs into a venv made without one: `venv` seeding pip
            # took 30+ s on a busy 2-core machine, and the server needs no pip.
            steps = [[sys.executable, "-m", "venv", "--without-pip", str(root)],
                     [sys.executable, "-m", "pip", "--python", python, *pip_args]]  # fmt: skip
        else:  # a venv made by uv has no pip: the new environment brings its own
            steps = [[sys.executable, "-m", "venv", str(root)], [python, "-m", "pip", *pip_args]]
        with _progress(what) as show:
            for step in steps:
                returncode, tail = run_streaming(step, show)
                if returncode != 0:
                    raise ArtifactError(
                        f"Installing {what} failed: {' '.join(step)}\n" + "\n".join(tail),
                        hint="Check the network to PyPI (pip's own configuration applies), "
                        "then run `lakehouse up` again.",
                    )
        print(f"Installed {what} in {time.monotonic() - started:.0f} s.", file=sys.stderr)


def run_streaming(command: list[str], show: Callable[[str], None]) -> tuple[int, list[str]]:
    """Run ``command``, passing each output line to ``show``; returns the exit code
    and the last lines (stdout and stderr merged)."""
    tail: deque[str] = deque(maxlen=ERROR_TAIL_LINES)
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if line:
                tail.append(line)
                show(line)
    return process.returncode, list(tail)


@contextmanager
def _progress(what: str) -> Iterator[Callable[[str], None]]:
    """A rich spinner with pip's current line on a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        yield lambda line: None
        return
    from rich.console import Console

    with Console(stderr=True).status(f"Installing {what}") as status:
        yield lambda line: status.update(f"Installing {what}: {line[:100]}")
