"""The pytest plugin, tested with pytester against real servers.

Inner runs reuse this session's stack through LAKEHOUSE_HOME, except where a
test checks what happens without one (fresh start, xdist, missing JDK, failure).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

from lakehouse import Lakehouse
from lakehouse.runtimes.local import port_is_free
from lakehouse.testing import LakehouseStack

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).parents[2] / "examples" / "testing"

RECORDING_TESTS = """
import json, os, pyarrow as pa

def record(lakehouse_stack, lake, rows):
    lake.ingest(pa.table({"x": list(range(rows))}), "orders")
    seen = lake.sql("SELECT count(*) AS n FROM orders").column("n")[0].as_py()
    with open(os.environ["RECORD_FILE"], "a") as out:
        out.write(json.dumps({"namespace": lake.namespace, "seen": seen, "rows": rows,
                              "s3_port": lakehouse_stack.settings.s3_port,
                              "reused": lakehouse_stack.reused, "pid": os.getpid()}) + "\\n")

def test_one(lakehouse_stack, lake): record(lakehouse_stack, lake, 1)
def test_two(lakehouse_stack, lake): record(lakehouse_stack, lake, 2)
def test_three(lakehouse_stack, lake): record(lakehouse_stack, lake, 3)
def test_four(lakehouse_stack, lake): record(lakehouse_stack, lake, 4)
"""


@pytest.fixture
def outer(
    lakehouse_stack: LakehouseStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> LakehouseStack:
    """This session's stack, named to inner runs through LAKEHOUSE_* variables."""
    for key, value in lakehouse_stack.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RECORD_FILE", str(tmp_path / "record.jsonl"))
    return lakehouse_stack


def records(tmp_path: Path) -> list[dict[str, object]]:
    path = tmp_path / "record.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def without_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_") and n != "LAKEHOUSE_CACHE"]:
        monkeypatch.delenv(name)


def test_tests_are_isolated_and_cleaned_up(
    outer: LakehouseStack, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(RECORDING_TESTS)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=4)
    seen = records(tmp_path)
    assert [(r["seen"], r["rows"]) for r in seen] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert len({r["namespace"] for r in seen}) == 4
    assert all(r["reused"] and r["s3_port"] == outer.settings.s3_port for r in seen)
    with Lakehouse(outer.settings) as lake:
        left = {ns[0] for ns in lake.catalog.list_namespaces()}
        assert not left & {str(r["namespace"]) for r in seen}


def test_keep_leaves_the_namespace(
    outer: LakehouseStack, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(RECORDING_TESTS)
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--lakehouse-keep", "-k", "one"
    ).assert_outcomes(passed=1)
    (kept,) = records(tmp_path)
    with Lakehouse(outer.settings) as lake:
        assert lake.table(f"{kept['namespace']}.orders").scan().to_arrow().num_rows == 1
        lake.catalog.purge_table(f"{kept['namespace']}.orders")
        lake.catalog.drop_namespace(str(kept["namespace"]))


def test_a_stack_named_by_url_is_reused(
    outer: LakehouseStack,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    without_stack(monkeypatch)
    monkeypatch.setenv("RECORD_FILE", str(tmp_path / "record.jsonl"))
    s = outer.settings
    url = f"http://127.0.0.1:{s.catalog_port}?s3=http://127.0.0.1:{s.s3_port}"
    pytester.makepyfile(RECORDING_TESTS)
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-k", "one", f"--lakehouse-url={url}"
    ).assert_outcomes(passed=1)
    (seen,) = records(tmp_path)
    assert seen["reused"] and seen["s3_port"] == s.s3_port


