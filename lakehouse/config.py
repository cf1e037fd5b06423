"""The one typed settings model.

Precedence, highest first: CLI flags (keyword arguments to :func:`load_settings`),
``LAKEHOUSE_*`` environment variables, the ``[lakehouse]`` table of the
project's ``lakehouse.toml`` (or the file named by ``LAKEHOUSE_CONFIG``), then
defaults. The project, its config file and the default home are found by
walking up from the current directory (:mod:`lakehouse.home`); relative paths
in the config file are relative to the file, and every path in the settings is
absolute once loaded.

Every port, credential and path a service uses is derived from here; the
runtimes, the tests and ``lakehouse env`` all read it from this model.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lakehouse.errors import ConfigError
from lakehouse.home import CONFIG_FILE_NAME, find_project

__all__ = [
    "CONFIG_FILE_NAME",
    "Settings",
    "catalog_properties",
    "catalog_token_refused",
    "load_settings",
]
MAVEN_CENTRAL = "https://repo.maven.apache.org/maven2"
# The namespace unqualified names resolve in (DuckDB's USE), created by the catalog
# service. Here rather than in lakehouse.services.catalog, so that a query does not
# import the service machinery (~15 ms).
DEFAULT_NAMESPACE = "default"


def default_cache_dir() -> Path:
    """The per-user cache for downloaded artifacts (``LAKEHOUSE_CACHE`` overrides)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("lakehouse"))


ENV_PREFIX = "LAKEHOUSE_"


