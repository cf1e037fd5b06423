"""The Iceberg REST catalog (the Glue Data Catalog role).

Apache Iceberg's REST catalog fixture, fetched from Maven Central, backed by a
SQLite file under ``<home>/data/catalog`` so the catalog survives restarts, and
writing table files through S3FileIO to the S3 service.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from lakehouse.config import DEFAULT_NAMESPACE
from lakehouse.errors import JavaNotFoundError
from lakehouse.java import Jdk, find_jdk
from lakehouse.services import service_files_dir
from lakehouse.services.base import Port, Service, ServiceSpec

MIN_JAVA = 17
LAUNCHER = "LakehouseCatalogServer"
MAIN_CLASS = f"org.apache.iceberg.rest.{LAUNCHER}"
# slf4j-simple levels. Iceberg logs every table load at INFO, and the REST
# servlet logs every 4xx answer (a probe for a table that does not exist yet)
# as ERROR with an 80-line trace: about 40 KB a minute under the sync. Clients
# get every error in the response, so only warnings from Iceberg are logged.
LOG_FLAGS = (
    "-Dorg.slf4j.simpleLogger.log.org.apache.iceberg=warn",
    "-Dorg.slf4j.simpleLogger.log.org.apache.iceberg.rest.RESTCatalogServlet=off",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
)
# The one path the catalog answers without the bearer token (GET only, no data).
HEALTH_PATH = "/healthz"


def auth_headers(token: str) -> dict[str, str]:
    """The header every request to the catalog must carry."""
    return {"Authorization": f"Bearer {token}"}


def catalog_db(home: Path) -> Path:
    """The SQLite file holding the catalog of the stack whose home is ``home``."""
    return home / "data" / "catalog" / "catalog.db"


def catalog_env(settings_home: Path, s3_endpoint: str, access_key: str, secret_key: str,
                warehouse: str, region: str) -> dict[str, str]:  # fmt: skip
    """The fixture's CATALOG_* configuration (prefix dropped, ``__`` -> ``-``, ``_`` -> ``.``)."""
    db = catalog_db(settings_home)
    return {
        "CATALOG_WAREHOUSE": warehouse,
        # WAL lets readers and the single writer overlap; busy_timeout rides out
        # the short write locks of concurrent commits instead of failing them.
        "CATALOG_URI": f"jdbc:sqlite:{db}?journal_mode=WAL&busy_timeout=10000",
        "CATALOG_JDBC_SCHEMA__VERSION": "V1",
        # One JDBC connection. With two, a connection that read before the other one
        # wrote fails with SQLITE_BUSY_SNAPSHOT and keeps failing until the catalog
        # restarts (seen when clients were killed mid-commit): SQLite has a single
        # writer anyway, so one connection costs no concurrency.
        "CATALOG_CLIENTS": "1",
        "CATALOG_IO__IMPL": "org.apache.iceberg.aws.s3.S3FileIO",
        "CATALOG_S3_ENDPOINT": s3_endpoint,
        "CATALOG_S3_PATH__STYLE__ACCESS": "true",
        "CATALOG_S3_ACCESS__KEY__ID": access_key,
        "CATALOG_S3_SECRET__ACCESS__KEY": secret_key,
        "CATALOG_CLIENT_REGION": region,
        "AWS_REGION": region,
        # Java SDK >= 2.30 sends CRC checksums SeaweedFS mishandles (apache/iceberg#14439).
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
    }


