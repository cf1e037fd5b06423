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


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A piped CLI at the default terminal width (rich reads COLUMNS)."""
    monkeypatch.setenv("COLUMNS", "80")


def test_history_at_80_columns_shows_every_timestamp_whole(people: str, narrow: None) -> None:
    run_cli("query", f"INSERT INTO {people} VALUES (3, 'c')")
    snapshots = json.loads(run_cli("history", people, "--json").stdout)
    assert len(snapshots) == 2 and all(s["committed_at"].endswith("+00:00") for s in snapshots)
    text = run_cli("history", people).stdout
    assert "…" not in text
    for snap in snapshots:
        row = next(line for line in text.splitlines() if str(snap["snapshot_id"]) in line)
        assert snap["committed_at"] in row, text


def test_long_names_and_values_are_never_cut(lake: Lakehouse, namespace: str, narrow: None) -> None:
    column = "a_column_name_long_enough_to_overflow_eighty_columns_on_its_own_x"
    value = "v" * 120
    table = f"{namespace}.wide"
    lake.ingest(pa.table({column: [value], "n": [1]}), table)
    described = run_cli("describe", table).stdout
    assert column in described and "…" not in described
    assert json.loads(run_cli("describe", table, "--json").stdout)["name"] == table
    result = run_cli("query", f"SELECT * FROM {table}").stdout
    assert any(value in line and column not in line for line in result.splitlines()), result
    assert table in json.loads(run_cli("tables", namespace, "--json").stdout)
    status = run_cli("status").stdout
    assert "…" not in status and "http://127.0.0.1:" in status


def script_file(directory: Path, text: str) -> str:
    path = directory / "script.sql"
    path.write_text(text)
    return str(path)


def test_a_script_in_json_is_one_document(people: str, tmp_path: Path) -> None:
    script = f"SELECT id FROM {people} ORDER BY id; SELECT count(*) AS n FROM {people} WHERE false"
    out = run_cli("query", "-f", script_file(tmp_path, script), "--format", "json").stdout
    first, second = json.loads(out)
    assert first["columns"] == ["id"] and first["rows"] == [{"id": 1}, {"id": 2}]
    assert second == {"statement": second["statement"], "columns": ["n"], "rows": [{"n": 0}]}
    assert "WHERE false" in second["statement"]


def test_a_script_in_csv_with_several_statements_runs_nothing(people: str, tmp_path: Path) -> None:
    script = f"INSERT INTO {people} VALUES (9, 'z'); SELECT * FROM {people}"
    refused = run_cli("query", "-f", script_file(tmp_path, script), "--format", "csv", check=False)
    assert refused.returncode == 1 and refused.stdout == ""
    assert "2 statements" in refused.stderr and "Hint:" in refused.stderr
    assert "Traceback" not in refused.stderr
    count = run_cli("query", f"SELECT count(*) AS n FROM {people}", "--format", "json").stdout
    assert json.loads(count) == [{"n": 2}]
    one_statement = script_file(tmp_path, f"SELECT id FROM {people} ORDER BY id;")
    one = run_cli("query", "-f", one_statement, "--format", "csv")
    assert one.stdout.splitlines() == ['"id"', "1", "2"]


def test_sync_status_and_list_at_80_columns_keep_names_whole(people: str, narrow: None) -> None:
    name = "lake-to-search-long-enough-to-be-cut-x"
    run_cli("sync", "create", name, "--source", "iceberg", "--target", "opensearch",
            "--tables", people, "--key", "id", "--index-prefix", "a-rather-long-index-prefix-")  # fmt: skip
    try:
        status = run_cli("sync", "status").stdout
        assert "…" not in status
        assert any(name in line and "iceberg -> opensearch" in line for line in status.splitlines())
        declared = json.loads(run_cli("sync", "list", "--json").stdout)
        mine = next(i for i in declared if i["name"] == name)
        assert mine["tables"] == [people] and mine["index_prefix"] == "a-rather-long-index-prefix-"
    finally:
        run_cli("sync", "delete", name)
