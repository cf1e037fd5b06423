"""One translation point from "a service is down" to ``ServiceUnavailableError``.

A killed or stopped server shows up as whatever its client library raises:
``requests.ConnectionError`` from pyiceberg, ``OSError`` from pyarrow's S3,
``duckdb.IOException``, ``psycopg.OperationalError``, gRPC errors from Spark,
or a lakehouse error that wraps one of them (an ``IngestError`` around a failed
S3 upload). Rather than a try/except at every call, the library runs each entry
point inside :func:`reported_outages`: it first checks that the services the
call needs accept a connection, and when the call fails with such an I/O
error, the services the call needs are probed (a TCP connect, bounded by
``PROBE_SECONDS``), and the first one that does not answer is reported by
name, URL and what was tried. When all of them answer, the original error is
raised unchanged, so a genuine input or query error is never disguised.
"""

from __future__ import annotations

import functools
import inspect
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from lakehouse.errors import LakehouseError, ServiceNotRunningError, ServiceUnavailableError

if TYPE_CHECKING:
    from lakehouse.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

PROBE_SECONDS = 1.0
# Client-side bounds, so a down service is reported within seconds, not minutes.
CONNECT_SECONDS = 3.0
CATALOG_READ_SECONDS = 120.0
S3_REQUEST_SECONDS = 60.0
POSTGRES_CONNECT_SECONDS = 5
# Exception class names (from the service clients) that mean "the server did not answer".
IO_ERROR_NAMES = frozenset(
    {
        "IOException", "HTTPException", "OperationalError", "InterfaceError",
        "ConnectionError", "ConnectionTimeout", "ServerError", "CommitStateUnknownException",
        "TrinoExternalError", "SparkConnectGrpcException", "_InactiveRpcError",
        "RetriesExceeded", "TransportError",
    }
)  # fmt: skip
# requests' errors for a connection that broke (not an HTTP answer).
DROPPED_CONNECTION_NAMES = frozenset({"ConnectionError", "ChunkedEncodingError", "ReadTimeout"})
SERVICE_PORTS = {
    "s3": "s3_port", "catalog": "catalog_port", "postgres": "postgres_port",
    "opensearch": "opensearch_port", "trino": "trino_port", "spark": "spark_port",
}  # fmt: skip


def service_url(settings: Settings, service: str) -> str:
    """The URL a user would recognise for ``service`` (no password in it)."""
    urls = {
        "s3": settings.s3_endpoint,
        "catalog": settings.catalog_uri,
        "trino": settings.trino_uri,
        "spark": settings.spark_uri,
        "opensearch": settings.opensearch_uri,
        "postgres": f"postgresql://{settings.client_host}:{settings.postgres_port}",
    }
    return urls[service]


def not_answering(settings: Settings, service: str) -> str | None:
    """Why ``service``'s port does not accept a connection, or None when it does."""
    port = int(getattr(settings, SERVICE_PORTS[service]))
    try:
        with socket.create_connection((settings.client_host, port), timeout=PROBE_SECONDS):
            return None
    except ConnectionRefusedError:
        return f"connection refused on port {port}"
    except TimeoutError:
        return f"no answer on port {port} within {PROBE_SECONDS:g} s"
    except OSError as exc:
        return f"{exc.strerror or exc} on port {port}"


def is_io_error(exc: BaseException) -> bool:
    """True when ``exc`` or an error it was raised from is a client's I/O failure."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "response", None) is not None:
            # The server answered (requests' HTTPError is an OSError): pyiceberg's
            # NoSuchTableError is raised while handling one, and is no outage.
            return False
        if not isinstance(current, LakehouseError) and (
            isinstance(current, OSError | TimeoutError) or type(current).__name__ in IO_ERROR_NAMES
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def outage_of(
    settings: Settings, exc: BaseException, tried: str, services: Sequence[str]
) -> ServiceUnavailableError | None:
    """The error to raise instead of ``exc`` when one of ``services`` is down, else None."""
    if isinstance(exc, ServiceNotRunningError) or not is_io_error(exc):
        return None
    for service in services:
        reason = not_answering(settings, service)
        if reason is not None:
            return ServiceUnavailableError(service, service_url(settings, service), tried, reason)
    # Up again already (a restart in progress dropped the connection): name it by its URL.
    named = service_of_request(settings, exc)
    if named is None:
        return None
    return ServiceUnavailableError(
        named, service_url(settings, named), tried, f"the connection failed: {_first_line(exc)}"
    )


def service_of_request(settings: Settings, exc: BaseException) -> str | None:
    """The service whose port a failed HTTP request (``requests``) went to, if any."""
    current: BaseException | None = exc
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if type(current).__name__ not in DROPPED_CONNECTION_NAMES:
            current = current.__cause__ or current.__context__
            continue
        url = getattr(getattr(current, "request", None), "url", None)
        port = urlsplit(url).port if isinstance(url, str) else None
        for service, field in SERVICE_PORTS.items():
            if port is not None and port == getattr(settings, field):
                return service
        current = current.__cause__ or current.__context__
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def check_answering(settings: Settings, tried: str, services: Sequence[str]) -> None:
    """ServiceUnavailableError for the first of ``services`` whose port refuses connections.

    A local TCP connect costs well under a millisecond; it saves a call that would
    otherwise wait for a server's own retries against the dead service (the catalog
    retries a missing S3 for about 90 s).
    """
    for service in services:
        reason = not_answering(settings, service)
        if reason is not None:
            raise ServiceUnavailableError(service, service_url(settings, service), tried, reason)


@contextmanager
def reported_outages(settings: Settings, tried: str, services: Sequence[str]) -> Iterator[None]:
    """Check that ``services`` answer, then run the block; an I/O failure while one of
    them is down becomes a ``ServiceUnavailableError`` naming it (raised from the
    original error)."""
    check_answering(settings, tried, services)
    try:
        yield
    except Exception as exc:
        outage = outage_of(settings, exc, tried, services)
        if outage is None:
            raise
        raise outage from exc


def guarded(tried: str, services: Sequence[str] = ("catalog", "s3")) -> Callable[[F], F]:
    """Decorate a method of an object with ``.settings``: run it in :func:`reported_outages`.

    ``tried`` may name the method's arguments, e.g. ``"ingest into {table}"``.
    """

    def decorate(method: F) -> F:
        signature = inspect.signature(method)

        @functools.wraps(method)
        def run(self: Any, *args: Any, **kwargs: Any) -> Any:
            bound = signature.bind_partial(self, *args, **kwargs).arguments
            names = {k: v if isinstance(v, str) else type(v).__name__ for k, v in bound.items()}
            with reported_outages(self.settings, tried.format_map(_Blank(names)), services):
                return method(self, *args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


class _Blank(dict[str, str]):
    """Format values; an argument left out reads as '(default)'."""

    def __missing__(self, key: str) -> str:
        return "(default)"
