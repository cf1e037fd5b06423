"""The local runtime: a small supervisor for real server processes.

State lives under ``<home>``: ``run/<service>.json`` (PID, command, start time),
``logs/<service>.log`` and ``data/<service>/``. Services run in their own
session, so they outlive the CLI that started them; ``up`` is idempotent and
``down`` stops them in reverse dependency order, side by side where it can.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
from rich.console import Console

from lakehouse.config import Settings, settings_environment
from lakehouse.errors import PortInUseError, ServiceStartError
from lakehouse.privacy import PRIVATE_UMASK
from lakehouse.runtimes.logfiles import readable_tail, rotate
from lakehouse.runtimes.processes import (  # re-exported: imported from here elsewhere
    jvm_attach_sockets,
    process_uptime,
    tail,
    tree_memory_mb,
)
from lakehouse.runtimes.startorder import (
    OrderedSlots,
    StartBoard,
    StartCancelled,
    critical_first,
    run_in_dependency_order,
)
from lakehouse.runtimes.stoporder import stop_in_reverse_order
from lakehouse.services import Service, build_services
from lakehouse.services.base import Health, ServiceSpec, unprivileged
from lakehouse.services.s3 import seaweed_internal_ports

STOP_GRACE_SECONDS = 15.0
POLL_SECONDS = 0.1
# The lake's files (S3 volumes, catalog.db, logs, OpenSearch data) are the user's
# alone: new files are created 0600 and directories 0700.
# Children started by this Python process, kept so they are reaped when they
# exit instead of lingering as zombies (services must outlive a CLI, so nothing
# else holds on to them).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class ServiceStatus:
    """One row of ``lakehouse status``."""

    name: str
    url: str
    healthy: bool
    pid: int | None
    memory_mb: float | None
    detail: str
    # Started by `up` and not stopped by `down` since: a service that is then not
    # healthy has failed (crashed, killed), unlike one that was never started.
    started: bool = False
    # Seconds since the running process started (None when it is not running).
    uptime_seconds: float | None = None


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (a bind would succeed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def first_ephemeral_port() -> int:
    """Lowest port the kernel hands to outgoing connections (Linux; else IANA's 49152)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


# Ports free_port_block handed out in this process: two throwaway stacks made
# before either starts (nothing listens yet) must not get the same ports.
_HANDED_OUT: set[int] = set()
STACK_PORTS = 43  # consecutive ports of a throwaway stack (see isolated_stack_env)


def free_port_block(
    size: int, start: int = 20000, end: int | None = None, extra_offsets: tuple[int, ...] = ()
) -> int:
    """First of ``size`` consecutive ports free on 127.0.0.1 (for throwaway stacks).

    ``base + offset`` for each of ``extra_offsets`` must be free too (ports a
    service derives from a setting, such as SeaweedFS's admin gRPC port at
    ``s3_internal_port_base + 10007``). By default every one of these ports lies
    below the kernel's ephemeral range: a service restarted after a crash must
    bind its ports again, and a port in that range may meanwhile be the local
    end of some client's connection. No port is handed out twice per process.

    Raises:
        RuntimeError: no such block between ``start`` and ``end``.
    """
    reach = max(size, max(extra_offsets, default=0) + 1)
    if end is None:
        low = first_ephemeral_port()
        end = low if start + reach < low else 65000
    # Parallel runs start at different places (by PID) and wrap around at the end.
    span = max(1, end - reach - start)
    offset = (os.getpid() % 500) * 50 % span
    for step in range(0, span, size + 7):
        base = start + (offset + step) % span
        ports = [*range(base, base + size), *(base + extra for extra in extra_offsets)]
        if _HANDED_OUT.isdisjoint(ports) and all(port_is_free("127.0.0.1", p) for p in ports):
            _HANDED_OUT.update(ports)
            return base
    raise RuntimeError(f"no {size} consecutive free ports between {start} and {end}")


def isolated_stack_env(home: Path) -> dict[str, str]:
    """LAKEHOUSE_* variables for a throwaway stack in ``home`` on free ports (every
    port its services open, derived ones included, below the ephemeral range)."""
    internal = 2  # s3_internal_port_base's offset in the block
    derived = tuple(
        port for port in seaweed_internal_ports(internal).values() if port >= STACK_PORTS
    )
    base = free_port_block(STACK_PORTS, extra_offsets=derived)
    return {
        "LAKEHOUSE_HOME": str(home),
        "LAKEHOUSE_S3_PORT": str(base),
        "LAKEHOUSE_CATALOG_PORT": str(base + 1),
        "LAKEHOUSE_S3_INTERNAL_PORT_BASE": str(base + internal),  # 10 ports, + admin gRPC
        "LAKEHOUSE_TRINO_PORT": str(base + 12),  # + one per worker, up to 8
        "LAKEHOUSE_SPARK_PORT": str(base + 25),  # + 2 for its driver and block manager
        "LAKEHOUSE_POSTGRES_PORT": str(base + 22),
        "LAKEHOUSE_OPENSEARCH_PORT": str(base + 23),
        "LAKEHOUSE_OPENSEARCH_TRANSPORT_PORT": str(base + 24),
        "LAKEHOUSE_MLFLOW_PORT": str(base + 28),
        "LAKEHOUSE_ML_SERVE_PORT": str(base + 29),  # + up to 9 more endpoints
        "LAKEHOUSE_CONSOLE_PORT": str(base + 39),
        "LAKEHOUSE_DASHBOARDS_PORT": str(base + 40),
        "LAKEHOUSE_JUPYTER_PORT": str(base + 41),
        "LAKEHOUSE_AWS_PORT": str(base + 42),
    }


def port_owner(port: int) -> str:
    """'name (pid N)' of the process listening on ``port``, when visible."""
    try:
        for conn in psutil.net_connections(kind="inet"):
            listening = conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port
            if listening and conn.pid:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        pass
    return "another process"


def make_private(home: Path) -> None:
    """Create ``home`` 0700 and take group and other access off everything in it
    (a home made before lakehouse kept it private, or by hand)."""
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    for directory, subdirs, files in os.walk(home):
        for name in (*subdirs, *files):
            path = Path(directory) / name
            try:
                mode = path.lstat().st_mode
                if mode & 0o077 and not stat.S_ISLNK(mode):
                    path.chmod(stat.S_IMODE(mode) & ~0o077)
            except OSError:  # a file a running service just removed
                continue


class LocalRuntime:
    """Starts, watches and stops services as child processes."""

    name = "local"

    def __init__(self, settings: Settings, console: Console | None = None) -> None:
        self.settings = settings
        self.home = settings.home_dir
        self.console = console or Console(stderr=True, quiet=not sys.stderr.isatty())

    # -- paths and state ---------------------------------------------------
    def log_path(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"

    def _state_path(self, name: str) -> Path:
        return self.home / "run" / f"{name}.json"

    def pid(self, name: str) -> int | None:
        """PID of the service's process if it is still the one we started."""
        path = self._state_path(name)
        if not path.is_file():
            return None
        for child in list(_CHILDREN.values()):
            if child.poll() is not None:
                _CHILDREN.pop(child.pid, None)  # services start on several threads
        try:
            state = json.loads(path.read_text())
            proc = psutil.Process(state["pid"])
            same = abs(proc.create_time() - state["create_time"]) < 1.0
            if same and proc.status() != psutil.STATUS_ZOMBIE:
                return int(state["pid"])
        except (psutil.Error, ValueError, KeyError):
            pass
        return None

    # -- up ------------------------------------------------------------------
    def up(self, names: list[str] | None = None) -> list[Service]:
        """Start the named services and their dependencies; healthy ones are left alone.

        Every service is prepared first (installs, config files), one after another;
        then each starts once the services it depends on answer, so services whose
        dependencies are ready start at the same time (JVMs take turns, one per two
        cores). Raises PortInUseError or the error of a failed prepare (nothing
        started), or the ServiceStartError of the first service, in start order, that
        failed; services still starting then are stopped, those already ready stay
        up (a second ``up`` starts the rest).
        """
        services = build_services(self.settings, names)
        to_start = [svc for svc in services if not self._already_up(svc)]
        self._check_ports(to_start)
        # This process writes into the home too (state files, log headers, data
        # directories in prepare); the caller's umask is restored afterwards.
        caller_umask = os.umask(PRIVATE_UMASK)
        try:
            make_private(self.home)
            for svc in to_start:  # all of them first: a failed download starts nothing
                with self.console.status(f"Preparing {svc.name}..."):
                    svc.prepare()
            self._bring_up(services, to_start)
            if to_start:
                # Some services set modes of their own at start (OpenSearch's keystore
                # 0660, SeaweedFS's volume .vif files 0644): take group and other off.
                make_private(self.home)
        finally:
            os.umask(caller_umask)
        return services

    def start_service(self, svc: Service, timeout: float | None = None) -> Health:
        """Start one service outside the stack's own set (a model endpoint) and wait for it;
        its dependencies must already run. Raises PortInUseError, ServiceStartError."""
        if self._already_up(svc):
            return self.wait_ready(svc, timeout)
        self._check_ports([svc])
        caller_umask = os.umask(PRIVATE_UMASK)
        try:
            svc.prepare()
            self._start(svc)
            health = self.wait_ready(svc, timeout)
            svc.after_ready()
        finally:
            os.umask(caller_umask)
        return health

    def _already_up(self, svc: Service) -> bool:
        return self.pid(svc.name) is not None

    def _check_ports(self, services: list[Service]) -> None:
        """Raise one PortInUseError listing every port taken (not the first only)."""
        taken = [
            (svc.name, port.name, port.number)
            for svc in services
            for port in svc.spec().ports
            if not port_is_free(self.settings.bind_host, port.number)
        ]
        if not taken:
            return
        lines = [
            f"  port {number} ({port_name} of '{service}'): used by {port_owner(number)}"
            for service, port_name, number in taken
        ]
        settings = list(dict.fromkeys(self._port_setting(svc, name) for svc, name, _ in taken))
        variables = [f"LAKEHOUSE_{name.upper()}" for name in settings]
        raise PortInUseError(
            f"{len(taken)} port(s) the services need on {self.settings.bind_host} are in use, "
            "so nothing was started:\n" + "\n".join(lines),
            hint="Stop the other process, or give this stack free ports: set "
            f"{', '.join(variables)}, or {', '.join(settings)} under [lakehouse] in the "
            "project's lakehouse.toml (README.md, Backup and restore, shows one).",
        )

    @staticmethod
    def _port_setting(service: str, port_name: str) -> str:
        """The setting that moves ``port_name`` of ``service`` (a lakehouse.toml key)."""
        setting = {
            "s3": "s3_port",
            "catalog": "catalog_port",
            "trino": "trino_port",
            "spark": "spark_port",
            "spark-driver": "spark_port",  # it is spark_port + 1
            "spark-block-manager": "spark_port",  # spark_port + 2
            "postgres": "postgres_port",
            "opensearch": "opensearch_port",
            "opensearch-transport": "opensearch_transport_port",
            "mlflow": "mlflow_port",
            "endpoint": "ml_serve_port",  # a model endpoint (lakehouse.ml.serving)
            "console": "console_port",
            "dashboards": "dashboards_port",
            "jupyter": "jupyter_port",
            "aws": "aws_port",
        }.get(port_name)
        if setting is None and service == "s3":
            return "s3_internal_port_base"
        if setting is None and service.startswith("trino-worker-"):
            return "trino_port"  # worker i listens on trino_port + i
        return setting or port_name

    def _start(self, svc: Service) -> None:
        spec = svc.spec()
        log = self.log_path(spec.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        self._state_path(spec.name).parent.mkdir(parents=True, exist_ok=True)
        rotate(log)  # services outlive the CLI: their stdout file is bounded per start
        with log.open("ab") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.name}\n".encode())
            proc = subprocess.Popen(
                unprivileged(spec.command) if spec.refuses_root else spec.command, env=self._child_env(spec), cwd=spec.cwd or self.home,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, umask=PRIVATE_UMASK,
            )  # fmt: skip
        _CHILDREN[proc.pid] = proc
        state = {
            "pid": proc.pid,
            "create_time": psutil.Process(proc.pid).create_time(),
            "command": list(spec.command),
            "started_at": time.time(),
            "stop_signal": spec.stop_signal,
            "leftovers": [str(path) for path in spec.leftovers],
        }
        self._state_path(spec.name).write_text(json.dumps(state, indent=2))

    def _child_env(self, spec: ServiceSpec) -> dict[str, str]:
        """The caller's environment, this ``up``'s settings, then the service's own variables."""
        return {**os.environ, **settings_environment(self.settings), **spec.env}

    def _bring_up(self, services: list[Service], to_start: list[Service]) -> None:
        """Start ``to_start``, each on a thread of its own once its dependencies are
        ready; returns when each of ``services`` is ready and set up (``after_ready``)."""
        by_name = {svc.name: svc for svc in services}
        depends_on = {name: svc.spec().depends_on for name, svc in by_name.items()}
        first = critical_first([svc.name for svc in to_start], depends_on)
        jvms = [name for name in first if by_name[name].spec().needs_java]
        jvm_slots = OrderedSlots(jvms, (os.cpu_count() or 1) // 2)
        with self.console.status("Starting...") as shown:
            board = StartBoard(list(by_name), shown.update)

            def bring_up(name: str, cancelled: threading.Event) -> None:
                svc = by_name[name]
                if svc in to_start:
                    self._start_and_wait(svc, cancelled, jvm_slots)
                else:
                    self._poll_ready(svc, None, cancelled, stop_when_cancelled=False)
                svc.after_ready()
                board.ready(name)

            run_in_dependency_order(list(by_name), depends_on, bring_up)

    def _start_and_wait(
        self, svc: Service, cancelled: threading.Event, jvm_slots: OrderedSlots
    ) -> None:
        """Start ``svc`` and wait until it answers; a JVM holds one of ``jvm_slots``
        meanwhile (its timeout then counts from its start, not from its turn)."""
        jvm = svc.spec().needs_java
        if jvm:
            jvm_slots.acquire(svc.name, cancelled, POLL_SECONDS)
        try:
            self._start(svc)
            self._poll_ready(svc, None, cancelled)
        finally:
            if jvm:
                jvm_slots.release(svc.name)

    def wait_ready(self, svc: Service, timeout: float | None = None) -> Health:
        """Block until the service is healthy; on failure stop it and raise."""
        with self.console.status(f"Waiting for {svc.name} to become healthy..."):
            return self._poll_ready(svc, timeout, threading.Event())

    def _poll_ready(
        self,
        svc: Service,
        timeout: float | None,
        cancelled: threading.Event,
        stop_when_cancelled: bool = True,
    ) -> Health:
        """Poll the service's health until it answers (ServiceStartError, the service
        stopped, when it exits or times out; StartCancelled once ``cancelled`` is set)."""
        timeout = timeout or self.settings.startup_timeout
        deadline = time.monotonic() + timeout
        health = Health(False, "not checked yet")
        while time.monotonic() < deadline:
            if cancelled.is_set():
                if stop_when_cancelled:  # a start half done is not left behind
                    self.stop(svc.name)
                raise StartCancelled(svc.name)
            if self.pid(svc.name) is None:
                self._fail(svc, "exited during start-up", health)
            health = svc.health()
            if health.ok:
                return health
            time.sleep(POLL_SECONDS)
        self._fail(svc, f"did not become healthy within {timeout:.0f} s", health)
        raise AssertionError("unreachable")

    def _fail(self, svc: Service, problem: str, health: Health) -> None:
        self.stop(svc.name)
        raise ServiceStartError(
            svc.name, problem, svc.spec().command, health.detail,
            tail(self.log_path(svc.name)), svc.start_hint(),
        )  # fmt: skip

    # -- down ----------------------------------------------------------------
    def down(self, names: list[str] | None = None) -> list[str]:
        """Stop services (all by default), each once those depending on it stopped, side
        by side where none does; returns those stopped, in reverse start order."""
        services = build_services(self.settings, every=True)
        order = [svc.name for svc in services]
        # Workers started with another --trino-workers count and model endpoints are
        # not in `order`; they depend on everything else, so they stop first.
        extra = sorted(set(self.recorded()) - set(order), reverse=True)
        wanted = set(order) | set(extra) if not names else set(names)
        if names and "trino" in names:
            wanted |= {name for name in [*order, *extra] if name.startswith("trino-worker-")}
        depends_on: dict[str, Sequence[str]] = {svc.name: svc.spec().depends_on for svc in services}
        depends_on |= {name: order for name in extra}
        stopping = [name for name in [*extra, *reversed(order)] if name in wanted]
        return stop_in_reverse_order(stopping, depends_on, self.stop)

    def processes(self) -> dict[str, list[psutil.Process]]:
        """Per running service, its process and every descendant (JVM forks,
        PostgreSQL backends, the ``unshare`` child)."""
        found: dict[str, list[psutil.Process]] = {}
        for name in self.recorded():
            pid = self.pid(name)
            if pid is None:
                continue
            try:
                root = psutil.Process(pid)
                found[name] = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return found

    def recorded(self) -> list[str]:
        """Services with a state file (started by this runtime and not stopped since)."""
        run = self.home / "run"
        return sorted(path.stem for path in run.glob("*.json")) if run.is_dir() else []

    def stop(self, name: str) -> bool:
        """Signal the service's process group (SIGTERM unless its spec says otherwise),
        SIGKILL after a grace period."""
        pid = self.pid(name)
        stop_signal = self._recorded_stop_signal(name)
        leftovers = self._recorded_leftovers(name)
        self._state_path(name).unlink(missing_ok=True)
        if pid is None:
            return False
        leftovers += jvm_attach_sockets(pid)
        try:
            os.killpg(pid, stop_signal)
            _gone, alive = psutil.wait_procs([psutil.Process(pid)], timeout=STOP_GRACE_SECONDS)
            if alive:
                os.killpg(pid, signal.SIGKILL)
                psutil.wait_procs(alive, timeout=5)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
        child = _CHILDREN.pop(pid, None)
        if child is not None:
            child.wait(timeout=5)
        for path in leftovers:
            path.unlink(missing_ok=True)
        return True

    def _recorded_state(self, name: str) -> dict[str, object]:
        try:
            state = json.loads(self._state_path(name).read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _recorded_stop_signal(self, name: str) -> signal.Signals:
        try:
            return signal.Signals[str(self._recorded_state(name).get("stop_signal", "SIGTERM"))]
        except KeyError:
            return signal.SIGTERM

    def _recorded_leftovers(self, name: str) -> list[Path]:
        """Files the stopped process leaves behind, as recorded when it started."""
        recorded = self._recorded_state(name).get("leftovers", [])
        return [Path(path) for path in recorded] if isinstance(recorded, list) else []

    # -- status and logs -------------------------------------------------------
    def known_services(self) -> list[Service]:
        """The configured services, optional ones started by `up --with`, and any
        still-running Trino workers started with a different ``--trino-workers`` count."""
        defaults = {svc.name for svc in build_services(self.settings)}
        recorded_names = set(self.recorded())
        services = [
            svc
            for svc in build_services(self.settings, every=True)
            if svc.name in defaults or svc.name in recorded_names
        ]
        configured = {svc.name for svc in services}
        workers = [
            name
            for name in self.recorded()
            if name.startswith("trino-worker-") and name not in configured
        ]
        if workers:
            from lakehouse.services.trino import TrinoWorker

            services += [
                TrinoWorker(self.settings, int(name.rsplit("-", 1)[1])) for name in workers
            ]
        from lakehouse.ml.serving import endpoint_services

        recorded = set(self.recorded())
        return services + [svc for svc in endpoint_services(self.settings) if svc.name in recorded]

    def status(self) -> list[ServiceStatus]:
        rows = []
        for svc in self.known_services():
            spec = svc.spec()
            pid = self.pid(svc.name)
            started = self._state_path(svc.name).is_file()
            down = "exited (crashed or killed) since `up` started it" if started else "not running"
            health = svc.health() if pid else Health(False, down)
            memory = tree_memory_mb(pid) if pid else None
            rows.append(ServiceStatus(svc.name, spec.url, health.ok, pid, memory, health.detail,
                                      started, process_uptime(pid)))  # fmt: skip
        return rows

    def logs(self, name: str, lines: int = 100) -> str:
        if name not in {svc.name for svc in self.known_services()}:
            build_services(self.settings, [name])  # raises the "Unknown service" error
        specs = [svc.spec() for svc in self.known_services() if svc.name == name]
        own = specs[0].extra_paths.get("log") if specs else None
        return readable_tail(self.log_path(name), own, lines)
