"""`lakehouse query` output through the real CLI: repeated names and rich markup."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest

from lakehouse import Lakehouse
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def people(lake: Lakehouse, namespace: str) -> str:
    table = f"{namespace}.people"
    lake.ingest(pa.table({"id": [1, 2], "name": ["[red]x[/red]", "[/]"]}), table)
    return table


def test_a_join_repeating_a_name_prints_every_column(people: str) -> None:
    sql = f"SELECT a.id, b.id FROM {people} a JOIN {people} b ON a.id = b.id ORDER BY 1"
    table = run_cli("query", sql)
    assert table.stderr == ""
    assert table.stdout.splitlines()[1].split() == ["┃", "id", "┃", "id", "┃"]
    assert json.loads(run_cli("query", sql, "--format", "json").stdout) == [
        {"id": 1, "id_1": 1},
        {"id": 2, "id_1": 2},
    ]
    assert run_cli("query", sql, "--format", "csv").stdout.splitlines()[0] == '"id","id"'


def test_select_constants_with_one_name_twice_in_json() -> None:
    out = run_cli("query", "SELECT 1 AS a, 2 AS a", "--format", "json").stdout
    assert json.loads(out) == [{"a": 1, "a_1": 2}]


def test_values_and_headers_print_as_written(people: str) -> None:
    out = run_cli("query", f'SELECT name AS "[b]n" FROM {people} ORDER BY id').stdout
    assert "[red]x[/red]" in out and "[/]" in out and "[b]n" in out
    constants = run_cli("query", "SELECT '[bold]' AS w, ':smile:' AS e").stdout
    assert "[bold]" in constants and ":smile:" in constants


def test_a_path_with_brackets_is_named_as_written(tmp_path: Path, namespace: str) -> None:
    source = tmp_path / "[x].csv"
    source.write_text("id\n1\n")
    done = run_cli("ingest", str(source), "--table", f"{namespace}.bracketed")
    missing = run_cli("ingest", str(tmp_path / "[y].csv"), "--table", f"{namespace}.b", check=False)
    assert missing.returncode == 1 and "[y].csv" in missing.stderr, missing.stderr
    assert "Traceback" not in done.stderr + missing.stderr
