"""The pytest plugin: each test gets an isolated lake on a real lake house.

Registered as the ``lakehouse`` pytest11 entry point. Nothing starts until a
test asks for a fixture, so ``--collect-only`` never starts a server.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from lakehouse.env import environment
from lakehouse.errors import LakehouseError
from lakehouse.services import service_names
from lakehouse.testing.stack import DEFAULT_SERVICES, LakehouseStack, SharedStack, reuse_existing

if TYPE_CHECKING:
    # Loaded lazily: every pytest run imports this plugin, most never touch the lake.
    from lakehouse.client import Lakehouse
    from lakehouse.testing.lake import IsolatedLake

MARKER_PREFIX = "lakehouse_"
# Services a later lakehouse release adds; their fixtures skip until then.
FUTURE_SERVICES: tuple[str, ...] = ()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lakehouse", "lakehouse: isolated lakes on a real lake house")
    group.addoption("--lakehouse-services", help="Comma-separated services to start (default: s3,catalog "
                    "plus those named by lakehouse_<service> markers).")  # fmt: skip
    group.addoption("--lakehouse-url", help="Reuse the lake house whose catalog answers here, e.g. "
                    "'http://127.0.0.1:8181?s3=http://127.0.0.1:9000'.")  # fmt: skip
    group.addoption(
        "--lakehouse-home",
        help="Reuse the running lake house in this home (default: LAKEHOUSE_HOME).",
    )
    group.addoption(
        "--lakehouse-keep", action="store_true", help="Keep each test's namespace and S3 prefix."
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lakehouse: the test uses a lakehouse stack")
    for name in (*service_names(), *FUTURE_SERVICES):
        config.addinivalue_line(
            "markers", f"{MARKER_PREFIX}{name}: the test needs the {name} service"
        )
    if not hasattr(config, "workerinput"):
        config.lakehouse_run_id = uuid.uuid4().hex[:12]  # type: ignore[attr-defined]


def pytest_configure_node(node: Any) -> None:
    """xdist hook (controller side): give every worker the same run id."""
    node.workerinput["lakehouse_run_id"] = node.config.lakehouse_run_id


def _run_id(config: pytest.Config) -> str:
    worker = getattr(config, "workerinput", None)
    return str(worker["lakehouse_run_id"] if worker else config.lakehouse_run_id)  # type: ignore[attr-defined]


def _wanted_services(session: pytest.Session) -> tuple[str, ...]:
    option = session.config.getoption("--lakehouse-services")
    if option:
        return tuple(name.strip() for name in option.split(",") if name.strip())
    marked = {
        mark.name.removeprefix(MARKER_PREFIX)
        for item in session.items
        for mark in item.iter_markers()
        if mark.name.startswith(MARKER_PREFIX)
    }
    known = set(service_names())
    return tuple(dict.fromkeys([*DEFAULT_SERVICES, *sorted(marked & known)]))


@pytest.fixture(scope="session")
def lakehouse_stack(request: pytest.FixtureRequest) -> Iterator[LakehouseStack]:
    """A running lake house: reused when one is named and healthy, else started for this run."""
    config = request.config
    wanted = _wanted_services(request.session)
    home = config.getoption("--lakehouse-home") or os.environ.get("LAKEHOUSE_HOME")
    try:
        existing = reuse_existing(home, config.getoption("--lakehouse-url"), wanted)
        if existing:
            yield existing
            return
        shared = SharedStack(_run_id(config))
        stack = shared.acquire(wanted)
    except LakehouseError as exc:
        # One clear failure for the run instead of the same error in every test.
        pytest.exit(f"lakehouse stack did not come up:\n{exc}", returncode=3)
    try:
        yield stack
    finally:
        shared.release(stack)


@pytest.fixture(scope="session")
def _lakehouse_client(lakehouse_stack: LakehouseStack) -> Iterator[Lakehouse]:
    from lakehouse.client import Lakehouse

    with Lakehouse(lakehouse_stack.settings) as client:
        yield client


def _require(stack: LakehouseStack, service: str) -> None:
    reason = stack.missing(service)
    if reason:
        pytest.skip(f"needs {service}: {reason}")


@pytest.fixture
def lake(
    lakehouse_stack: LakehouseStack, _lakehouse_client: Lakehouse, request: pytest.FixtureRequest
) -> Iterator[IsolatedLake]:
    """An isolated namespace and S3 prefix, dropped after the test (unless --lakehouse-keep)."""
    from lakehouse.testing.lake import IsolatedLake, unique_name

    _require(lakehouse_stack, "catalog")
    isolated = IsolatedLake.create(_lakehouse_client, unique_name(request.node.name))
    yield isolated
    if not request.config.getoption("--lakehouse-keep"):
        isolated.drop()


@pytest.fixture
def s3_bucket(
    lakehouse_stack: LakehouseStack, _lakehouse_client: Lakehouse, request: pytest.FixtureRequest
) -> Iterator[str]:
    """A fresh, empty bucket, removed with its objects after the test."""
    from lakehouse.testing.lake import unique_name

    _require(lakehouse_stack, "s3")
    name = unique_name(request.node.name, separator="-", limit=50)
    client = _lakehouse_client.s3
    client.make_bucket(name)
    yield name
    if not request.config.getoption("--lakehouse-keep"):
        for obj in client.list_objects(name, recursive=True):
            client.remove_object(name, obj.object_name)
        client.remove_bucket(name)


@pytest.fixture
def aws_env(lakehouse_stack: LakehouseStack, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """AWS_* and PYICEBERG_* variables pointing boto3, pyarrow, s3fs and pyiceberg at the lake."""
    variables = environment(lakehouse_stack.settings)
    for key, value in variables.items():
        monkeypatch.setenv(key, value)
    catalog_module = sys.modules.get("pyiceberg.catalog")
    if catalog_module is not None:
        # pyiceberg reads PYICEBERG_* once, when pyiceberg.catalog is imported;
        # code under test imported it at collection time, so re-read it here.
        from pyiceberg.utils.config import Config

        monkeypatch.setattr(catalog_module, "_ENV_CONFIG", Config())
    return variables


@pytest.fixture
def duckdb_conn(lake: IsolatedLake) -> Any:
    """A DuckDB connection attached to the lake, with the test's namespace as default schema."""
    return lake.duckdb()


