"""Every child lakehouse starts gets the exact settings of the command that started it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.engines.spark import _job_env
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.services.spark import SparkService
from lakehouse.services.sync import SyncService

PROJECT_PORTS = {"s3_port": 19000, "catalog_port": 18181, "postgres_port": 15432,
                 "opensearch_port": 19200}  # fmt: skip
PRINT_PORTS = (
    "import json; from lakehouse.config import load_settings; s = load_settings(); "
    f"print(json.dumps({{name: getattr(s, name) for name in {list(PROJECT_PORTS)}}}))"
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    tmp_path = tmp_path / "project"
    tmp_path.mkdir()
    """A project whose lakehouse.toml sets non-default ports and a home outside the
    project (so walking up from the home finds no lakehouse.toml); the cwd is the project."""
    lines = ["[lakehouse]", 'home = "../outside-home"']
    lines += [f"{name} = {port}" for name, port in PROJECT_PORTS.items()]
    (tmp_path / "lakehouse.toml").write_text("\n".join(lines) + "\n")
    # Any stack variable (an integration test session exports its stack's) would
    # override lakehouse.toml; only the project may decide here.
    for name in list(os.environ):
        if name.startswith("LAKEHOUSE_") and name != "LAKEHOUSE_CACHE":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def ports_seen_by(env: dict[str, str], cwd: Path) -> dict[str, int]:
    result = subprocess.run([sys.executable, "-c", PRINT_PORTS], env=env, cwd=cwd,
                            capture_output=True, text=True, check=True)  # fmt: skip
    return dict(json.loads(result.stdout))


def test_the_sync_worker_sees_the_project_ports_from_the_home(project: Path) -> None:
    settings = load_settings()
    assert not settings.home_dir.resolve().is_relative_to(project)
    spec = SyncService(settings).spec()
    env = LocalRuntime(settings)._child_env(spec)
    settings.home_dir.mkdir(parents=True)
    # The check: run from the home, the defaults (5432, 8181, ...) would win.
    assert ports_seen_by(env, settings.home_dir) == PROJECT_PORTS
    assert env["LAKEHOUSE_CONFIG"] == str(project / "lakehouse.toml")


def test_a_spark_submit_job_sees_the_command_settings(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings = load_settings(home=tmp_path / "other-home", s3_port=29000)
    env = _job_env(SparkService(settings))
    assert env["LAKEHOUSE_HOME"] == str(tmp_path / "other-home")
    assert ports_seen_by(env, elsewhere) == PROJECT_PORTS | {"s3_port": 29000}
