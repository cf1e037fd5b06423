"""pyiceberg's PyArrow FileIO without the round trips a frequent writer cannot afford.

A sync commits about once a second per table. Profiled at 1,000 changes/s
(``python -m bench lag-profile`` under py-spy), a third of a merge-on-read
commit's time went to S3 requests that carry no information:

* ``create()`` asks S3 whether the file exists before writing it (a HEAD).
  Every file an Iceberg writer creates has a fresh UUID in its name, and the
  check is racy anyway (pyiceberg's docstring says so), so it is skipped here.
* ``len()`` of a file just written asks S3 for its size (another HEAD), although
  the writer has just counted the bytes. The count is remembered instead.
* Arrow's S3 output stream starts a multipart upload when it is opened; with a
  delayed open a small file is one PutObject at close (``allow_delayed_open``).
* Manifests and manifest lists (``.avro``) are read again and again: by scan
  planning, by manifest merging, and by each commit's view of the existing
  manifests. Iceberg never rewrites one in place (a new version gets a new name),
  so their bytes are kept in a bounded, process-wide LRU cache, filled when they
  are written and when they are read.

Everything else is pyiceberg's ``PyArrowFileIO``. Selected by ``open_catalog``
through the ``py-io-impl`` catalog property.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from pyarrow.fs import FileSystem
from pyiceberg.io import InputStream, OutputStream
from pyiceberg.io.pyarrow import PyArrowFile, PyArrowFileIO

if TYPE_CHECKING:
    from minio import Minio

# Manifests of a table are kilobytes to a few megabytes; this holds hundreds to
# thousands, and bounds what the cache adds to a long-running writer's memory.
CACHE_BYTES = 32 * 2**20
IMMUTABLE_SUFFIXES = (".avro",)  # manifests and manifest lists
DELETE_BATCH = 1000  # keys per S3 DeleteObjects request: the API's limit


class _ByteCache:
    """Least recently used bytes by location, at most ``limit`` bytes in all."""

    def __init__(self, limit: int) -> None:
        self.limit, self.size = limit, 0
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, location: str) -> bytes | None:
        with self._lock:
            data = self._items.get(location)
            if data is not None:
                self._items.move_to_end(location)
            return data

    def put(self, location: str, data: bytes) -> None:
        if len(data) > self.limit // 8:  # one huge manifest must not flush the rest
            return
        with self._lock:
            old = self._items.pop(location, None)
            self.size -= len(old) if old is not None else 0
            self._items[location] = data
            self.size += len(data)
            while self.size > self.limit:
                _, dropped = self._items.popitem(last=False)
                self.size -= len(dropped)

    def forget(self, location: str) -> None:
        with self._lock:
            old = self._items.pop(location, None)
            self.size -= len(old) if old is not None else 0


MANIFEST_CACHE = _ByteCache(CACHE_BYTES)


class _CountingStream:
    """An output stream that remembers how many bytes went through it (and, for a
    manifest, the bytes themselves) when it is closed."""

    def __init__(self, stream: pa.NativeFile, file: LakeFile, keep: bool) -> None:
        self._stream, self._file = stream, file
        self._kept: list[bytes] | None = [] if keep else None
        self._written = 0

    def write(self, data: Any) -> int:
        if self._kept is not None:
            self._kept.append(bytes(data))
        written = self._stream.write(data)
        self._written += memoryview(data).nbytes
        return written

    def tell(self) -> int:
        return self._written

    @property
    def closed(self) -> bool:
        return bool(self._stream.closed)

    def flush(self) -> None:
        self._stream.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        if self._stream.closed:
            return
        self._stream.close()  # the upload completes here; a failure raises before we record
        self._file.written_size = self._written
        if self._kept is not None:
            MANIFEST_CACHE.put(self._file.location, b"".join(self._kept))

    def __enter__(self) -> _CountingStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LakeFile(PyArrowFile):
    """A PyArrowFile that skips the existence check, knows its size once written,
    and serves immutable manifests from ``MANIFEST_CACHE``."""

    written_size: int | None = None

    def _immutable(self) -> bool:
        return self.location.endswith(IMMUTABLE_SUFFIXES)

    def create(self, overwrite: bool = False) -> OutputStream:
        # Every writer names its files with a fresh UUID: the HEAD pyiceberg sends
        # first to refuse an existing file costs a round trip and cannot race-proof it.
        stream = super().create(overwrite=True)
        if self._immutable():
            MANIFEST_CACHE.forget(self.location)
        return _CountingStream(stream, self, keep=self._immutable())

    def __len__(self) -> int:
        if self.written_size is not None:
            return self.written_size
        cached = MANIFEST_CACHE.get(self.location) if self._immutable() else None
        return len(cached) if cached is not None else super().__len__()

    def open(self, seekable: bool = True) -> InputStream:
        if not self._immutable():
            return super().open(seekable)
        cached = MANIFEST_CACHE.get(self.location)
        if cached is None:
            with super().open(seekable=False) as stream:
                cached = stream.read()
            MANIFEST_CACHE.put(self.location, cached)
        return pa.BufferReader(cached)


class LakeFileIO(PyArrowFileIO):
    """``PyArrowFileIO`` handing out :class:`LakeFile` objects (module doc)."""

    def _initialize_s3_fs(self, netloc: str | None) -> FileSystem:
        # Arrow opens an S3 output stream with a multipart upload (a request at open,
        # a part and a completion at close); a delayed open sends one PutObject at
        # close for a file smaller than a part, which every manifest and sync file
        # is. Measured here on SeaweedFS: 27-34 ms per 20 kB file -> 15-17 ms.
        fs = super()._initialize_s3_fs(netloc)
        settings = fs.__reduce__()[1][0]  # the arguments it was built with
        return type(fs)._reconstruct({**settings, "allow_delayed_open": True})

    def new_input(self, location: str) -> PyArrowFile:
        return self._lake_file(location)

    def new_output(self, location: str) -> PyArrowFile:
        return self._lake_file(location)

    def _lake_file(self, location: str) -> LakeFile:
        plain = super().new_input(location)  # pyiceberg's parsing of the location
        return LakeFile(
            location=location,
            path=plain._path,
            fs=plain._filesystem,
            buffer_size=plain._buffer_size,
        )

    def delete(self, location: Any) -> None:
        MANIFEST_CACHE.forget(location if isinstance(location, str) else location.location)
        super().delete(location)

    def delete_many(self, locations: Sequence[str]) -> list[tuple[str, str]]:
        """Delete the ``s3://bucket/key`` objects ``locations`` with one S3
        DeleteObjects request per ``DELETE_BATCH`` keys; a key already gone is no
        error. Returns (location, S3's error message) of each object S3 refused to
        delete (left behind for the orphan sweep).

        Arrow deletes one object with three requests (a HEAD, the DELETE, and a
        check that its "directory" still exists): an expiry of ten snapshots of four
        tables was hundreds of them, seconds in which the sync committed nothing.
        Raises what the S3 client raises when S3 does not answer.
        """
        from minio.deleteobjects import DeleteObject

        by_bucket: dict[str, list[str]] = {}
        for location in locations:
            MANIFEST_CACHE.forget(location)
            bucket, _, key = location.removeprefix("s3://").removeprefix("s3a://").partition("/")
            by_bucket.setdefault(bucket, []).append(key)
        client, refused = self._s3_client(), []
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), DELETE_BATCH):
                batch = [DeleteObject(key) for key in keys[start : start + DELETE_BATCH]]
                for error in client.remove_objects(bucket, batch):
                    refused.append((f"s3://{bucket}/{error.name}", str(error.message)))
        return refused

    def _s3_client(self) -> Minio:
        """An S3 client for the FileIO's endpoint and credentials, with its timeouts."""
        import urllib3
        from minio import Minio

        props = self.properties
        endpoint = str(props.get("s3.endpoint", ""))
        timeout = urllib3.Timeout(connect=float(props.get("s3.connect-timeout", 10)),
                                  read=float(props.get("s3.request-timeout", 60)))  # fmt: skip
        return Minio(
            endpoint.removeprefix("https://").removeprefix("http://"),
            access_key=props.get("s3.access-key-id"),
            secret_key=props.get("s3.secret-access-key"),
            session_token=props.get("s3.session-token"),
            secure=endpoint.startswith("https://"),
            region=props.get("s3.region"),
            http_client=urllib3.PoolManager(timeout=timeout, retries=urllib3.Retry(total=2)),
        )
