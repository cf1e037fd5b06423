"""Bounded logs and quiet defaults: pure logic (the servers are in test_operations)."""

from __future__ import annotations

import logging
import logging.handlers
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.errors import ConfigError
from lakehouse.runtimes.logfiles import readable_log, readable_tail, rotate
from lakehouse.services import service_files_dir
from lakehouse.services.catalog import LOG_FLAGS
from lakehouse.services.postgres import PostgresService
from lakehouse.services.s3 import S3Service
from lakehouse.services.spark import JobOutput, spark_conf
from lakehouse.services.sync import LOG_FILE_VARIABLE, SyncService
from lakehouse.services.trino import LOG_LEVELS
from lakehouse.sync.runner import configure_worker


def test_rotate_keeps_three_old_files(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    for start in range(5):
        log.write_text(f"start {start}\n")
        rotate(log)
    assert not log.exists()
    kept = {p.name: p.read_text() for p in tmp_path.iterdir()}
    assert kept == {"svc.log.1": "start 4\n", "svc.log.2": "start 3\n", "svc.log.3": "start 2\n"}


def test_rotate_leaves_an_empty_or_missing_file_alone(tmp_path: Path) -> None:
    log = tmp_path / "svc.log"
    rotate(log)
    log.write_text("")
    rotate(log)
    assert [p.name for p in tmp_path.iterdir()] == ["svc.log"]


def test_readable_log_prefers_the_services_own_newest_file(tmp_path: Path) -> None:
    stdout = tmp_path / "postgres.log"
    own = tmp_path / "postgres"
    assert readable_log(stdout, own) == stdout  # no own log yet
    own.mkdir()
    (own / "postgresql-01.log").write_text("old")
    newest = own / "postgresql-02.log"
    newest.write_text("new")
    os.utime(own / "postgresql-01.log", (1, 1))
    assert readable_log(stdout, own) == newest
    assert readable_log(stdout, None) == stdout


def test_postgres_writes_a_day_of_hourly_files_into_its_own_log_dir(tmp_path: Path) -> None:
    service = PostgresService(load_settings(home=tmp_path))
    command = " ".join(service.spec().command)
    for setting in ("logging_collector=on", "log_filename=postgresql-%H.log",
                    "log_truncate_on_rotation=on", "log_rotation_age=60",
                    f"log_directory={tmp_path / 'logs' / 'postgres'}"):  # fmt: skip
        assert setting in command
    assert service.spec().extra_paths["log"] == tmp_path / "logs" / "postgres"


def test_noisy_loggers_are_turned_down_at_their_source() -> None:
    assert "org.apache.iceberg=WARN" in LOG_LEVELS.splitlines()
    assert "-Dorg.slf4j.simpleLogger.log.org.apache.iceberg=warn" in LOG_FLAGS


SPARK_OUTPUT = """\
WARNING: Using incubator modules: jdk.incubator.vector
25/11/29 23:44:12 INFO SparkContext: Running Spark version 4.1.0
25/11/29 23:44:12 INFO ResourceUtils: ==============================================================
  continuation of an INFO record
25/11/29 23:44:13 WARN NativeCodeLoader: Unable to load native-hadoop library
rows written: 42
25/11/29 23:44:14 INFO DAGScheduler: Job 0 finished
Traceback (most recent call last):
  File "job.py", line 3, in <module>
ValueError: boom
"""


def test_spark_job_output_hides_only_sparks_info_records() -> None:
    output = JobOutput()
    shown = [line for line in SPARK_OUTPUT.splitlines(keepends=True) if output.shows(line)]
    assert "".join(shown) == (
        "WARNING: Using incubator modules: jdk.incubator.vector\n"
        "25/11/29 23:44:13 WARN NativeCodeLoader: Unable to load native-hadoop library\n"
        "rows written: 42\n"
        "Traceback (most recent call last):\n"
        '  File "job.py", line 3, in <module>\n'
        "ValueError: boom\n"
    )


@pytest.fixture
def root_logger_restored() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


def test_sync_worker_logs_warnings_to_its_rotating_file(
    tmp_path: Path, root_logger_restored: logging.Logger
) -> None:
    service = SyncService(load_settings(home=tmp_path))
    spec = service.spec()
    path = Path(spec.env[LOG_FILE_VARIABLE])
    assert spec.extra_paths["log"] == path
    configure_worker({LOG_FILE_VARIABLE: str(path)})
    handler = next(
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.RotatingFileHandler)
    )
    assert handler.maxBytes > 0 and handler.backupCount > 0
    logging.getLogger("pyiceberg.test").warning("a warning worth reading")
    logging.getLogger("lakehouse.sync").info("routine")
    handler.flush()
    text = path.read_text()
    assert "WARNING pyiceberg.test: a warning worth reading" in text
    assert "routine" not in text


def test_seaweedfs_admin_grpc_port_is_where_its_plugin_worker_dials() -> None:
    settings = load_settings(s3_internal_port_base=20000)
    service = S3Service(settings)
    ports = service.internal_ports()
    # weed mini 4.48's worker dials the admin HTTP port + 10000, whatever the flag says.
    assert ports["admin-grpc"] == ports["admin"] + 10000
    assert f"-admin.port.grpc={ports['admin'] + 10000}" in service.spec().command
    declared = {port.name: port.number for port in service.spec().ports}
    assert declared["admin-grpc"] == ports["admin"] + 10000  # checked free before `up`


def test_seaweedfs_admin_grpc_port_above_65535_is_refused_with_a_hint() -> None:
    service = S3Service(load_settings(s3_internal_port_base=60000))
    with pytest.raises(ConfigError) as refused:
        service.internal_ports()
    assert "LAKEHOUSE_S3_INTERNAL_PORT_BASE" in (refused.value.hint or "")


def test_trino_keeps_warnings_and_the_server_started_line_only() -> None:
    levels = dict(line.split("=") for line in LOG_LEVELS.splitlines())
    assert levels["io.trino"] == levels["io.airlift"] == "WARN"
    assert levels["io.trino.server.Server"] == "INFO"  # its "SERVER STARTED" line


def test_catalog_clients_name_their_auth_type_and_token_endpoint() -> None:
    settings = load_settings()
    conf = spark_conf(settings)
    prefix = f"spark.sql.catalog.{settings.catalog_name}"
    assert conf[f"{prefix}.rest.auth.type"] == "oauth2"
    assert conf[f"{prefix}.oauth2-server-uri"] == f"{settings.catalog_uri}/v1/oauth/tokens"
    trino = (service_files_dir() / "trino" / "catalog" / "lake.properties").read_text()
    assert "iceberg.rest-catalog.security=OAUTH2" in trino  # Trino names rest.auth.type itself


def test_the_tail_of_a_rotating_log_runs_across_its_files(tmp_path: Path) -> None:
    # PostgreSQL starts a new file every hour: right after, `lakehouse logs`
    # showed only the new, nearly empty file and lost the error just logged.
    own = tmp_path / "postgres"
    own.mkdir()
    older, newer = own / "postgresql-23.log", own / "postgresql-00.log"
    older.write_text("ERROR: relation no_such_table does not exist\n")
    newer.write_text("LOG: checkpoint\n")
    os.utime(older, (1000, 1000))
    os.utime(newer, (2000, 2000))
    text = readable_tail(tmp_path / "postgres.log", own, 10)
    assert text.splitlines() == ["ERROR: relation no_such_table does not exist", "LOG: checkpoint"]
    assert readable_tail(tmp_path / "postgres.log", own, 1) == "LOG: checkpoint"
