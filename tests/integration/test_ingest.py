"""Ingest in every mode, schema evolution, and bad inputs that must change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse import Lakehouse
from lakehouse.errors import IngestError, LakehouseError
from tests.integration.conftest import run_cli

pytestmark = pytest.mark.integration


def write_csv(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def rows(lake: Lakehouse, table: str, order: str = "id") -> list[dict[str, object]]:
    return lake.sql(f"SELECT * FROM {table} ORDER BY {order}").to_pylist()


def state(
    lake: Lakehouse, table: str
) -> tuple[int | None, int, list[str], list[dict[str, object]]]:
    """Everything that must not change after a rejected ingest."""
    t = lake.table(table)
    snapshot = t.current_snapshot()
    columns = [f.name for f in t.schema().fields]
    return (
        snapshot.snapshot_id if snapshot else None,
        len(t.snapshots()),
        columns,
        rows(lake, table),
    )


def test_append_creates_then_appends(lake: Lakehouse, namespace: str, tmp_path: Path) -> None:
    table = f"{namespace}.people"
    first = lake.ingest(write_csv(tmp_path / "a.csv", "id,name\n1,ann\n2,bob\n"), table)
    assert first.created and first.rows == 2
    second = lake.ingest(write_csv(tmp_path / "b.csv", "id,name\n3,cy\n"), table)
    assert not second.created
    assert [r["name"] for r in rows(lake, table)] == ["ann", "bob", "cy"]
    assert len(lake.history(table)) == 2


def test_overwrite_replaces_all_rows(lake: Lakehouse, namespace: str, tmp_path: Path) -> None:
    table = f"{namespace}.people"
    lake.ingest(write_csv(tmp_path / "a.csv", "id,name\n1,ann\n2,bob\n"), table)
    lake.ingest(write_csv(tmp_path / "b.csv", "id,name\n9,zed\n"), table, mode="overwrite")
    assert rows(lake, table) == [{"id": 9, "name": "zed"}]


def test_upsert_merges_on_key_and_evolves_schema(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.people"
    lake.ingest(write_csv(tmp_path / "a.csv", "id,name\n1,ann\n2,bob\n"), table)
    result = lake.ingest(
        write_csv(tmp_path / "b.csv", "id,name,city\n2,bobby,oslo\n3,cy,rome\n"),
        table, mode="upsert", key=["id"],
    )  # fmt: skip
    assert result.added_columns == ("city",)
    assert rows(lake, table) == [
        {"id": 1, "name": "ann", "city": None},
        {"id": 2, "name": "bobby", "city": "oslo"},
        {"id": 3, "name": "cy", "city": "rome"},
    ]


def test_upsert_with_composite_key(lake: Lakehouse, namespace: str) -> None:
    table = f"{namespace}.lines"
    lake.ingest(pa.table({"o": [1, 1, 2], "l": [1, 2, 1], "q": [5, 6, 7]}), table)
    lake.ingest(
        pa.table({"o": [1, 2], "l": [2, 2], "q": [60, 8]}), table, mode="upsert", key=["o", "l"]
    )
    got = lake.sql(f"SELECT o, l, q FROM {table} ORDER BY o, l").to_pylist()
    assert got == [{"o": 1, "l": 1, "q": 5}, {"o": 1, "l": 2, "q": 60},
                   {"o": 2, "l": 1, "q": 7}, {"o": 2, "l": 2, "q": 8}]  # fmt: skip


def test_json_and_parquet_and_directory_inputs(
    lake: Lakehouse, namespace: str, tmp_path: Path
) -> None:
    table = f"{namespace}.mixed"
    (tmp_path / "a.jsonl").write_text(
        "\n".join(json.dumps({"id": i, "v": f"x{i}"}) for i in range(3))
    )
    lake.ingest(str(tmp_path / "a.jsonl"), table)
    folder = tmp_path / "parts"
    folder.mkdir()
    for part in range(2):
        pq.write_table(pa.table({"id": [10 + part], "v": [f"p{part}"]}), folder / f"{part}.parquet")
    lake.ingest(str(folder), table, format="parquet")
    assert [r["id"] for r in rows(lake, table)] == [0, 1, 2, 10, 11]


def test_ingest_from_an_s3_uri(lake: Lakehouse, namespace: str, tmp_path: Path) -> None:
    local = write_csv(tmp_path / "s3.csv", "id,name\n1,from-s3\n")
    lake.s3.fput_object(lake.settings.warehouse_bucket, f"landing/{namespace}/s3.csv", local)
    lake.ingest(
        f"s3://{lake.settings.warehouse_bucket}/landing/{namespace}/s3.csv", f"{namespace}.s3"
    )
    assert rows(lake, f"{namespace}.s3") == [{"id": 1, "name": "from-s3"}]


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ("id,name\n1,ann,extra,fields\n", {}, "Cannot read"),
        ("id,name\nnot-a-number,ann\n", {}, "Column id"),
        ("id,name\n5,eve\n", {"mode": "upsert", "key": ["nope"]}, "Key column(s) nope"),
        ("id,name\n5,eve\n5,eve2\n", {"mode": "upsert", "key": ["id"]}, "same key"),
        ("id,name\n5,eve\n", {"mode": "upsert"}, "Upsert needs key columns"),
    ],
    ids=["malformed", "type-conflict", "unknown-key", "duplicate-key", "no-key"],
)
def test_bad_input_changes_nothing(
    lake: Lakehouse,
    namespace: str,
    tmp_path: Path,
    content: str,
    kwargs: dict[str, object],
    message: str,
) -> None:
    table = f"{namespace}.people"
    lake.ingest(write_csv(tmp_path / "good.csv", "id,name\n1,ann\n2,bob\n"), table)
    before = state(lake, table)
    with pytest.raises(IngestError) as info:
        lake.ingest(write_csv(tmp_path / "bad.csv", content), table, **kwargs)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert state(lake, table) == before


def test_bad_input_does_not_create_a_table(lake: Lakehouse, namespace: str, tmp_path: Path) -> None:
    with pytest.raises(IngestError):
        lake.ingest(write_csv(tmp_path / "bad.csv", "a,b\n1,2,3\n"), f"{namespace}.never")
    assert not lake.catalog.table_exists(f"{namespace}.never")
    with pytest.raises(LakehouseError, match="does not exist"):
        lake.ingest(str(tmp_path / "missing.csv"), f"{namespace}.never")


def test_cli_ingest_and_error_exit_code(lake: Lakehouse, namespace: str, tmp_path: Path) -> None:
    table = f"{namespace}.cli"
    good = run_cli("ingest", write_csv(tmp_path / "a.csv", "id,name\n1,ann\n"), "--table", table)
    assert "created" in good.stderr
    bad = run_cli(
        "ingest", write_csv(tmp_path / "b.csv", "id,name\nx,y\n"), "--table", table, check=False
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: Column id") and "Hint:" in bad.stderr
    assert "long" in bad.stderr and "'x'" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert rows(lake, table) == [{"id": 1, "name": "ann"}]