class CatalogService(Service):
    """The REST catalog on ``catalog_port``; needs S3 and a JDK 17+."""

    name = "catalog"

    def lock_file(self) -> Path:
        return service_files_dir() / "catalog" / "artifacts.lock"

    def jdk(self) -> Jdk:
        return find_jdk(self.name, MIN_JAVA, explicit=self.settings.java_home)

    def classpath(self) -> list[Path]:
        from lakehouse.artifacts import ArtifactFetcher, read_lock

        fetcher = ArtifactFetcher(self.settings)
        return [fetcher.local_path(a) for a in read_lock(self.lock_file())] + [self.launcher_dir()]

    def launcher_sources(self) -> list[Path]:
        """The launcher's Java sources (the server and its principal rules)."""
        return sorted((service_files_dir() / "catalog").glob("*.java"))

    def launcher_dir(self) -> Path:
        digest = hashlib.sha256(self.lock_file().read_bytes())
        for source in self.launcher_sources():
            digest.update(source.name.encode() + b"\0" + source.read_bytes())
        return self.settings.cache_dir / "launchers" / f"catalog-{digest.hexdigest()[:16]}"

    def spec(self) -> ServiceSpec:
        s = self.settings
        java = self.java_executable()
        env = catalog_env(
            s.home_dir, s.s3_endpoint, s.access_key, s.secret_key, s.warehouse, s.region
        )
        env |= {
            "REST_PORT": str(s.catalog_port),
            "REST_HOST": s.bind_host,
            "LAKEHOUSE_CATALOG_TOKEN": s.catalog_token,
            "LAKEHOUSE_CATALOG_CHECKPOINT_SECONDS": str(s.catalog_checkpoint_seconds),
        }
        if s.governance_enabled:  # principals' own tokens (re-read when the file changes)
            from lakehouse.governance.catalog_access import access_path, decisions_dir

            env["LAKEHOUSE_CATALOG_ACCESS_FILE"] = str(access_path(s))
            env["LAKEHOUSE_CATALOG_AUDIT_DIR"] = str(decisions_dir(s))
        command = (
            java, f"-Xmx{s.catalog_heap}", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", *LOG_FLAGS,
            "-cp", os.pathsep.join(str(p) for p in self.classpath()), MAIN_CLASS,
        )  # fmt: skip
        return ServiceSpec(
            name=self.name,
            description="Iceberg REST catalog (Apache Iceberg RESTCatalogServer)",
            command=command,
            env=env,
            ports=(Port("catalog", s.catalog_port),),
            health_url=f"{s.catalog_uri}{HEALTH_PATH}",
            url=s.catalog_uri,
            depends_on=("s3",),
            data_dir=s.home_dir / "data" / "catalog",
            needs_java=True,
        )

    def prepare(self) -> None:
        jdk = self.jdk()
        from lakehouse.artifacts import ArtifactFetcher, read_lock

        ArtifactFetcher(self.settings).fetch_all(read_lock(self.lock_file()), "catalog")
        data_dir = self.spec().data_dir
        assert data_dir is not None
        data_dir.mkdir(parents=True, exist_ok=True)
        self._compile_launcher(jdk)

    def _compile_launcher(self, jdk: Jdk) -> None:
        target = self.launcher_dir()
        if (target / "org" / "apache" / "iceberg" / "rest" / f"{LAUNCHER}.class").is_file():
            return
        jars = os.pathsep.join(str(p) for p in self.classpath()[:-1])
        staging = target.with_name(target.name + ".tmp")
        staging.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [str(jdk.javac), "-d", str(staging), "-cp", jars,
             *(str(source) for source in self.launcher_sources())],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise JavaNotFoundError(
                f"Compiling the catalog launcher with {jdk.javac} failed:\n{result.stderr[-2000:]}",
                hint="Use a full JDK 17+ (set LAKEHOUSE_JAVA_HOME).",
            )
        staging.replace(target)

    def after_ready(self) -> None:
        """Create the default namespace (plain REST: no pyiceberg import on start-up)."""
        if self.settings.governance_enabled:  # S3 started before the tables could be listed
            from lakehouse.governance import catalog_access, s3_access

            s3_access.ensure_current(self.settings)
            catalog_access.ensure_current(self.settings)
        base = f"{self.settings.catalog_uri}/v1/namespaces"
        auth = auth_headers(self.settings.catalog_token)
        try:
            probe = urllib.request.Request(f"{base}/{DEFAULT_NAMESPACE}", headers=auth)
            urllib.request.urlopen(probe, timeout=10).close()
            return
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
        body = json.dumps({"namespace": [DEFAULT_NAMESPACE], "properties": {}}).encode()
        request = urllib.request.Request(
            base, data=body, headers={"Content-Type": "application/json", **auth}
        )
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except urllib.error.HTTPError as exc:
            if exc.code != 409:  # created concurrently: fine
                raise

    def start_hint(self) -> str:
        return (
            "Check that S3 is healthy (`lakehouse status`) and that the port is free; "
            "`lakehouse logs catalog` shows the full Java log."
        )
