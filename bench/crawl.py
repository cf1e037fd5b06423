"""The crawler: throughput over many small files, and zero-copy Parquet registration.

1. ``FILES`` small gzipped JSON Lines objects (20 events each, over 10 ``dt=``
   partitions) are crawled into one table: files/s and rows/s, against the
   floor of the same run merely fetching every object with as many threads.
2. ``PARQUET_MB`` of Parquet (files of ~128 MB) is registered in place by a
   crawl, against copying the same bytes: S3's server-side CopyObject of every
   file (the cheapest copy there is) and an ingest that rewrites them.

Every figure is checked (row counts, files in the table are the landed ones).
``python -m bench crawl [FILES [PARQUET_MB]]``; results: bench/results/crawl.json.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from minio import Minio
from minio.commonconfig import CopySource
from rich.console import Console
from rich.table import Table

from lakehouse import Lakehouse, load_settings
from lakehouse.config import Settings
from lakehouse.crawl import run_crawler
from lakehouse.crawl.load import READERS
from lakehouse.crawl.spec import CrawlerSpec
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env
from lakehouse.services.s3 import s3_client

RESULTS = Path(__file__).parent / "results"
FILES = 10_000
EVENTS_PER_FILE = 20
PARQUET_MB = 1024
PARQUET_FILE_MB = 128
BUCKET = "bench-landing"


def _client(settings: Settings) -> Minio:
    return s3_client(settings.s3_endpoint, settings.access_key, settings.secret_key,
                     settings.region)  # fmt: skip


def _land_small_files(client: Minio, files: int) -> int:
    """``files`` gzipped JSON Lines objects under small/events/dt=.../; the rows landed."""

    def put(i: int) -> None:
        lines = "".join(json.dumps({"id": i * EVENTS_PER_FILE + j, "kind": f"k{j % 5}",
                                    "value": j * 0.5}) + "\n" for j in range(EVENTS_PER_FILE))  # fmt: skip
        body = gzip.compress(lines.encode())
        key = f"small/events/dt=2026-11-{1 + i % 10:02d}/part-{i:06d}.json.gz"
        client.put_object(BUCKET, key, io.BytesIO(body), len(body))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(files)))
    return files * EVENTS_PER_FILE


def _fetch_all(client: Minio, prefix: str) -> float:
    """Seconds to list and GET every object under ``prefix`` (the crawl's I/O floor)."""
    started = time.perf_counter()
    names = [o.object_name for o in client.list_objects(BUCKET, prefix=prefix, recursive=True)]

    def get(name: str) -> int:
        response = client.get_object(BUCKET, name)
        try:
            return len(response.read())
        finally:
            response.close()
            response.release_conn()

    with ThreadPoolExecutor(READERS) as pool:
        list(pool.map(get, names))
    return time.perf_counter() - started


def throughput(settings: Settings, lake: Lakehouse, files: int) -> dict[str, Any]:
    client = _client(settings)
    rows = _land_small_files(client, files)
    floor = _fetch_all(client, "small/")
    spec = CrawlerSpec(name="bench_small", path=f"s3://{BUCKET}/small/", namespace="bench_crawl")
    started = time.perf_counter()
    report = run_crawler(settings, spec)
    seconds = time.perf_counter() - started
    counted = lake.sql("SELECT count(*) AS n FROM bench_crawl.events").column("n")[0].as_py()
    assert report.files_added == files and report.rows_added == rows == counted, report.failures
    return {
        "files": files, "rows": rows, "crawl_s": round(seconds, 2),
        "files_per_s": round(files / seconds, 1), "rows_per_s": round(rows / seconds),
        "fetch_only_s": round(floor, 2), "crawl_vs_fetch_only": round(seconds / floor, 2),
    }  # fmt: skip


def _land_parquet(client: Minio, megabytes: int) -> tuple[list[str], int]:
    """Parquet files of ~PARQUET_FILE_MB (random doubles: incompressible) totalling
    ``megabytes``; (their keys, rows)."""
    rows_per_file = PARQUET_FILE_MB * 1024 * 1024 // 16
    keys, rows = [], 0
    rng = np.random.default_rng(7)
    for i in range(max(1, megabytes // PARQUET_FILE_MB)):
        n = rows_per_file if megabytes >= PARQUET_FILE_MB else megabytes * 1024 * 1024 // 16
        table = pa.table({"id": np.arange(rows, rows + n), "x": rng.random(n)})
        with tempfile.NamedTemporaryFile(suffix=".parquet") as tmp:
            pq.write_table(table, tmp.name, compression="none")
            key = f"big/measures/part-{i:04d}.parquet"
            client.fput_object(BUCKET, key, tmp.name)
        keys.append(key)
        rows += n
    return keys, rows


def zero_copy(settings: Settings, lake: Lakehouse, megabytes: int) -> dict[str, Any]:
    client = _client(settings)
    keys, rows = _land_parquet(client, megabytes)
    size = sum(client.stat_object(BUCKET, k).size or 0 for k in keys)
    spec = CrawlerSpec(name="bench_big", path=f"s3://{BUCKET}/big/", namespace="bench_crawl")
    started = time.perf_counter()
    report = run_crawler(settings, spec)
    register_s = time.perf_counter() - started
    files = lake.table("bench_crawl.measures").inspect.files().column("file_path").to_pylist()
    assert sorted(files) == sorted(f"s3://{BUCKET}/{k}" for k in keys) and report.rows_added == rows
    started = time.perf_counter()
    for key in keys:
        client.copy_object(BUCKET, f"copy/{key}", CopySource(BUCKET, key))
    copy_s = time.perf_counter() - started
    started = time.perf_counter()
    for key in keys:
        lake.ingest(f"s3://{BUCKET}/{key}", "bench_crawl.measures_copied")
    ingest_s = time.perf_counter() - started
    return {
        "parquet_mb": round(size / 2**20), "parquet_files": len(keys), "rows": rows,
        "register_in_place_s": round(register_s, 3), "s3_server_side_copy_s": round(copy_s, 2),
        "ingest_rewrite_s": round(ingest_s, 2),
        "copy_vs_register_time": round(copy_s / register_s, 1),
        "ingest_vs_register_time": round(ingest_s / register_s, 1),
    }  # fmt: skip


def run_alone(files: int = FILES, parquet_mb: int = PARQUET_MB) -> dict[str, Any]:
    """S3 and the catalog in a temporary home, then both figures; writes crawl.json."""
    with tempfile.TemporaryDirectory(prefix="lakehouse-bench-") as home:
        os.environ.update(isolated_stack_env(Path(home)))
        settings = load_settings()
        runtime = LocalRuntime(settings)
        try:
            runtime.up(["s3", "catalog"])
            _client(settings).make_bucket(BUCKET)
            with Lakehouse(settings) as lake:
                result = {
                    "small_files": throughput(settings, lake, files),
                    "zero_copy": zero_copy(settings, lake, parquet_mb),
                    "scaled_down": files < FILES or parquet_mb < PARQUET_MB,
                }
        finally:
            runtime.down()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "crawl.json").write_text(json.dumps(result, indent=2))
    return result


def print_table(console: Console, result: dict[str, Any]) -> None:
    table = Table("figure", "measured", "baseline", title="crawler")
    s, z = result["small_files"], result["zero_copy"]
    table.add_row(f"crawl {s['files']:,} small gzipped JSONL files ({s['rows']:,} rows)",
                  f"{s['files_per_s']:,.0f} files/s, {s['rows_per_s']:,.0f} rows/s",
                  f"fetching them only: {s['fetch_only_s']:.1f} s "
                  f"(crawl {s['crawl_vs_fetch_only']:.1f}x)")  # fmt: skip
    table.add_row(f"register {z['parquet_mb']:,} MB of Parquet in place ({z['parquet_files']} files)",
                  f"{z['register_in_place_s']:.2f} s",
                  f"S3 copy {z['s3_server_side_copy_s']:.1f} s ({z['copy_vs_register_time']}x), "
                  f"ingest {z['ingest_rewrite_s']:.1f} s ({z['ingest_vs_register_time']}x)")  # fmt: skip
    if result.get("scaled_down"):
        table.add_row("scaled down", "yes", f"full: {FILES:,} files, {PARQUET_MB:,} MB")
    console.print(table)
