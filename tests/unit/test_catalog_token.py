"""The catalog token reaches every client's configuration, and stays out of command lines."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lakehouse.config import catalog_properties, load_settings
from lakehouse.env import environment
from lakehouse.errors import ConfigError
from lakehouse.runtimes.compose import render
from lakehouse.services.catalog import CatalogService
from lakehouse.services.spark import SparkService, spark_conf
from lakehouse.services.trino import trino_env

TOKEN = "s3cr3t-token"


def test_every_client_configuration_carries_the_token(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, catalog_token=TOKEN)
    assert catalog_properties(settings)["token"] == TOKEN
    assert environment(settings)["PYICEBERG_CATALOG__LAKE__TOKEN"] == TOKEN
    assert trino_env(settings)["LAKEHOUSE_CATALOG_TOKEN"] == TOKEN
    assert CatalogService(settings).spec().env["LAKEHOUSE_CATALOG_TOKEN"] == TOKEN


def test_the_token_stays_out_of_the_spark_command_line(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, catalog_token=TOKEN)
    assert TOKEN not in " ".join(SparkService(settings).submit_command([]))
    assert TOKEN not in str(spark_conf(settings))
    secrets = SparkService(settings).write_secret_conf()
    assert f"spark.sql.catalog.lake.token {TOKEN}" in secrets.read_text()
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600


def test_the_catalog_health_check_needs_no_token(tmp_path: Path) -> None:
    spec = CatalogService(load_settings(home=tmp_path)).spec()
    assert spec.health_url.endswith("/healthz")


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ConfigError):
        load_settings(catalog_token="")


def test_compose_clients_send_the_token(tmp_path: Path) -> None:
    services = render(load_settings(home=tmp_path, catalog_token=TOKEN))["services"]
    assert services["trino"]["environment"]["LAKEHOUSE_CATALOG_TOKEN"] == TOKEN
    assert f"spark.sql.catalog.lake.token={TOKEN}" in services["spark"]["command"]
