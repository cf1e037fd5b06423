"""What each principal's catalog token may see and load, and how tokens are kept
(pure logic, and files in a temp home with no catalog answering)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse import Settings
from lakehouse.errors import PolicyError
from lakehouse.governance import audit, catalog_access, s3_access, store
from lakehouse.governance.catalog_access import access_document, principal_rules
from lakehouse.governance.policy import Grant, Permission, Policy, Principal, Resource
from lakehouse.governance.s3_access import TableFiles

ORDERS = TableFiles("shop.orders", ("id", "email"), ("s3://warehouse/shop/orders",))
USERS = TableFiles("shop.users", ("id", "email"), ("s3://warehouse/shop/users",))
DEEP = TableFiles("a.b.events", ("id",), ("s3://warehouse/a/b/events",))
TABLES = (ORDERS, USERS, DEEP)
POLICY = Policy(
    principals=(Principal(name="alice"), Principal(name="root", roles=("admin",))),
    grants=(
        Grant(principal="alice", permissions=(Permission.SELECT,),
              resource=Resource(table="shop.orders")),
        Grant(principal="alice", permissions=(Permission.SELECT,),
              resource=Resource(table="shop.users", excluded_columns=("email",))),
        Grant(principal="alice", permissions=(Permission.CREATE_TABLE,),
              resource=Resource(namespace="landing")),
        Grant(principal="alice", permissions=(Permission.DESCRIBE,),
              resource=Resource(table="a.b.events")),
        # INSERT on a table read whole appends; on one read in part it does not.
        Grant(principal="alice", permissions=(Permission.INSERT,),
              resource=Resource(namespace="shop", all_tables=True)),
    ),
)  # fmt: skip


def test_a_principal_sees_its_tables_and_loads_only_whole_ones() -> None:
    rules = principal_rules(POLICY, "alice", TABLES, "admin")
    assert rules["tables"] == ["a.b.events", "shop.orders", "shop.users"]
    # A hidden column, and DESCRIBE alone, give no load: the metadata opens the files.
    assert rules["readable"] == ["shop.orders"]
    assert rules["appendable"] == ["shop.orders"]
    # Namespaces of visible tables (and their parents) and of its namespace grants.
    assert rules["namespaces"] == ["a", "a.b", "landing", "shop"]
    nobody = principal_rules(POLICY, "bob", TABLES, "admin")
    assert (nobody["tables"], nobody["readable"], nobody["namespaces"]) == ([], [], [])


def test_the_document_holds_digests_and_admin_role_members_get_everything() -> None:
    tokens = {"alice": "tok-a", "root": "tok-r", "admin": "never-listed"}
    document = access_document(POLICY, TABLES, tokens, "admin")
    entries = {e["name"]: e for e in document["principals"]}
    assert set(entries) == {"alice", "root"}  # the admin's token is the stack's own
    assert entries["root"]["admin"] is True and entries["alice"]["admin"] is False
    header = hashlib.sha256(b"Bearer tok-a").hexdigest()
    assert entries["alice"]["digest"] == header
    assert "tok-a" not in json.dumps(document)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(tmp_path / "lakehouse.toml"))
    monkeypatch.setenv("LAKEHOUSE_CATALOG_PORT", "9")  # no catalog: the injected tables
    monkeypatch.setenv("LAKEHOUSE_GOVERNANCE_ENABLED", "true")
    monkeypatch.setattr(s3_access, "lake_table_files", lambda _: list(TABLES))
    settings = Settings(home=tmp_path / "home")
    store.update(settings, lambda _: POLICY)
    yield settings


def rules_of(settings: Settings, name: str) -> dict[str, object]:
    document = json.loads(catalog_access.access_path(settings).read_text())
    return next(e for e in document["principals"] if e["name"] == name)


def test_tokens_are_issued_once_kept_private_and_rotated(settings: Settings) -> None:
    alice = catalog_access.token(settings, "alice")
    assert alice == catalog_access.token(settings, "alice") != settings.catalog_token
    assert catalog_access.token(settings, "admin") == settings.catalog_token
    for path in settings.home_dir.glob("governance/catalog-*.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert rules_of(settings, "alice")["digest"] == catalog_access.header_digest(alice)
    carol = catalog_access.token(settings, "carol")  # undeclared: issued on request
    assert rules_of(settings, "carol")["digest"] == catalog_access.header_digest(carol)
    rotated = catalog_access.rotate(settings, "alice")
    assert rotated != alice
    assert rules_of(settings, "alice")["digest"] == catalog_access.header_digest(rotated)
    with pytest.raises(PolicyError, match="not a valid principal name"):
        catalog_access.token(settings, "al ice")
    with pytest.raises(PolicyError, match="stack's own catalog_token"):
        catalog_access.rotate(settings, "admin")


def test_the_file_follows_the_policy_and_the_tables(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rules_of(settings, "alice")["readable"] == ["shop.orders"]  # written by the change
    assert catalog_access.ensure_current(settings) is False
    store.update(settings, lambda p: p.model_copy(update={"grants": p.grants[1:]}))
    assert rules_of(settings, "alice")["readable"] == []  # the revoke is in the file
    wider = TableFiles("shop.orders", ("id", "email", "phone"), ORDERS.locations)
    monkeypatch.setattr(s3_access, "lake_table_files", lambda _: [wider, USERS])
    assert catalog_access.ensure_current(settings) is True
    assert rules_of(settings, "alice")["tables"] == ["shop.users"]


def test_a_catalog_that_does_not_answer_keeps_the_last_tables(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(_: Settings) -> list[TableFiles]:
        raise ConnectionError("the catalog is down")

    monkeypatch.setattr(s3_access, "lake_table_files", down)
    catalog_access.write_access(settings)
    assert rules_of(settings, "alice")["readable"] == ["shop.orders"]
    document = json.loads(catalog_access.access_path(settings).read_text())
    assert sorted(t["name"] for t in document["tables"]) == sorted(t.name for t in TABLES)


def test_the_catalogs_decisions_move_into_the_audit_spool(settings: Settings) -> None:
    folder = catalog_access.decisions_dir(settings)
    folder.mkdir(parents=True)
    decided = {"time": "2026-11-30T10:00:00.125Z", "principal": "alice", "action": "DROP_TABLE",
               "resource": "shop.orders", "allowed": False, "reason": "alice may not drop"}  # fmt: skip
    (folder / "one.json").write_text(json.dumps(decided))
    (folder / ".two.tmp").write_text("{half")  # still being written by the catalog
    assert catalog_access.collect(settings) == 1
    assert catalog_access.collect(settings) == 0  # moved once
    spooled = [e for e in audit.spooled(settings) if e["engine"] == "catalog"]
    assert len(spooled) == 1
    event = spooled[0]
    assert (event["principal"], event["action"], event["resource"]) == ("alice", "DROP_TABLE",
                                                                        "shop.orders")  # fmt: skip
    assert event["allowed"] is False and event["reason"] == "alice may not drop"
    assert event["time"].startswith("2026-11-30T10:00:00.125")  # when the catalog decided
    assert sorted(p.name for p in folder.iterdir()) == [".two.tmp"]


def test_a_policy_change_lists_the_catalog_once_for_s3_and_the_catalog(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed: list[int] = []

    def tables(_: Settings) -> list[TableFiles]:
        listed.append(1)
        return [ORDERS]

    monkeypatch.setattr(s3_access, "lake_table_files", tables)
    monkeypatch.setattr(
        store, "ON_CHANGE", [s3_access.policy_changed, catalog_access.policy_changed]
    )
    store.update(settings, lambda p: p.model_copy(update={"grants": p.grants[:1]}))
    assert len(listed) == 1  # the catalog's rules reuse the list S3's were written from
    assert rules_of(settings, "alice")["tables"] == ["shop.orders"]
