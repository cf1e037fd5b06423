"""The compose path, checked statically: no Docker engine runs in CI.

compose.yaml must be valid against the Compose specification (compose_spec's
validator, offline), up to date with the service specs, pinned, health-checked,
loopback-only, and give the same endpoints and credentials as the local runtime.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from compose_spec import PyCompose

from lakehouse.config import load_settings
from lakehouse.env import environment
from lakehouse.errors import LakehouseError
from lakehouse.runtimes.compose import render, write_files
from lakehouse.runtimes.docker import DockerNotAvailableError, DockerRuntime, parse_ps
from lakehouse.services.catalog import CatalogService
from lakehouse.services.spark import spark_conf
from lakehouse.services.trino import TrinoNode

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "compose.yaml"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", "/nonexistent/lakehouse.toml")
    return load_settings()


def services() -> dict[str, dict[str, object]]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


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
        if name != "init":  # a one-shot job
            assert "healthcheck" in svc, name
        for dependency in dict(svc.get("depends_on", {})).values():  # type: ignore[call-overload]
            assert dependency == {"condition": "service_healthy"}, name


def test_ports_are_published_on_loopback_only() -> None:
    for name, svc in services().items():
        for port in svc.get("ports", []):  # type: ignore[attr-defined]
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
        assert "ports" in svc or svc.get("network_mode") == "host" or name == "trino-worker"


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
        if not key.endswith((".uri", ".s3.endpoint")) and "driver" not in key:
            assert f"{key}={value}" in command, key
    # Clients see the same endpoints whichever runtime serves them.
    docker_env = environment(load_settings(runtime="docker"))
    assert docker_env == environment(settings)


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
