"""The README stays true: every command is documented, the two commands come first."""

from __future__ import annotations

from pathlib import Path

from lakehouse.cli import main
from lakehouse.config import Settings

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_every_cli_command_is_in_the_readme() -> None:
    missing = [name for name in main.commands if f"lakehouse {name}" not in README]
    assert not missing, f"README does not document: {missing}"


def test_the_two_commands_come_first() -> None:
    first_block = README.split("```")[1]
    assert "make up" in first_block and "make test" in first_block


def test_readme_defaults_match_the_settings() -> None:
    defaults = Settings.model_fields
    for field in ("s3_port", "catalog_port"):
        assert f"127.0.0.1:{defaults[field].default}" in README
    for field in ("access_key", "secret_key", "region", "catalog_name"):
        assert f"`{defaults[field].default}`" in README, field
