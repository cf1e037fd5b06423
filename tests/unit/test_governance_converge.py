"""Trino's rules and the S3 identities catch up with a policy change whose writer died
between storing it and rewriting them (no server: the catalog is down, so the rules
are written fail-closed from what the store holds)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from lakehouse.cli import main
from lakehouse.config import Settings
from lakehouse.governance import catalog_access, s3_access, store, trino_rules
from lakehouse.governance.converge import converge, stale_enforcers
from lakehouse.governance.policy import Grant, Permission, Policy, Principal, Resource

ORDERS_FILES = s3_access.TableFiles("retail.orders", ("id",), ("s3://warehouse/retail/orders",))
GRANTED = Policy(
    principals=(Principal(name="alice"),),
    grants=(Grant(principal="alice", permissions=(Permission.SELECT,),
                  resource=Resource(table="retail.orders")),),
)  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(tmp_path / "lakehouse.toml"))
    monkeypatch.setenv("LAKEHOUSE_CATALOG_PORT", "9")  # nothing answers: fail closed at once
    monkeypatch.setenv("LAKEHOUSE_GOVERNANCE_ENABLED", "true")
    # The catalog's one table, as the enforcers' writers would list it.
    monkeypatch.setattr(trino_rules, "lake_tables",
                        lambda _: [trino_rules.LakeTable("retail.orders", {"id": "BIGINT"})])  # fmt: skip
    monkeypatch.setattr(s3_access, "lake_table_files", lambda _: [ORDERS_FILES])
    yield Settings(home=tmp_path / "home")


def alice_reads_orders(settings: Settings) -> tuple[bool, bool, bool]:
    """(Trino's rules, alice's S3 identity, her catalog token) let alice read retail.orders."""
    rules = json.loads(trino_rules.rules_path(settings).read_text())
    in_trino = any(r.get("user") == "alice" and r.get("table") == "orders" and "SELECT" in r["privileges"]
                   for r in rules["tables"])  # fmt: skip
    access = json.loads(catalog_access.access_path(settings).read_text())
    in_catalog = any(p["name"] == "alice" and "retail.orders" in p["readable"]
                     for p in access["principals"])  # fmt: skip
    return in_trino, bool(identity_actions(settings, "alice")), in_catalog


def killed_after_the_store(
    settings: Settings, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """store.update as a process killed right after the policy file was replaced."""
    with monkeypatch.context() as patched:
        patched.setattr(store, "ON_CHANGE", [])
        store.update(settings, lambda _: policy)


def identity_actions(settings: Settings, name: str) -> list[str] | None:
    document = json.loads(s3_access.identities_path(settings).read_text())
    return next((i["actions"] for i in document["identities"] if i["name"] == name), None)


def test_a_change_cut_short_is_caught_up_by_converge(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.update(settings, lambda _: GRANTED)  # listeners ran: both current
    assert stale_enforcers(settings) == []
    assert alice_reads_orders(settings) == (True, True, True)
    killed_after_the_store(settings, Policy(principals=GRANTED.principals), monkeypatch)
    assert alice_reads_orders(settings) == (True, True, True)  # revoked, yet still served
    assert stale_enforcers(settings) == ["trino", "s3", "catalog"]
    assert converge(settings) == ["trino", "s3", "catalog"]
    assert stale_enforcers(settings) == [] and converge(settings) == []
    state = json.loads((settings.home_dir / "governance" / "trino-rules.state.json").read_text())
    assert state["revision"] == store.load_policy(settings).revision == 2
    assert alice_reads_orders(settings) == (False, False, False)


def test_every_cli_command_converges_first(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.update(settings, lambda _: GRANTED)
    killed_after_the_store(settings, Policy(principals=GRANTED.principals), monkeypatch)
    result = CliRunner().invoke(main, ["--home", str(settings.home_dir), "grants"])
    assert stale_enforcers(settings) == [], result.output
    assert alice_reads_orders(settings) == (False, False, False)


def test_governance_off_touches_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    settings = Settings(home=tmp_path / "home")
    assert stale_enforcers(settings) == [] and converge(settings) == []
    assert not (tmp_path / "home").exists()


def test_a_home_without_a_policy_is_left_alone(settings: Settings) -> None:
    assert stale_enforcers(settings) == [] and converge(settings) == []
    assert not settings.home_dir.exists()  # `lakehouse tables` on a wrong --home says so
