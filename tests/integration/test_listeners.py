"""Every socket a service of the stack listens on is one lakehouse knows, and
SeaweedFS's internal ports take nothing without the stack's credentials.

The audit covers every service the session's stack runs; the markers bring the
JVM services, PostgreSQL, OpenSearch and MLflow in (in a full run they are up anyway).
"""

from __future__ import annotations

import io
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from lakehouse import Settings
from lakehouse.runtimes.local import LocalRuntime
from lakehouse.services.s3 import S3Service
from tests.integration.stack_sockets import SocketUse, service_ports, stack_sockets

pytestmark = [
    pytest.mark.integration,
    pytest.mark.lakehouse_postgres,
    pytest.mark.lakehouse_opensearch,
    pytest.mark.lakehouse_trino,
    pytest.mark.lakehouse_spark,
    pytest.mark.lakehouse_mlflow,
]


def test_every_listening_socket_is_a_port_of_its_service(
    stack: Settings, stack_services: list[str]
) -> None:
    sockets = stack_sockets(stack)
    declared = service_ports(stack)
    listeners = [use for use in sockets if use.kind == "listen"]
    # It can fail: each running service with ports is seen listening on them.
    for service in stack_services:
        wanted = declared[service]
        seen = {use.port for use in listeners if use.service == service}
        assert wanted <= seen, f"{service} does not listen on {sorted(wanted - seen)}"
    unknown = [str(use) for use in listeners if use.port not in declared[use.service]]
    assert not unknown, "listeners lakehouse does not know:\n" + "\n".join(unknown)


def jvm_attach_socket(use: SocketUse) -> bool:
    """HotSpot's attach listener, at a path the JVM fixes: created on demand
    (Trino attaches to itself), 0600, and the JVM serves only its own user;
    ``stop`` removes it (jvm_attach_sockets)."""
    return use.process == "java" and use.path in (
        f"/tmp/.java_pid{use.pid}",
        f"/tmp/.java_pid{use.pid}.tmp",
    )


def test_unix_sockets_live_under_the_home_or_are_removed_on_stop(stack: Settings) -> None:
    runtime = LocalRuntime(stack)
    leftovers = {str(path) for svc in runtime.known_services() for path in svc.spec().leftovers}
    outside = [
        str(use)
        for use in stack_sockets(stack)
        if use.kind == "unix"
        and use.path is not None
        and not Path(use.path).is_relative_to(stack.home_dir)
        and use.path not in leftovers
        and not jvm_attach_socket(use)
    ]
    assert not outside, "unix sockets outside the home that stop leaves behind:\n" + "\n".join(
        outside
    )


def call(method: str, url: str, body: bytes | None = None) -> int:
    """The HTTP status ``url`` answers with (0: no answer)."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


@pytest.fixture
def warehouse_object(stack: Settings) -> Iterator[tuple[str, bytes]]:
    """An object written through S3 (with credentials), removed afterwards."""
    client, key, data = S3Service(stack).client(), f"audit/{uuid.uuid4().hex}.bin", b"x" * 4096
    client.put_object(stack.warehouse_bucket, key, io.BytesIO(data), len(data))
    yield key, data
    client.remove_object(stack.warehouse_bucket, key)


def test_seaweedfs_internal_http_takes_no_unauthenticated_reads_or_writes(
    stack: Settings, warehouse_object: tuple[str, bytes]
) -> None:
    key, data = warehouse_object
    inner = S3Service(stack).internal_ports()
    filer = f"http://127.0.0.1:{inner['filer']}/buckets/{stack.warehouse_bucket}"
    master = f"http://127.0.0.1:{inner['master']}"
    refused = {
        "filer PUT": call("PUT", f"{filer}/intruder.txt", b"x"),
        "filer DELETE": call("DELETE", f"{filer}/{key}"),
        "filer GET": call("GET", f"{filer}/{key}"),
        "master assign": call("GET", f"{master}/dir/assign"),
        "master status": call("GET", f"{master}/dir/status"),
    }
    assert all(status in (401, 403, 404) for status in refused.values()), refused
    client = S3Service(stack).client()
    assert client.get_object(stack.warehouse_bucket, key).read() == data
    names = [o.object_name for o in client.list_objects(stack.warehouse_bucket, "intruder")]
    assert names == []


def grpc_ready(target: str, credentials: grpc.ChannelCredentials | None) -> bool:
    channel = (
        grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    )
    with channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=3)
        except grpc.FutureTimeoutError:
            return False
    return True


def test_seaweedfs_grpc_ports_need_the_stack_certificate(stack: Settings) -> None:
    service = S3Service(stack)
    tls = service.tls
    stack_credentials = grpc.ssl_channel_credentials(
        tls.ca.read_bytes(), tls.key.read_bytes(), tls.cert.read_bytes()
    )
    for name in ("master-grpc", "volume-grpc", "filer-grpc", "s3-grpc"):
        target = f"127.0.0.1:{service.internal_ports()[name]}"
        assert not grpc_ready(target, None), f"{name} takes plaintext gRPC from anyone"
        assert grpc_ready(target, stack_credentials), f"{name} refuses the stack's certificate"


def volume_status(port: int, context: ssl.SSLContext | None) -> int | str:
    """The volume server's answer to GET /status: HTTP status, or why none came."""
    scheme = "https" if context else "http"
    try:
        with urllib.request.urlopen(
            f"{scheme}://127.0.0.1:{port}/status", timeout=5, context=context
        ) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError as exc:
        return type(exc).__name__


def test_seaweedfs_volume_server_needs_the_stack_certificate(stack: Settings) -> None:
    service = S3Service(stack)
    port, tls = service.internal_ports()["volume"], service.tls
    anyone = ssl.create_default_context(cafile=str(tls.ca))
    stack_side = ssl.create_default_context(cafile=str(tls.ca))
    stack_side.load_cert_chain(str(tls.cert), str(tls.key))
    assert volume_status(port, None) == 400  # plain HTTP to a TLS port
    assert volume_status(port, anyone) != 200  # no client certificate
    assert volume_status(port, stack_side) == 200
