"""Shared test set-up: keep the user's own lakehouse config out of every test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = ["pytester"]

# Variables a developer's shell may carry (eval "$(lakehouse env)") that would
# point tests at their own stack instead of the one a test starts.
LEAKY_PREFIXES = ("LAKEHOUSE_", "PYICEBERG_", "AWS_", "SPARK_REMOTE")
KEPT = ("LAKEHOUSE_CACHE", "LAKEHOUSE_TEST_ARTIFACTS")  # the machine's, not a stack's


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(LEAKY_PREFIXES) and name not in KEPT:
            del os.environ[name]
    os.environ["LAKEHOUSE_CONFIG"] = str(tmp_path_factory.mktemp("config") / "absent.toml")
    yield
    os.environ.clear()
    os.environ.update(saved)
