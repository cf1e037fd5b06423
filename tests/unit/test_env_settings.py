"""`lakehouse env` carries the calling shell's LAKEHOUSE_* settings (pure logic)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakehouse.config import Settings
from lakehouse.env import environment


def test_a_stack_on_other_ports_is_reached_from_a_fresh_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in [v for v in os.environ if v.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path))
    monkeypatch.setenv("LAKEHOUSE_TRINO_PORT", "18080")
    monkeypatch.setenv("lakehouse_s3_port", "19000")  # names match in any case
    monkeypatch.setenv("LAKEHOUSE_CACHE", "rel-cache")
    monkeypatch.setenv("LAKEHOUSE_PRINCIPAL", "analyst")
    monkeypatch.setenv("LAKEHOUSE_NOT_A_SETTING", "x")
    settings = Settings()
    exported = environment(settings)
    assert exported["LAKEHOUSE_HOME"] == str(tmp_path)
    assert exported["LAKEHOUSE_TRINO_PORT"] == "18080"
    assert exported["LAKEHOUSE_S3_PORT"] == "19000"
    assert (
        exported["LAKEHOUSE_CACHE"] == str(settings.cache)
        and Path(exported["LAKEHOUSE_CACHE"]).is_absolute()
    )
    assert "LAKEHOUSE_NOT_A_SETTING" not in exported
    assert "LAKEHOUSE_PRINCIPAL" not in exported  # only `lakehouse env --as` sets it
    assert environment(settings, "bob")["LAKEHOUSE_PRINCIPAL"] == "bob"
    # A fresh shell with only these variables computes the same stack.
    for variable in [v for v in os.environ if v.lower().startswith("lakehouse_")]:
        monkeypatch.delenv(variable)
    for name, value in exported.items():
        if name.startswith("LAKEHOUSE_") and not name.endswith("_URL"):
            monkeypatch.setenv(name, value)
    again = Settings()
    assert (again.home_dir, again.trino_port, again.s3_port, again.cache) == (
        settings.home_dir, 18080, 19000, settings.cache,
    )  # fmt: skip
