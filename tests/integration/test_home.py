"""The stack is found from anywhere inside its project, and from a fresh shell.

Each test runs the real CLI with no LAKEHOUSE_* variables at all: what it knows
comes from the project's lakehouse.toml, found by walking up from its working
directory, exactly as for a user in `notebooks/` or a new terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.config import settings_environment
from lakehouse.home import find_project

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


def project_for(stack: Settings, root: Path) -> Path:
    """A project directory whose lakehouse.toml describes the test stack.

    The home is written relative to the file, so it only resolves right if
    relative paths are taken from the file's directory, not the working one.
    """
    (root / "notebooks" / "deep").mkdir(parents=True)
    lines = ["[lakehouse]"]
    for variable, value in settings_environment(stack).items():
        key = variable.removeprefix("LAKEHOUSE_").lower()
        if key not in ("home", "config"):
            lines.append(f"{key} = {json.dumps(value)}")
    lines.append(f"home = {json.dumps(os.path.relpath(stack.home_dir, root))}")
    (root / "lakehouse.toml").write_text("\n".join(lines) + "\n")
    return root


def bare_env(tmp_path: Path) -> dict[str, str]:
    """An environment with nothing of lakehouse's: no LAKEHOUSE_*, AWS_* or PG* variables."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
        "XDG_DATA_HOME": str(tmp_path / "xdg"),
    }


def cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "lakehouse"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.fixture
def project(stack: Settings, tmp_path: Path) -> Path:
    if find_project(tmp_path).root is not None:
        pytest.skip(f"{tmp_path} is itself inside a lakehouse project")
    return project_for(stack, tmp_path / "proj")


def test_status_and_query_from_a_subdirectory(
    project: Path, tmp_path: Path, stack: Settings, sample: dict[str, int]
) -> None:
    deep = project / "notebooks" / "deep"
    status = cli(deep, bare_env(tmp_path), "status", "--json")
    assert status.returncode == 0, status.stderr
    healthy = {row["name"] for row in json.loads(status.stdout) if row["healthy"]}
    assert {"s3", "catalog"} <= healthy
    query = cli(deep, bare_env(tmp_path), "query", "--format", "json",
                "SELECT count(*) AS n FROM retail.orders")  # fmt: skip
    assert query.returncode == 0, query.stderr
    assert json.loads(query.stdout) == [{"n": sample["retail.orders"]}]


def test_outside_any_project_says_where_it_looked(tmp_path: Path) -> None:
    nowhere = tmp_path / "x" / "y"
    nowhere.mkdir(parents=True)
    if find_project(nowhere).root is not None:
        pytest.skip(f"{nowhere} is inside a lakehouse project")
    for args in (["status"], ["query", "SELECT 1"], ["logs", "s3"]):
        result = cli(nowhere, bare_env(tmp_path), *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        message = result.stderr
        assert message.startswith("Error: No lake house found"), message
        assert str(tmp_path / "xdg" / "lakehouse") in message  # the per-user default
        assert f"{nowhere}, {nowhere.parent}, {tmp_path}" in message  # each directory tried
        assert "Hint:" in message and "Traceback" not in message
    env = cli(nowhere, bare_env(tmp_path), "env")
    assert env.returncode == 0
    assert "LAKEHOUSE_HOME" not in env.stdout and "not exported" in env.stderr


def test_env_exports_only_a_home_that_exists(project: Path, tmp_path: Path) -> None:
    exported = cli(project / "notebooks", bare_env(tmp_path), "env", "--json")
    assert exported.returncode == 0, exported.stderr
    variables = json.loads(exported.stdout)
    assert Path(variables["LAKEHOUSE_HOME"]).is_dir()
    assert variables["LAKEHOUSE_CONFIG"] == str(project / "lakehouse.toml")


@pytest.mark.lakehouse_postgres
def test_fresh_shell_reaches_the_stack_with_the_projects_tools(
    project: Path, stack: Settings, stack_services: list[str], lake: Lakehouse
) -> None:
    """`env -i bash`, then eval "$(lakehouse env)": aws, psql and pg_dump 18 work."""
    if "postgres" not in stack_services:
        pytest.skip("needs postgres")
    script = f"""
        set -e
        cd {project}/notebooks
        eval "$({BIN}/lakehouse env)"
        eval "$({BIN}/lakehouse env)"   # twice: PATH must not grow
        echo "path=$PATH"
        aws s3 ls s3://{stack.warehouse_bucket}/ >/dev/null && echo aws=ok
        pg_dump --version
        psql -tA -c 'SELECT current_database()'
        pg_dump --schema-only >/dev/null && echo pg_dump=ok
        lakehouse status --json >/dev/null && echo lakehouse=ok
    """
    result = subprocess.run(["env", "-i", "/bin/bash", "--noprofile", "--norc", "-c", script],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout.splitlines()
    path = next(line for line in out if line.startswith("path=")).removeprefix("path=").split(":")
    assert path[0] == str(BIN) and len(path) == len(set(path))
    assert "aws=ok" in out and "pg_dump=ok" in out and "lakehouse=ok" in out
    version = next(line for line in out if line.startswith("pg_dump (PostgreSQL)"))
    assert version.split()[-1].startswith("18."), version
    assert stack.postgres_db in out
