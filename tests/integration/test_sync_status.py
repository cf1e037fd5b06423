"""`sync status` while S3 is down: a growing lag, not 'streaming', the service named.

A private stack (S3 is stopped, so never the session's), driven through the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lakehouse.config import Settings
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.sync.integrations import Integration, IntegrationStore
from sample_data.shop import load_shop
from tests.integration.private_stack import CLI, private_stack, run_cli

pytestmark = pytest.mark.integration
NAME = "shop-to-lake"


@pytest.fixture(scope="module")
def own_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Settings, dict[str, str]]]:
    home = tmp_path_factory.mktemp("sync-status") / "home"
    with private_stack(home, ["s3", "catalog", "postgres"]) as (settings, env):
        with psycopg.connect(settings.postgres_dsn(), autocommit=True) as conn:
            load_shop(conn, scale=0.01, seed=3)
        integration = Integration(name=NAME, source="postgres", target="iceberg",
                                  tables=("orders",), database=settings.postgres_db)  # fmt: skip
        IntegrationStore(settings).create(integration, replace=True)
        yield settings, env


def _status(env: dict[str, str]) -> dict[str, Any]:
    answer = run_cli(env, "sync", "status", "--json")
    assert answer.returncode == 0, answer.stderr
    return next(row for row in json.loads(answer.stdout) if row["name"] == NAME)


def _wait(env: dict[str, str], ok: Callable[[dict[str, Any]], bool], what: str,
          seen: list[dict[str, Any]], timeout: float = 60) -> dict[str, Any]:  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = _status(env)
        seen.append(row)
        if ok(row):
            return row
        time.sleep(1)
    raise AssertionError(f"waited {timeout:.0f} s for {what}; last status: {seen[-1:]}")


def test_sync_status_while_s3_is_down_and_after(own_stack: tuple[Settings, dict[str, str]],
                                                tmp_path: Path) -> None:  # fmt: skip
    settings, env = own_stack
    log = (tmp_path / "follower.log").open("w")
    follower = subprocess.Popen([*CLI, "sync", "run", NAME, "--follow"], stdout=log,
                                stderr=subprocess.STDOUT, env={**os.environ, **env})  # fmt: skip
    runtime, seen = LocalRuntime(settings), []
    try:
        _wait(env, lambda r: r["shown_state"] == "idle" and r["changes_applied"] > 0,
              "the snapshot", seen)  # fmt: skip
        runtime.stop("s3")
        with psycopg.connect(settings.postgres_dsn(), autocommit=True) as conn:
            conn.execute("UPDATE orders SET channel = 'phone' WHERE order_id IN "
                         "(SELECT order_id FROM orders ORDER BY order_id LIMIT 400)")  # fmt: skip
        failing = _wait(env, lambda r: r["lag_seconds"] is not None and r["lag_seconds"] > 3
                        and "s3" in r["last_error"], "a lag while S3 is down", seen)  # fmt: skip
        later = _wait(env, lambda r: r["lag_seconds"] > failing["lag_seconds"] + 2,
                      "the lag to grow", seen)  # fmt: skip
        during = seen[seen.index(failing) :]
        assert {r["shown_state"] for r in during} <= {"retrying"}, during
        assert f"The s3 service at {settings.s3_endpoint}" in later["last_error"]
        assert " Hint: " in later["last_error"] and "\n" not in later["last_error"]
        runtime.up(["s3"])
        _wait(env, lambda r: r["shown_state"] == "idle" and r["last_error"] == ""
              and r["lag_seconds"] is not None and r["lag_seconds"] < 5, "the catch-up", seen,
              timeout=90)  # fmt: skip
    finally:
        follower.terminate()
        follower.wait(timeout=30)
        log.close()
        runtime.up(["s3"])
    said = (tmp_path / "follower.log").read_text()
    assert "Traceback" not in said, said[-3000:]
