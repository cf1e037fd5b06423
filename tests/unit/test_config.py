"""Settings precedence: flag > LAKEHOUSE_* env > lakehouse.toml > defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.errors import ConfigError


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "lakehouse.toml"
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(path))
    return path


def test_defaults(config_file: Path) -> None:
    settings = load_settings()
    assert (settings.s3_port, settings.catalog_port, settings.bind_host) == (
        9000,
        8181,
        "127.0.0.1",
    )
    assert settings.s3_endpoint == "http://127.0.0.1:9000"
    assert settings.warehouse == "s3://warehouse/"


def test_file_then_env_then_flag(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text(
        "[lakehouse]\ns3_port = 9100\ncatalog_port = 8200\nregion = 'eu-west-1'\n"
    )
    assert load_settings().s3_port == 9100
    monkeypatch.setenv("LAKEHOUSE_S3_PORT", "9200")
    settings = load_settings()
    assert (settings.s3_port, settings.catalog_port, settings.region) == (9200, 8200, "eu-west-1")
    assert load_settings(s3_port=9300).s3_port == 9300
    assert load_settings(s3_port=None).s3_port == 9200


def test_bad_toml_and_bad_values_are_config_errors(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("[lakehouse\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()
    config_file.write_text("")
    monkeypatch.setenv("LAKEHOUSE_S3_PORT", "99999")
    with pytest.raises(ConfigError, match="not a usable TCP port"):
        load_settings()


def test_wildcard_bind_still_gives_clients_loopback(config_file: Path) -> None:
    settings = load_settings(bind_host="0.0.0.0")
    assert settings.catalog_uri == "http://127.0.0.1:8181"


def test_postgres_url_survives_url_characters_in_the_password(config_file: Path) -> None:
    from psycopg.conninfo import conninfo_to_dict

    settings = load_settings(postgres_password="p@ss:w/rd%", postgres_user="lake user")
    parts = conninfo_to_dict(settings.postgres_dsn("my db"))
    assert (parts["user"], parts["password"], parts["dbname"]) == (
        "lake user",
        "p@ss:w/rd%",
        "my db",
    )
    assert parts["port"] == str(settings.postgres_port)
