"""DuckDB extensions: signatures checked once per installed file, then loaded quickly."""

from __future__ import annotations

import os
from pathlib import Path

from lakehouse.engines.duckdb_extensions import (
    EXTENSIONS,
    VerifiedExtensions,
    connect_with_extensions,
    extension_path,
)


def test_a_changed_file_must_be_checked_again(tmp_path: Path) -> None:
    extension = tmp_path / "x.duckdb_extension"
    extension.write_bytes(b"one")
    record = VerifiedExtensions(tmp_path / "cache")
    assert not record.all_verified([extension])
    record.record([extension])
    assert VerifiedExtensions(tmp_path / "cache").all_verified([extension])
    before = extension.stat()
    extension.write_bytes(b"two")  # same size, and the old mtime put back
    os.utime(extension, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert not record.all_verified([extension])


def test_an_unreadable_record_means_unchecked(tmp_path: Path) -> None:
    extension = tmp_path / "x.duckdb_extension"
    extension.write_bytes(b"one")
    record = VerifiedExtensions(tmp_path / "cache")
    record.path.parent.mkdir(parents=True)
    record.path.write_text("not json")
    assert not record.all_verified([extension])


def test_first_connection_checks_signatures_later_ones_reuse_the_check(tmp_path: Path) -> None:
    def state(cache: Path) -> tuple[bool, set[str]]:
        con = connect_with_extensions(cache)
        try:
            setting = "SELECT current_setting('allow_unsigned_extensions')"
            unsigned = con.execute(setting).fetchall()[0][0]
            loaded = "SELECT extension_name FROM duckdb_extensions() WHERE loaded"
            return unsigned, {row[0] for row in con.execute(loaded).fetchall()}
        finally:
            con.close()

    first_unsigned, first_loaded = state(tmp_path)
    assert not first_unsigned and set(EXTENSIONS) <= first_loaded
    files = [extension_path(name) for name in EXTENSIONS]
    assert VerifiedExtensions(tmp_path).all_verified(files)
    second_unsigned, second_loaded = state(tmp_path)
    assert second_unsigned and set(EXTENSIONS) <= second_loaded
