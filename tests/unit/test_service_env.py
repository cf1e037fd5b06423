"""The cached service environment: complete or absent, reused, keyed by its lock."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakehouse import service_env
from lakehouse.config import Settings
from lakehouse.errors import ArtifactError
from lakehouse.service_env import COMPLETE_MARKER, ServiceEnv


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A services/ folder of our own, so a test writes the lock it installs."""
    services = tmp_path / "services"
    (services / "demo").mkdir(parents=True)
    monkeypatch.setattr(service_env, "service_files_dir", lambda: services)
    return services / "demo" / "requirements.lock"


def settings_in(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", cache=tmp_path / "cache")


def test_a_failed_install_names_pips_lines_and_leaves_nothing(tmp_path: Path, files: Path) -> None:
    files.write_text("this is not ! a requirement\n")
    env = ServiceEnv("demo", "1.0", "the demo server")
    settings = settings_in(tmp_path)
    with pytest.raises(ArtifactError) as raised:
        env.ensure(settings)
    assert "Installing the demo server 1.0 failed" in str(raised.value)
    assert "this is not ! a requirement" in str(raised.value)  # pip's own words
    assert "PyPI" in str(raised.value.hint)
    assert not env.root(settings).exists()
    assert not env.is_installed(settings)


@pytest.mark.slow
def test_an_install_is_reused_and_a_changed_lock_gets_a_new_one(
    tmp_path: Path, files: Path
) -> None:
    files.write_text("# nothing to install\n")
    env = ServiceEnv("demo", "1.0", "the demo server")
    settings = settings_in(tmp_path)
    python = env.ensure(settings)
    assert python.is_file()
    root = env.root(settings)
    assert root.parent == settings.cache_dir / "demo" and root.name.startswith("1.0-")
    assert (root / COMPLETE_MARKER).read_text() == files.read_text()
    (root / "touched").write_text("kept")
    assert env.ensure(settings) == python and (root / "touched").is_file()  # not reinstalled
    files.write_text("# nothing to install, changed\n")
    assert env.root(settings) != root and not env.is_installed(settings)


def test_an_incomplete_environment_is_installed_again(tmp_path: Path, files: Path) -> None:
    files.write_text("this is not ! a requirement\n")
    env = ServiceEnv("demo", "1.0", "the demo server")
    settings = settings_in(tmp_path)
    env.root(settings).mkdir(parents=True)  # as a killed install leaves it: no marker
    (env.root(settings) / "half").write_text("")
    with pytest.raises(ArtifactError):
        env.ensure(settings)
    assert not env.root(settings).exists()