class Settings(BaseModel):
    """Settings of one lake house: where it lives, its ports and credentials.

    ``Settings(**given)`` reads its sources itself, highest first: ``given``,
    ``LAKEHOUSE_<FIELD>`` variables (any case), the config file's ``[lakehouse]``
    table, then defaults. (A plain pydantic model with these three sources,
    rather than pydantic-settings, which costs ~0.1 s of imports per command.)
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    def __init__(self, **given: Any) -> None:
        super().__init__(**(read_config_file() | _from_environment() | given))

    home: Path = Field(
        default_factory=lambda: find_project().default_home,
        description="State, logs and data of the running lake house (PID files, S3 data, "
        "catalog DB); default: the .lakehouse/ of the project found by walking up from the "
        "current directory, else the per-user data directory.",
    )
    cache: Path = Field(
        default_factory=default_cache_dir,
        description="Downloaded Maven artifacts and compiled helpers, shared by every home.",
    )
    runtime: Literal["local", "docker"] = Field(
        default="local", description="Which runtime starts the services."
    )
    bind_host: str = Field(
        default="127.0.0.1",
        description="Address services listen on. Anything but loopback exposes the lake to the network.",
    )
    s3_port: int = Field(default=9000, description="S3 API port.")
    s3_internal_port_base: int = Field(
        default=9330,
        description="First of 10 consecutive ports SeaweedFS uses internally (master, volume, filer, admin, their gRPC twins; the 10th is kept free), plus base + 10007 for the admin's gRPC port. Keep both below the kernel's ephemeral range (Linux: 32768), where clients' connections may hold a port when a service restarts.",
    )
    catalog_port: int = Field(default=8181, description="Iceberg REST catalog port.")
    access_key: str = Field(default="lakehouse", description="S3 access key id.")
    secret_key: str = Field(default="lakehouse-secret", description="S3 secret access key.")
    region: str = Field(default="us-east-1", description="AWS region reported to clients.")
    warehouse_bucket: str = Field(
        default="warehouse", description="Bucket holding the Iceberg warehouse."
    )
    catalog_name: str = Field(
        default="lake", description="Name of the Iceberg catalog in every engine."
    )
    catalog_token: str = Field(
        default="lakehouse-catalog-token",
        min_length=1,
        description="Bearer token the REST catalog requires of every client (well known by "
        "default: set your own).",
    )
    java_home: Path | None = Field(
        default=None, description="JDK for JVM services; else JAVA_HOME, PATH, /usr/lib/jvm/*."
    )
    catalog_heap: str = Field(default="384m", description="Max heap of the REST catalog JVM.")
    catalog_checkpoint_seconds: int = Field(
        default=10, ge=1,
        description="How often the catalog folds its SQLite WAL into catalog.db (and empties it).",
    )  # fmt: skip
    startup_timeout: float = Field(
        default=90.0, description="Seconds to wait for a service to become healthy."
    )
    maven_repo: str | None = Field(
        default=None,
        description="Maven repository URL; else the mirror in ~/.m2/settings.xml, else Maven Central.",
    )
    trino_port: int = Field(
        default=8080, description="Trino coordinator HTTP port (Web UI at /ui/)."
    )
    trino_workers: int = Field(
        default=0, ge=0, le=8,
        description="Extra Trino worker nodes; worker i listens on trino_port + i.",
    )  # fmt: skip
    trino_heap: str = Field(default="1536M", description="Max heap of each Trino node.")
    trino_query_memory: str = Field(
        default="768MB", description="query.max-memory-per-node (and per query) for Trino."
    )
    trino_java: Path | None = Field(
        default=None, description="JDK for Trino (24+); else JAVA_HOME, PATH, /usr/lib/jvm/*."
    )
    trino_node_timeout: str = Field(
        default="1m",
        description="How long the Trino coordinator retries a node that stopped answering "
        "before it fails the query with REMOTE_HOST_GONE (query.remote-task.max-error-duration; "
        "e.g. 1m, 20s).",
    )
    spark_port: int = Field(
        default=15002,
        description="Spark Connect gRPC port; its driver RPC and block manager use the next two.",
    )
    spark_driver_memory: str = Field(
        default="512m", description="Heap of the Spark Connect driver."
    )
    spark_job_memory: str = Field(
        default="1g", description="Heap of a `lakehouse spark submit` job."
    )
    result_max_bytes: int = Field(
        default=1 << 30, ge=0,
        description="Largest query result (Arrow bytes) Trino or Spark may return; 0: no limit.",
    )  # fmt: skip
    spark_java: Path | None = Field(
        default=None, description="JDK 17-21 for Spark; else JAVA_HOME, PATH, /usr/lib/jvm/*."
    )
    sample_scale: float = Field(
        default=1.0, description="Scale factor of the sample data `make up` loads."
    )
    postgres_port: int = Field(default=5432, description="PostgreSQL port (the RDS role).")
    postgres_user: str = Field(default="lakehouse", description="PostgreSQL superuser.")
    postgres_password: str = Field(
        default="lakehouse-secret", description="PostgreSQL password (scram-sha-256)."
    )
    postgres_db: str = Field(default="shop", description="The operational database.")
    opensearch_port: int = Field(default=9200, description="OpenSearch REST port.")
    opensearch_transport_port: int = Field(
        default=9300, description="OpenSearch transport port (node-to-node)."
    )
    opensearch_heap: str = Field(default="512m", description="Heap of the OpenSearch JVM.")
    opensearch_java: Path | None = Field(
        default=None,
        description="JDK 17-21 for OpenSearch 2.19; else JAVA_HOME, PATH, /usr/lib/jvm/*.",
    )
    mlflow_port: int = Field(
        default=5000, description="MLflow tracking server and model registry port."
    )
    ml_serve_port: int = Field(
        default=5001,
        description="First port of `lakehouse ml serve` endpoints; each served model takes the next free one of ten.",
    )
    console_port: int = Field(
        default=8070, description="The lakehouse console (web pages over the library) port."
    )
    dashboards_port: int = Field(
        default=8088, description="Apache Superset port (the optional `dashboards` service)."
    )
    jupyter_port: int = Field(
        default=8888, description="JupyterLab port (the optional `jupyter` service)."
    )
    aws_port: int = Field(
        default=4566, description="The Athena and Glue APIs (the `aws` service) port."
    )
    governance_enabled: bool = Field(
        default=False,
        description="Enforce the governance policy (grants, data cells filters, masks, LF-tags) on every engine; off, everyone reads everything as before.",
    )
    governance_admin: str = Field(
        default="admin",
        description="The admin principal: may do everything and grant it; the principal of calls that name none.",
    )
    principal: str | None = Field(
        default=None,
        description="Who queries run as when a call names no principal (`lakehouse env --as NAME` exports LAKEHOUSE_PRINCIPAL); unset, the governance admin.",
    )
    optional_services: list[str] = Field(
        default_factory=list,
        description="Optional services `up` starts besides the default ones (dashboards, jupyter); `lakehouse up --with NAME` adds one for a single start.",
    )
    sync_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        description="How often `sync --follow` commits new changes (an integration's batch_seconds overrides it).",
    )
    sync_batch_rows: int = Field(
        default=20000, ge=1, description="Most changes one sync batch commits."
    )
    sync_iceberg_write_mode: Literal["merge-on-read", "copy-on-write"] = Field(
        default="merge-on-read",
        description="How the sync writes changes into Iceberg: position delete files plus the new rows (merge-on-read, compacted as they pile up), or rewritten data files (copy-on-write).",
    )
    sync_snapshots_kept: int = Field(
        default=100,
        ge=1,
        description="Newest snapshots each synced Iceberg table (and the dead-letter table) keeps; older ones are expired with their files, so disk use stays flat.",
    )
    maintenance_tick_seconds: float = Field(
        default=60.0, gt=0,
        description="How often the scheduler service looks for due table maintenance (the [maintenance] policies of lakehouse.toml) and due crawlers.",
    )  # fmt: skip
    maintenance_orphan_floor_seconds: float = Field(
        default=86400.0, ge=0,
        description="The youngest an unreferenced file may be to be removed as an orphan (remove-orphan-files refuses a smaller --older-than): a writer whose commit takes longer than this could lose its files.",
    )  # fmt: skip
    sync_snapshot_max_age_minutes: float = Field(
        default=1440,
        ge=0,
        description="Snapshots of synced Iceberg tables older than this are expired too (the current one stays); 0: no age limit.",
    )

    @field_validator("optional_services", mode="before")
    @classmethod
    def _names_list(cls, value: Any) -> Any:
        """``LAKEHOUSE_OPTIONAL_SERVICES=dashboards,jupyter`` as a list."""
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator(
        "s3_port", "catalog_port", "s3_internal_port_base", "trino_port", "spark_port",
        "postgres_port", "opensearch_port", "opensearch_transport_port", "mlflow_port",
        "ml_serve_port", "console_port", "dashboards_port", "jupyter_port", "aws_port",
    )  # fmt: skip
    @classmethod
    def _valid_port(cls, port: int) -> int:
        if not 1 <= port <= 65535 - 10:
            raise ValueError(f"{port} is not a usable TCP port (allowed: 1 to {65535 - 10})")
        return port

    @field_validator("home", "cache", "java_home", "trino_java", "spark_java", "opensearch_java")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        # Children started with another cwd (services, notebooks) must see the same paths.
        return path.expanduser().absolute() if path is not None else None

    # Derived values: computed, never stored twice.
    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.client_host}:{self.s3_port}"

    @property
    def catalog_uri(self) -> str:
        return f"http://{self.client_host}:{self.catalog_port}"

    @property
    def trino_uri(self) -> str:
        return f"http://{self.client_host}:{self.trino_port}"

    @property
    def spark_uri(self) -> str:
        return f"sc://{self.client_host}:{self.spark_port}"

    @property
    def opensearch_uri(self) -> str:
        return f"http://{self.client_host}:{self.opensearch_port}"

    def postgres_dsn(self, database: str | None = None) -> str:
        """libpq URL of the lake's PostgreSQL (the ``shop`` database by default)."""
        # Percent-encoded: a password with '@', ':' or '/' must not break the URL.
        user, password = quote(self.postgres_user, safe=""), quote(self.postgres_password, safe="")
        return (
            f"postgresql://{user}:{password}@{self.client_host}:"
            f"{self.postgres_port}/{quote(database or self.postgres_db, safe='')}"
        )

    def acting_principal(self, named: str | None = None) -> str:
        """Who a call acts as: ``named`` (``--as``, ``principal=``), else the
        ``principal`` setting (LAKEHOUSE_PRINCIPAL), else the governance admin. The one
        rule for queries, ingests and policy changes alike."""
        return named or self.principal or self.governance_admin

    @property
    def mlflow_uri(self) -> str:
        return f"http://{self.client_host}:{self.mlflow_port}"

    @property
    def aws_uri(self) -> str:
        """The ``aws`` service: Athena, Glue and Lake Formation's endpoint."""
        return f"http://{self.client_host}:{self.aws_port}"

    @property
    def warehouse(self) -> str:
        return f"s3://{self.warehouse_bucket}/"

    @property
    def client_host(self) -> str:
        """Where clients connect: loopback when services bind to all interfaces."""
        return "127.0.0.1" if self.bind_host in ("0.0.0.0", "::") else self.bind_host

    @property
    def home_dir(self) -> Path:
        return self.home

    @property
    def cache_dir(self) -> Path:
        return self.cache


