"""CLI polish: a reader closing the pipe early, and invalid settings as one message.

The pipe tests run the real `lakehouse` command (no services: an empty home is
a stack with nothing running) with stdout a pipe whose reader is already gone.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from lakehouse.cli.common import EXIT_READER_GONE
from lakehouse.config import load_settings
from lakehouse.errors import ConfigError


def _run_into_closed_pipe(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``lakehouse --home HOME ARGS`` writing to a pipe nobody reads (``| true``)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "lakehouse.cli", "--home", str(home), *args],
            stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    "args",
    [("status", "--json"), ("status",), ("env",), ("env", "--json")],
    ids=["status-json", "status-table", "env", "env-json"],
)
def test_closed_pipe_exits_quietly(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = _run_into_closed_pipe(tmp_path, *args)
    assert done.stderr == ""
    assert done.returncode == EXIT_READER_GONE


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "lakehouse.toml"
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(path))
    return path


def _settings_error(**flags: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(**flags)
    text = f"{caught.value}\n{caught.value.hint}"
    assert "pydantic" not in text and "type=" not in text and "input_value" not in text
    return text


def test_invalid_env_setting_names_variable_value_and_rule(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAKEHOUSE_CATALOG_TOKEN", "")
    monkeypatch.setenv("LAKEHOUSE_S3_PORT", "abc")
    text = _settings_error()
    assert "LAKEHOUSE_CATALOG_TOKEN is '': String should have at least 1 character" in text
    assert "LAKEHOUSE_S3_PORT is 'abc': Input should be a valid integer" in text


def test_invalid_file_setting_names_the_file(config_file: Path) -> None:
    config_file.write_text("[lakehouse]\nruntime = 'k8s'\ntrino_workers = 99\n")
    text = _settings_error()
    assert f"runtime in {config_file} is 'k8s': Input should be 'local' or 'docker'" in text
    assert f"trino_workers in {config_file} is 99: " in text


def test_invalid_flag_names_the_flag_and_the_allowed_range(config_file: Path) -> None:
    text = _settings_error(catalog_port=70000)
    assert "--catalog-port is 70000: 70000 is not a usable TCP port (allowed: 1 to" in text


def test_invalid_secret_is_not_echoed(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_POSTGRES_PASSWORD", "x")
    monkeypatch.setenv("LAKEHOUSE_CATALOG_TOKEN", "")
    config_file.write_text("[lakehouse]\nsecret_key = ['s3cr3t-value']\n")
    text = _settings_error()
    assert "s3cr3t-value" not in text
    assert f"secret_key in {config_file} is (hidden)" in text


def test_up_names_every_taken_port_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from lakehouse.errors import PortInUseError
    from lakehouse.runtimes.local import LocalRuntime, isolated_stack_env

    for key, value in isolated_stack_env(tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    taken = [settings.s3_port, settings.s3_internal_port_base, settings.catalog_port]
    squatters = [socket.socket() for _ in taken]
    try:
        for squatter, port in zip(squatters, taken, strict=True):
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
        with pytest.raises(PortInUseError) as refused:
            LocalRuntime(settings).up(["s3", "catalog"])
    finally:
        for squatter in squatters:
            squatter.close()
    for port in taken:
        assert f"port {port} " in refused.value.message
    for name in ("s3_port", "s3_internal_port_base", "catalog_port"):
        assert f"LAKEHOUSE_{name.upper()}" in (refused.value.hint or "")
        assert name in (refused.value.hint or "")
    assert not (tmp_path / "home" / "run").exists()


def test_readme_restore_config_gives_a_home_and_ports_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme[readme.index("## Backup and restore") :]
    toml = section[section.index("[lakehouse]") : section.index("\nEOF")]
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    (tmp_path / "lakehouse.toml").write_text(toml)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(tmp_path / "lakehouse.toml"))
    fresh = load_settings()
    assert fresh.home == tmp_path / ".lakehouse"
    assert "--no-sample" in section
    default_ports = {9000, *range(9330, 9340), 8181}
    assert not {fresh.s3_port, fresh.catalog_port, fresh.s3_internal_port_base} & default_ports


def test_cli_bug_log_is_private_and_the_callers_umask_comes_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import click
    from click.testing import CliRunner

    from lakehouse.cli import main
    from lakehouse.cli.common import friendly_errors

    @click.command("explode")
    @friendly_errors
    def explode() -> None:
        (tmp_path / "home" / "written-by-a-command").write_text("x")
        raise RuntimeError("boom")

    monkeypatch.setitem(main.commands, "explode", explode)
    (tmp_path / "home" / "logs").mkdir(parents=True)
    (tmp_path / "home" / "logs" / "cli-errors.log").write_text("older entries\n")
    (tmp_path / "home" / "logs" / "cli-errors.log").chmod(0o644)
    caller_umask = os.umask(0o022)
    try:
        result = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), "explode"])
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(caller_umask)
    assert result.exit_code == 1 and "This is a bug" in result.output
    log = tmp_path / "home" / "logs" / "cli-errors.log"
    assert "older entries" in log.read_text() and "RuntimeError: boom" in log.read_text()
    for path in (log, tmp_path / "home" / "written-by-a-command"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_write_private_narrows_an_existing_file(tmp_path: Path) -> None:
    from lakehouse.privacy import write_private

    path = tmp_path / "integrations.json"
    path.write_text("{}")
    path.chmod(0o644)
    write_private(path, '{"a": 1}')
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == '{"a": 1}'


def test_simulate_shop_with_postgres_down_prints_its_empty_summary(tmp_path: Path) -> None:
    from lakehouse.runtimes.local import free_port_block

    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env |= {"LAKEHOUSE_CONFIG": str(tmp_path / "absent.toml"),
            "LAKEHOUSE_POSTGRES_PORT": str(free_port_block(1))}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "lakehouse.cli", "--home", str(tmp_path),
         "simulate", "shop", "--duration", "1"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stdout.startswith("0 changes (0 inserts, 0 updates, 0 deletes) in 0 transactions")
    assert "Error:" in done.stderr and "Hint:" in done.stderr and "bug" not in done.stderr
