"""With governance on, maintenance needs ALTER on the table (the admin has it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.errors import AccessDeniedError
from lakehouse.governance import store
from lakehouse.governance.policy import Grant, Permission, Policy, Resource
from lakehouse.lake import maintenance

POLICY = Policy(grants=(
    Grant(principal="alice", permissions=(Permission.ALTER,), resource=Resource(table="retail.orders")),
    Grant(principal="bob", permissions=(Permission.SELECT,), resource=Resource(table="retail.orders")),
))  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(tmp_path / "lakehouse.toml"))
    monkeypatch.setenv("LAKEHOUSE_CATALOG_PORT", "9")  # nothing answers: no catalog is used
    monkeypatch.setenv("LAKEHOUSE_GOVERNANCE_ENABLED", "true")
    settings = Settings(home=tmp_path / "home")
    store.update(settings, lambda _: POLICY)
    return settings


def as_(settings: Settings, principal: str) -> Lakehouse:
    return Lakehouse(settings.model_copy(update={"principal": principal}))


def test_maintenance_needs_alter_on_the_table(settings: Settings) -> None:
    maintenance.check_allowed(as_(settings, "alice"), "retail.orders", "optimize")
    maintenance.check_allowed(as_(settings, "admin"), "retail.orders", "optimize")
    with pytest.raises(AccessDeniedError) as denied:
        maintenance.check_allowed(as_(settings, "bob"), "retail.orders", "expire-snapshots")
    assert "ALTER" in str(denied.value) and "lakehouse grant ALTER ON TABLE" in (
        denied.value.hint or ""
    )
    with pytest.raises(AccessDeniedError):
        maintenance.check_allowed(as_(settings, "alice"), "retail.customers", "optimize")


def test_governance_off_lets_everyone_maintain(settings: Settings) -> None:
    off = settings.model_copy(update={"governance_enabled": False, "principal": "bob"})
    maintenance.check_allowed(Lakehouse(off), "retail.orders", "optimize")
