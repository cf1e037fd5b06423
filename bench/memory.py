"""Memory and log growth of the stack while the Zero-ETL sync runs under load.

`python -m bench memory` starts S3, the catalog, PostgreSQL, OpenSearch and the
sync worker in a temporary home on free ports, loads the shop, and lets the
shop simulator write at ``RATE`` changes/s for ``DURATION`` seconds while the
sync worker follows the three sample integrations. Every ``INTERVAL`` seconds
it samples the resident memory (RSS) of each service's process tree and the
size of ``<home>/logs`` per service. Results go to bench/results/memory.json:

* ``peak_mib``: the highest RSS seen per service (and for S3 + catalog, and
  the whole stack);
* ``steady_mib``: the median RSS over the second half of the run, after the
  sync's first snapshot and the JVMs' warm-up;
* ``idle_after_snapshot_mib``: the median RSS over ``IDLE_SECONDS`` once every
  integration has finished its initial snapshot and no change is coming (what
  `make up` leaves running);
* ``after_load_mib``: the same, once the sync has caught up after the load
  stopped (whether the worker gives memory back);
* ``log_kib_per_min``: how fast each service's log files grew (all rotated
  files counted), measured over the whole run.

Set LAKEHOUSE_BENCH_MEMORY_SECONDS / _RATE to run longer or harder.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lakehouse.config import Settings, load_settings
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env, tree_memory_mb
from lakehouse.simulate import ShopSimulator
from lakehouse.sync.integrations import IntegrationStore
from lakehouse.sync.status import StatusStore

RESULTS = Path(__file__).parent / "results"
SERVICES = ["s3", "catalog", "postgres", "opensearch", "sync"]
DURATION = float(os.environ.get("LAKEHOUSE_BENCH_MEMORY_SECONDS", "300"))
RATE = float(os.environ.get("LAKEHOUSE_BENCH_MEMORY_RATE", "200"))
INTERVAL = 2.0
SCALE = 0.2
IDLE_SECONDS = 30.0
CATCH_UP_TIMEOUT = 600.0


def log_sizes(home: Path) -> dict[str, int]:
    """Bytes of log files per service: ``<name>.log`` and its rotations, plus the
    service's own log directory (S3's ``s3-internal``)."""
    sizes: dict[str, int] = {}
    logs = home / "logs"
    for path in logs.rglob("*") if logs.is_dir() else []:
        if path.is_symlink() or not path.is_file():  # glog links weed.INFO to its file
            continue
        top = path.relative_to(logs).parts[0]
        service = top.split(".")[0].removesuffix("-internal")
        sizes[service] = sizes.get(service, 0) + path.stat().st_size
    for service, own in {"opensearch": home / "data" / "opensearch" / "logs"}.items():
        if own.is_dir():
            sizes[service] = sizes.get(service, 0) + sum(
                p.stat().st_size for p in own.rglob("*") if p.is_file()
            )
    return sizes


def sample_memory(runtime: LocalRuntime, names: list[str],
                  proportional: bool = False) -> dict[str, float]:  # fmt: skip
    """RSS (``proportional``: PSS) in MiB of each running service's process tree."""
    sample = {}
    for name in names:
        pid = runtime.pid(name)
        memory = tree_memory_mb(pid, proportional) if pid else None
        if memory is not None:
            sample[name] = memory
    return sample


def wait_caught_up(settings: Settings, timeout: float = CATCH_UP_TIMEOUT) -> None:
    """Wait until every integration reports ``idle`` (its snapshot and changes applied)."""
    names = list(IntegrationStore(settings).all())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {name: StatusStore(settings).read(name).state for name in names}
        if all(state == "idle" for state in states.values()):
            return
        time.sleep(INTERVAL)
    raise RuntimeError(f"the sync did not catch up within {timeout:.0f} s: {states}")


def idle_memory(settings: Settings, seconds: float = IDLE_SECONDS) -> dict[str, float]:
    """Median RSS in MiB per service over ``seconds`` once the sync has caught up."""
    wait_caught_up(settings)
    runtime, samples = LocalRuntime(settings), []
    for _ in range(max(1, int(seconds / INTERVAL))):
        samples.append(sample_memory(runtime, SERVICES))
        time.sleep(INTERVAL)
    return {
        name: round(statistics.median(s[name] for s in samples if name in s), 1)
        for name in SERVICES
        if any(name in s for s in samples)
    }


