"""OpenSearch, the Amazon OpenSearch Service role: full-text search over synced data.

The small ``integ-test-zip`` distribution from Maven Central (no bundled JDK),
unpacked once into the cache. A single node on 127.0.0.1 with no security
plugin: that is only acceptable because nothing outside this machine reaches it.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

from lakehouse.artifacts import ArtifactFetcher, read_lock
from lakehouse.config import Settings
from lakehouse.errors import JavaNotFoundError
from lakehouse.java import Jdk, find_jdk
from lakehouse.services import service_files_dir
from lakehouse.services.base import Health, Port, Service, ServiceSpec, http_get_json

MIN_JAVA = 17
# 2.19 still installs a SecurityManager, which Java 24 removed.
MAX_JAVA = 21
HEALTH_PATH = "/_cluster/health"
SINGLE_NODE_TEMPLATE = "lakehouse-single-node"
AUTO_EXPAND = {"index": {"auto_expand_replicas": "0-1"}}
# Lowest priority, so a template of the user's own for the same indices wins.
SINGLE_NODE_BODY = {"index_patterns": ["*"], "priority": 0, "template": {"settings": AUTO_EXPAND}}


def opensearch_env(settings: Settings) -> dict[str, str]:
    """What ``services/opensearch/opensearch.yml`` reads through ${...}."""
    return {
        "OPENSEARCH_BIND_HOST": settings.bind_host,
        "OPENSEARCH_HTTP_PORT": str(settings.opensearch_port),
        "OPENSEARCH_TRANSPORT_PORT": str(settings.opensearch_transport_port),
    }


class OpenSearchDistribution:
    """The pinned OpenSearch zip, unpacked once into the cache."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.artifact = read_lock(service_files_dir() / "opensearch" / "artifacts.lock")[0]

    @property
    def root(self) -> Path:
        return self.settings.cache_dir / "opensearch" / self.artifact.version

    def install(self) -> Path:
        if (self.root / ".complete").is_file():
            return self.root
        archive = ArtifactFetcher(self.settings).fetch_all([self.artifact], "opensearch")[0]
        staging = self.root.with_name(self.root.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(staging)
        server_dir = next(staging.iterdir())
        # zipfile drops the executable bits the start scripts need.
        for script in (server_dir / "bin").iterdir():
            script.chmod(0o755)
        (server_dir / ".complete").write_text(self.artifact.version)
        shutil.rmtree(self.root, ignore_errors=True)
        server_dir.replace(self.root)
        shutil.rmtree(staging, ignore_errors=True)
        return self.root


class OpenSearchService(Service):
    """One OpenSearch node on ``opensearch_port``."""

    name = "opensearch"

    @property
    def node_dir(self) -> Path:
        return self.settings.home_dir / "data" / "opensearch"

    def jdk(self) -> Jdk:
        return find_jdk(
            self.name, MIN_JAVA, explicit=self.settings.opensearch_java,
            env_var="LAKEHOUSE_OPENSEARCH_JAVA", max_major=MAX_JAVA,
        )  # fmt: skip

    def spec(self) -> ServiceSpec:
        s = self.settings
        root = OpenSearchDistribution(s).root
        try:
            java_home = str(self.jdk().home)
        except JavaNotFoundError:  # reported by prepare() before anything starts
            java_home = ""
        env = opensearch_env(s) | {
            "OPENSEARCH_JAVA_HOME": java_home,
            "OPENSEARCH_PATH_CONF": str(self.node_dir / "config"),
            "OPENSEARCH_TMPDIR": str(self.node_dir / "tmp"),
            "OPENSEARCH_JAVA_OPTS": f"-Xms{s.opensearch_heap} -Xmx{s.opensearch_heap}",
        }
        command = (
            "bash", str(root / "bin" / "opensearch"),
            f"-Epath.data={self.node_dir / 'data'}", f"-Epath.logs={self.node_dir / 'logs'}",
        )  # fmt: skip
        return ServiceSpec(
            name=self.name,
            description="OpenSearch (the Amazon OpenSearch Service role)",
            command=command,
            env=env,
            ports=(
                Port("opensearch", s.opensearch_port),
                Port("opensearch-transport", s.opensearch_transport_port, public=False),
            ),
            health_url=f"{s.opensearch_uri}{HEALTH_PATH}",
            url=s.opensearch_uri,
            data_dir=self.node_dir,
            needs_java=True,
            cwd=self.node_dir,
            refuses_root=True,
        )

    def prepare(self) -> None:
        self.jdk()
        root = OpenSearchDistribution(self.settings).install()
        config = self.node_dir / "config"
        for sub in ("data", "logs", "tmp", "config"):
            (self.node_dir / sub).mkdir(parents=True, exist_ok=True)
        # copyfile: modes from the (private) umask, not the distribution's 0644.
        shutil.copyfile(root / "config" / "jvm.options", config / "jvm.options")
        # Its log4j2 sets each log file's mode itself (rw-r-----): owner only.
        log4j2 = (root / "config" / "log4j2.properties").read_text()
        (config / "log4j2.properties").write_text(
            re.sub(r"(?m)^(\S+\.filePermissions\s*=\s*)\S+", r"\1rw-------", log4j2)
        )
        (config / "jvm.options.d").mkdir(exist_ok=True)
        shutil.copyfile(
            service_files_dir() / "opensearch" / "opensearch.yml", config / "opensearch.yml"
        )

    def health(self) -> Health:
        answer = http_get_json(f"{self.settings.opensearch_uri}{HEALTH_PATH}")
        if isinstance(answer, Health):
            return answer
        status = answer.get("status")
        if status not in ("green", "yellow"):
            return Health(False, f"OpenSearch cluster is {status}")
        return Health(True, f"OpenSearch cluster {answer.get('cluster_name')} is {status}")

    def after_ready(self) -> None:
        """Keep a one-node cluster green: no index waits for a replica it cannot have.

        An index template gives every new index ``auto_expand_replicas: 0-1``,
        which wins over the ``number_of_replicas`` an index asks for (0 replicas
        on one node, 1 if a second node ever joins); indices already yellow get
        the same setting.
        """
        client = self.client()
        client.indices.put_index_template(name=SINGLE_NODE_TEMPLATE, body=SINGLE_NODE_BODY)
        health = client.cluster.health(level="indices")
        yellow = [name for name, index in health.get("indices", {}).items()
                  if index.get("status") == "yellow"]  # fmt: skip
        for name in yellow:
            client.indices.put_settings(index=name, body=AUTO_EXPAND)

    def client(self, timeout: float = 30, **options: Any) -> Any:
        """An ``opensearchpy.OpenSearch`` client for this node (the one place one is made)."""
        from opensearchpy import OpenSearch

        return OpenSearch(hosts=[self.settings.opensearch_uri], timeout=timeout, **options)

    def start_hint(self) -> str:
        return (
            f"OpenSearch's own log is under {self.node_dir / 'logs'}; it needs a JDK "
            f"{MIN_JAVA}-{MAX_JAVA} (LAKEHOUSE_OPENSEARCH_JAVA) and LAKEHOUSE_OPENSEARCH_PORT free."
        )
