"""One lake house per test run: reuse a healthy one, or start one and share it.

Under pytest-xdist every worker calls :func:`acquire`; a file lock and a
reference count in a directory named after the run make the first worker start
the stack and the last one stop it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from lakehouse.config import Settings, load_settings
from lakehouse.errors import JavaNotFoundError, LakehouseError
from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env
from lakehouse.services import build_services
from lakehouse.services.base import http_health

DEFAULT_SERVICES = ("s3", "catalog")


@dataclass(frozen=True)
class LakehouseStack:
    """What the ``lakehouse_stack`` fixture returns: settings plus what is up."""

    settings: Settings
    services: tuple[str, ...]
    reused: bool
    unavailable: dict[str, str] = field(default_factory=dict)

    def missing(self, service: str) -> str | None:
        """Why ``service`` cannot be used in this run, or None when it can."""
        if service in self.services:
            return None
        return self.unavailable.get(
            service, f"the '{service}' service is not part of this lakehouse stack "
            f"(running: {', '.join(self.services)}; choose with --lakehouse-services)",
        )  # fmt: skip

    @property
    def env(self) -> dict[str, str]:
        """LAKEHOUSE_* variables that select this stack (for subprocesses)."""
        s = self.settings
        ports = {
            f"LAKEHOUSE_{name.upper()}": str(getattr(s, name))
            for name in type(s).model_fields
            if name.endswith(("_port", "_port_base"))
        }
        return {"LAKEHOUSE_HOME": str(s.home_dir), **ports}


def settings_from_url(url: str) -> Settings:
    """Settings for ``http://host:CATALOG_PORT[?s3=http://host:S3_PORT]``."""
    parsed = urllib.parse.urlsplit(url)
    if not parsed.hostname or not parsed.port:
        raise LakehouseError(f"--lakehouse-url {url!r} needs a host and a port.",
                             hint="Example: --lakehouse-url 'http://127.0.0.1:8181?s3=http://127.0.0.1:9000'")  # fmt: skip
    s3 = urllib.parse.parse_qs(parsed.query).get("s3", [None])[0]
    s3_port = urllib.parse.urlsplit(s3).port if s3 else None
    return load_settings(bind_host=parsed.hostname, catalog_port=parsed.port, s3_port=s3_port)


def healthy_services(settings: Settings, wanted: tuple[str, ...]) -> bool:
    return all(svc.health().ok for svc in build_services(settings, list(wanted)))


def reuse_existing(
    home: str | None, url: str | None, wanted: tuple[str, ...]
) -> LakehouseStack | None:
    """A running stack named by --lakehouse-url or LAKEHOUSE_HOME, if all ``wanted`` are healthy."""
    if url:
        settings = settings_from_url(url)
        probe = http_health(f"{settings.catalog_uri}/healthz")
        if not probe.ok:
            raise LakehouseError(f"--lakehouse-url: the catalog does not answer ({probe.detail}).")
        return LakehouseStack(settings, wanted, reused=True)
    if home:
        settings = load_settings(home=Path(home))
        if healthy_services(settings, wanted):
            return LakehouseStack(settings, wanted, reused=True)
    return None


def start(settings: Settings, wanted: tuple[str, ...]) -> LakehouseStack:
    """Start ``wanted``; JVM services that lack a JDK become 'unavailable', not errors."""
    runtime = LocalRuntime(settings)
    try:
        _up_or_stop_all(runtime, wanted)
        return LakehouseStack(settings, wanted, reused=False)
    except JavaNotFoundError as exc:
        services = build_services(settings, list(wanted))
        plain = tuple(svc.name for svc in services if not svc.spec().needs_java)
        _up_or_stop_all(runtime, plain)
        reason = f"no suitable JDK: {exc.message}"
        jvm = {svc.name: reason for svc in services if svc.spec().needs_java}
        return LakehouseStack(settings, plain, reused=False, unavailable=jvm)


def _up_or_stop_all(runtime: LocalRuntime, names: tuple[str, ...]) -> None:
    """``runtime.up(names)``; if it fails, the services it did start are stopped too
    (a test run that cannot start its stack must not leave half of one running)."""
    try:
        runtime.up(list(names))
    except BaseException:
        runtime.down()
        raise


class SharedStack:
    """A stack shared by the processes of one test run, started once, stopped once."""

    def __init__(self, run_id: str) -> None:
        self.root = Path(tempfile.gettempdir()) / f"lakehouse-pytest-{run_id}"
        self.root.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(self.root / "lock"))
        self.state_file = self.root / "state.json"

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        with self.lock:
            state = json.loads(self.state_file.read_text()) if self.state_file.is_file() else {}
            yield state
            self.state_file.write_text(json.dumps(state))

    def acquire(self, wanted: tuple[str, ...]) -> LakehouseStack:
        with self._state() as state:
            if "env" not in state:
                env = isolated_stack_env(self.root / "home")
                stack = start(
                    load_settings(home=Path(env["LAKEHOUSE_HOME"]), **port_settings(env)), wanted
                )
                state.update(
                    env=stack.env, services=list(stack.services), unavailable=stack.unavailable
                )
            state["users"] = int(state.get("users", 0)) + 1
            env = state["env"]
            settings = load_settings(home=Path(env["LAKEHOUSE_HOME"]), **port_settings(env))
            return LakehouseStack(
                settings, tuple(state["services"]), False, dict(state["unavailable"])
            )

    def release(self, stack: LakehouseStack) -> None:
        with self._state() as state:
            state["users"] = int(state.get("users", 1)) - 1
            last = state["users"] == 0
            if last:
                LocalRuntime(stack.settings).down()
                state.clear()
        if last:
            shutil.rmtree(self.root, ignore_errors=True)


def port_settings(env: dict[str, str]) -> dict[str, int]:
    """Settings keyword arguments from LAKEHOUSE_*_PORT(_BASE) variables."""
    return {
        key.removeprefix("LAKEHOUSE_").lower(): int(value)
        for key, value in env.items()
        if key.endswith(("_PORT", "_PORT_BASE"))
    }