def catalog_properties(settings: Settings) -> dict[str, str]:
    """pyiceberg properties for the lake; also exported as PYICEBERG_CATALOG__LAKE__*."""
    return {
        "type": "rest",
        "uri": settings.catalog_uri,
        "warehouse": settings.warehouse,
        # Sent as "Authorization: Bearer <token>"; the catalog refuses requests without it.
        "token": settings.catalog_token,
        "s3.endpoint": settings.s3_endpoint,
        "s3.access-key-id": settings.access_key,
        "s3.secret-access-key": settings.secret_key,
        "s3.region": settings.region,
        "s3.path-style-access": "true",
    }


def catalog_token_refused(settings: Settings) -> ConfigError:
    """The error for a catalog that answered 401: this client's token is not the stack's."""
    return ConfigError(
        f"The catalog at {settings.catalog_uri} refused the token this client sent "
        "(HTTP 401): it is not the token the catalog was started with.",
        hint="Use the same LAKEHOUSE_CATALOG_TOKEN (or catalog_token in lakehouse.toml) as "
        "the `lakehouse up` that started the stack, or restart the catalog with this one "
        "(`lakehouse down --services catalog && lakehouse up`).",
    )


def _from_environment() -> dict[str, str]:
    """Settings given as ``LAKEHOUSE_<FIELD>`` variables (names match in any case)."""
    fields = Settings.model_fields
    found = {}
    for variable, value in os.environ.items():
        name = variable.lower().removeprefix(ENV_PREFIX.lower())
        if variable.upper().startswith(ENV_PREFIX) and name in fields:
            found[name] = value
    return found


