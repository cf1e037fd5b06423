"""The crawler's pure logic: datasets and partitions from keys, classification, reading."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

from lakehouse.crawl.discover import (
    HIVE_NULL,
    SourceFile,
    group,
    partition_type,
    partition_value,
    table_name,
)
from lakehouse.crawl.files import decompressed, kind_from_name, read_text, text_format
from lakehouse.errors import IngestError


def _files(*keys: str, bucket: str = "landing") -> list[SourceFile]:
    return [SourceFile(bucket, key, 10, f"etag{i}") for i, key in enumerate(keys)]


def test_one_table_per_dataset_folder_with_hive_partitions() -> None:
    files = _files(
        "raw/clicks/dt=2026-11-01/region=eu/a.json.gz",
        "raw/clicks/dt=2026-11-02/region=us/b.json.gz",
        "raw/orders/2026/o1.csv",
        "raw/orders/2026/o2.csv",
        "raw/top.parquet",
    )
    datasets, problems = group(files, "landing", "raw/")
    by_table = {d.table: d for d in datasets}
    assert not problems
    assert set(by_table) == {"clicks", "orders_2026", "raw"}
    clicks = by_table["clicks"]
    assert clicks.keys == ("dt", "region")
    assert clicks.folder == "s3://landing/raw/clicks"
    assert [p.partition_path for p in clicks.files] == [
        "dt=2026-11-01/region=eu",
        "dt=2026-11-02/region=us",
    ]
    assert by_table["orders_2026"].keys == ()
    assert len(by_table["orders_2026"].files) == 2


def test_a_prefix_that_is_itself_the_dataset_names_the_table_after_it() -> None:
    datasets, _ = group(_files("clickstream/dt=2026-11-01/x.gz"), "landing", "clickstream/")
    assert [d.table for d in datasets] == ["clickstream"]
    datasets, _ = group(_files("x.csv"), "landing", "")
    assert [d.table for d in datasets] == ["landing"]


def test_files_off_the_dataset_layout_are_reported_not_guessed() -> None:
    files = _files(
        "t/dt=2026-11-01/a.csv",
        "t/dt=2026-11-02/a.csv",
        "t/dt=2026-11-03/region=eu/b.csv",  # another key set
        "t/dt=2026-11-04/extra/c.csv",  # a plain folder among partition folders
    )
    datasets, problems = group(files, "landing", "")
    assert [len(d.files) for d in datasets] == [2]
    reasons = {p.uri.rsplit("/", 1)[-1]: p.reason for p in problems}
    assert "differ from the dataset's (dt)" in reasons["b.csv"]
    assert "'extra' sits among partition folders" in reasons["c.csv"]
    assert all("Hint:" in r for r in reasons.values())


def test_partition_values_are_url_decoded_and_keys_lower_cased() -> None:
    datasets, _ = group(_files("t/Country=C%C3%B4te%20d%27Ivoire/a.csv"), "landing", "")
    assert datasets[0].files[0].partition == (("country", "Côte d'Ivoire"),)


def test_partition_types_follow_every_value() -> None:
    assert partition_type(["2026-11-01", "2026-11-02"]) == pa.date32()
    assert partition_type(["2026-11-01", "2026-13-01"]) == pa.string()  # not a date
    assert partition_type(["1", "20", "-3"]) == pa.int64()
    assert partition_type(["1", "007"]) == pa.string()  # 007 would lose its zeros
    assert partition_type(["eu", "1"]) == pa.string()
    assert partition_type([HIVE_NULL, "5"]) == pa.int64()
    assert partition_value("2026-11-01", pa.date32()) == date(2026, 11, 1)
    assert partition_value(HIVE_NULL, pa.int64()) is None
    with pytest.raises(ValueError):
        partition_value("latest", pa.int64())


def test_table_names_are_addressable_on_every_engine() -> None:
    assert table_name("Click-Stream 2026") == "click_stream_2026"
    assert table_name("2026") == "t_2026"


def test_names_say_format_and_compression() -> None:
    assert kind_from_name("a/b.csv.gz") == kind_from_name("b.CSV.GZIP")
    assert kind_from_name("b.jsonl.zst").format == "json"
    assert kind_from_name("b.jsonl.zst").compression == "zstd"
    assert kind_from_name("x.parquet").format == "parquet"
    firehose = kind_from_name("stream-1-2026-11-01-10-00-00-ab12")
    assert (firehose.format, firehose.compression) == (None, None)


def test_magic_bytes_decide_compression_and_a_false_name_is_refused() -> None:
    text = b'{"a": 1}\n'
    assert decompressed(gzip.compress(text), None, "x") == text
    assert decompressed(zstandard.ZstdCompressor().compress(text), None, "x") == text
    assert decompressed(text, None, "x") == text
    with pytest.raises(IngestError, match="named as gzip-compressed") as named:
        decompressed(text, "gzip", "s3://b/x.json.gz")
    assert named.value.hint
    with pytest.raises(IngestError, match="not readable gzip data"):
        decompressed(gzip.compress(text * 100)[:30], None, "s3://b/cut.gz")


def test_content_sniffing_and_headerless_csv() -> None:
    assert text_format(b'  {"a": 1}') == "json"
    assert text_format(b"[1]") == "json"
    assert text_format(b"a,b\n1,2") == "csv"
    headed = read_text(b"id;name\n1;x\n2;y\n", "csv", "s3://b/h.csv")
    assert headed.column_names == ["id", "name"]
    bare = read_text(b"1,2026-11-01,x\n2,2026-11-02,y\n", "csv", "s3://b/bare.csv")
    assert bare.column_names == ["col_1", "col_2", "col_3"]
    assert bare.num_rows == 2


def test_a_string_column_keeps_its_text_when_the_table_knows_it() -> None:
    data = read_text(b"zip\n007\n", "csv", "s3://b/z.csv", known=frozenset({"zip"}))
    assert data.column("zip").to_pylist() == ["007"]


def test_a_dataset_whose_files_all_went_is_rebuilt_from_the_record() -> None:
    from lakehouse.crawl.discover import vanished

    gone = vanished("ns.clicks", [("s3://b/raw/clicks/dt=2026-11-01/region=eu/a.gz",
                                   "dt=2026-11-01/region=eu")])  # fmt: skip
    assert (gone.folder, gone.table, gone.keys, gone.files) == (
        "s3://b/raw/clicks", "clicks", ("dt", "region"), [])  # fmt: skip
    flat = vanished("ns.notes", [("s3://b/raw/notes/n.json", "")])
    assert (flat.folder, flat.keys) == ("s3://b/raw/notes", ())


@pytest.mark.parametrize("bucket", ["w3", "a..b", "-ab", "x" * 64])
def test_a_bucket_name_s3_refuses_is_reported_before_any_request(bucket: str) -> None:
    """No server is asked (port 9 is closed): the name alone is refused, with a hint
    (it was an unexpected ValueError from the S3 client)."""
    from lakehouse.config import Settings
    from lakehouse.crawl.discover import list_objects
    from lakehouse.errors import CrawlError

    settings = Settings(home=Path("/nonexistent"), s3_port=9)
    with pytest.raises(CrawlError) as caught:
        list_objects(settings, bucket, "raw/")
    assert "not a valid S3 bucket name" in str(caught.value) and caught.value.hint
