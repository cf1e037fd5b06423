"""The shape every service has: a spec, then prepare, health and after-ready.

A :class:`ServiceSpec` is plain data (name, command, env, ports, health URL,
dependencies) derived from :class:`~lakehouse.config.Settings`. Both runtimes
read it: the local runtime runs ``command`` as a child process, the docker
runtime renders the same ports, env and health check into compose. Nothing
about a service is written twice.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lakehouse.config import Settings
from lakehouse.errors import ConfigError, JavaNotFoundError
from lakehouse.java import Jdk


@dataclass(frozen=True)
class Port:
    """A port a service listens on; ``public`` ports are shown to users."""

    name: str
    number: int
    public: bool = True


@dataclass(frozen=True)
class ServiceSpec:
    """Everything a runtime needs to run one service."""

    name: str
    description: str
    command: tuple[str, ...]
    env: dict[str, str]
    ports: tuple[Port, ...]
    health_url: str
    url: str
    depends_on: tuple[str, ...] = ()
    data_dir: Path | None = None
    needs_java: bool = False
    cwd: Path | None = None
    extra_paths: dict[str, Path] = field(default_factory=dict)
    # PostgreSQL's fast shutdown is SIGINT; SIGTERM waits for every client to leave.
    stop_signal: str = "SIGTERM"
    # PostgreSQL and OpenSearch refuse to run as root (see unprivileged()).
    refuses_root: bool = False
    # Files the process leaves behind when it stops (unix sockets); stop removes them.
    leftovers: tuple[Path, ...] = ()

    @property
    def public_ports(self) -> tuple[Port, ...]:
        return tuple(port for port in self.ports if port.public)


# Any non-zero id works: inside the user namespace the server sees itself as this
# user, while outside its files stay owned by the caller (so no chown, and a home
# under /root stays reachable).
UNPRIVILEGED_ID = 1000


def unprivileged(command: Sequence[str]) -> list[str]:
    """``command`` as a non-root user when we are root, through a user namespace.

    PostgreSQL and OpenSearch exit at once when started as root, which is the
    norm in containers and CI. ``unshare`` (util-linux) execs the server, so the
    supervisor still owns its real PID.
    """
    if os.geteuid() != 0:
        return list(command)
    unshare = shutil.which("unshare")
    if unshare is None:
        raise ConfigError(
            f"{command[0]} refuses to run as root, and `unshare` (util-linux) is missing.",
            hint="Run lakehouse as a normal user, or install util-linux.",
        )
    return [unshare, "--user", f"--map-user={UNPRIVILEGED_ID}",
            f"--map-group={UNPRIVILEGED_ID}", *command]  # fmt: skip


@dataclass(frozen=True)
class Health:
    """One health probe: ``ok`` plus what the service answered."""

    ok: bool
    detail: str


def http_health(url: str, timeout: float = 2.0) -> Health:
    """Healthy when ``url`` answers 2xx; ``detail`` is what came back."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return Health(200 <= response.status < 300, f"HTTP {response.status} from {url}")
    except urllib.error.HTTPError as exc:
        return Health(False, f"HTTP {exc.code} from {url}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Health(False, f"no answer from {url}: {reason}")


def http_get_json(url: str, timeout: float = 2.0) -> dict[str, Any] | Health:
    """The JSON object at ``url``, or an unhealthy Health saying why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return Health(False, f"HTTP {exc.code} from {url}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return Health(False, f"no answer from {url}: {getattr(exc, 'reason', exc)}")
    return answer if isinstance(answer, dict) else Health(False, f"unexpected answer from {url}")


class Service(ABC):
    """One service of the lake house; subclasses fill in the spec."""

    name: str = ""
    # Optional services (dashboards, jupyter) start only when named: `up --with NAME`,
    # `up --services NAME`, or the optional_services setting.
    optional: bool = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @abstractmethod
    def spec(self) -> ServiceSpec:
        """The service's command, ports, env and health URL."""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Fetch artifacts and create directories; safe to call repeatedly."""

    def health(self) -> Health:
        return http_health(self.spec().health_url)

    def after_ready(self) -> None:  # noqa: B027 - optional hook
        """Idempotent set-up once the service answers (buckets, namespaces)."""

    def start_hint(self) -> str:
        return f"Read the full log with `lakehouse logs {self.name}`."

    def sign_in(self) -> str:
        """How a person signs in to the web page at ``spec().url`` (a user and
        password, where a token lives); empty when opening the URL is enough."""
        return ""

    def jdk(self) -> Jdk:
        """The JDK a JVM service runs on (JavaNotFoundError when none fits)."""
        raise NotImplementedError(f"{self.name} is not a JVM service")

    def java_executable(self) -> str:
        """``java`` of :meth:`jdk`; a placeholder when none fits, since prepare()
        reports the missing JDK before anything starts."""
        try:
            return str(self.jdk().java)
        except JavaNotFoundError:
            return "java"
