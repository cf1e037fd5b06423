"""A down service gives one clear error naming it, in the library and in the CLI.

Each test kills a service of a private stack (temp home, free ports), checks
every entry point that needs it, then starts it again with the runtime and
checks that nothing was changed by the failed calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakehouse import Lakehouse, Settings
from lakehouse.errors import QueryError, ServiceUnavailableError
from lakehouse.runtimes.local import LocalRuntime
from tests.integration.private_stack import kill_9, private_stack, run_cli

pytestmark = pytest.mark.integration

SERVICES = ["s3", "catalog", "postgres"]
TABLE = "outage.rows"


@pytest.fixture(scope="module")
def own_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Settings, dict[str, str]]]:
    home = tmp_path_factory.mktemp("outages") / "home"
    with private_stack(home, SERVICES) as (settings, env):
        with Lakehouse(settings) as lake:
            lake.ingest(pa.table({"id": [1, 2, 3]}), TABLE)
        yield settings, env


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "more.csv"
    path.write_text("id\n4\n5\n")
    return path


def library_calls(lake: Lakehouse, csv_file: Path) -> dict[str, Callable[[], Any]]:
    return {
        "tables": lambda: lake.tables(),
        "describe": lambda: lake.describe(TABLE),
        "history": lambda: lake.history(TABLE),
        "table": lambda: lake.table(TABLE),
        "ingest file": lambda: lake.ingest(str(csv_file), TABLE),
        "ingest arrow": lambda: lake.ingest(pa.table({"id": [9]}), TABLE),
        "duckdb sql": lambda: lake.sql(f"SELECT count(*) FROM {TABLE}"),
    }


CLI_CALLS = {
    "tables": ["tables"],
    "describe": ["describe", TABLE],
    "history": ["history", TABLE],
    "ingest": ["ingest", "{csv}", "--table", TABLE],
    "query": ["query", f"SELECT count(*) FROM {TABLE}"],
}


def rows_after_restart(settings: Settings) -> list[int]:
    LocalRuntime(settings).up(SERVICES)
    with Lakehouse(settings) as lake:
        return sorted(lake.sql(f"SELECT id FROM {TABLE}").column("id").to_pylist())


@pytest.mark.parametrize("service", ["catalog", "s3"])
def test_a_killed_lake_service_is_named_by_every_entry_point(
    own_stack: tuple[Settings, dict[str, str]], csv_file: Path, service: str
) -> None:
    settings, env = own_stack
    kill_9(settings, service)
    wrong = {}
    try:
        with Lakehouse(settings) as lake:
            for name, call in library_calls(lake, csv_file).items():
                if name == "tables" and service == "s3":
                    continue  # listing names needs only the catalog
                try:
                    call()
                    wrong[name] = "no error"
                except ServiceUnavailableError as exc:
                    if exc.service != service or "Hint:" not in str(exc):
                        wrong[name] = str(exc)
                except Exception as exc:
                    wrong[name] = f"{type(exc).__name__}: {exc}"
        for name, args in CLI_CALLS.items():
            if name == "tables" and service == "s3":
                continue
            result = run_cli(env, *[a.replace("{csv}", str(csv_file)) for a in args])
            said = result.stderr
            if (result.returncode != 1 or "Traceback" in said or "Hint:" not in said
                    or f"The {service} service" not in said or said.count("Error:") != 1):  # fmt: skip
                wrong[f"cli {name}"] = f"rc={result.returncode} {said[-600:]}"
    finally:
        remaining = rows_after_restart(settings)
    assert not wrong, wrong
    assert remaining == [1, 2, 3], "a failed call changed the table"


def test_postgres_down_is_named(own_stack: tuple[Settings, dict[str, str]]) -> None:
    from lakehouse.sync.integrations import Integration, IntegrationStore

    settings, env = own_stack
    IntegrationStore(settings).create(Integration(
        name="outage-shop", source="postgres", target="iceberg", tables=("orders",),
        database=settings.postgres_db))  # fmt: skip
    kill_9(settings, "postgres")
    try:
        with Lakehouse(settings) as lake, pytest.raises(ServiceUnavailableError) as info:
            lake.postgres()
        assert info.value.service == "postgres" and "lakehouse logs postgres" in str(info.value)
        for command in ("run", "verify"):
            result = run_cli(env, "sync", command, "outage-shop")
            said = result.stderr
            assert result.returncode == 1 and "Traceback" not in said, said
            assert "The postgres service" in said and "Hint:" in said, said
    finally:
        LocalRuntime(settings).up(SERVICES)
    with Lakehouse(settings) as lake, lake.postgres() as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_query_error_with_every_service_up_is_not_disguised(
    own_stack: tuple[Settings, dict[str, str]],
) -> None:
    settings, _ = own_stack
    with Lakehouse(settings) as lake, pytest.raises(QueryError) as info:
        lake.sql(f"SELECT no_such_column FROM {TABLE}")
    assert not isinstance(info.value, ServiceUnavailableError)
