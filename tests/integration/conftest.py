"""One real lake house per test session: a temporary home on free ports.

The settings travel as LAKEHOUSE_* environment variables, so the library, the
CLI run as a subprocess and `eval "$(lakehouse env)"` all see the same stack.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.testing import LakehouseStack

CLI = [sys.executable, "-m", "lakehouse.cli"]
# The session stack's Trino fails a query on a dead worker after this (Trino's own 1m is
# the product's default): test_trino's killed worker is then not waited out for a minute.
# The session stack runs no worker, so nothing else waits on it.
TEST_STACK_SETTINGS = {"LAKEHOUSE_TRINO_NODE_TIMEOUT": "10s"}


@pytest.fixture(scope="session", autouse=True)
def _test_stack_settings() -> None:
    """Settings of this suite's session stack, set before the stack starts (autouse
    fixtures come first; tests/conftest.py restores the environment at the end)."""
    os.environ.update(TEST_STACK_SETTINGS)


@pytest.fixture(scope="session")
def stack(lakehouse_stack: LakehouseStack) -> Settings:
    """Settings of the run's stack, from lakehouse's own pytest plugin.

    The suite starts its own stack in a temporary home on free ports (the
    autouse fixture in tests/conftest.py hides LAKEHOUSE_HOME), and exports its
    settings so the CLI run as a subprocess sees the same stack.
    """
    assert not lakehouse_stack.reused, "the project's tests must not run against your own stack"
    os.environ.update(lakehouse_stack.env)
    return lakehouse_stack.settings


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium (Selenium, the system browser and driver), one per session.

    Skips with the reason when chromium or chromedriver is missing, except under
    CI=true, where it fails: CI must run the page tests.
    """
    from lakehouse.testing.browser import find_browser, start_browser

    found = find_browser()
    if isinstance(found, str):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the page tests: {found}")
        pytest.skip(found)
    driver = start_browser(*found)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(autouse=True)
def _fresh_browser_log(request: pytest.FixtureRequest) -> None:
    """A test that uses the session's browser sees only what its own pages log
    (another module's page, e.g. a Superset chart's 400, once failed a JupyterLab test)."""
    if "browser" in request.fixturenames:
        request.getfixturevalue("browser").get_log("browser")


@pytest.fixture(scope="session")
def stack_services(lakehouse_stack: LakehouseStack) -> list[str]:
    """The services this session's stack runs (s3 and catalog, plus marked engines)."""
    return list(lakehouse_stack.services)


SAMPLE_SCALE = 0.02


@pytest.fixture(scope="session")
def sample(stack: Settings) -> dict[str, int]:
    """The retail sample at a small scale, loaded once; table name to row count."""
    from lakehouse.sample import load_sample

    with Lakehouse(stack) as lake:
        loads = load_sample(lake, scale=SAMPLE_SCALE)
    return {load.table: load.rows for load in loads}


@pytest.fixture
def lake(stack: Settings) -> Iterator[Lakehouse]:
    with Lakehouse(stack) as lake:
        yield lake


@pytest.fixture
def namespace(lake: Lakehouse, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, dropped with its tables afterwards."""
    name = (
        "t_" + request.node.name.lower().replace("[", "_").replace("]", "").replace("-", "_")[:40]
    )
    lake.catalog.create_namespace_if_not_exists(name)
    yield name
    for table in lake.tables(name):
        lake.catalog.purge_table(table)
    lake.catalog.drop_namespace(name)


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real `lakehouse` CLI in a subprocess, with this session's environment."""
    result = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(
            f"lakehouse {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result
