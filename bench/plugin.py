"""Figures for the pytest plugin: per-test `lake` overhead and session start-up."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

import boto3
from moto import mock_aws

from lakehouse import Lakehouse
from lakehouse.config import Settings
from lakehouse.testing.lake import IsolatedLake, unique_name
from lakehouse.testing.stack import DEFAULT_SERVICES, SharedStack, reuse_existing

ROUNDS = 20


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def lake_fixture_overhead(settings: Settings) -> dict[str, float]:
    """Create + drop of a test's namespace and prefix, against moto's bucket create + delete."""
    ours, moto = [], []
    with Lakehouse(settings) as client:
        client.catalog.list_namespaces()  # warm the HTTP session, as after the first test
        for _ in range(ROUNDS):
            started = time.perf_counter()
            IsolatedLake.create(client, unique_name("bench")).drop()
            ours.append(time.perf_counter() - started)
    for _ in range(ROUNDS):
        started = time.perf_counter()
        with mock_aws():
            s3 = boto3.client("s3", region_name="us-east-1")
            s3.create_bucket(Bucket="bench")
            s3.delete_bucket(Bucket="bench")
        moto.append(time.perf_counter() - started)
    return {
        "lake_fixture_ms": _median_ms(ours),
        "moto_bucket_ms": _median_ms(moto),
        "target_ms": 50.0,
    }


def session_startup(settings: Settings) -> dict[str, Any]:
    """Cold start of an s3+catalog stack in an empty home, and reuse of a running one."""
    cold = []
    for _ in range(3):
        shared = SharedStack(uuid.uuid4().hex[:12])
        started = time.perf_counter()
        stack = shared.acquire(DEFAULT_SERVICES)
        cold.append(time.perf_counter() - started)
        shared.release(stack)
    reuse = []
    for _ in range(5):
        started = time.perf_counter()
        assert reuse_existing(str(settings.home_dir), None, DEFAULT_SERVICES) is not None
        reuse.append(time.perf_counter() - started)
    return {"cold_start_s": statistics.median(cold), "reuse_s": statistics.median(reuse)}