def test_aws_env_makes_plain_boto3_hit_the_lake(
    outer: LakehouseStack, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile("""
        import boto3

        def test_plain_boto3(aws_env, s3_bucket):
            s3 = boto3.client("s3")   # no endpoint, no keys: as in application code
            s3.put_object(Bucket=s3_bucket, Key="k.txt", Body=b"data")
            assert s3.get_object(Bucket=s3_bucket, Key="k.txt")["Body"].read() == b"data"
            assert aws_env["AWS_ENDPOINT_URL"].endswith(":PORT")
    """.replace("PORT", str(outer.settings.s3_port)))  # fmt: skip
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    with Lakehouse(outer.settings) as lake:
        assert not [
            b.name for b in lake.s3.list_buckets() if b.name.startswith("t-test-plain-boto3")
        ]


def test_engine_fixtures_skip_with_a_reason(
    outer: LakehouseStack, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile("""
        def test_trino(trino_conn): pass
        def test_spark(spark): pass
        def test_opensearch(opensearch): pass
    """)
    # Only s3 and catalog are asked for, so the engine fixtures skip, saying why.
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-rs", "--lakehouse-services=s3,catalog"
    )
    result.assert_outcomes(skipped=3)
    result.stdout.fnmatch_lines(
        ["*needs trino: the 'trino' service is not part of this lakehouse stack*"]
    )


@pytest.mark.lakehouse_trino
@pytest.mark.lakehouse_spark
def test_engine_fixtures_use_the_tests_namespace(
    outer: LakehouseStack, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile("""
        import pyarrow as pa
        import pytest

        @pytest.mark.lakehouse_trino
        def test_trino(lake, trino_conn):
            lake.ingest(pa.table({"x": [1, 2, 3]}), "t")
            cursor = trino_conn.cursor()
            cursor.execute("SELECT sum(x) FROM t")
            assert cursor.fetchall() == [[6]]

        @pytest.mark.lakehouse_spark
        def test_spark(lake, spark):
            lake.ingest(pa.table({"x": [4, 5]}), "t")
            assert spark.sql("SELECT sum(x) AS s FROM t").first()["s"] == 9
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_fresh_stack_is_shared_by_xdist_workers_and_stopped(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_stack(monkeypatch)
    monkeypatch.setenv("RECORD_FILE", str(tmp_path / "record.jsonl"))
    pytester.makepyfile(RECORDING_TESTS)
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2").assert_outcomes(passed=4)
    seen = records(tmp_path)
    assert len(seen) == 4 and not any(r["reused"] for r in seen)
    assert len({r["pid"] for r in seen}) == 2, "both workers ran tests"
    (port,) = {r["s3_port"] for r in seen}
    assert port_is_free("127.0.0.1", int(port)), "the stack was not stopped at the end of the run"


def test_collect_only_starts_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_stack(monkeypatch)
    pytester.makepyfile(RECORDING_TESTS)
    before = set(Path(tempfile.gettempdir()).glob("lakehouse-pytest-*"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    assert result.ret == 0
    assert set(Path(tempfile.gettempdir()).glob("lakehouse-pytest-*")) == before


def test_missing_jdk_skips_only_jvm_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_stack(monkeypatch)
    old = tmp_path / "jdk11"
    (old / "bin").mkdir(parents=True)
    (old / "release").write_text('JAVA_VERSION="11.0.2"\n')
    monkeypatch.setenv("LAKEHOUSE_JAVA_HOME", str(old))
    pytester.makepyfile("""
        def test_needs_catalog(lake): pass
        def test_needs_only_s3(s3_bucket): assert s3_bucket
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*needs catalog: no suitable JDK*too old*"])


def test_a_stack_that_cannot_start_fails_the_run_once(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    without_stack(monkeypatch)
    monkeypatch.setenv("LAKEHOUSE_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("LAKEHOUSE_MAVEN_REPO", "http://127.0.0.1:9/maven2")
    pytester.makepyfile("""
        def test_a(lake): pass
        def test_b(lake): pass
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 3
    text = result.stdout.str() + result.stderr.str()
    assert text.count("lakehouse stack did not come up") == 1
    assert "Could not download" in text


@pytest.mark.lakehouse_aws  # the example's Athena test reuses this session's stack
def test_the_example_application_tests_pass(outer: LakehouseStack) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES)],
        capture_output=True, text=True, timeout=300, cwd=EXAMPLES,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