def measure(settings: Settings, duration: float = DURATION, rate: float = RATE) -> dict[str, Any]:
    """Run the simulator against a running stack and sample it; see the module doc."""
    runtime = LocalRuntime(settings)
    stop = threading.Event()
    simulator = ShopSimulator(settings.postgres_dsn(), rate, seed=11)
    traffic = threading.Thread(target=lambda: simulator.run(stop=stop), daemon=True)
    logs_before, samples = log_sizes(settings.home_dir), []
    started = time.monotonic()
    traffic.start()
    try:
        while time.monotonic() - started < duration:
            samples.append(sample_memory(runtime, SERVICES))
            time.sleep(INTERVAL)
    finally:
        stop.set()
        traffic.join()
    minutes = (time.monotonic() - started) / 60
    logs_after = log_sizes(settings.home_dir)
    return summarize(samples, logs_before, logs_after, minutes) | {
        "duration_s": duration, "rate_changes_per_s": rate,
    }  # fmt: skip


def summarize(
    samples: list[dict[str, float]],
    logs_before: dict[str, int],
    logs_after: dict[str, int],
    minutes: float,
) -> dict[str, Any]:
    """Peak and steady RSS per service and group, and log growth per service."""
    groups = {"s3+catalog": ["s3", "catalog"], "stack": SERVICES}
    series: dict[str, list[float]] = {}
    for sample in samples:
        for name, mib in sample.items():
            series.setdefault(name, []).append(mib)
        for group, members in groups.items():
            series.setdefault(group, []).append(sum(sample.get(m, 0.0) for m in members))
    second_half = {name: values[len(values) // 2 :] for name, values in series.items()}
    growth = {
        name: (logs_after.get(name, 0) - logs_before.get(name, 0)) / 1024 / minutes
        for name in sorted(set(logs_after) | set(logs_before))
    }
    return {
        "peak_mib": {name: round(max(values), 1) for name, values in series.items()},
        "steady_mib": {
            name: round(statistics.median(values), 1) for name, values in second_half.items()
        },
        "log_kib_per_min": {name: round(value, 1) for name, value in growth.items()},
        "log_bytes_at_end": logs_after,
    }


def run_alone(console: Console) -> dict[str, Any]:
    """Start a throwaway stack with the shop and its syncs, measure, write memory.json."""
    from lakehouse.sample import load_shop_sample

    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-memory-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            with console.status("starting S3, catalog, PostgreSQL, OpenSearch"):
                runtime.up(["s3", "catalog", "postgres", "opensearch"])
                load_shop_sample(settings, scale=SCALE)
                runtime.up(["sync"])
            with console.status("initial snapshot, then idle"):
                idle = idle_memory(settings)
            with console.status(f"sync under {RATE:.0f} changes/s for {DURATION:.0f} s"):
                result = measure(settings)
            with console.status("catching up after the load, then idle"):
                result["after_load_mib"] = idle_memory(settings)
            result["idle_after_snapshot_mib"] = idle
        finally:
            runtime.down()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "memory.json").write_text(json.dumps(result, indent=2))
    return result


def print_table(console: Console, result: dict[str, Any]) -> None:
    table = Table("service", "idle after snapshot", "steady RSS", "peak RSS", "after the load",
                  "log growth",
                  title=f"memory under the sync load ({result['rate_changes_per_s']:.0f} "
                  f"changes/s, {result['duration_s']:.0f} s)")  # fmt: skip
    for name, peak in result["peak_mib"].items():
        growth = result["log_kib_per_min"].get(name)
        idle = result.get("idle_after_snapshot_mib", {}).get(name)
        after = result.get("after_load_mib", {}).get(name)
        table.add_row(name, f"{idle:.0f} MiB" if idle is not None else "",
                      f"{result['steady_mib'][name]:.0f} MiB", f"{peak:.0f} MiB",
                      f"{after:.0f} MiB" if after is not None else "",
                      f"{growth:.1f} KiB/min" if growth is not None else "")  # fmt: skip
    console.print(table)
