"""`python -m bench catalog-tokens`: what a principal's own catalog token costs.

A governed S3 and catalog (their own home and free ports) hold ``TABLES`` small
tables; the principal may read all of them whole and append to them. pyiceberg, as
the admin (the stack's token and key) and as the principal (its own token and key,
as ``lakehouse env --as`` exports them), loads a table, lists a namespace and
appends one row, alternately, ``REPEATS`` times each after a warm-up; the ratio is
principal / admin of the medians. The principal pays the token lookup, the audit
record of each decision and, for an append, the catalog's check (reading the
client's manifests) and its own commit. Also measured: how long a revoke takes (the
policy change, which rewrites every enforcer) and whether the very next request is
refused. Results: bench/results/catalog_tokens.json.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import load_catalog
from pyiceberg.exceptions import ForbiddenError

from lakehouse import load_settings
from lakehouse.config import Settings
from lakehouse.env import environment
from lakehouse.governance import store
from lakehouse.governance.policy import Grant, Permission, Policy, Resource
from lakehouse.lake import catalog as cat
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env

RESULTS = Path(__file__).parent / "results"
REPEATS = 20
TABLES = 20
PRINCIPAL = "bench_reader"
ROW = pa.table({"id": pa.array([1], pa.int64()), "name": ["x"]})
GRANT = Grant(principal=PRINCIPAL, permissions=(Permission.SELECT, Permission.INSERT),
              resource=Resource(namespace="bench", all_tables=True))  # fmt: skip


def _catalog_as(settings: Settings, principal: str) -> Any:
    """pyiceberg with what ``lakehouse env --as principal`` exports."""
    prefix = f"PYICEBERG_CATALOG__{settings.catalog_name.upper()}__"
    env = environment(settings, principal)
    properties = {k.removeprefix(prefix).lower().replace("__", ".").replace("_", "-"): v
                  for k, v in env.items() if k.startswith(prefix)}  # fmt: skip
    return load_catalog(settings.catalog_name, **properties)


def _median_ms(action: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def measure(settings: Settings) -> dict[str, Any]:
    admin, principal = _catalog_as(settings, "admin"), _catalog_as(settings, PRINCIPAL)
    actions: dict[str, Callable[[Any], Any]] = {
        "load_table": lambda c: c.load_table("bench.t0"),
        "list_tables": lambda c: c.list_tables("bench"),
        "append_row": lambda c: c.load_table("bench.t1").append(ROW),
    }
    figures: dict[str, Any] = {}
    for name, action in actions.items():
        action(admin), action(principal)  # warm-up
        admin_ms = _median_ms(lambda a=action: a(admin))
        principal_ms = _median_ms(lambda a=action: a(principal))
        figures[name] = {"admin_ms": round(admin_ms, 2), "principal_ms": round(principal_ms, 2),
                         "ratio": round(principal_ms / admin_ms, 2)}  # fmt: skip
    started = time.perf_counter()
    store.update(settings, lambda p: p.model_copy(update={"grants": ()}))
    revoke_s = time.perf_counter() - started
    try:
        principal.load_table("bench.t0")
        refused = False
    except ForbiddenError:
        refused = True
    figures["revoke"] = {"policy_change_s": round(revoke_s, 3), "next_request_refused": refused,
                         "tables": TABLES}  # fmt: skip
    return figures


def run_alone() -> dict[str, Any]:
    """A governed S3 and catalog of their own; the figures, also written to RESULTS."""
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-tokens-") as tmp:
        home = Path(tmp)
        for key, value in isolated_stack_env(home).items():
            os.environ[key] = value
        os.environ["LAKEHOUSE_GOVERNANCE_ENABLED"] = "true"
        settings = load_settings(home=home)
        runtime = LocalRuntime(settings)
        try:
            runtime.up(["s3", "catalog"])
            catalog = cat.open_catalog(settings)
            catalog.create_namespace("bench")
            for i in range(TABLES):
                catalog.create_table(f"bench.t{i}", ROW.schema).append(ROW)
            store.update(settings, lambda _: Policy(grants=(GRANT,)))
            figures = measure(settings)
        finally:
            runtime.down(["catalog", "s3"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "catalog_tokens.json").write_text(json.dumps(figures, indent=2) + "\n")
    return figures
