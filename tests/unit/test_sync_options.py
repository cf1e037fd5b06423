"""`sync create` / `run` / `verify` / `reset` / `delete` and lakehouse.toml: an option
that does not apply, or a value that would silently mean something else, is refused
in one message naming it, with a Hint, before any server is asked and with nothing
stored.

Every server port points at a closed port: a refusal that came only after asking
PostgreSQL or the catalog would show as "not answering" and fail these tests.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from lakehouse.cli import main
from lakehouse.config import Settings, load_settings
from lakehouse.errors import ConfigError
from lakehouse.sync.admin import create_integration
from lakehouse.sync.integrations import Integration, IntegrationStore

PORTS = ("postgres_port", "catalog_port", "s3_port", "opensearch_port")
NOT_ASKED = ("not answering", "Traceback", "a bug in lakehouse")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A throwaway home whose servers all refuse connections."""
    for port in PORTS:
        monkeypatch.setenv(f"LAKEHOUSE_{port.upper()}", str(_closed_port()))
    yield tmp_path


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home=home)


def _cli(home: Path, *arguments: str) -> Result:
    return CliRunner().invoke(main, ["--home", str(home), "sync", *arguments])


def _create(home: Path, *arguments: str) -> Result:
    return _cli(home, "create", "it", *arguments)


def _refused(result: Result, *said: str) -> str:
    """The one message of a refusal: exit 1, every ``said`` in it, a Hint, no server asked."""
    assert result.exit_code == 1, result.output
    for text in said:
        assert text in result.output, result.output
    assert result.output.count("Error:") == 1 and result.output.count("Hint:") == 1, result.output
    for text in NOT_ASKED:
        assert text not in result.output, result.output
    return result.output


def _nothing_stored(home: Path) -> None:
    assert not (home / "sync" / "integrations.json").exists()
    assert not (home / "sync" / "generations.json").exists()


ROUTE_PI = ("--source", "postgres", "--target", "iceberg", "--tables", "orders")
ROUTE_PO = ("--source", "postgres", "--target", "opensearch", "--tables", "orders")
ROUTE_IO = ("--source", "iceberg", "--target", "opensearch", "--tables", "shop.products")


@pytest.mark.parametrize(
    ("arguments", "said", "instead"),
    [
        # Both were accepted and ignored: the targets went where the defaults put them.
        ((*ROUTE_PI, "--index-prefix", "x-"), ("--index-prefix", "iceberg target"), "--namespace"),
        ((*ROUTE_PO, "--namespace", "landing"), ("--namespace", "opensearch target"),
         "--index-prefix"),
        ((*ROUTE_IO, "--database", "shop"), ("--database", "iceberg source"), "--tables"),
        ((*ROUTE_IO, "--namespace", "landing"), ("--namespace", "opensearch target"),
         "--index-prefix"),
    ],
)  # fmt: skip
def test_an_option_the_route_does_not_use_is_refused_naming_it(
    home: Path, arguments: tuple[str, ...], said: tuple[str, ...], instead: str
) -> None:
    output = _refused(_create(home, *arguments), *said, "Nothing was created")
    assert instead in output.split("Hint:")[1], output
    _nothing_stored(home)


def test_every_unused_option_is_named_in_the_one_message(home: Path) -> None:
    output = _refused(_create(home, *ROUTE_IO, "--database", "shop", "--namespace", "x"))
    assert "--database" in output and "--namespace" in output


@pytest.mark.parametrize(
    ("key", "said"),
    [
        # "," and " " silently meant "the primary key".
        (",", "--key names no column"),
        (" ", "--key names no column"),
        ("", "--key names no column"),
        ("id,", "--key holds an empty column name"),
        ("id,,sku", "--key holds an empty column name"),
        ("id,id", "--key names id more than once"),
        ("id, sku ,id", "--key names id more than once"),
    ],
)
def test_a_key_that_names_no_column_or_one_twice_is_refused(
    home: Path, key: str, said: str
) -> None:
    _refused(_create(home, *ROUTE_PI, "--key", key), said, "Nothing was created")
    _nothing_stored(home)


@pytest.mark.parametrize(
    ("tables", "said"),
    [
        ("orders,,items", "--tables holds an empty table name"),
        ("orders,", "--tables holds an empty table name"),
        (",", "--tables names no table"),
        # Two source tables, one target: their rows would mix in one table or index.
        ("public.orders,audit.orders", "public.orders and audit.orders"),
    ],
)
def test_tables_that_are_blank_or_share_a_target_are_refused(
    home: Path, tables: str, said: str
) -> None:
    _refused(_create(home, "--source", "postgres", "--target", "iceberg", "--tables", tables),
             said)  # fmt: skip
    _nothing_stored(home)


def test_tables_indexed_under_one_name_are_refused(home: Path) -> None:
    """Index names are lowercase: Orders and orders would share one index."""
    output = _refused(_create(home, "--source", "postgres", "--target", "opensearch",
                              "--tables", "public.Orders,audit.orders"))  # fmt: skip
    assert "opensearch shop-orders" in output


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        ((*ROUTE_PI, "--namespace", ""), "--namespace"),
        ((*ROUTE_PI, "--namespace", "a..b"), "--namespace"),
        ((*ROUTE_PI, "--database", ""), "--database"),
        # Index names OpenSearch refuses: the integration failed at its first pass.
        (("--source", "postgres", "--target", "opensearch", "--tables", "order items"),
         "shop-order items"),
        ((*ROUTE_PO, "--database", "my db"), "my db-orders"),
        (("--source", "postgres", "--target", "opensearch", "--tables", "_hidden",
          "--index-prefix", ""), "_hidden"),
    ],
)  # fmt: skip
def test_names_that_would_be_replaced_or_refused_later_are_refused(
    home: Path, arguments: tuple[str, ...], said: str
) -> None:
    _refused(_create(home, *arguments), said)
    _nothing_stored(home)


