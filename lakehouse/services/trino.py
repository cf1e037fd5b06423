"""Trino, the Athena / Redshift Spectrum role: a coordinator plus optional workers.

The server is Trino's plugin-less ``trino-server-core`` package with only the
iceberg, tpch, memory and hive (Glue's Hive-style tables) plugins, fetched from
Maven Central and unpacked once into the cache. Each node runs as a plain ``java ... TrinoServer`` process (no
launcher), so the supervisor owns its real PID.

Large results leave through Trino's spooling protocol: nodes write compressed
result segments to a bucket on the lake's S3 (``SPOOLING_BUCKET``) and the
client downloads them, instead of the coordinator serialising every row into
its JSON pages (2 to 3x faster on the server side for 600k rows, measured).
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import tarfile
import zipfile
from pathlib import Path

from lakehouse.artifacts import ArtifactFetcher, MavenArtifact, read_lock
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.java import Jdk, find_jdk
from lakehouse.services import service_files_dir
from lakehouse.services.base import Health, Port, Service, ServiceSpec, http_get_json

MIN_JAVA = 24
MAIN_CLASS = "io.trino.server.TrinoServer"
SERVER_ARTIFACT = "trino-server-core"
# hive: Glue's Hive-style tables (services/trino/catalog/hive.properties).
PLUGINS = {"trino-iceberg": "iceberg", "trino-tpch": "tpch", "trino-memory": "memory",
           "trino-hive": "hive"}  # fmt: skip
HEADROOM_SHARE = 0.25
SPOOLING_BUCKET = "trino-spooling"
# etc/log.properties. Iceberg's LoggingMetricsReporter writes a ~36 KB INFO line
# for every table scan (27.5 MB in 30 minutes seen): its reports still reach the
# catalog, only the log copy goes.
# Trino logs ~1,000 INFO lines at start-up (946 from "Bootstrap", its table of
# every configuration property; then each plugin and function loaded): only
# warnings and errors are kept, plus the "SERVER STARTED" line of
# io.trino.server.Server (and its few lines on version and directories).
# RemoteNodeMemory and RemoteNodeState warn "... update request ... has not
# returned in 16515.07s" at start-up, when the coordinator polls nodes (itself
# included) before their HTTP servers are up: the figure is the time since the
# machine booted (measured: it matched /proc/uptime). They would repeat every
# second for a dead worker, which `lakehouse status` shows.
# Iceberg 1.9.1 (Trino 476's) warns at a catalog's first use that the OAuth2
# token endpoint is the catalog's own /v1/oauth/tokens, even when that is
# configured explicitly (iceberg.rest-catalog.oauth2.server-uri): the bearer
# token is static and never exchanged there, so the warning is turned off.
LOG_LEVELS = "".join(
    f"{logger}={level}\n"
    for logger, level in {
        "io.trino": "WARN", "io.airlift": "WARN", "Bootstrap": "WARN",
        "org.eclipse.jetty": "WARN", "org.hibernate.validator": "WARN",
        "org.apache.iceberg": "WARN", "io.trino.server.Server": "INFO",
        "io.trino.memory.RemoteNodeMemory": "ERROR", "io.trino.metadata.RemoteNodeState": "ERROR",
        "org.apache.iceberg.rest.auth.OAuth2Manager": "ERROR",
    }.items()
)  # fmt: skip


def parse_size(text: str) -> int:
    """Bytes in '1536M', '2G', '768MB'."""
    match = re.fullmatch(r"(\d+)\s*([KMGT]?)B?", text.strip().upper())
    if not match:
        raise LakehouseError(f"'{text}' is not a size.", hint="Use e.g. 1536M or 2G.")
    return int(match.group(1)) * 1024 ** " KMGT".index(match.group(2) or " ")


def parse_duration(text: str, setting: str) -> str:
    """A Trino duration ('90s', '1m', '500ms') as given, or LakehouseError naming ``setting``."""
    if not re.fullmatch(r"\d+(\.\d+)?(ms|s|m|h|d)", text.strip()):
        raise LakehouseError(f"{setting} '{text}' is not a duration.",
                             hint=f"Use e.g. 20s or 1m (LAKEHOUSE_{setting.upper()}).")  # fmt: skip
    return text.strip()


def trino_env(settings: Settings) -> dict[str, str]:
    """What ``services/trino/catalog/lake.properties`` reads through ${ENV:...}."""
    return {
        "LAKEHOUSE_CATALOG_URL": settings.catalog_uri,
        "LAKEHOUSE_CATALOG_TOKEN": settings.catalog_token,
        "LAKEHOUSE_WAREHOUSE": settings.warehouse,
        "LAKEHOUSE_S3_URL": settings.s3_endpoint,
        "AWS_REGION": settings.region,
        "AWS_ACCESS_KEY_ID": settings.access_key,
        "AWS_SECRET_ACCESS_KEY": settings.secret_key,
    }


def spooling_secret(settings: Settings) -> str:
    """The 256-bit key (base64) that protects spooled segment handles.

    Every node must hold the same key, so it is derived from the S3 secret
    rather than drawn at random per node.
    """
    digest = hashlib.sha256(f"lakehouse-trino-spooling:{settings.secret_key}".encode()).digest()
    return base64.b64encode(digest).decode()


def spooling_manager_properties() -> str:
    """``etc/spooling-manager.properties``: segments on the lake's S3, via ${ENV:...}."""
    lines = {
        "spooling-manager.name": "filesystem",
        "fs.s3.enabled": "true",
        "fs.location": f"s3://{SPOOLING_BUCKET}/",
        "s3.endpoint": "${ENV:LAKEHOUSE_S3_URL}",
        "s3.region": "${ENV:AWS_REGION}",
        "s3.path-style-access": "true",
        "s3.aws-access-key": "${ENV:AWS_ACCESS_KEY_ID}",
        "s3.aws-secret-key": "${ENV:AWS_SECRET_ACCESS_KEY}",
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


class TrinoDistribution:
    """The pinned Trino server and plugins, unpacked once into the cache."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.artifacts = read_lock(service_files_dir() / "trino" / "artifacts.lock")
        self.server = next(a for a in self.artifacts if a.artifact == SERVER_ARTIFACT)

    @property
    def root(self) -> Path:
        return self.settings.cache_dir / "trino" / self.server.version

    def install(self) -> Path:
        """Download (if needed) and unpack; returns the server directory."""
        if (self.root / ".complete").is_file():
            self._add_missing_plugins()
            return self.root
        paths = dict(
            zip(
                self.artifacts,
                ArtifactFetcher(self.settings).fetch_all(self.artifacts, "trino"),
                strict=True,
            )
        )
        staging = self.root.with_name(self.root.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        with tarfile.open(paths[self.server]) as tar:
            tar.extractall(staging, filter="data")
        server_dir = next(staging.iterdir())
        for artifact, path in paths.items():
            if artifact.artifact in PLUGINS:
                self._unpack_plugin(artifact, path, server_dir / "plugin")
        (server_dir / ".complete").write_text(self.server.version)
        shutil.rmtree(self.root, ignore_errors=True)
        server_dir.replace(self.root)
        shutil.rmtree(staging, ignore_errors=True)
        return self.root

    def _add_missing_plugins(self) -> None:
        """Unpack a plugin added to the lock since this server was installed, in place
        (the server itself stays: a running node keeps its jars)."""
        from filelock import FileLock

        def missing() -> list[MavenArtifact]:
            return [a for a in self.artifacts if a.artifact in PLUGINS
                    and not (self.root / "plugin" / PLUGINS[a.artifact]).is_dir()]  # fmt: skip

        if not missing():
            return
        with FileLock(str(self.root.parent / f".{self.root.name}-plugins.lock")):
            self._unpack_plugins(missing())

    def _unpack_plugins(self, missing: list[MavenArtifact]) -> None:
        paths = ArtifactFetcher(self.settings).fetch_all(missing, "trino")
        for artifact, path in zip(missing, paths, strict=True):
            staging = self.root.parent / f".{self.root.name}-{PLUGINS[artifact.artifact]}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            self._unpack_plugin(artifact, path, staging)
            name = PLUGINS[artifact.artifact]
            (staging / name).replace(self.root / "plugin" / name)
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _unpack_plugin(artifact: MavenArtifact, archive: Path, plugin_dir: Path) -> None:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(plugin_dir)
        (plugin_dir / f"{artifact.artifact}-{artifact.version}").rename(
            plugin_dir / PLUGINS[artifact.artifact]
        )


class TrinoNode(Service):
    """One Trino node; the coordinator also schedules work onto itself."""

    coordinator = True

    def __init__(self, settings: Settings, index: int = 0) -> None:
        super().__init__(settings)
        self.index = index
        self.name = "trino" if index == 0 else f"trino-worker-{index}"

    @property
    def port(self) -> int:
        return self.settings.trino_port + self.index

    @property
    def node_dir(self) -> Path:
        return self.settings.home_dir / "data" / self.name

    def jdk(self) -> Jdk:
        return find_jdk(
            "trino", MIN_JAVA, explicit=self.settings.trino_java, env_var="LAKEHOUSE_TRINO_JAVA"
        )

    def spec(self) -> ServiceSpec:
        s = self.settings
        java = self.java_executable()
        distribution = TrinoDistribution(s)
        etc = self.node_dir / "etc"
        command = (
            java, "-cp", str(distribution.root / "lib" / "*"), *self._jvm_flags(distribution),
            f"-Dlog.levels-file={etc / 'log.properties'}", f"-Dconfig={etc / 'config.properties'}",
            "-Dnode.environment=lakehouse", f"-Dnode.id={self.name}",
            f"-Dnode.data-dir={self.node_dir / 'data'}", f"-Dnode.bind-ip={s.bind_host}",
            f"-Dnode.internal-address={s.client_host}", MAIN_CLASS,
        )  # fmt: skip
        url = f"http://{s.client_host}:{self.port}"
        return ServiceSpec(
            name=self.name,
            description="Trino coordinator" if self.coordinator else "Trino worker",
            command=command,
            env=trino_env(s),
            ports=(Port(self.name, self.port),),
            health_url=f"{url}/v1/info",
            url=f"{url}/ui/" if self.coordinator else url,
            depends_on=("catalog",) if self.coordinator else ("trino",),
            data_dir=self.node_dir,
            needs_java=True,
            # Trino reads etc/spooling-manager.properties relative to its working directory.
            cwd=self.node_dir,
        )

    def _jvm_flags(self, distribution: TrinoDistribution) -> list[str]:
        lines = (service_files_dir() / "trino" / "jvm.config").read_text().splitlines()
        flags = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        # A class-data archive, written on first exit, cuts later start-ups by a third.
        # One for every node (same classpath and flags): a worker that is only ever
        # killed (test_trino's) would never write one of its own.
        archive = distribution.root / "cds" / "trino.jsa"
        return [*flags, f"-Xmx{self.settings.trino_heap}", "-XX:+AutoCreateSharedArchive",
                f"-XX:SharedArchiveFile={archive}", "-Xlog:cds=off", "-Xlog:cds+dynamic=off"]  # fmt: skip

    def config_properties(self) -> str:
        s = self.settings
        heap = parse_size(s.trino_heap)
        query = parse_size(s.trino_query_memory)
        headroom = int(heap * HEADROOM_SHARE)
        if query + headroom > heap:
            raise LakehouseError(
                f"trino_query_memory {s.trino_query_memory} plus {headroom // 2**20}MB headroom "
                f"exceeds trino_heap {s.trino_heap}.",
                hint="Lower LAKEHOUSE_TRINO_QUERY_MEMORY or raise LAKEHOUSE_TRINO_HEAP.",
            )
        lines = {
            "coordinator": str(self.coordinator).lower(),
            "http-server.http.port": self.port,
            "discovery.uri": s.trino_uri,
            "query.max-memory": s.trino_query_memory,
            "query.max-memory-per-node": s.trino_query_memory,
            "memory.heap-headroom-per-node": f"{headroom // 2**20}MB",
            "plugin.dir": TrinoDistribution(s).root / "plugin",
            "catalog.config-dir": self.node_dir / "etc" / "catalog",
            "http-server.log.path": self.node_dir / "data" / "var" / "log" / "http-request.log",
            "protocol.spooling.enabled": "true",
            "protocol.spooling.shared-secret-key": spooling_secret(s),
        }
        if self.coordinator:
            lines["node-scheduler.include-coordinator"] = "true"
            lines["query.remote-task.max-error-duration"] = parse_duration(
                s.trino_node_timeout, "trino_node_timeout"
            )
        return "".join(f"{key}={value}\n" for key, value in lines.items())

    def prepare(self) -> None:
        self.jdk()
        TrinoDistribution(self.settings).install()
        etc = self.node_dir / "etc"
        shutil.rmtree(etc / "catalog", ignore_errors=True)
        (etc / "catalog").mkdir(parents=True)
        for source in (service_files_dir() / "trino" / "catalog").iterdir():
            # copyfile: modes from the (private) umask, not the installed sources' 0644.
            shutil.copyfile(source, etc / "catalog" / source.name)
        (etc / "config.properties").write_text(self.config_properties())
        (etc / "log.properties").write_text(LOG_LEVELS)
        (etc / "spooling-manager.properties").write_text(spooling_manager_properties())
        self._prepare_access_control(etc)
        (self.node_dir / "data" / "var" / "log").mkdir(parents=True, exist_ok=True)
        (TrinoDistribution(self.settings).root / "cds").mkdir(exist_ok=True)

    def _prepare_access_control(self, etc: Path) -> None:
        """Governance on: Trino's file-based access control on the policy's rules
        (written now, fail closed if the catalog is not up yet; again in after_ready).
        Off: no access control file, Trino as before."""
        from lakehouse.governance import trino_rules

        properties = etc / "access-control.properties"
        if not self.settings.governance_enabled:
            properties.unlink(missing_ok=True)
            return
        trino_rules.write_rules(self.settings)
        properties.write_text(trino_rules.access_control_properties(self.settings))

    def health(self) -> Health:
        answer = http_get_json(self.spec().health_url)
        if isinstance(answer, Health):
            return answer
        if answer.get("starting", True):
            return Health(False, f"Trino {self.name} is still starting")
        return Health(True, f"Trino {answer.get('nodeVersion', {}).get('version', '?')} ready")

    def after_ready(self) -> None:
        """Wait until the coordinator schedules onto this node (S3's after_ready,
        which runs before Trino starts, created the spooling bucket)."""
        from lakehouse.engines.trino import TrinoEngine

        if self.coordinator and self.settings.governance_enabled:
            from lakehouse.governance import trino_rules

            trino_rules.write_rules(self.settings)  # the catalog answers now: every table
        TrinoEngine(self.settings).wait_for_node(self.name, timeout=self.settings.startup_timeout)

    def start_hint(self) -> str:
        return (
            f"Trino's real error follows 'Unable to create injector' or 'Caused by' in "
            f"`lakehouse logs {self.name}`; its settings are LAKEHOUSE_TRINO_*."
        )


class TrinoWorker(TrinoNode):
    """A worker node: registers with the coordinator and runs tasks."""

    coordinator = False


def trino_services(settings: Settings) -> list[TrinoNode]:
    return [
        TrinoNode(settings),
        *(TrinoWorker(settings, i) for i in range(1, settings.trino_workers + 1)),
    ]


def trino_cli_command(settings: Settings, args: list[str]) -> list[str]:
    """Trino's CLI (its executable jar, Java 11+) pointed at the coordinator and the lake.

    With governance on, the user is the configured principal (or the admin) unless
    ``args`` name one (``--user alice``).
    """
    distribution = TrinoDistribution(settings)
    cli = next(a for a in distribution.artifacts if a.artifact == "trino-cli")
    jar = ArtifactFetcher(settings).fetch_all([cli], "trino-cli")[0]
    java = find_jdk("trino-cli", 11, explicit=settings.java_home).java
    if settings.governance_enabled and not any(a.startswith("--user") for a in args):
        from lakehouse.engines.trino import default_user

        args = ["--user", default_user(settings), *args]  # not the login name
    return [str(java), "-jar", str(jar), "--server", settings.trino_uri,
            "--catalog", settings.catalog_name, "--schema", "default", *args]  # fmt: skip
