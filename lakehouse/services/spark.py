"""Spark, the EMR role: an always-on Spark Connect server, plus batch steps.

pyspark (from PyPI) brings Spark and its Connect server; the Iceberg runtime and
AWS bundle come from Maven Central. The server and ``lakehouse spark submit``
jobs share one configuration, :func:`spark_conf`, so a job sees the lake
exactly as a Connect session does.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import uuid
from pathlib import Path

from lakehouse.artifacts import ArtifactFetcher, read_lock
from lakehouse.config import Settings
from lakehouse.errors import ConfigError, JavaNotFoundError
from lakehouse.java import Jdk, find_jdk
from lakehouse.services import service_files_dir
from lakehouse.services.base import Health, Port, Service, ServiceSpec

MIN_JAVA, MAX_JAVA = 17, 21  # Spark 4.1's Hadoop client fails on Java 25 (getSubject)
CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"
CORES = "local[2]"
# A record of Spark's (log4j's) console layout: "25/11/29 23:44:12 INFO Name: text".
_SPARK_RECORD = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) ")
_QUIET_LEVELS = {"TRACE", "DEBUG", "INFO"}
LOG4J_CONF = service_files_dir() / "spark" / "log4j2.properties"


class JobOutput:
    """Which lines of a ``spark submit`` job to show: all but Spark's own chatter.

    A job's prints, its warnings and errors, Python tracebacks and Spark's
    WARN/ERROR records are shown; Spark's INFO (and DEBUG, TRACE) records, with
    their indented continuation lines, stay in the job's log file only.
    """

    def __init__(self) -> None:
        self._hiding = False

    def shows(self, line: str) -> bool:
        """True when ``line`` (one line of the job's merged stdout and stderr) is shown."""
        record = _SPARK_RECORD.match(line)
        if record:
            self._hiding = record.group(1) in _QUIET_LEVELS
        elif not line[:1].isspace():
            self._hiding = False
        return not self._hiding


def spark_home() -> Path:
    """The Spark distribution inside the pyspark package."""
    # Found, not imported: importing pyspark takes about 0.6 s, and every service
    # list (`lakehouse status`, `up`, `down`) asks for the Spark spec.
    found = importlib.util.find_spec("pyspark")
    if found is None or not found.submodule_search_locations:
        raise ConfigError("pyspark is not installed.", hint="pip install 'pyspark[connect]==4.1.4'")
    return Path(found.submodule_search_locations[0])


def catalog_token_conf(settings: Settings) -> dict[str, str]:
    """The catalog's bearer token as a Spark property (kept apart from :func:`spark_conf`,
    which goes on command lines)."""
    return {f"spark.sql.catalog.{settings.catalog_name}.token": settings.catalog_token}


def spark_conf(settings: Settings) -> dict[str, str]:
    """Spark properties that make ``lake`` the default catalog (server and jobs alike)."""
    s, catalog = settings, f"spark.sql.catalog.{settings.catalog_name}"
    return {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        f"{catalog}.type": "rest",
        f"{catalog}.uri": s.catalog_uri,
        f"{catalog}.warehouse": s.warehouse,
        f"{catalog}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{catalog}.s3.endpoint": s.s3_endpoint,
        f"{catalog}.s3.path-style-access": "true",
        f"{catalog}.client.region": s.region,
        f"{catalog}.default-namespace": "default",
        # The bearer token (catalog_token_conf) is an OAuth2 token. Named
        # explicitly, Iceberg neither infers the auth type nor warns that the
        # token endpoint (only used to refresh a token) defaults to the catalog's.
        f"{catalog}.rest.auth.type": "oauth2",
        f"{catalog}.oauth2-server-uri": f"{s.catalog_uri}/v1/oauth/tokens",
        # Iceberg's Spark catalog caches loaded tables for 30 s by default, so a
        # long-lived Connect server would miss other engines' commits.
        f"{catalog}.cache-enabled": "false",
        "spark.sql.defaultCatalog": s.catalog_name,
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.bindAddress": s.bind_host,
        "spark.driver.host": s.client_host,
        "spark.ui.enabled": "false",
    }


class SparkService(Service):
    """Spark Connect on ``spark_port`` (gRPC), bound to the lake."""

    name = "spark"

    def jdk(self) -> Jdk:
        return find_jdk("spark", MIN_JAVA, explicit=self.settings.spark_java, max_major=MAX_JAVA)

    def jars(self) -> list[Path]:
        fetcher = ArtifactFetcher(self.settings)
        return [
            fetcher.local_path(a)
            for a in read_lock(service_files_dir() / "spark" / "artifacts.lock")
        ]

    def environment(self) -> dict[str, str]:
        """Environment of the server and of jobs: S3 keys stay out of `ps` output."""
        s = self.settings
        try:
            java_home = str(self.jdk().home)
        except JavaNotFoundError:
            java_home = os.environ.get("JAVA_HOME", "")
        return {
            "JAVA_HOME": java_home,
            "SPARK_HOME": str(spark_home()),
            "SPARK_LOCAL_IP": s.bind_host,  # else the driver's listeners bind to all interfaces
            "SPARK_LOCAL_DIRS": str(s.home_dir / "data" / "spark" / "local"),
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            "AWS_ACCESS_KEY_ID": s.access_key,
            "AWS_SECRET_ACCESS_KEY": s.secret_key,
            "AWS_REGION": s.region,
            "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
            "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
            "MALLOC_ARENA_MAX": "2",
        }

    def submit_command(self, extra: list[str], memory: str | None = None) -> list[str]:
        """spark-submit with the lake's jars and configuration, then ``extra``."""
        command = [
            str(spark_home() / "bin" / "spark-submit"), "--master", CORES,
            "--driver-memory", memory or self.settings.spark_driver_memory,
            # Spark's log layout, with a multi-line message's later lines indented.
            "--driver-java-options", f"-XX:+UseSerialGC -Dlog4j2.configurationFile={LOG4J_CONF}",
            "--jars", ",".join(str(jar) for jar in self.jars()),
        ]  # fmt: skip
        for key, value in spark_conf(self.settings).items():
            command += ["--conf", f"{key}={value}"]
        command += ["--properties-file", str(self.write_secret_conf())]
        return command + extra

    def write_secret_conf(self) -> Path:
        """A 0600 properties file with :func:`catalog_token_conf`: the token stays out of `ps`."""
        path = self.settings.home_dir / "data" / "spark" / "lake-secrets.properties"
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.writelines(f"{k} {v}\n" for k, v in catalog_token_conf(self.settings).items())
        staging.replace(path)
        return path

    def spec(self) -> ServiceSpec:
        s = self.settings
        server = [
            "--class", CONNECT_SERVER, "--name", "lakehouse Spark Connect",
            "--conf", f"spark.connect.grpc.binding.address={s.bind_host}",
            "--conf", f"spark.connect.grpc.binding.port={s.spark_port}",
            # The driver's RPC and block manager listen too (on random ports unless
            # pinned); a taken port fails the start instead of moving elsewhere.
            "--conf", f"spark.driver.port={s.spark_port + 1}",
            "--conf", f"spark.blockManager.port={s.spark_port + 2}",
            "--conf", "spark.port.maxRetries=0",
            # Those two take only peers that know a secret Spark makes at start-up
            # (local mode generates it); Spark Connect's own port is not affected.
            "--conf", "spark.authenticate=true",
        ]  # fmt: skip
        return ServiceSpec(
            name=self.name,
            description="Spark Connect server (Spark 4.1 + Iceberg)",
            command=tuple(self.submit_command(server)),
            env=self.environment(),
            ports=(
                Port("spark", s.spark_port),
                Port("spark-driver", s.spark_port + 1, public=False),
                Port("spark-block-manager", s.spark_port + 2, public=False),
            ),
            health_url=f"{s.spark_uri} (gRPC ReleaseSession)",
            url=s.spark_uri,
            depends_on=("catalog",),
            data_dir=s.home_dir / "data" / "spark",
            needs_java=True,
        )

    def prepare(self) -> None:
        self.jdk()
        spark_home()
        ArtifactFetcher(self.settings).fetch_all(
            read_lock(service_files_dir() / "spark" / "artifacts.lock"), "spark"
        )
        Path(self.environment()["SPARK_LOCAL_DIRS"]).mkdir(parents=True, exist_ok=True)

    def health(self) -> Health:
        """A cheap real RPC: releasing a session that never existed (no session is created)."""
        import grpc
        from pyspark.sql.connect.proto import base_pb2, base_pb2_grpc

        target = f"{self.settings.client_host}:{self.settings.spark_port}"
        request = base_pb2.ReleaseSessionRequest(
            session_id=str(uuid.uuid4()),
            user_context=base_pb2.UserContext(user_id="lakehouse-health"),
        )
        try:
            with grpc.insecure_channel(target) as channel:
                base_pb2_grpc.SparkConnectServiceStub(channel).ReleaseSession(request, timeout=2)
        except grpc.RpcError as exc:
            return Health(False, f"Spark Connect at {target}: {exc.code().name}")
        return Health(True, f"Spark Connect answers at {target}")

    def start_hint(self) -> str:
        return (
            "Spark needs Java 17 to 21 (set LAKEHOUSE_SPARK_JAVA); "
            "`lakehouse logs spark` shows the driver's log."
        )
