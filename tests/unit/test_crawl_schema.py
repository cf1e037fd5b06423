"""Which new files a crawl adds to a table, by their columns and the schema-change policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakehouse.config import Settings
from lakehouse.crawl.dataset import Context, TableReport, _reconcile
from lakehouse.crawl.discover import PlacedFile, SourceFile
from lakehouse.crawl.load import Loaded
from lakehouse.crawl.record import CrawlRecord, KnownFile
from lakehouse.crawl.spec import CrawlerSpec
from lakehouse.errors import CrawlError


def loaded(file_name: str, /, **columns: pa.DataType) -> Loaded:
    file = SourceFile("b", f"t/{file_name}", 1, "e")
    schema = pa.schema([pa.field(k, v) for k, v in columns.items()])
    return Loaded(PlacedFile(file, ()), "json", schema, 1, ())


def context(tmp_path: Path, policy: str = "update") -> Context:
    spec = CrawlerSpec(name="c", path="s3://b/t/", schema_change=policy)  # type: ignore[arg-type]
    settings = Settings(home=tmp_path)
    return Context(settings, spec, None, CrawlRecord(settings), "run", "ns")  # type: ignore[arg-type]


def reconcile(ctx: Context, items: list[Loaded], target: pa.Schema | None,
              table: Any = None) -> tuple[list[str], pa.Schema, TableReport]:  # fmt: skip
    report = TableReport("ns.t")
    known = {"s3://b/t/first.json": KnownFile("s3://b/t/first.json", "e", 1, "", 1)}
    accepted, columns = _reconcile(ctx, "ns.t", table, target, items, known if table else {},
                                   report)  # fmt: skip
    return [i.uri.rsplit("/", 1)[1] for i in accepted], columns, report


def test_new_files_of_a_new_table_merge_and_clashes_name_both_files(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    items = [
        loaded("a.json", id=pa.int32(), name=pa.string()),
        loaded("b.json", id=pa.int64(), extra=pa.float64()),
        loaded("c.json", id=pa.string()),
    ]
    names, columns, report = reconcile(ctx, items, None)
    assert names == ["a.json", "b.json"]
    assert columns == pa.schema(
        [("id", pa.int64()), ("name", pa.string()), ("extra", pa.float64())]
    )
    (clash,) = ctx.failures
    assert clash.uri == "s3://b/t/c.json"
    assert "column id is string here but long in s3://b/t/a.json" in clash.reason
    assert "Hint:" in clash.reason
    assert report.schema_changes == []  # a new table has no schema to change


def test_an_existing_table_follows_the_policy(tmp_path: Path) -> None:
    target = pa.schema([("id", pa.int64())])
    same, grows = (
        loaded("same.json", id=pa.int64()),
        loaded("grows.json", id=pa.int64(), x=pa.string()),
    )

    names, columns, report = reconcile(context(tmp_path), [same, grows], target, table=object())
    assert names == ["same.json", "grows.json"] and columns.names == ["id", "x"]
    assert report.schema_changes == ["s3://b/t/grows.json: new column x string"]

    names, columns, report = reconcile(
        context(tmp_path, "log"), [same, grows], target, table=object()
    )
    assert names == ["same.json"] and columns.names == ["id"]
    assert "logged; the file was not added" in report.schema_changes[0]

    with pytest.raises(CrawlError, match="schema_change = fail"):
        reconcile(context(tmp_path, "fail"), [same, grows], target, table=object())


def test_a_clash_with_the_table_names_its_first_file(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    target = pa.schema([("id", pa.int64())])
    names, _, _ = reconcile(ctx, [loaded("bad.json", id=pa.string())], target, table=object())
    assert names == []
    assert "long in ns.t (from s3://b/t/first.json)" in ctx.failures[0].reason
