"""Spark as an engine: Spark Connect sessions, and batch jobs run like EMR steps."""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from lakehouse.config import Settings
from lakehouse.engines.limits import check_result_size
from lakehouse.engines.missing_files import missing_file_error
from lakehouse.engines.results import conform
from lakehouse.errors import LakehouseError, QueryError
from lakehouse.services.catalog import DEFAULT_NAMESPACE
from lakehouse.services.spark import JobOutput, SparkService

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

ENGINE = "spark"
SCAN_SPLIT_BYTES = "16m"
# How Spark says a result did not fit in the driver.
TOO_LARGE = ("TaskResultLost", "maxResultSize", "OutOfMemoryError")
TOO_LARGE_HINT = (
    "Add a LIMIT or aggregate further, or write the result to a table with "
    "CREATE TABLE ns.result AS SELECT ...; spark_driver_memory sets the driver's heap."
)


class SparkEngine:
    """Runs SQL through the lake house's Spark Connect server."""

    name = ENGINE

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._session: SparkSession | None = None

    def session(self) -> SparkSession:
        """A Spark Connect session; ``lake`` is its default catalog."""
        if self._session is None:
            from pyspark.sql import SparkSession

            # The Connect client logs every failed query as an ERROR with the JVM
            # stack trace; lakehouse raises a QueryError for it instead.
            logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
            self._session = SparkSession.builder.remote(self.settings.spark_uri).getOrCreate()
            # Smaller scan tasks: each task's result waits in the driver's
            # memory store, and one 80 MiB task result of a 512m driver is
            # dropped there (TaskResultLost) instead of streamed to the client.
            self._session.conf.set("spark.sql.files.maxPartitionBytes", SCAN_SPLIT_BYTES)
            # The server's JVM zone is whatever TZ `lakehouse up` ran with:
            # every engine answers in UTC.
            self._session.conf.set("spark.sql.session.timeZone", "UTC")
        return self._session

    def sql(self, query: str, namespace: str | None = None) -> pa.Table:
        """Run ``query`` (Spark SQL); Arrow in the result contract's types.

        Raises ``QueryError``, also for a result over ``result_max_bytes``.
        """
        from pyspark.errors import PySparkException

        spark = self.session()
        try:
            if namespace:
                spark.sql(f"USE {self.settings.catalog_name}.`{namespace}`")
            result = conform(_to_arrow(spark.sql(query)))
            check_result_size(ENGINE, query, result.nbytes, self.settings.result_max_bytes)
            return result
        except PySparkException as exc:
            raise self._query_error(query, exc) from exc
        finally:
            if namespace:
                spark.sql(f"USE {self.settings.catalog_name}.{DEFAULT_NAMESPACE}")

    def _query_error(self, query: str, exc: Exception) -> QueryError:
        error_class = getattr(exc, "getCondition", lambda: None)()
        if error_class is None and "UNAVAILABLE" in str(exc):
            return QueryError(ENGINE, query, f"cannot reach Spark Connect at {self.settings.spark_uri}",
                              hint="Start it with `lakehouse up --services spark`.")  # fmt: skip
        if any(sign in str(exc) for sign in TOO_LARGE):
            return QueryError(ENGINE, query, "the result is too large for the Spark driver to return",
                              hint=TOO_LARGE_HINT)  # fmt: skip
        if (missing := missing_file_error(ENGINE, query, _first_line(exc))) is not None:
            return missing
        return QueryError(ENGINE, query, _first_line(exc), hint=_hint(exc))

    def close(self) -> None:
        if self._session is not None:
            self._session.stop()
            self._session = None


def _to_arrow(frame: DataFrame) -> pa.Table:
    """The frame's rows as Arrow, also when a column has no type (``[]``, ``MAP()``).

    pyspark's ``toArrow`` casts the result to a schema in which the elements of
    a typeless list or the keys of a typeless map are declared non-nullable,
    which Arrow refuses before any row is fetched; the table the server sent
    is valid, and the result contract conforms it.
    """
    try:
        return frame.toArrow()
    except ValueError as exc:
        if "null type field may not be non-nullable" not in str(exc):
            raise
        table, _ = frame._to_table()  # type: ignore[operator]  # Connect-only method
        return table


def _first_line(exc: Exception) -> str:
    """The error without the JVM stack trace Spark appends."""
    return str(exc).split("JVM stacktrace:")[0].strip()


def _hint(exc: Exception) -> str | None:
    name = type(exc).__name__
    if name == "ParseException":
        return "Check the SQL syntax (Spark SQL dialect)."
    if "TABLE_OR_VIEW_NOT_FOUND" in str(exc):
        return "Run `lakehouse tables` to see the tables; names are namespace.table."
    return None


@dataclass(frozen=True)
class JobRun:
    """A finished `spark submit`: its exit status, duration and log."""

    job: str
    exit_code: int
    seconds: float
    log: Path


def submit(settings: Settings, job: Path, args: list[str], echo: bool = False) -> JobRun:
    """Run ``job`` with spark-submit like an EMR step; its log goes under <home>/logs/spark-jobs."""
    if not job.is_file():
        raise LakehouseError(
            f"Spark job {job} does not exist.", hint="Pass the path of a .py file."
        )
    service = SparkService(settings)
    service.prepare()
    logs = settings.home_dir / "logs" / "spark-jobs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"{job.stem}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    command = service.submit_command(
        ["--name", job.stem, str(job), *args], settings.spark_job_memory
    )
    started = time.monotonic()
    shown = JobOutput()  # Spark's INFO records go to the log file only
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=_job_env(service), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            text = line.decode(errors="replace")
            if shown.shows(text) and echo:
                print(text, end="", flush=True)
        code = process.wait()
    return JobRun(job.name, code, time.monotonic() - started, log)


# pyspark sets these in its own process once a Connect session exists; a
# classic spark-submit job inheriting them would look for a Connect server.
CONNECT_MODE_VARIABLES = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE")


def _job_env(service: SparkService) -> dict[str, str]:
    """The job's environment: this command's settings exactly (a job that opens the
    lake itself must find this stack, not the one its working directory implies)."""
    import os

    from lakehouse.config import settings_environment

    inherited = {k: v for k, v in os.environ.items() if k not in CONNECT_MODE_VARIABLES}
    return {**inherited, **settings_environment(service.settings), **service.environment()}