@pytest.fixture
def trino_conn(lakehouse_stack: LakehouseStack, lake: IsolatedLake) -> Iterator[Any]:
    """A Trino DB-API connection; its default schema is the test's namespace."""
    _require(lakehouse_stack, "trino")
    connection = lake.client.trino(schema=lake.namespace)
    yield connection
    connection.close()


@pytest.fixture
def spark(lakehouse_stack: LakehouseStack, lake: IsolatedLake) -> Iterator[Any]:
    """A Spark Connect session whose current namespace is the test's namespace."""
    _require(lakehouse_stack, "spark")
    session = lake.client.spark()
    session.sql(f"USE {lakehouse_stack.settings.catalog_name}.`{lake.namespace}`")
    yield session
    session.sql(f"USE {lakehouse_stack.settings.catalog_name}.default")


@pytest.fixture
def opensearch(
    lakehouse_stack: LakehouseStack, opensearch_prefix: str, request: pytest.FixtureRequest
) -> Iterator[Any]:
    """An opensearch-py client; indices named ``<opensearch_prefix>*`` are deleted afterwards."""
    _require(lakehouse_stack, "opensearch")
    from lakehouse.services.opensearch import OpenSearchService

    client = OpenSearchService(lakehouse_stack.settings).client(timeout=60)
    yield client
    if not request.config.getoption("--lakehouse-keep"):
        client.indices.delete(index=f"{opensearch_prefix}*", params={"ignore_unavailable": "true"})
    client.close()


@pytest.fixture
def opensearch_prefix(request: pytest.FixtureRequest) -> str:
    """A prefix for index names that no other test uses (the opensearch fixture cleans it up)."""
    from lakehouse.testing.lake import unique_name

    return unique_name(request.node.name, separator="-", limit=40).lower() + "-"


@pytest.fixture
def postgres_dsn(lakehouse_stack: LakehouseStack, request: pytest.FixtureRequest) -> Iterator[str]:
    """The DSN of a fresh PostgreSQL database, dropped (with its replication slots) afterwards."""
    _require(lakehouse_stack, "postgres")
    from lakehouse.testing.lake import unique_name
    from lakehouse.testing.postgres import create_database, drop_database

    settings = lakehouse_stack.settings
    name = unique_name(request.node.name, limit=50).lower()
    create_database(settings, name)
    yield settings.postgres_dsn(name)
    if not request.config.getoption("--lakehouse-keep"):
        drop_database(settings, name)