def test_route_names_are_shown_as_the_options_spell_them(home: Path) -> None:
    """It said 'Iceberg -> iceberg is not supported'."""
    output = _refused(_create(home, "--source", "iceberg", "--target", "iceberg", "--tables",
                              "shop.products"), "iceberg -> iceberg is not supported")  # fmt: skip
    assert "Iceberg -> iceberg" not in output
    assert "postgres -> iceberg" in output


def test_create_again_with_other_settings_says_what_exists(home: Path, settings: Settings) -> None:
    IntegrationStore(settings).create(
        Integration(name="it", source="postgres", target="iceberg", tables=("orders",))
    )
    output = _refused(_create(home, *ROUTE_PO), "already exists")
    assert "postgres -> iceberg" in output and "orders" in output
    assert IntegrationStore(settings).get("it").target == "iceberg"


def test_the_library_refuses_unused_options_before_asking_the_source(settings: Settings) -> None:
    integration = Integration(name="it", source="postgres", target="iceberg", tables=("orders",),
                              index_prefix="x-")  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        create_integration(settings, integration)
    assert "index_prefix" in caught.value.message and "iceberg target" in caught.value.message
    assert caught.value.hint and "namespace" in caught.value.hint
    _nothing_stored(settings.home_dir)


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ('target = "iceberg"\ntables = ["orders"]\nindex_prefix = "x-"', "index_prefix"),
        ('target = "opensearch"\ntables = ["orders"]\nnamespace = "x"', "namespace"),
        ('target = "iceberg"\ntables = ["orders"]\nkey = ["", "id"]', "key"),
        ('target = "iceberg"\ntables = ["orders"]\nkey = ["id", "id"]', "key"),
    ],
)
def test_lakehouse_toml_refuses_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, said: str
) -> None:
    config = tmp_path / "lakehouse.toml"
    config.write_text(f'[sync.it]\nsource = "postgres"\n{body}\n')
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(config))
    with pytest.raises(ConfigError) as caught:
        IntegrationStore(load_settings(home=tmp_path / "home")).all()
    assert said in caught.value.message and "'it'" in caught.value.message
    assert caught.value.hint


def test_an_iceberg_source_takes_no_batch_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a PostgreSQL source reads its changes in batches of rows."""
    config = tmp_path / "lakehouse.toml"
    config.write_text('[sync.it]\nsource = "iceberg"\ntarget = "opensearch"\n'
                      'tables = ["shop.products"]\nbatch_rows = 10\n')  # fmt: skip
    monkeypatch.setenv("LAKEHOUSE_CONFIG", str(config))
    with pytest.raises(ConfigError, match="batch_rows"):
        IntegrationStore(load_settings(home=tmp_path / "home")).all()


def _declared(settings: Settings) -> None:
    IntegrationStore(settings).create(
        Integration(name="it", source="postgres", target="iceberg", tables=("orders",))
    )


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        # `run it --all` ran only it; `run it --all --follow` followed every integration.
        (("run", "it", "--all"), "not both"),
        (("run", "it", "--all", "--follow"), "not both"),
        (("run", "it", "it"), "it is named more than once"),
        (("run", "nope"), "No integration named 'nope'"),
        (("verify", "nope"), "No integration named 'nope'"),
        (("reset", "nope", "--yes"), "No integration named 'nope'"),
        (("delete", "nope"), "No integration named 'nope'"),
    ],
)
def test_run_verify_reset_delete_refuse_what_they_cannot_mean(
    home: Path, settings: Settings, arguments: tuple[str, ...], said: str
) -> None:
    _declared(settings)
    stored = (home / "sync" / "integrations.json").read_text()
    _refused(_cli(home, *arguments), said)
    assert (home / "sync" / "integrations.json").read_text() == stored
    assert not (home / "sync" / "status").exists()


def test_create_again_with_the_same_settings_changes_nothing(
    home: Path, settings: Settings
) -> None:
    """It said 'created' again (after asking the source) though nothing was."""
    IntegrationStore(settings).create(
        Integration(name="it", source="postgres", target="iceberg", tables=("orders",))
    )
    stored = (home / "sync" / "generations.json").read_text()
    result = _create(home, *ROUTE_PI)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "it already exists with these settings; nothing changed"
    assert (home / "sync" / "generations.json").read_text() == stored


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        # 0 and nan: "a bug in lakehouse" (a ValueError); inf: an OverflowError mid-run.
        (("--rate", "0"), "--rate must be"),
        (("--rate", "nan"), "--rate must be"),
        (("--rate", "inf"), "--rate must be"),
        (("--rate", "-5"), "--rate must be"),
        # A duration of no time, or none at all, ran with nothing said.
        (("--duration", "-1"), "--duration must be"),
        (("--duration", "0"), "--duration must be"),
        (("--duration", "nan"), "--duration must be"),
    ],
)
def test_simulate_refuses_a_rate_or_duration_it_cannot_keep(
    home: Path, arguments: tuple[str, ...], said: str
) -> None:
    result = CliRunner().invoke(main, ["--home", str(home), "simulate", "shop", *arguments])
    _refused(result, said)
