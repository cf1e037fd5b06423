"""Registering a restored table never leaves its name missing, whichever catalog call fails.

Pure orchestration over five catalog calls, so a fake catalog (a dict of names to
metadata files) that fails on a chosen call stands in for the REST catalog; the
real swap is exercised in tests/integration/test_backup.py.
"""

from __future__ import annotations

import pytest

from lakehouse.backup_manifest import BackupError, TableRecord
from lakehouse.restore import register, register_all

OLD, NEW = "s3://warehouse/ns/t/metadata/old.json", "s3://warehouse/ns/t/metadata/new.json"


class CatalogDown(Exception):
    """What the fake raises for the failing call."""


class FakeCatalog:
    """Tables as name -> metadata location; ``fail`` names a call ('rename_table#2')."""

    def __init__(self, tables: dict[str, str], fail: str = "") -> None:
        self.tables = dict(tables)
        self.fail = fail
        self.calls: dict[str, int] = {}

    def _call(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if self.fail == f"{method}#{self.calls[method]}":
            raise CatalogDown(f"{method} refused")

    def create_namespace_if_not_exists(self, namespace: str) -> None:
        self._call("create_namespace_if_not_exists")

    def table_exists(self, identifier: str) -> bool:
        self._call("table_exists")
        return identifier in self.tables

    def register_table(self, identifier: str, location: str) -> None:
        self._call("register_table")
        assert identifier not in self.tables
        self.tables[identifier] = location

    def rename_table(self, old: str, new: str) -> None:
        self._call("rename_table")
        assert new not in self.tables
        self.tables[new] = self.tables.pop(old)

    def drop_table(self, identifier: str) -> None:
        self._call("drop_table")
        del self.tables[identifier]


TABLE = TableRecord(namespace="ns", name="t", metadata_location=NEW)


def test_a_new_table_is_registered_directly() -> None:
    catalog = FakeCatalog({})
    register(catalog, TABLE)
    assert catalog.tables == {"ns.t": NEW}


def test_an_existing_table_is_swapped_and_nothing_is_left_behind() -> None:
    catalog = FakeCatalog({"ns.t": OLD, "ns.other": OLD})
    register(catalog, TABLE)
    assert catalog.tables == {"ns.t": NEW, "ns.other": OLD}


@pytest.mark.parametrize("fail", ["register_table#1", "rename_table#1", "rename_table#2"])
def test_a_failed_swap_keeps_the_original_table(fail: str) -> None:
    catalog = FakeCatalog({"ns.t": OLD}, fail=fail)
    with pytest.raises(CatalogDown):
        register(catalog, TABLE)
    assert catalog.tables == {"ns.t": OLD}


def test_a_failed_rename_back_names_where_the_original_is() -> None:
    catalog = FakeCatalog({"ns.t": OLD}, fail="rename_table#2")
    real_rename = catalog.rename_table

    def rename(old: str, new: str) -> None:
        if new == "ns.t" and "__replaced_" in old:
            raise CatalogDown("still down")
        real_rename(old, new)

    catalog.rename_table = rename  # type: ignore[method-assign]
    with pytest.raises(BackupError) as raised:
        register(catalog, TABLE)
    (aside,) = [name for name in catalog.tables if "__replaced_" in name]
    assert catalog.tables[aside] == OLD and aside in raised.value.message
    assert raised.value.hint and aside in raised.value.hint


def test_a_failed_final_drop_says_the_old_table_is_left_aside() -> None:
    catalog = FakeCatalog({"ns.t": OLD}, fail="drop_table#1")
    with pytest.raises(BackupError, match=r"left as ns\.t__replaced_") as raised:
        register(catalog, TABLE)
    assert catalog.tables["ns.t"] == NEW and raised.value.hint


def test_register_all_says_which_tables_were_restored() -> None:
    tables = [TableRecord(namespace="ns", name=n, metadata_location=NEW) for n in "abc"]
    catalog = FakeCatalog({"ns.b": OLD}, fail="register_table#2")
    with pytest.raises(BackupError) as raised:
        register_all(catalog, tables, lambda step, done, total: None)
    message = raised.value.message
    assert "ns.b failed" in message and "Restored: ns.a." in message
    assert "Not restored: ns.c." in message and raised.value.hint
    assert catalog.tables == {"ns.a": NEW, "ns.b": OLD}
