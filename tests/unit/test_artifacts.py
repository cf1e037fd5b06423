"""Maven artifact pins, mirrors and the download's failure paths."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lakehouse.artifacts import ArtifactFetcher, maven_mirror, parse_coordinates, read_lock
from lakehouse.config import load_settings
from lakehouse.errors import ArtifactError
from lakehouse.services import service_files_dir

PAYLOAD = b"not really a jar"


def test_coordinates_and_paths() -> None:
    jar = parse_coordinates("org.apache.iceberg:iceberg-core:1.10.1:tests", "A" * 64)
    assert jar.repo_path == "org/apache/iceberg/iceberg-core/1.10.1/iceberg-core-1.10.1-tests.jar"
    assert jar.sha256 == "a" * 64
    zipped = parse_coordinates("io.trino:trino-iceberg:479@zip", "b" * 64)
    assert (
        zipped.file_name == "trino-iceberg-479.zip"
        and zipped.coordinates == "io.trino:trino-iceberg:479@zip"
    )
    with pytest.raises(ArtifactError, match="Bad Maven coordinates"):
        parse_coordinates("just-a-name", "c" * 64)


def test_committed_catalog_lock_is_well_formed() -> None:
    pinned = read_lock(service_files_dir() / "catalog" / "artifacts.lock")
    names = {a.artifact for a in pinned}
    assert {
        "iceberg-open-api",
        "iceberg-core",
        "iceberg-aws-bundle",
        "sqlite-jdbc",
        "jetty-server",
    } <= names
    assert len({a.coordinates for a in pinned}) == len(pinned)


def test_bad_lock_line_is_reported(tmp_path: Path) -> None:
    lock = tmp_path / "artifacts.lock"
    lock.write_text("# comment\norg.x:y:1 deadbeef\n")
    with pytest.raises(ArtifactError, match=r"artifacts.lock:2"):
        read_lock(lock)


def test_maven_mirror_from_settings_xml(tmp_path: Path) -> None:
    xml = tmp_path / "settings.xml"
    xml.write_text(
        '<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0"><mirrors><mirror>'
        "<id>corp</id><mirrorOf>central</mirrorOf><url>https://mirror.example/maven2/</url>"
        "</mirror></mirrors></settings>"
    )
    assert maven_mirror(xml) == "https://mirror.example/maven2"
    assert maven_mirror(tmp_path / "absent.xml") is None


class _Repo(http.server.SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.endswith("/good-1.jar") or self.path.endswith("/tampered-1.jar"):
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def repo() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Repo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def fetcher(tmp_path: Path, repo: str) -> ArtifactFetcher:
    return ArtifactFetcher(load_settings(cache=tmp_path / "cache", maven_repo=repo))


def test_download_verifies_and_caches(tmp_path: Path, repo: str) -> None:
    good = parse_coordinates("g:good:1", hashlib.sha256(PAYLOAD).hexdigest())
    paths = fetcher(tmp_path, repo).fetch_all([good], "test")
    assert paths[0].read_bytes() == PAYLOAD
    assert fetcher(tmp_path, "http://127.0.0.1:9/unreachable").missing([good]) == []


def test_checksum_mismatch_keeps_nothing(tmp_path: Path, repo: str) -> None:
    tampered = parse_coordinates("g:tampered:1", "0" * 64)
    with pytest.raises(ArtifactError, match="Checksum mismatch"):
        fetcher(tmp_path, repo).fetch_all([tampered], "test")
    assert not list((tmp_path / "cache").rglob("tampered-1.jar*"))


def test_missing_artifact_is_a_clear_404(tmp_path: Path, repo: str) -> None:
    absent = parse_coordinates("g:absent:1", "0" * 64)
    with pytest.raises(ArtifactError, match=r"is not in .* \(HTTP 404"):
        fetcher(tmp_path, repo).fetch_all([absent], "test")
