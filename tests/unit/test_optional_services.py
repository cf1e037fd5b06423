"""Optional services (dashboards, jupyter): which services `up` starts, what the web
pages say, and the jupyter service's spec. Pure logic: nothing is started."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lakehouse.cli.stack import _names_to_start
from lakehouse.config import Settings, load_settings
from lakehouse.errors import ConfigError
from lakehouse.runtimes import ServiceStatus
from lakehouse.services import Service, all_services, build_services, default_service_names
from lakehouse.services.jupyter import JupyterService
from lakehouse.services.pages import web_pages


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "home"))
    return load_settings()


def optional_names(settings: Settings) -> set[str]:
    return {svc.name for svc in all_services(settings) if svc.optional}


def names(services: list[Service]) -> list[str]:
    return [svc.name for svc in services]


def test_jupyter_is_optional_and_left_out_of_a_plain_up(settings: Settings) -> None:
    assert "jupyter" in optional_names(settings)
    assert "jupyter" not in names(build_services(settings))
    assert "jupyter" not in default_service_names(settings)
    # Every default service is there.
    defaults = [svc.name for svc in all_services(settings) if not svc.optional]
    assert set(defaults) <= set(default_service_names(settings))


def test_every_includes_the_optional_services(settings: Settings) -> None:
    assert optional_names(settings) <= set(names(build_services(settings, every=True)))


def test_naming_an_optional_service_brings_its_dependencies_only(settings: Settings) -> None:
    started = names(build_services(settings, ["jupyter"]))
    assert started[-1] == "jupyter"
    assert {"s3", "catalog"} <= set(started)
    assert "trino" not in started and "postgres" not in started


def test_the_optional_services_setting_enables_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_OPTIONAL_SERVICES", " jupyter , ")
    settings = load_settings()
    assert settings.optional_services == ["jupyter"]
    assert "jupyter" in default_service_names(settings)


@pytest.mark.parametrize(
    ("services", "with_", "expected"),
    [
        (None, None, None),  # the runtime's defaults
        ("s3", None, ["s3"]),
        ("s3,catalog", "jupyter", ["s3", "catalog", "jupyter"]),
    ],
)
def test_up_with_adds_to_what_would_start(
    settings: Settings, services: str | None, with_: str | None, expected: list[str] | None
) -> None:
    assert _names_to_start(settings, services, with_) == expected


def test_up_with_alone_adds_to_the_defaults(settings: Settings) -> None:
    wanted = _names_to_start(settings, None, "jupyter")
    assert wanted == [*default_service_names(settings), "jupyter"]


@pytest.mark.parametrize("where", ["names", "setting"])
def test_an_unknown_name_is_refused_with_the_optional_ones_listed(
    settings: Settings, where: str
) -> None:
    if where == "setting":
        settings = settings.model_copy(update={"optional_services": ["jupyterr"]})
    with pytest.raises(ConfigError) as caught:
        build_services(settings, ["jupyterr"] if where == "names" else None)
    assert "jupyterr" in str(caught.value)
    hint = caught.value.hint or ""
    assert "optional:" in hint and "jupyter" in hint.split("optional:")[1]


def status(name: str, healthy: bool) -> ServiceStatus:
    return ServiceStatus(name, "", healthy, 1 if healthy else None, None, "", healthy)


def test_web_pages_say_how_to_open_or_start_each(settings: Settings) -> None:
    pages = {page.service: page for page in web_pages(settings, [status("jupyter", True)])}
    jupyter = pages["jupyter"]
    assert jupyter.running and jupyter.url == JupyterService(settings).spec().url
    assert str(JupyterService(settings).token_file) in jupyter.sign_in
    console = pages["console"]
    assert not console.running
    assert console.start_command == "lakehouse up --services console"
    stopped = web_pages(settings, [status("jupyter", False)])
    assert [p.start_command for p in stopped if p.service == "jupyter"] == [
        "lakehouse up --with jupyter"
    ]


def test_jupyter_token_made_once_private_and_kept_off_the_command_line(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    svc = JupyterService(settings)
    assert svc.token() is None
    # Before the first start there is no token: Jupyter must not start with sign-in off.
    assert "JUPYTER_TOKEN" not in svc.spec().env
    assert svc.spec().url.endswith("/lab")
    if importlib.util.find_spec("jupyterlab") is None:
        pytest.skip("jupyterlab is not installed")
    svc.prepare()
    token = svc.token()
    assert token and len(token) >= 32
    assert stat.S_IMODE(svc.token_file.stat().st_mode) == 0o600
    svc.prepare()
    assert svc.token() == token  # once per home
    spec = svc.spec()
    assert spec.env["JUPYTER_TOKEN"] == token
    assert not any(token in part for part in spec.command)
    assert spec.url.endswith(f"/lab?token={token}")
    assert f"--ServerApp.port={settings.jupyter_port}" in spec.command
    assert f"--ServerApp.ip={settings.bind_host}" in spec.command
    assert "--no-browser" in spec.command


def test_jupyter_opens_the_projects_notebooks(tmp_path: Path) -> None:
    from lakehouse.services.jupyter import notebooks_dir

    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    assert notebooks_dir(project / ".lakehouse") == project / "notebooks"
