"""A damaged or edited backup manifest is one BackupError with a hint, never a crash.

Each case was a KeyError, TypeError, ValueError or a read outside the backup
directory before the manifest was validated as a whole.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lakehouse.backup_manifest import BackupError, object_key, parse_manifest
from lakehouse.errors import LakehouseError
from lakehouse.restore import local_object, read_manifest, verify

META = "s3://warehouse/shop/orders/metadata/00001-abc.metadata.json"
DATA = "s3://warehouse/shop/orders/data/00000-0-abc.parquet"
SHA = "0" * 64


def good_manifest() -> dict[str, Any]:
    objects = [{"uri": META, "bytes": 10, "sha256": SHA}, {"uri": DATA, "bytes": 5, "sha256": SHA}]
    return {
        "format": "lakehouse-backup",
        "version": 1,
        "created_at": "2026-11-30T00:00:00+00:00",
        "lakehouse_version": "0.1.0",
        "catalog": {"file": "catalog.db", "bytes": 100, "sha256": SHA},
        "tables": [{"namespace": "shop", "name": "orders", "metadata_location": META}],
        "counts": {"tables": 1, "objects": 2, "bytes": 15},
        "objects": objects,
    }


def edited(change: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    manifest = copy.deepcopy(good_manifest())
    change(manifest)
    return manifest


DAMAGED: dict[str, tuple[dict[str, Any], str]] = {
    "no objects key": (edited(lambda m: m.pop("objects")), "objects"),
    "an object without sha256": (edited(lambda m: m["objects"][1].pop("sha256")), "sha256"),
    "tables is null": (edited(lambda m: m.update(tables=None)), "tables"),
    "tables is a dict": (edited(lambda m: m.update(tables={})), "tables"),
    "size as a string": (edited(lambda m: m["objects"][1].update(bytes="5")), "bytes"),
    "size as a bool": (edited(lambda m: m["catalog"].update(bytes=True)), "bytes"),
    "negative size": (edited(lambda m: m["objects"][1].update(bytes=-1)), "bytes"),
    "sha256 not hex": (edited(lambda m: m["objects"][1].update(sha256="x" * 64)), "sha256"),
    "unknown field": (edited(lambda m: m.update(extra=1)), "extra"),
    "catalog file elsewhere": (edited(lambda m: m["catalog"].update(file="../x.db")), "file"),
    "empty table name": (edited(lambda m: m["tables"][0].update(name="")), "name"),
    "dot-dot key": (
        edited(lambda m: m["objects"][1].update(uri="s3://warehouse/../../../../etc/hostname")),
        "plain object key",
    ),
    "dot-dot inside a key": (
        edited(lambda m: m["objects"][1].update(uri="s3://warehouse/shop/../../etc/passwd")),
        "plain object key",
    ),
    "absolute key": (
        edited(lambda m: m["objects"][1].update(uri="s3://warehouse//etc/x")),
        "plain object key",
    ),
    "dot-dot bucket": (
        edited(lambda m: m["objects"][1].update(uri="s3://../etc/hostname")),
        "bucket",
    ),
    "not s3": (edited(lambda m: m["objects"][1].update(uri="file:///etc/hostname")), "s3://"),
    "metadata not in objects": (
        edited(lambda m: m["tables"][0].update(metadata_location=META + ".edited")),
        "not one of the backup's objects",
    ),
    "object listed twice": (
        edited(lambda m: m["objects"].append(dict(m["objects"][1], uri=DATA.replace("s3", "s3a")))),
        "listed twice",
    ),
    "table listed twice": (edited(lambda m: m["tables"].append(m["tables"][0])), "listed twice"),
    "counts disagree": (edited(lambda m: m["counts"].update(bytes=16)), "counts"),
}


def test_a_good_manifest_parses() -> None:
    manifest = parse_manifest(good_manifest(), "manifest.json")
    assert [t.identifier for t in manifest.tables] == ["shop.orders"]
    assert object_key(manifest.objects[1].uri) == (
        "warehouse",
        DATA.removeprefix("s3://warehouse/"),
    )


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_manifest_is_one_error_with_a_hint(case: str) -> None:
    data, fault = DAMAGED[case]
    with pytest.raises(BackupError) as raised:
        parse_manifest(data, "/b/manifest.json")
    assert raised.value.message.startswith("/b/manifest.json: damaged manifest: ")
    assert fault in raised.value.message, raised.value.message
    assert raised.value.hint and "\n" not in raised.value.message


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_restore_reads_a_damaged_manifest_as_one_error(case: str, tmp_path: Path) -> None:
    """Through the restore's own reader: LakehouseError only, before any stack is touched."""
    (tmp_path / "manifest.json").write_text(json.dumps(DAMAGED[case][0]))
    with pytest.raises(LakehouseError, match="damaged manifest"):
        read_manifest(tmp_path)


def test_an_object_linked_out_of_the_backup_is_refused(tmp_path: Path) -> None:
    """A symbolic link inside objects/ pointing outside (here /etc/hostname) is refused."""
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret\n")
    backup_dir = tmp_path / "backup"
    (backup_dir / "objects" / "warehouse" / "shop").mkdir(parents=True)
    (backup_dir / "catalog.db").write_bytes(b"db")
    (backup_dir / "objects" / "warehouse" / "shop" / "f.parquet").symlink_to(outside)
    uri = "s3://warehouse/shop/f.parquet"
    sha = hashlib.sha256(b"secret\n").hexdigest()
    data = good_manifest() | {
        "catalog": {"file": "catalog.db", "bytes": 2, "sha256": hashlib.sha256(b"db").hexdigest()},
        "tables": [],
        "objects": [{"uri": uri, "bytes": 7, "sha256": sha}],
        "counts": {"tables": 0, "objects": 1, "bytes": 7},
    }
    with pytest.raises(BackupError, match="outside"):
        local_object(backup_dir, uri)
    with pytest.raises(BackupError, match="outside"):
        verify(backup_dir, parse_manifest(data, "m"))
