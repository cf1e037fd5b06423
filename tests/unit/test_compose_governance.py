"""Governance on the docker runtime, checked statically (no Docker engine in CI).

The rendered compose.yaml is parsed as YAML: the governed Trino coordinator must
mount the home's rules where its access-control properties point, with the local
runtime's plugin and refresh period; `lakehouse up --runtime docker` must refuse
what compose cannot govern before anything starts, and write the rules Trino
needs before it starts. `docker` is a fake command that records its calls.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_spec import PyCompose

from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError
from lakehouse.governance.trino_rules import access_control_properties, rules_path
from lakehouse.runtimes import compose_governance
from lakehouse.runtimes.compose import render_text, write_files
from lakehouse.runtimes.compose_governance import (
    ACCESS_CONTROL_FILE,
    CONTAINER_HOME,
    GovernanceUnenforceableError,
    rules_reader_problem,
)
from lakehouse.runtimes.docker import DockerRuntime


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_settings(monkeypatch: pytest.MonkeyPatch, home: Path, governed: bool) -> Settings:
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", "/nonexistent/lakehouse.toml")
    monkeypatch.setenv("LAKEHOUSE_HOME", str(home))
    monkeypatch.setenv("LAKEHOUSE_GOVERNANCE_ENABLED", str(governed).lower())
    # Nothing listens there: the rules written before `up` are the fail-closed ones.
    monkeypatch.setenv("LAKEHOUSE_CATALOG_PORT", str(closed_port()))
    return load_settings()


@pytest.fixture
def governed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    return make_settings(monkeypatch, tmp_path / "home", governed=True)


@pytest.fixture
def ungoverned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    return make_settings(monkeypatch, tmp_path / "home", governed=False)


def properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line.strip())
    return {key: value for key, value in pairs}


def rendered(settings: Settings, project: Path) -> dict[str, Any]:
    write_files(settings, project / "compose.yaml")
    services: dict[str, Any] = yaml.safe_load((project / "compose.yaml").read_text())["services"]
    return services


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """{container path: (host path, mode)} of a service's bind mounts."""
    parsed = (volume.split(":") for volume in service.get("volumes", []))
    return {target: (source, mode) for source, target, *rest in parsed for mode in [rest[0] if rest else "rw"]}  # fmt: skip


