"""The sockets a running stack's processes hold, for the isolation and listener tests."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import psutil

from lakehouse.config import Settings
from lakehouse.runtimes.local import LocalRuntime


@dataclass(frozen=True)
class SocketUse:
    """One socket of one process of a service.

    ``kind`` is ``listen`` (a TCP listener or a bound UDP socket: ``port``),
    ``connect`` (a connection: ``port`` is the peer's, ``local_port`` ours) or
    ``unix`` (a bound unix socket: ``path``).
    """

    service: str
    pid: int
    process: str
    kind: str
    port: int | None = None
    local_port: int | None = None
    path: str | None = None

    def __str__(self) -> str:
        where = self.path if self.kind == "unix" else f"port {self.port}"
        return f"{self.service} ({self.process}, pid {self.pid}): {self.kind} {where}"


def stack_sockets(settings: Settings) -> list[SocketUse]:
    """Every socket of every process (and descendant) the stack in ``settings`` runs."""
    found = []
    for service, processes in LocalRuntime(settings).processes().items():
        for process in processes:
            try:
                name, connections = process.name(), process.net_connections(kind="all")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue  # a PostgreSQL backend that just ended
            found += [_use(service, process.pid, name, conn) for conn in connections]
    return [use for use in found if use is not None]


def _use(service: str, pid: int, process: str, conn: psutil._common.pconn) -> SocketUse | None:
    if conn.family == socket.AF_UNIX:
        bound = conn.laddr if isinstance(conn.laddr, str) and conn.laddr else None
        return SocketUse(service, pid, process, "unix", path=bound) if bound else None
    local_port = conn.laddr.port if conn.laddr else None
    if conn.raddr:
        return SocketUse(service, pid, process, "connect", conn.raddr.port, local_port)
    listening = conn.status == psutil.CONN_LISTEN or conn.type == socket.SOCK_DGRAM
    return SocketUse(service, pid, process, "listen", local_port) if listening else None


def service_ports(settings: Settings) -> dict[str, set[int]]:
    """Per service lakehouse knows (running or not), the ports its spec declares."""
    return {
        svc.name: {port.number for port in svc.spec().ports}
        for svc in LocalRuntime(settings).known_services()
    }
