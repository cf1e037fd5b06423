"""Soak: the sync service under steady load, with faults, for a long time (not in CI).

`python -m bench soak [MINUTES]` (default 30) starts S3, the catalog, PostgreSQL,
OpenSearch and the sync service in a temporary home on free ports, loads the
shop sample (scale ``SCALE``) with its three integrations, and lets the shop
simulator write ``RATE`` changes/s for MINUTES. Meanwhile, at random moments,
the sync service (the follower) gets ``KILLS`` SIGKILLs and is started again,
PostgreSQL is restarted once and OpenSearch once. At the end the traffic stops,
and every integration must verify equal (`lakehouse.sync.verify`) within
``SETTLE_SECONDS``.

Every ``INTERVAL`` seconds it samples the resident memory (RSS, MiB) of each
service's process tree, and its proportional set size (PSS, MiB: shared pages such
as PostgreSQL's shared buffers counted once, not once per backend), the disk use (MiB) of each service's data directory,
the MiB of objects the lake's bucket lists, the MiB under the lake's tables
split into live, history, metadata and unreachable (``lake_breakdown``: ``history``,
``metadata`` and ``unreachable`` must level off, ``live`` grows with the inserted rows), the
1-minute load average, and each integration's lag (s)
from its status. Results, with the whole time
series, go to bench/results/soak.json; ``flat`` gives, per series, the median
of the second quarter of the run (after the snapshot and warm-up) and of the
last quarter, and their ratio: near 1.0 is flat.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.memory import sample_memory, wait_caught_up
from bench.soak_probes import jvm_heap_mib, jvm_live_heap_mib, postgres_mib
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.services.postgres import server_settings
from lakehouse.simulate import ShopSimulator
from lakehouse.sync.integrations import IntegrationStore
from lakehouse.sync.status import StatusStore
from lakehouse.testing.faults import kill_9, private_stack

RESULTS = Path(__file__).parent / "results"
SERVICES = ["s3", "catalog", "postgres", "opensearch", "sync"]
RATE = float(os.environ.get("LAKEHOUSE_BENCH_SOAK_RATE", "1000"))
SCALE = 0.2
KILLS = 10
INTERVAL = 5.0
SETTLE_SECONDS = 600.0
BREAKDOWN_EVERY = 6  # samples


def disk_mib(home: Path) -> dict[str, float]:
    """Allocated MiB under each directory of ``<home>/data`` (one per service)."""
    data, sizes = home / "data", {}
    for service in sorted(p for p in data.iterdir() if p.is_dir()) if data.is_dir() else []:
        total = 0
        for root, _, files in os.walk(service):
            for name in files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_blocks * 512
                except FileNotFoundError:  # deleted while walking (expiry, compaction)
                    continue
        sizes[service.name] = round(total / 2**20, 1)
    return sizes


def lake_object_mib(settings: Settings) -> float | None:
    """MiB of the objects the warehouse bucket lists: what the lake keeps, as opposed
    to what S3's volumes take on disk (deleted objects free space only once S3
    compacts its volumes). None while S3 does not answer."""
    from lakehouse.services.s3 import s3_client

    client = s3_client(settings.s3_endpoint, settings.access_key, settings.secret_key,
                       settings.region)  # fmt: skip
    try:
        objects = client.list_objects(settings.warehouse_bucket, recursive=True)
        return round(sum(o.size or 0 for o in objects) / 2**20, 1)
    except Exception:  # S3 restarting: a gap in the series, not a failure
        return None


def lake_breakdown(settings: Settings) -> dict[str, float] | None:
    """MiB under the lake's table locations, split into what the current snapshots
    read (``live``: grows with the data), what only older retained snapshots hold
    (``history``: bounded by the retention), the metadata files (``metadata``: the
    newest 100 are kept) and what no
    snapshot reaches (``unreachable``: left by killed commits). None while the
    catalog or S3 does not answer."""
    from lakehouse.lake.catalog import open_catalog
    from lakehouse.services.s3 import s3_client
    from lakehouse.sync.iceberg_expire import ReachableFiles

    client = s3_client(settings.s3_endpoint, settings.access_key, settings.secret_key,
                       settings.region)  # fmt: skip
    # history_manifests / history_deletes: the parts of history that are manifests and
    # manifest lists (.avro) and position delete files; the rest of it is data files
    totals = {"live": 0, "history": 0, "history_manifests": 0, "history_deletes": 0,
              "metadata": 0, "unreachable": 0}  # fmt: skip
    try:
        catalog = open_catalog(settings)
        for namespace in catalog.list_namespaces():
            for identifier in catalog.list_tables(namespace):
                table = catalog.load_table(identifier)
                bucket, _, prefix = table.location().removeprefix("s3://").partition("/")
                stored = {f"s3://{bucket}/{o.object_name}": o.size or 0
                          for o in client.list_objects(bucket, prefix=prefix + "/", recursive=True)}  # fmt: skip
                reachable = ReachableFiles().of(table, list(table.metadata.snapshots))
                current = table.current_snapshot()
                live = ReachableFiles().of(table, [current]) if current else set()
                for path, size in stored.items():
                    kind = "live" if path in live else "history"
                    if path.endswith(".metadata.json"):
                        kind = "metadata"
                    if path not in reachable and not path.endswith(".metadata.json"):
                        kind = "unreachable"
                    totals[kind] += size
                    if kind == "history" and path.endswith(".avro"):
                        totals["history_manifests"] += size
                    if kind == "history" and path.endswith("-deletes.parquet"):
                        totals["history_deletes"] += size
    except Exception:  # a service restarting: a gap in the series, not a failure
        return None
    return {kind: round(size / 2**20, 1) for kind, size in totals.items()}


def fault_plan(duration: float, seed: int = 12) -> list[tuple[float, str]]:
    """(seconds from the start, what) for every fault, in time order: the kills spread at
    random over the run (not in its first or last tenth), the restarts at 40% and 70%."""
    rng = random.Random(seed)
    kills = sorted(rng.uniform(0.1, 0.9) * duration for _ in range(KILLS))
    plan = [(t, "kill sync") for t in kills]
    plan += [(0.4 * duration, "restart postgres"), (0.7 * duration, "restart opensearch")]
    return sorted(plan)


def inject(settings: Settings, fault: str) -> None:
    runtime = LocalRuntime(settings)
    if fault == "kill sync":
        kill_9(settings, "sync")
        runtime.up(["sync"])
    else:
        service = fault.split()[-1]
        runtime.down([service])
        runtime.up([service])


def sample(settings: Settings, names: list[str], started: float,
           breakdown: bool = True) -> dict[str, Any]:  # fmt: skip
    """One sample; ``breakdown``: with ``lake_breakdown`` (it reads every manifest)."""
    statuses = {name: StatusStore(settings).read(name) for name in names}
    runtime = LocalRuntime(settings)
    return {
        "t_s": round(time.monotonic() - started, 1),
        "rss_mib": sample_memory(runtime, SERVICES),
        "pss_mib": sample_memory(runtime, SERVICES, proportional=True),
        "disk_mib": disk_mib(settings.home_dir) | {"lake objects": lake_object_mib(settings)},
        "lake_mib": lake_breakdown(settings) if breakdown else None,
        "catalog_heap_mib": jvm_heap_mib(runtime.pid("catalog")) if breakdown else None,
        "postgres_mib": postgres_mib(settings, runtime.pid("postgres")) if breakdown else None,
        "lag_s": {name: s.lag_seconds for name, s in statuses.items()},
        "load_1m": round(os.getloadavg()[0], 2),  # other work on the machine skews the figures
    }


def soak(settings: Settings, duration: float, console: Console) -> dict[str, Any]:
    """The load, the faults and the samples; see the module doc."""
    names = list(IntegrationStore(settings).all())
    stop, faults = threading.Event(), []
    samples: list[dict[str, Any]] = []
    simulator = ShopSimulator(settings.postgres_dsn(), RATE, seed=21)
    stats: list[Any] = []
    traffic = threading.Thread(target=lambda: stats.append(simulator.run(stop=stop)), daemon=True)
    plan, started = fault_plan(duration), time.monotonic()
    traffic.start()
    try:
        while (elapsed := time.monotonic() - started) < duration:
            while plan and plan[0][0] <= elapsed:
                _, fault = plan.pop(0)
                console.log(f"{elapsed:.0f} s: {fault}")
                record: dict[str, Any] = {"t_s": round(elapsed, 1), "fault": fault}
                try:
                    inject(settings, fault)
                except LakehouseError as exc:  # e.g. too slow to restart on a busy machine
                    console.log(f"{fault} failed: {exc.message}")
                    record["failed"] = exc.message
                faults.append(record)
            samples.append(sample(settings, names, started, len(samples) % BREAKDOWN_EVERY == 0))
            time.sleep(INTERVAL)
    finally:
        stop.set()
        traffic.join(timeout=60)
    return {"samples": samples, "faults": faults,
            "written_changes": stats[0].changes if stats else None}  # fmt: skip


def settle(settings: Settings) -> dict[str, Any]:
    """Seconds until every integration verifies equal, and the last reports."""
    from lakehouse.sync.verify import verify

    store, started = IntegrationStore(settings), time.monotonic()
    reports: dict[str, Any] = {}
    wait_caught_up(settings, timeout=SETTLE_SECONDS)
    while time.monotonic() - started < SETTLE_SECONDS:
        try:
            reports = {n: [str(r) for r in verify(settings, i) if not r.ok] or "equal"
                       for n, i in store.all().items()}  # fmt: skip
        except Exception as exc:  # a target still catching up after a fault
            reports = {"error": f"{type(exc).__name__}: {exc}"}
        if reports and all(value == "equal" for value in reports.values()):
            return {"equal": True, "seconds": round(time.monotonic() - started, 1)}
        time.sleep(5)
    return {"equal": False, "last_reports": reports}


def flatness(samples: list[dict[str, Any]], kind: str) -> dict[str, dict[str, float]]:
    """Per series: the medians of the second and of the last quarter, and their ratio."""
    quarter = max(1, len(samples) // 4)
    second, last = samples[quarter : 2 * quarter], samples[-quarter:]
    figures = {}
    names = {name for s in samples for name in s.get(kind) or {}}
    for name in sorted(names):
        early = [s[kind][name] for s in second if (s.get(kind) or {}).get(name) is not None]
        late = [s[kind][name] for s in last if (s.get(kind) or {}).get(name) is not None]
        if early and late and statistics.median(early):
            early_median, late_median = statistics.median(early), statistics.median(late)
            figures[name] = {"second_quarter": early_median, "last_quarter": late_median,
                             "ratio": round(late_median / early_median, 2)}  # fmt: skip
    return figures


def edge_ratios(samples: list[dict[str, Any]], kind: str,
                seconds: float = 300.0) -> dict[str, dict[str, float]]:  # fmt: skip
    """Per series: the medians of the first and of the last ``seconds`` of the run, and
    their ratio (the first minutes include the warm-up after the snapshots)."""
    end = samples[-1]["t_s"] if samples else 0.0
    first = [s for s in samples if s["t_s"] <= seconds]
    last = [s for s in samples if s["t_s"] >= end - seconds]
    figures = {}
    for name in sorted({name for s in samples for name in s.get(kind) or {}}):
        early = [s[kind][name] for s in first if (s.get(kind) or {}).get(name) is not None]
        late = [s[kind][name] for s in last if (s.get(kind) or {}).get(name) is not None]
        if early and late and statistics.median(early):
            figures[name] = {"first": statistics.median(early), "last": statistics.median(late),
                             "ratio": round(statistics.median(late) / statistics.median(early), 2)}  # fmt: skip
    return figures


def run_alone(console: Console, minutes: float) -> dict[str, Any]:
    """A throwaway stack, the soak, the settle; writes bench/results/soak.json."""
    from lakehouse.sample import load_shop_sample

    # A restart under load may take longer than `up`'s 90 s; the soak judges the
    # data and the flatness, not start-up speed (bench startup measures that).
    os.environ.setdefault("LAKEHOUSE_STARTUP_TIMEOUT", "300")
    with (
        tempfile.TemporaryDirectory(prefix="lakehouse-bench-soak-") as home,
        private_stack(Path(home), SERVICES[:-1]) as (settings, env),
    ):
        os.environ.update(env)  # the sync service and verify read the same stack
        load_shop_sample(settings, scale=SCALE)
        LocalRuntime(settings).up(["sync"])
        with console.status("initial snapshots"):
            wait_caught_up(settings)
        live_before = jvm_live_heap_mib(LocalRuntime(settings).pid("catalog"))
        with console.status(f"soak: {RATE:.0f} changes/s for {minutes:g} min, with faults"):
            result = soak(settings, minutes * 60, console)
        result["catalog_live_heap_mib"] = {
            "before_load": live_before,
            "after_load": jvm_live_heap_mib(LocalRuntime(settings).pid("catalog")),
        }
        with console.status("traffic stopped: waiting until every integration verifies"):
            result["settle"] = settle(settings)
        result["retained_snapshots"] = retained_snapshots(settings)
        log = Path(home) / "logs" / "sync.log"  # what the sync service said, for the record
        result["sync_log_tail"] = (
            log.read_text(errors="replace").splitlines()[-400:] if log.exists() else []
        )
    loads = [s["load_1m"] for s in result["samples"]]
    result |= {"minutes": minutes, "rate_changes_per_s": RATE, "scale": SCALE,
               "snapshots_kept": settings.sync_snapshots_kept,
               "postgres_shared_buffers": server_settings("")["shared_buffers"],
               "load_1m": {"median": statistics.median(loads), "max": max(loads)} if loads else None,
               "flat": {kind: flatness(result["samples"], kind) for kind in ("rss_mib", "pss_mib", "disk_mib", "lake_mib", "catalog_heap_mib", "postgres_mib")}
                       | {"history_per_live_mib": history_per_live(result["samples"])},
               "first_vs_last_5_min": {kind: edge_ratios(result["samples"], kind)
                                       for kind in ("rss_mib", "pss_mib", "disk_mib", "lake_mib")}}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2))
    return result


def retained_snapshots(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Per table, what each retained snapshot added and removed (its summary and the
    sync's properties, oldest first): which commits the history is made of."""
    from lakehouse.lake.catalog import open_catalog

    keys = ("operation", "added-files-size", "removed-files-size", "added-data-files",
            "deleted-data-files", "added-delete-files", "removed-delete-files",
            "added-records", "deleted-records", "total-data-files", "total-delete-files",
            "total-files-size")  # fmt: skip
    catalog, tables = open_catalog(settings), {}
    for namespace in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            table = catalog.load_table(identifier)
            tables[".".join(identifier)] = [
                {"t": s.timestamp_ms, "id": s.snapshot_id}
                | {k: v for k, v in (s.summary.additional_properties if s.summary else {}).items()
                   if k in keys or k.startswith("lakehouse")}
                | {"operation": str(s.summary.operation) if s.summary else None}
                for s in sorted(table.metadata.snapshots, key=lambda s: s.timestamp_ms)
            ]  # fmt: skip
    return tables