def test_governed_trino_reads_the_homes_rules_where_its_properties_point(
    governed: Settings, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    coordinator = mounts(rendered(governed, project)["trino"])
    config = properties((project / "services/trino/compose/coordinator.properties").read_text())
    access_file = config["access-control.config-files"]
    source, mode = coordinator[access_file]
    assert (source, mode) == (f"./{ACCESS_CONTROL_FILE}", "ro")
    access = properties((project / ACCESS_CONTROL_FILE).read_text())
    rules_inside = Path(access["security.config-file"])
    # The home's governance FOLDER is mounted read-only over the rules' folder: the
    # rules are replaced by a rename, which a mount of the file alone would not show.
    source, mode = coordinator[str(rules_inside.parent)]
    assert mode == "ro"
    assert Path(source) == rules_path(governed).parent.absolute()
    assert (Path(source) / rules_inside.name) == rules_path(governed).absolute()
    PyCompose.from_yaml((project / "compose.yaml").read_text())


def test_governed_trino_runs_the_local_runtimes_access_control(
    governed: Settings, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    write_files(governed, project / "compose.yaml")
    docker = properties((project / ACCESS_CONTROL_FILE).read_text())
    local = properties(access_control_properties(governed))
    assert docker.pop("security.config-file") == str(
        CONTAINER_HOME / rules_path(governed).relative_to(governed.home_dir)
    )
    local.pop("security.config-file")
    assert docker == local and docker["access-control.name"] == "file"


def test_ungoverned_trino_has_no_access_control(ungoverned: Settings, tmp_path: Path) -> None:
    project = tmp_path / "project"
    services = rendered(ungoverned, project)
    config = (project / "services/trino/compose/coordinator.properties").read_text()
    assert "access-control" not in config
    assert not (project / ACCESS_CONTROL_FILE).exists()
    assert not any("governance" in volume for volume in services["trino"]["volumes"])


def fake_docker(tmp_path: Path, calls: Path, rules: Path) -> str:
    """Records each call; on `up`, whether the rules file existed at that moment."""
    path = tmp_path / "docker"
    path.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {calls}\n'
        f'case "$*" in *" up "*) test -f {rules} && echo "rules present" >> {calls};; esac\n'
        "exit 0\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def up_calls(calls: Path) -> list[str]:
    if not calls.exists():
        return []
    return [line for line in calls.read_text().splitlines() if " up " in f" {line} "]


def test_up_refuses_what_compose_cannot_govern_before_anything_starts(
    governed: Settings, tmp_path: Path
) -> None:
    project, calls = tmp_path / "project", tmp_path / "calls.txt"
    write_files(governed, project / "compose.yaml")
    docker = fake_docker(tmp_path, calls, rules_path(governed))
    with pytest.raises(GovernanceUnenforceableError) as info:
        DockerRuntime(governed, project_dir=project, docker=docker).up()  # the defaults
    message = str(info.value)
    assert "console" in message and "aws" in message and "nothing was started" in message
    hint = message.split("\nHint: ", 1)[1]
    named = hint.split("--services ", 1)[1].split("`")[0].split(",")
    # Every service named is one compose has (the defaults hold `scheduler`, which it
    # has not) and none of those refused.
    assert "s3" in named and "trino" in named
    assert set(named) <= set(yaml.safe_load((project / "compose.yaml").read_text())["services"])
    assert not {"console", "aws", "jupyter"} & set(named)
    assert up_calls(calls) == [] and not rules_path(governed).exists()


def test_governed_up_writes_the_rules_before_trino_starts_and_says_what_is_open(
    governed: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setattr(compose_governance, "host_uid", lambda: compose_governance.TRINO_IMAGE_UID)
    project, calls = tmp_path / "project", tmp_path / "calls.txt"
    write_files(governed, project / "compose.yaml")
    docker = fake_docker(tmp_path, calls, rules_path(governed))
    DockerRuntime(governed, project_dir=project, docker=docker).up(["trino"])
    assert len(up_calls(calls)) == 1 and "rules present" in calls.read_text()
    # The catalog did not answer: only the admin may do anything (fail closed).
    catalogs = json.loads(rules_path(governed).read_text())["catalogs"]

    def catalog_access(user: str) -> str:  # Trino applies the first rule that matches
        return str(next(r for r in catalogs if re.fullmatch(r.get("user", ".*"), user))["allow"])

    assert catalog_access(governed.governance_admin) == "all"
    assert catalog_access("alice") == "none"
    err = capsys.readouterr().err
    assert "only the stack's key" in err and "checks no token" in err and "Hint:" in err


def test_the_catalog_hands_no_s3_key_out_with_a_table(ungoverned: Settings) -> None:
    # The stock fixture's include-credentials, pinned off: a table load would
    # otherwise carry the stack's key, which opens every file.
    environment = yaml.safe_load(render_text(ungoverned))["services"]["catalog"]["environment"]
    assert environment["CATALOG_INCLUDE__CREDENTIALS"] == "false"


def test_ungoverned_up_writes_no_rules(ungoverned: Settings, tmp_path: Path) -> None:
    project, calls = tmp_path / "project", tmp_path / "calls.txt"
    write_files(ungoverned, project / "compose.yaml")
    docker = fake_docker(tmp_path, calls, rules_path(ungoverned))
    DockerRuntime(ungoverned, project_dir=project, docker=docker).up(["trino", "console"])
    assert len(up_calls(calls)) == 1 and not rules_path(ungoverned).exists()


def test_a_service_compose_lacks_is_one_clear_error(ungoverned: Settings, tmp_path: Path) -> None:
    # The defaults hold the scheduler, which compose.yaml does not define: docker
    # compose would answer 'no such service' after a bare exit code.
    project, calls = tmp_path / "project", tmp_path / "calls.txt"
    write_files(ungoverned, project / "compose.yaml")
    docker = fake_docker(tmp_path, calls, rules_path(ungoverned))
    with pytest.raises(LakehouseError, match="no scheduler service") as info:
        DockerRuntime(ungoverned, project_dir=project, docker=docker).up()
    assert "--services s3,catalog," in str(info.value) and up_calls(calls) == []


def test_trino_must_be_able_to_read_the_rules(
    governed: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert rules_reader_problem(compose_governance.TRINO_IMAGE_UID, "linux") is None
    assert rules_reader_problem(501, "darwin") is None
    problem = rules_reader_problem(0, "linux")
    assert problem is not None and "uid 0" in str(problem) and "Hint:" in str(problem)
    monkeypatch.setattr(compose_governance, "host_uid", lambda: 0)
    monkeypatch.setattr(compose_governance.sys, "platform", "linux")
    project, calls = tmp_path / "project", tmp_path / "calls.txt"
    write_files(governed, project / "compose.yaml")
    docker = fake_docker(tmp_path, calls, rules_path(governed))
    with pytest.raises(GovernanceUnenforceableError, match="uid 0"):
        DockerRuntime(governed, project_dir=project, docker=docker).up(["trino"])
    assert up_calls(calls) == []


def test_a_compose_file_rendered_ungoverned_is_refused_when_governance_is_on(
    governed: Settings, ungoverned: Settings, tmp_path: Path
) -> None:
    project, calls = tmp_path / "project", tmp_path / "calls.txt"
    (project).mkdir()
    (project / "compose.yaml").write_text(render_text(ungoverned))
    docker = fake_docker(tmp_path, calls, rules_path(governed))
    with pytest.raises(Exception, match="compose render"):
        DockerRuntime(governed, project_dir=project, docker=docker).status()
    # compose.yaml current, the properties it mounts missing: refused too.
    write_files(governed, project / "compose.yaml")
    (project / ACCESS_CONTROL_FILE).unlink()
    with pytest.raises(Exception, match="compose render"):
        DockerRuntime(governed, project_dir=project, docker=docker).status()


def test_a_home_path_with_a_dollar_is_not_interpolated_by_compose(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = make_settings(monkeypatch, tmp_path / "my$HOME", governed=True)
    volumes = yaml.safe_load(render_text(settings))["services"]["trino"]["volumes"]
    mounted = [v for v in volumes if v.endswith(f"{CONTAINER_HOME}/governance:ro")]
    assert mounted == [f"{tmp_path / 'my$$HOME'}/governance:{CONTAINER_HOME}/governance:ro"]
