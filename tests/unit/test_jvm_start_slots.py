"""How many JVMs `up` starts at once: the ``jvm_start_slots`` setting, else one per two cores."""

from __future__ import annotations

import pytest

from lakehouse.config import Settings
from lakehouse.errors import ConfigError
from lakehouse.runtimes.startorder import jvm_start_slots


@pytest.mark.parametrize(("cores", "slots"), [(1, 1), (2, 1), (3, 1), (4, 2), (16, 8)])
def test_by_default_one_per_two_cores_and_at_least_one(cores: int, slots: int) -> None:
    assert jvm_start_slots(0, cores) == slots


def test_the_setting_wins_over_the_cores() -> None:
    assert jvm_start_slots(2, 2) == 2
    assert jvm_start_slots(1, 16) == 1


def test_the_setting_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_JVM_START_SLOTS", "2")
    assert Settings().jvm_start_slots == 2
    monkeypatch.setenv("LAKEHOUSE_JVM_START_SLOTS", "-1")
    with pytest.raises((ConfigError, ValueError)):
        Settings()
