"""An integration's identity: generations minted, renewed and forgotten, and pauses."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lakehouse.config import Settings
from lakehouse.sync.generations import GenerationStore
from lakehouse.sync.integrations import Integration, IntegrationStore


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    config = tmp_path / "lakehouse.toml"
    config.write_text('[sync.declared]\nsource = "postgres"\ntarget = "iceberg"\ntables = ["a"]\n')
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(config))
    return Settings(home=tmp_path / "home")


def created(name: str = "made") -> Integration:
    return Integration(name=name, source="postgres", target="opensearch", tables=("b",))


def test_a_declared_integration_gets_a_generation_the_first_time_it_is_seen(
    settings: Settings,
) -> None:
    first = IntegrationStore(settings).get("declared").generation
    assert len(first) == 8 and int(first, 16) >= 0
    assert IntegrationStore(settings).get("declared").generation == first  # stored, kept
    assert GenerationStore(settings).current("declared") == first


def test_a_re_created_integration_is_a_new_generation(settings: Settings) -> None:
    store = IntegrationStore(settings)
    store.create(created())
    first = store.get("made").generation
    store.create(created())  # the same declaration again: still the same incarnation
    assert store.get("made").generation == first
    store.remove("made")
    GenerationStore(settings).forget("made")
    store.create(created())
    assert store.get("made").generation not in ("", first)


def test_slot_names_carry_the_generation_and_fit_postgres(settings: Settings) -> None:
    store = IntegrationStore(settings)
    store.create(created("a-" + "x" * 39))
    integration = store.get("a-" + "x" * 39)
    slot = integration.slot_name()
    assert slot == f"lakehouse_a_{'x' * 39}_{integration.generation}"
    assert len(slot) <= 63  # NAMEDATALEN - 1
    renewed = GenerationStore(settings).renew(integration.name)
    assert store.get(integration.name).slot_name().endswith(renewed) and renewed not in slot


def test_concurrent_mints_agree(settings: Settings) -> None:
    seen: list[str] = []

    def look() -> None:
        seen.append(IntegrationStore(settings).get("declared").generation)

    threads = [threading.Thread(target=look) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 1


def test_a_pause_counts_while_its_process_lives(settings: Settings) -> None:
    generations = GenerationStore(settings)
    assert not generations.paused("declared")
    with generations.pausing("declared"):
        assert generations.paused("declared")
    assert not generations.paused("declared")
    # A marker left by a process that died (a killed `sync reset`) does not count.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    marker = generations.pause_path("declared")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(dead)
    assert not generations.paused("declared")
