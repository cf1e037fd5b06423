"""Maintenance policies of lakehouse.toml: parsing, merging, what is due, the run record."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lakehouse.config import Settings
from lakehouse.errors import ConfigError
from lakehouse.lake import maintenance_policy as policies

DECLARED = """
[maintenance.retail]
target_file_size = "64MB"
min_snapshots_to_keep = 3
orphan_age = "3d"
every = "10m"

[maintenance."retail.orders"]
compaction = false
max_snapshot_age = "2d"

[maintenance."web.clicks"]
target_file_size = "256MB"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("LAKEHOUSE_"):
            monkeypatch.delenv(name)
    path = tmp_path / "lakehouse.toml"
    path.write_text(DECLARED)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(path))
    return path


def test_a_namespace_policy_covers_its_tables(config: Path) -> None:
    policy = policies.policy_for("retail.customers", policies.declared())
    assert policy is not None
    assert policy.target_file_size == 64 * 2**20 and policy.every_s == 600
    assert policy.min_snapshots_to_keep == 3 and policy.max_snapshot_age_s == 5 * 86400
    assert policy.orphan_age_s == 3 * 86400
    assert policy.jobs() == ["optimize", "expire-snapshots", "remove-orphan-files"]


def test_a_table_entry_wins_key_by_key(config: Path) -> None:
    policy = policies.policy_for("retail.orders", policies.declared())
    assert policy is not None and policy.scope == "retail.orders"
    assert policy.target_file_size is None  # compaction = false
    assert policy.max_snapshot_age_s == 2 * 86400 and policy.min_snapshots_to_keep == 3
    assert policy.jobs() == ["expire-snapshots", "remove-orphan-files"]


def test_tables_without_a_policy_get_none(config: Path) -> None:
    entries = policies.declared()
    assert policies.policy_for("web.sessions", entries) is None
    assert policies.policy_for("shop.orders", entries) is None
    clicks = policies.policy_for("web.clicks", entries)
    assert clicks is not None and clicks.jobs() == ["optimize"]


@pytest.mark.parametrize(
    ("entry", "words"),
    [('[maintenance.retail]\ntarget_file_sise = "1MB"\n', "unknown key"),
     ('[maintenance.retail]\ntarget_file_size = "big"\n', "not a size"),
     ('[maintenance.retail]\nmax_snapshot_age = "5 days"\n', "not a duration"),
     ("[maintenance.retail]\nmin_snapshots_to_keep = 0\n", "1 or more"),
     ('[maintenance.retail]\ncompaction = "no"\n', "true/false"),
     ('[maintenance."a.b.c"]\nevery = "1h"\n', "neither a namespace"),
     ('[maintenance]\nretail = "1h"\n', "must be a table")],
)  # fmt: skip
def test_bad_declarations_are_named_with_a_hint(config: Path, entry: str, words: str) -> None:
    config.write_text(entry)
    with pytest.raises(ConfigError) as caught:
        policies.declared()
    assert words in str(caught.value) and caught.value.hint


def test_due_jobs_follow_the_recorded_runs(config: Path, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    now = 1_000_000.0
    due = policies.due_jobs(settings, ["retail.orders", "web.clicks", "web.other"], now)
    assert [(t, j) for t, j, _ in due] == [
        ("retail.orders", "expire-snapshots"), ("retail.orders", "remove-orphan-files"),
        ("web.clicks", "optimize"),
    ]  # fmt: skip
    policies.record_run(settings, "retail.orders", "expire-snapshots", True, "2 removed")
    runs = policies.last_runs(settings)
    assert runs["retail.orders"]["expire-snapshots"]["summary"] == "2 removed"
    just_after = runs["retail.orders"]["expire-snapshots"]["finished_at"] + 60
    due = policies.due_jobs(settings, ["retail.orders"], just_after)
    assert [j for _, j, _ in due] == ["remove-orphan-files"]  # every = 10m
    due = policies.due_jobs(settings, ["retail.orders"], just_after + 600)
    assert [j for _, j, _ in due] == ["expire-snapshots", "remove-orphan-files"]


def test_a_policys_orphan_age_never_goes_under_the_floor() -> None:
    asked: dict[str, Any] = {}
    lake: Any = SimpleNamespace(
        settings=SimpleNamespace(maintenance_orphan_floor_seconds=86400.0),
        remove_orphan_files=lambda table, older_than: asked.update(age=older_than),
    )
    policy = policies.Policy(scope="retail", orphan_age_s=60.0)
    policies.run_job(lake, "retail.orders", "remove-orphan-files", policy)
    assert asked["age"].total_seconds() == 86400.0
