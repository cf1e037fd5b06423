"""Pure logic of the stack's privacy: SeaweedFS's listeners and keys, the home's modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lakehouse.config import load_settings
from lakehouse.runtimes.local import make_private
from lakehouse.services.s3 import JWT_KEY_VARIABLES, S3Service


def s3_spec(home: Path) -> tuple[str, dict[str, str], tuple[Path, ...]]:
    spec = S3Service(load_settings(home=home, s3_port=19000, s3_internal_port_base=19100)).spec()
    return " ".join(spec.command), spec.env, spec.leftovers


def test_weed_listeners_lakehouse_does_not_use_are_off(tmp_path: Path) -> None:
    command, _env, _leftovers = s3_spec(tmp_path)
    for flag in ("-s3.port.lance=0", "-s3.port.iceberg=0", "-webdav=false", "-disableHttp",
                 "-metricsPort=0"):  # fmt: skip
        assert flag in command


def test_internal_reads_and_writes_need_a_fresh_signing_key(tmp_path: Path) -> None:
    _command, first, _ = s3_spec(tmp_path)
    _command, second, _ = s3_spec(tmp_path)
    for variable in JWT_KEY_VARIABLES:
        assert len(first[variable]) == 64 and first[variable] != second[variable]


def test_weed_unix_sockets_live_in_the_home_and_are_removed_on_stop(tmp_path: Path) -> None:
    command, _env, leftovers = s3_spec(tmp_path)
    home_sockets = [tmp_path / "run" / "weed-s3.sock", tmp_path / "run" / "weed-filer.sock"]
    for socket_path in home_sockets:
        assert str(socket_path) in command and socket_path in leftovers
    # weed hard-codes its gRPC sockets in /tmp: those at least go away on stop.
    assert Path("/tmp/seaweedfs-filer-grpc-19105.sock") in leftovers


def test_a_home_too_deep_for_a_socket_address_keeps_weed_default(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    command, _env, leftovers = s3_spec(deep)
    assert "-s3.localSocket=/tmp/seaweedfs-s3-19000.sock" in command
    assert Path("/tmp/seaweedfs-s3-19000.sock") in leftovers


def test_make_private_tightens_an_existing_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "data" / "catalog").mkdir(parents=True)
    db = home / "data" / "catalog" / "catalog.db"
    db.write_text("x")
    os.chmod(home, 0o755)
    os.chmod(home / "data", 0o755)
    os.chmod(db, 0o644)
    (home / "link").symlink_to(db)
    make_private(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_make_private_creates_a_missing_home_private(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"
    make_private(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_every_declared_port_has_a_setting_named_in_the_port_in_use_hint(tmp_path: Path) -> None:
    from lakehouse.runtimes.local import LocalRuntime
    from lakehouse.services import all_services

    settings = load_settings(home=tmp_path, trino_workers=2)
    unnamed = [
        f"{svc.name}:{port.name}"
        for svc in all_services(settings)
        for port in svc.spec().ports
        if LocalRuntime._port_setting(svc.name, port.name) not in type(settings).model_fields
    ]
    assert not unnamed


def test_a_taken_internal_port_stops_up_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from lakehouse.errors import PortInUseError
    from lakehouse.runtimes.local import LocalRuntime, free_port_block, isolated_stack_env

    for key, value in isolated_stack_env(tmp_path / "home").items():
        monkeypatch.setenv(key, value)
    spark_port = free_port_block(3)
    settings = load_settings(spark_port=spark_port)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", spark_port + 1))
        taken.listen()
        with pytest.raises(PortInUseError) as refused:
            LocalRuntime(settings).up(["spark"])
    assert "spark-driver" in refused.value.message
    assert "LAKEHOUSE_SPARK_PORT" in (refused.value.hint or "")
    assert not (tmp_path / "home" / "run").exists()


def test_up_makes_the_home_private_and_gives_the_caller_its_umask_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lakehouse.runtimes import local

    monkeypatch.setattr(local, "build_services", lambda settings, names: [])
    home = tmp_path / "home"
    caller_umask = os.umask(0o022)
    try:
        local.LocalRuntime(load_settings(home=home)).up()
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(caller_umask)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_a_test_stack_that_fails_to_start_stops_what_it_started() -> None:
    # A Trino that did not become healthy left S3 and the catalog running.
    from lakehouse.errors import ServiceStartError
    from lakehouse.testing.stack import _up_or_stop_all

    class Runtime:
        stopped = False

        def up(self, names: list[str]) -> None:
            raise ServiceStartError("trino", "did not become healthy", ["java"], "-", "", "hint")

        def down(self) -> None:
            self.stopped = True

    runtime = Runtime()
    with pytest.raises(ServiceStartError):
        _up_or_stop_all(runtime, ("s3", "catalog", "trino"))  # type: ignore[arg-type]
    assert runtime.stopped
