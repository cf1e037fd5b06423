"""Shared test set-up: keep the user's own lakehouse config out of every test."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

# Variables a developer's shell may carry (eval "$(lakehouse env)") that would
# point tests at their own stack instead of the one a test starts.
LEAKY_PREFIXES = ("LAKEHOUSE_", "PYICEBERG_", "AWS_")


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith(LEAKY_PREFIXES) and name != "LAKEHOUSE_CACHE":
            del os.environ[name]
    os.environ["LAKEHOUSE_CONFIG"] = str(tmp_path_factory.mktemp("config") / "absent.toml")
    yield
    os.environ.clear()
    os.environ.update(saved)


def free_port_block(size: int, start: int = 20000, end: int = 60000) -> int:
    """First port of ``size`` consecutive ports that are free on 127.0.0.1."""
    for base in range(start + (os.getpid() % 500) * 50, end, size + 7):
        if all(port_is_free(port) for port in range(base, base + size)):
            return base
    raise RuntimeError("no block of free ports found")


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
