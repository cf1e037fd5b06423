"""lakehouse.lake.fileio on local files: sizes known once written, manifests cached."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.lake.fileio import MANIFEST_CACHE, LakeFileIO


def test_a_written_file_knows_its_size_and_reads_back_identically(tmp_path: Path) -> None:
    io = LakeFileIO()
    target = io.new_output(str(tmp_path / "data.parquet"))
    with target.create() as stream:
        pq.write_table(pa.table({"x": list(range(1000))}), stream)
    assert len(target) == (tmp_path / "data.parquet").stat().st_size > 0
    assert pq.read_table(str(tmp_path / "data.parquet")).column("x").to_pylist() == list(
        range(1000)
    )
    assert len(io.new_input(str(tmp_path / "data.parquet"))) == len(target)


def test_manifests_are_served_from_the_cache_and_forgotten_when_deleted(tmp_path: Path) -> None:
    io = LakeFileIO()
    path = str(tmp_path / "snap-1.avro")
    with io.new_output(path).create() as stream:
        stream.write(b"one")
        stream.write(b"two")
    assert MANIFEST_CACHE.get(path) == b"onetwo"
    (tmp_path / "snap-1.avro").write_bytes(b"changed on disk")  # Iceberg never does this
    assert io.new_input(path).open().read() == b"onetwo"  # so the cached bytes answer
    io.delete(path)
    assert MANIFEST_CACHE.get(path) is None
    assert not (tmp_path / "snap-1.avro").exists()


def test_a_manifest_read_once_is_cached_and_a_failed_write_caches_nothing(tmp_path: Path) -> None:
    io = LakeFileIO()
    (tmp_path / "m.avro").write_bytes(b"manifest")
    path = str(tmp_path / "m.avro")
    MANIFEST_CACHE.forget(path)
    assert io.new_input(path).open().read() == b"manifest"
    assert MANIFEST_CACHE.get(path) == b"manifest"
    (tmp_path / "a-file").write_bytes(b"")
    broken = str(tmp_path / "a-file" / "x.avro")  # its parent is a file: the write fails
    try:
        with io.new_output(broken).create() as stream:
            stream.write(b"never")
    except OSError:
        pass
    assert MANIFEST_CACHE.get(broken) is None


def test_s3_files_open_late_and_keep_every_other_setting() -> None:
    """A delayed open: a small file is one PutObject at close, not a multipart upload
    (no request is made here: the file system is only built)."""
    io = LakeFileIO({"s3.endpoint": "http://127.0.0.1:1", "s3.access-key-id": "k",
                     "s3.secret-access-key": "s", "s3.region": "eu-west-3"})  # fmt: skip
    fs = io.fs_by_scheme("s3", "bucket")
    settings = fs.__reduce__()[1][0]
    assert settings["allow_delayed_open"] is True
    assert (
        settings["region"] == "eu-west-3" and settings["endpoint_override"] == "http://127.0.0.1:1"
    )
    assert settings["access_key"] == "k"
