"""Disk use of a synced table under a steady change load: does it plateau?

`python -m bench lake-disk [PASSES]` (default 200) starts S3 and the catalog in a
temporary home on free ports and commits PASSES change batches through the
sync's Iceberg writer (``IcebergTarget``, the settings' write mode and
retention, here ``KEEP`` snapshots) into a ``ROWS``-row keyed table. Each batch
updates ``UPDATES`` rows all over the key range (copy-on-write rewrites the
files holding them) and inserts as many rows as it deletes, so the live data
stays the same size. Every ``EVERY`` passes it samples the MiB under the
table's location, split as ``bench.soak.lake_breakdown`` does, and the snapshot
count. Flat means the last quarter's median over the second quarter's is ~1.0.
Results: bench/results/lake_disk.json. Unlike ``bench soak`` it needs neither
PostgreSQL nor OpenSearch, so it runs on a busy machine too.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console
from rich.table import Table

from bench.soak import RESULTS, flatness, lake_breakdown
from lakehouse.lake.catalog import open_catalog
from lakehouse.sync.iceberg_expire import Retention
from lakehouse.sync.iceberg_target import IcebergTarget
from lakehouse.sync.model import TableBatch
from lakehouse.testing.faults import private_stack

ROWS, UPDATES, CHURN, KEEP, EVERY = 50_000, 300, 100, 20, 5
NAME = "bench_disk.items"
SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("note", pa.string())])


def change_batch(rng: random.Random, ids: list[int], next_id: int, step: int) -> TableBatch:
    """UPDATES updates anywhere in ``ids``, CHURN deletes and CHURN inserts (ids kept)."""
    batch = TableBatch(NAME, ("id",), SCHEMA)
    for ident in rng.sample(ids, UPDATES):
        batch.upsert({"id": ident, "note": f"changed at {step}"})
    for position in sorted(rng.sample(range(len(ids)), CHURN), reverse=True):
        batch.delete({"id": ids.pop(position)})
    for ident in range(next_id, next_id + CHURN):
        batch.upsert({"id": ident, "note": "new"})
        ids.append(ident)
    return batch


def measure(settings: Any, passes: int, console: Console) -> dict[str, Any]:
    catalog = open_catalog(settings)
    target = IcebergTarget(catalog, "bench-disk", retention=Retention(snapshots=KEEP, max_age_s=0))
    rows = pa.table({"id": range(ROWS), "note": ["initial"] * ROWS}, schema=SCHEMA)
    target.replace(NAME, ("id",), SCHEMA, [rows], "0/0")
    rng, ids, samples, started = random.Random(12), list(range(ROWS)), [], time.monotonic()
    for step in range(1, passes + 1):
        target.apply(NAME, change_batch(rng, ids, ROWS + step * CHURN, step), f"1/{step}")
        if step % EVERY == 0:
            snapshots = len(catalog.load_table(NAME).metadata.snapshots)
            samples.append({"pass": step, "t_s": round(time.monotonic() - started, 1),
                            "snapshots": snapshots, "lake_mib": lake_breakdown(settings),
                            "load_1m": round(os.getloadavg()[0], 2)})  # fmt: skip
            console.log(samples[-1])
    return {"samples": samples, "flat": flatness(samples, "lake_mib")}


def run_alone(console: Console, passes: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="lakehouse-bench-disk-") as home,
        private_stack(Path(home), ["s3", "catalog"]) as (settings, _),
    ):
        result = measure(settings, passes, console)
    result |= {"passes": passes, "rows": ROWS, "updates_per_pass": UPDATES,
               "inserts_and_deletes_per_pass": CHURN, "snapshots_kept": KEEP}  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "lake_disk.json").write_text(json.dumps(result, indent=2))
    return result


def print_table(console: Console, result: dict[str, Any]) -> None:
    loads = [s["load_1m"] for s in result["samples"]]
    table = Table("MiB under the table", "median, second quarter -> last", "last / second",
                  title=f"lake disk: {result['passes']} sync passes, {result['snapshots_kept']} "
                  f"snapshots kept, load average up to {max(loads, default=0):.1f}")  # fmt: skip
    for name, flat in result["flat"].items():
        shown = f"{flat['second_quarter']:.1f} -> {flat['last_quarter']:.1f}"
        table.add_row(name, shown, f"{flat['ratio']:.2f}x")
    console.print(table)