def history_per_live(samples: list[dict[str, Any]]) -> dict[str, float] | None:
    """``flatness`` of the retained history's MiB per live MiB: the live data grows
    with the inserted rows, so history that stays flat per live MiB is bounded."""
    ratios = [{"ratio": {"history/live": s["lake_mib"]["history"] / s["lake_mib"]["live"]}}
              for s in samples if s.get("lake_mib") and s["lake_mib"]["live"]]  # fmt: skip
    return flatness(ratios, "ratio")["history/live"] if len(ratios) >= 4 else None


def print_table(console: Console, result: dict[str, Any]) -> None:
    table = Table("series", "median, second quarter -> last", "last / second quarter",
                  title=f"soak: {result['rate_changes_per_s']:.0f} changes/s for "
                  f"{result['minutes']:g} min, {len(result['faults'])} faults")  # fmt: skip
    samples = result["samples"]
    for kind, unit in (("rss_mib", "MiB RSS"), ("pss_mib", "MiB PSS"), ("disk_mib", "MiB on disk"),
                       ("postgres_mib", "MiB of PostgreSQL"), ("catalog_heap_mib", "MiB catalog heap"),
                       ("lake_mib", "MiB of the lake's tables")):  # fmt: skip
        for name, flat in result["flat"].get(kind, {}).items():
            shown = f"{flat['second_quarter']:.0f} -> {flat['last_quarter']:.0f}"
            table.add_row(f"{name} {unit}", shown, f"{flat['ratio']:.2f}x")
    lags = [v for s in samples for v in s["lag_s"].values() if v is not None]
    if lags:
        table.add_row("status lag (all integrations)", f"median {statistics.median(lags):.2f} s",
                      f"max {max(lags):.1f} s")  # fmt: skip
    if result.get("load_1m"):
        load = result["load_1m"]
        table.add_row(
            "load average (1 min)", f"median {load['median']:.1f}", f"max {load['max']:.1f}"
        )
    live = result.get("catalog_live_heap_mib") or {}
    table.add_row("catalog live heap (after a full GC)",
                  f"{live.get('before_load')} -> {live.get('after_load')} MiB", "before -> after the load")  # fmt: skip
    settled = result["settle"]
    verdict = f"equal after {settled['seconds']} s" if settled["equal"] else "NOT equal"
    table.add_row("verify after the load", verdict, "")
    console.print(table)
