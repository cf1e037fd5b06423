"""A reader that closes the CLI's stdout early (`| head -2`, `| true`) ends the
command quietly (exit 141, nothing on stderr), for commands that talk to the stack."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lakehouse import Settings
from lakehouse.cli.common import EXIT_READER_GONE

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "args",
    [("query", "SELECT * FROM range(100000)"), ("tables",), ("tables", "--json")],
    ids=["query", "tables", "tables-json"],
)
def test_closed_pipe_after_a_stack_command_is_quiet(stack: Settings, args: tuple[str, ...]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lakehouse.cli", *args],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)
    # An empty lake lists nothing: `tables` then writes nothing and exits 0.
    assert done.stderr == ""
    assert done.returncode in ((EXIT_READER_GONE,) if args[0] == "query" else (0, EXIT_READER_GONE))


def test_head_reads_the_first_lines_and_the_query_ends_quietly(stack: Settings) -> None:
    done = subprocess.run(
        f"{sys.executable} -m lakehouse.cli query 'SELECT * FROM range(100000)' | head -2;"
        " echo \"status=${PIPESTATUS[0]}\"",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=300,
        check=False,
    )  # fmt: skip
    assert len(done.stdout.splitlines()) == 3, done.stdout
    assert done.stdout.splitlines()[-1] in ("status=0", f"status={EXIT_READER_GONE}")
    assert done.stderr == ""
