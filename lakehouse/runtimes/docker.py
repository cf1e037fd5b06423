"""The docker runtime: drives ``docker compose`` with the rendered compose.yaml.

Status, logs and down behave as in the local runtime. Without a Docker engine
every command fails with one message that offers the local runtime.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from rich.console import Console

from lakehouse.config import Settings
from lakehouse.errors import LakehouseError
from lakehouse.runtimes import compose_governance
from lakehouse.runtimes.compose import FULL, render, write_files
from lakehouse.runtimes.local import ServiceStatus
from lakehouse.services import Service, build_services

COMPOSE_FILE = "compose.yaml"


class DockerNotAvailableError(LakehouseError):
    """No Docker engine (or no compose plugin) to run the docker runtime."""


class DockerRuntime:
    """Runs the lake house with Docker Compose from ``project_dir``."""

    name = "docker"

    def __init__(
        self, settings: Settings, project_dir: Path | None = None, docker: str = "docker"
    ) -> None:
        self.settings = settings
        self.project_dir = project_dir or Path.cwd()
        self.docker = docker
        self.console = Console(stderr=True)

    @property
    def compose_file(self) -> Path:
        return self.project_dir / COMPOSE_FILE

    def compose_command(self, *args: str, profile: str = FULL) -> list[str]:
        return [self.docker, "compose", "-f", str(self.compose_file), "--profile", profile, *args]

    def check(self) -> None:
        """Raise a clear error unless an engine answers and compose.yaml is current."""
        if shutil.which(self.docker) is None:
            raise DockerNotAvailableError(
                f"The docker runtime needs the `{self.docker}` command, which is not installed.",
                hint="Use the local runtime, which needs no Docker: `lakehouse up --runtime local` "
                "(the default; unset LAKEHOUSE_RUNTIME).",
            )
        probe = subprocess.run([self.docker, "info", "--format", "{{.ServerVersion}}"],
                               capture_output=True, text=True, check=False)  # fmt: skip
        if probe.returncode != 0:
            reason = (probe.stderr or probe.stdout).strip().splitlines()[-1:] or ["no answer"]
            raise DockerNotAvailableError(
                f"No Docker engine is reachable: {reason[0]}",
                hint="Start Docker, or use the local runtime: `lakehouse up --runtime local`.",
            )
        # Trino's compose configs too: with governance on, its access-control.properties.
        if write_files(self.settings, self.compose_file, dry_run=True):
            raise LakehouseError(
                f"{self.compose_file} (or a file it mounts) is missing or differs from "
                "these settings.",
                hint="Run `lakehouse compose render` to write it.",
            )

    def _run(self, *args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
        self.check()
        result = subprocess.run(self.compose_command(*args), cwd=self.project_dir,
                                capture_output=capture, text=True, check=False)  # fmt: skip
        if result.returncode != 0:
            raise LakehouseError(
                f"`docker compose {' '.join(args)}` failed (exit code {result.returncode}).",
                hint="`lakehouse logs NAME` shows a service's log.",
            )
        return result

    def up(self, names: list[str] | None = None) -> list[Service]:
        services = build_services(self.settings, names)
        targets = [svc.name for svc in services if not svc.name.startswith("trino-worker-")]
        if "trino" in targets and self.settings.trino_workers:
            targets.append("trino-worker")  # compose's one scalable worker service
        workers = ["--scale", f"trino-worker={self.settings.trino_workers}"]
        # Governance on: refuse what compose cannot govern before anything (even
        # without Docker: what was asked cannot be governed there anyway).
        compose_governance.check_targets(self.settings, targets)
        self.check()
        self._refuse_undefined(targets)
        governed_trino = self.settings.governance_enabled and "trino" in targets
        if governed_trino:
            compose_governance.write_trino_rules(self.settings)  # Trino needs the file
        if self.settings.governance_enabled and {"s3", "catalog"} & set(targets):
            self.console.print(compose_governance.NOTICE, markup=False, highlight=False)
        self._run("up", "--detach", "--wait", *workers, *targets, "init")
        if governed_trino:
            compose_governance.write_trino_rules(self.settings)  # the catalog answers now
        return services

    def _refuse_undefined(self, targets: list[str]) -> None:
        """One clear error for a service compose.yaml does not define (docker compose
        would fail with 'no such service' after starting nothing)."""
        defined = render(self.settings)["services"]
        missing = [name for name in targets if name not in defined]
        if missing:
            others = ",".join(
                name for name in targets if name in defined and name != "trino-worker"
            )
            raise LakehouseError(
                f"The docker runtime has no {', '.join(missing)} service yet "
                "(compose.yaml does not define it), so nothing was started.",
                hint=f"Name the others (`lakehouse up --runtime docker --services {others}`), "
                "or use the local runtime (`lakehouse up --runtime local`).",
            )

    def down(self, names: list[str] | None = None) -> list[str]:
        if names:
            self._run("stop", *names)
            return list(names)
        self._run("down")
        return [svc.name for svc in build_services(self.settings, every=True)]

    def status(self) -> list[ServiceStatus]:
        result = self._run("ps", "--all", "--format", "json", capture=True)
        by_name = {row.get("Service"): row for row in parse_ps(result.stdout)}
        rows = []
        for svc in build_services(self.settings, every=True):
            row = by_name.get(svc.name, {})
            if svc.optional and not row and svc.name not in self.settings.optional_services:
                continue  # an optional service never started is not news
            healthy = row.get("Health") == "healthy"
            rows.append(ServiceStatus(svc.name, svc.spec().url, healthy, None, None,
                                      row.get("Status", "not created"), bool(row)))  # fmt: skip
        return rows

    def logs(self, name: str, lines: int = 100) -> str:
        return self._run("logs", "--no-color", "--tail", str(lines), name, capture=True).stdout


def parse_ps(output: str) -> list[dict[str, str]]:
    """`docker compose ps --format json`: one JSON array (older) or JSON lines (newer)."""
    text = output.strip()
    if not text:
        return []
    if text.startswith("["):
        rows = json.loads(text)
        return [row for row in rows if isinstance(row, dict)]
    return [json.loads(line) for line in text.splitlines() if line.strip()]
