"""Environment variables that point existing tools at the lake.

``eval "$(lakehouse env)"`` makes aws-cli, boto3, pyarrow, s3fs and pyiceberg
(``pyiceberg --catalog lake list``) talk to the local lake unchanged.
"""

from __future__ import annotations

import shlex

from lakehouse.config import Settings, catalog_properties


def environment(settings: Settings) -> dict[str, str]:
    """Variable name to value, in a stable order."""
    env = {
        "LAKEHOUSE_HOME": str(settings.home_dir),
        "AWS_ENDPOINT_URL": settings.s3_endpoint,
        "AWS_ENDPOINT_URL_S3": settings.s3_endpoint,
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
    }
    prefix = f"PYICEBERG_CATALOG__{settings.catalog_name.upper()}__"
    for key, value in catalog_properties(settings).items():
        env[prefix + key.upper().replace("-", "_").replace(".", "__")] = value
    return env


def shell_exports(env: dict[str, str]) -> str:
    """POSIX ``export`` lines, safely quoted for ``eval``."""
    return "\n".join(f"export {name}={shlex.quote(value)}" for name, value in env.items())
