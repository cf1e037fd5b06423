"""Commands that only read the stack's state load no engine library.

Many commands build the list of services (`status`, `up`, `down`, `logs`); each
service module used to import its client library at import time (pyspark to find
Spark's home, minio, the sync status with the governance parser), about a second
of every such command's start-up. The libraries are loaded where they are used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("pyspark", "minio", "sqlglot", "numpy")

LOADED_AFTER = """
import json, sys
from lakehouse.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted(name for name in {heavy} if name in sys.modules)))
"""


def loaded_after(args: list[str], home: Path) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after ``lakehouse ARGS`` on ``home``."""
    env = {**os.environ, "LAKEHOUSE_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "-c", LOADED_AFTER.format(heavy=HEAVY), *args],
        capture_output=True, text=True, env=env, timeout=120, cwd=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.parametrize("args", [["status"], ["status", "--json"]])
def test_commands_on_the_stacks_state_load_no_engine_library(
    args: list[str], tmp_path: Path
) -> None:
    assert loaded_after(args, tmp_path) == []


def test_spark_home_is_found_without_importing_pyspark() -> None:
    code = (
        "import sys; from lakehouse.services.spark import spark_home; "
        "home = spark_home(); print((home / 'bin' / 'spark-submit').is_file(), "
        "'pyspark' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["True", "False"], result.stderr