PATH_FIELDS = ("home", "cache", "java_home", "trino_java", "spark_java", "opensearch_java")


def config_file_path() -> Path | None:
    """The config file in effect: ``LAKEHOUSE_CONFIG``, else the project's lakehouse.toml."""
    return find_project().config_file


def read_config_file(section: str = "lakehouse") -> dict[str, Any]:
    """A table of the config file (``[lakehouse]``, ``[sync]``), or {} when absent.

    In ``[lakehouse]``, relative paths are made relative to the file's directory.
    """
    path = config_file_path()
    if path is None or not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML: {exc}", hint=f"Fix the syntax in {path}."
        ) from exc
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{section}] in {path} must be a table.", hint="See README.md.")
    if section == "lakehouse":
        table = {
            key: _beside(path, value) if key in PATH_FIELDS and isinstance(value, str) else value
            for key, value in table.items()
        }
    return table


def _beside(config_file: Path, value: str) -> str:
    """``value`` as a path relative to the config file's directory (``~`` expanded)."""
    return str(config_file.parent / Path(value).expanduser())


def load_settings(**overrides: Any) -> Settings:
    """Settings with CLI-level overrides applied; ``None`` overrides are ignored."""
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = [_problem(error, given) for error in exc.errors(include_url=False)]
        raise ConfigError(
            "Invalid lakehouse setting"
            + ("s:\n  " if len(problems) > 1 else ": ")
            + "\n  ".join(problems),
            hint="Fix or unset the setting named above (README.md lists every setting).",
        ) from None


def _problem(error: Any, given: dict[str, Any]) -> str:
    """One invalid setting as a line: where it was set, the value, what is allowed."""
    name = str(error["loc"][0]) if error.get("loc") else "?"
    if name in given:
        origin = f"--{name.replace('_', '-')}"
    elif name in _from_environment():
        origin = next(
            variable for variable in os.environ
            if variable.upper() == f"{ENV_PREFIX}{name.upper()}"
        )  # fmt: skip
    else:
        origin = f"{name} in {config_file_path()}"
    allowed = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    secret = any(word in name for word in ("token", "secret", "password"))
    shown = "(hidden)" if secret and value else repr(value)
    return f"{origin} is {shown}: {allowed}"


def settings_environment(settings: Settings) -> dict[str, str]:
    """``LAKEHOUSE_*`` variables that reproduce ``settings`` exactly in a child process.

    Every field set (``None`` fields are left to the child's own defaults, which
    match), plus ``LAKEHOUSE_CONFIG`` naming the config file in effect, so the
    child also reads the same ``[sync]`` declarations whatever its working directory.
    """
    env = {
        f"LAKEHOUSE_{name.upper()}": ",".join(value) if isinstance(value, list) else str(value)
        for name, value in settings.model_dump().items()
        if value is not None
    }
    config_file = config_file_path()
    if config_file is not None:
        env["LAKEHOUSE_CONFIG"] = str(config_file)
    return env
