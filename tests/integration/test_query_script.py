"""`lakehouse query -f FILE`: many statements, one process, start-up paid once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lakehouse import Settings
from tests.integration.conftest import CLI, run_cli

pytestmark = pytest.mark.integration


def test_every_statement_runs_in_order(
    stack: Settings, sample: dict[str, int], tmp_path: Path
) -> None:
    script = tmp_path / "queries.sql"
    script.write_text(
        "SELECT count(*) AS n FROM retail.orders;\n"
        "-- a comment, and a ';' inside a string\n"
        "SELECT 'a;b' AS text;\n\n"
        "SELECT count(*) AS n FROM web.clickstream\n"
    )
    result = run_cli("query", "--format", "json", "-f", str(script))
    # One JSON document for the whole script (README: -f with --format json).
    results = json.loads(result.stdout)
    assert [r["rows"] for r in results] == [
        [{"n": sample["retail.orders"]}],
        [{"text": "a;b"}],
        [{"n": sample["web.clickstream"]}],
    ]
    assert results[1]["statement"].endswith("SELECT 'a;b' AS text")


def test_stdin_script_and_bad_scripts(stack: Settings, sample: dict[str, int]) -> None:
    piped = subprocess.run([*CLI, "query", "--format", "csv", "-f", "-"], input="SELECT 1 AS one;",
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert (piped.returncode, piped.stdout.split()) == (0, ['"one"', "1"]), piped.stderr
    for args, stdin, message in (
        (["-f", "-"], "SELEC 1;", "cannot split the script"),
        (["-f", "-"], "  -- nothing\n", "no statement"),
        (["-f", "-", "SELECT 2"], "SELECT 1", "not both"),
        ([], "", "no SQL given"),
    ):
        failed = subprocess.run([*CLI, "query", *args], input=stdin,
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert failed.returncode == 1, (args, failed.stderr)
        assert message in failed.stderr and "Hint:" in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr
