"""The home and lakehouse.toml are found the way git finds .git (lakehouse.home)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lakehouse.config import load_settings, settings_environment
from lakehouse.home import find_project, home_origin, user_default_home


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No LAKEHOUSE_* variables, and a per-user data dir inside tmp_path."""
    for name in [n for n in os.environ if n.startswith("LAKEHOUSE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if find_project(tmp_path).root is not None:
        pytest.skip(f"{tmp_path} is itself inside a lakehouse project")
    return tmp_path


def project(root: Path, toml: str | None = "[lakehouse]\n") -> Path:
    """A project directory with a lakehouse.toml (or none) and a notebooks/ subdirectory."""
    (root / "notebooks" / "deep").mkdir(parents=True)
    if toml is not None:
        (root / "lakehouse.toml").write_text(toml)
    return root


def test_found_from_a_subdirectory(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(clean_env / "proj", "[lakehouse]\ns3_port = 9111\n")
    monkeypatch.chdir(root / "notebooks" / "deep")
    settings = load_settings()
    assert settings.home == root / ".lakehouse"
    assert settings.s3_port == 9111  # the project's lakehouse.toml was read
    assert "the project at" in home_origin(settings.home)


def test_a_lakehouse_directory_alone_marks_a_project(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(clean_env / "proj", toml=None)
    (root / ".lakehouse").mkdir()
    monkeypatch.chdir(root / "notebooks")
    assert load_settings().home == root / ".lakehouse"


def test_nearest_project_wins(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = project(clean_env / "outer", "[lakehouse]\ns3_port = 9111\n")
    inner = project(outer / "notebooks" / "deep" / "inner", "[lakehouse]\ns3_port = 9222\n")
    monkeypatch.chdir(inner / "notebooks")
    settings = load_settings()
    assert (settings.home, settings.s3_port) == (inner / ".lakehouse", 9222)


def test_outside_any_project_falls_back_and_says_where_it_looked(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = clean_env / "x" / "y"
    nowhere.mkdir(parents=True)
    monkeypatch.chdir(nowhere)
    settings = load_settings()
    assert settings.home == user_default_home() == clean_env / "xdg" / "lakehouse"
    found = find_project()
    assert found.root is None
    assert found.searched[:3] == (nowhere, nowhere.parent, clean_env)
    assert found.searched[-1] == Path("/")
    trail = home_origin(settings.home)
    assert str(nowhere) in trail and str(clean_env) in trail and "per-user default" in trail


def test_relative_paths_in_the_file_are_relative_to_the_file(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(
        clean_env / "proj",
        '[lakehouse]\nhome = "state/here"\ncache = "../shared-cache"\njava_home = "jdk"\n',
    )
    monkeypatch.chdir(root / "notebooks" / "deep")
    settings = load_settings()
    assert settings.home == root / "state" / "here"
    assert settings.cache.resolve() == (clean_env / "shared-cache").resolve()
    assert settings.java_home == root / "jdk"


def test_flag_beats_env_beats_file_beats_project(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(clean_env / "proj", '[lakehouse]\nhome = "from-file"\n')
    monkeypatch.chdir(root / "notebooks")
    assert load_settings().home == root / "from-file"
    monkeypatch.setenv("LAKEHOUSE_HOME", "from-env")  # relative: to the current directory
    assert load_settings().home == root / "notebooks" / "from-env"
    assert load_settings(home=Path("/abs/flag")).home == Path("/abs/flag")


def test_explicit_config_file(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = clean_env / "conf" / "my.toml"
    elsewhere.parent.mkdir()
    elsewhere.write_text('[lakehouse]\ncatalog_port = 8333\nhome = "h"\n')
    root = project(clean_env / "proj", "[lakehouse]\ncatalog_port = 8222\n")
    monkeypatch.chdir(root)
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(elsewhere))
    settings = load_settings()
    assert (settings.catalog_port, settings.home) == (8333, elsewhere.parent / "h")


def test_children_get_the_exact_settings_whatever_their_cwd(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `lakehouse up` passes to each service reproduces its settings."""
    root = project(clean_env / "proj", "[lakehouse]\ns3_port = 9111\n[sync.a]\nsource='x'\n")
    monkeypatch.chdir(root / "notebooks")
    parent = load_settings(trino_workers=2, sample_scale=0.5)
    env = settings_environment(parent)
    assert env["LAKEHOUSE_CONFIG"] == str(root / "lakehouse.toml")
    monkeypatch.chdir(clean_env)  # a service runs with another working directory
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings() == parent


def test_every_service_process_gets_the_settings_of_up(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync worker, started with cwd = home, still reads the project's [sync] tables."""
    from lakehouse.runtimes.local import LocalRuntime
    from lakehouse.services.sync import SyncService

    root = project(clean_env / "proj", "[lakehouse]\npostgres_port = 6543\n")
    monkeypatch.chdir(root / "notebooks")
    settings = load_settings()
    spec = SyncService(settings).spec()
    env = LocalRuntime(settings)._child_env(spec)
    assert env["LAKEHOUSE_CONFIG"] == str(root / "lakehouse.toml")
    assert env["LAKEHOUSE_HOME"] == str(root / ".lakehouse")
    assert env["LAKEHOUSE_POSTGRES_PORT"] == "6543"
    assert env["PYTHONUNBUFFERED"] == "1"  # the service's own variables still apply
