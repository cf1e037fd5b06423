"""Writing change batches into OpenSearch indices.

Documents are indexed with the row key as ``_id``, so applying a change twice
gives the same index. The position a batch reaches is written to the
``lakehouse-sync-checkpoints`` index only after the batch's bulk request
succeeded: a crash in between replays the batch, which changes nothing.

A TRUNCATE deletes the index and creates it again from the schema (the
distribution lakehouse runs has no ``_delete_by_query``); replayed after a
crash, it does the same again. Errors say what OpenSearch answered: only a
connection that failed is reported as OpenSearch being down.

An index deleted by hand is a lost target: the stack's node does not create
indices on its own (``action.auto_create_index: false``), so the bulk request
answers index_not_found; the index's checkpoint is then removed and the pass
fails (retried), so the next pass snapshots the table again into a fresh index
with the strict mapping. The checkpoint index itself is created on demand; lost,
every position is gone with it and every table is snapshotted again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from lakehouse.errors import SyncError, SyncStoppedError
from lakehouse.sync.model import DeadLetter, TableBatch, document_id
from lakehouse.sync.opensearch_mapping import (
    document,
    field_mapping,
    index_mapping,
    json_value,
    mapping_limits,
    missing_properties,
)

CHECKPOINT_INDEX = "lakehouse-sync-checkpoints"
# Answers that say "not now": the request may pass later.
BUSY_STATUSES = frozenset({429, 502, 503, 504})
# Rows per bulk request: a snapshot chunk (50,000 rows, tens of MB) in one request
# timed out after 30 s on a busy machine (bench sync, load average 16).
BULK_ROWS = 5_000
# Index-level refusals reported per bulk item: not the row's fault, so never dead letters.
INDEX_ERRORS = frozenset(
    {"cluster_block_exception", "index_closed_exception", "index_not_found_exception"}
)
__all__ = ["CHECKPOINT_INDEX", "OpenSearchTarget", "field_mapping", "index_mapping",
           "json_value", "scroll_hits"]  # fmt: skip


def scroll_hits(client: OpenSearch, index: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every hit of a search on ``index``, 5,000 at a time; the scroll is always cleared."""
    body = {"size": 5000, "sort": ["_doc"], **body}
    answer = client.search(index=index, body=body, params={"scroll": "1m"})
    try:
        while hits := answer["hits"]["hits"]:
            yield from hits
            answer = client.scroll(
                body={"scroll_id": answer["_scroll_id"]}, params={"scroll": "1m"}
            )
    finally:
        client.clear_scroll(body={"scroll_id": answer["_scroll_id"]}, ignore=[404])


def server_answer(status: Any, info: Any) -> str:
    """What OpenSearch answered, quoted: ``HTTP 404 index_not_found_exception: no such index``."""
    error = info.get("error", info) if isinstance(info, dict) else info
    if not isinstance(error, dict):
        return f"HTTP {status}: {error}"
    text = f"HTTP {status} {error.get('type')}: {error.get('reason')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict) and cause.get("reason") != error.get("reason"):
        text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    return text


def answered_error(status: Any, info: Any, what: str) -> SyncError:
    """The error for an HTTP answer: retried when the server is busy, else it stops
    the integration (retrying would get the same answer)."""
    quote = server_answer(status, info)
    error = info.get("error") if isinstance(info, dict) else None
    error_type = error.get("type") if isinstance(error, dict) else None
    if status in BUSY_STATUSES or error_type == "cluster_block_exception":
        return SyncError(
            f"OpenSearch could not take {what} now and answered {quote}; will retry",
            hint="A busy node: lower LAKEHOUSE_SYNC_BATCH_ROWS or give OpenSearch more heap "
            "(LAKEHOUSE_OPENSEARCH_HEAP); a blocked index: free disk, or lift the block "
            "(`index.blocks.*`).",
        )
    return SyncStoppedError(
        f"OpenSearch refused {what}: {quote}",
        hint="Fix what the answer names, then `lakehouse sync run` again; or start the "
        "integration over (drops and re-snapshots its targets) with `lakehouse sync reset`.",
    )


def call_error(exc: TransportError, what: str) -> SyncError:
    """A failed client call as a SyncError: an outage only when no answer came."""
    if isinstance(exc, OpenSearchConnectionError) or not isinstance(exc.status_code, int):
        return SyncError(
            f"OpenSearch did not answer while {what}: {exc.info or exc.error}",
            hint="Is OpenSearch up? `lakehouse status`; start it with "
            "`lakehouse up --services opensearch`.",
        )
    return answered_error(exc.status_code, exc.info, what)


class OpenSearchTarget:
    """The indices of one integration."""

    def __init__(self, client: OpenSearch, integration: str, generation: str = "") -> None:
        """``generation``: checkpoints another generation saved are not this one's."""
        self.client = client
        self.integration = integration
        self.generation = generation
        # The mapping each index is known to hold (so a batch costs no mapping read).
        self._mapped: dict[str, dict[str, Any]] = {}
        # Indices this target deleted (snapshot, TRUNCATE): created again, never "lost".
        self._dropped: set[str] = set()

    def checkpoints(self) -> dict[str, str]:
        found = self._call("reading the checkpoints", self.client.get, index=CHECKPOINT_INDEX,
                           id=self.integration, ignore=[404])  # fmt: skip
        stored = found.get("_source", {}) if found.get("found") else {}
        if stored.get("generation", "") != self.generation:
            return {}  # another incarnation's positions: this one starts afresh
        return dict(stored.get("positions", {}))

    def save_checkpoints(self, positions: dict[str, str]) -> None:
        """Write the integration's positions, all of them (callers merge)."""
        body = {"integration": self.integration, "generation": self.generation,
                "positions": positions}  # fmt: skip
        write = {"index": CHECKPOINT_INDEX, "id": self.integration, "body": body,
                 "params": {"refresh": "true"}}  # fmt: skip
        try:
            self.client.index(**write)
        except NotFoundError:  # no auto-created indices: the first checkpoint creates it
            self._call("creating the checkpoint index", self.client.indices.create,
                       index=CHECKPOINT_INDEX, ignore=[400])  # fmt: skip
            self._call("writing the checkpoints", self.client.index, **write)
        except TransportError as exc:
            raise call_error(exc, "writing the checkpoints") from exc

    def document_ids(self, index: str) -> list[str]:
        """Every document id in the index (for a full comparison with the source)."""
        if not self._call(f"checking index {index}", self.client.indices.exists, index=index):
            return []
        hits = scroll_hits(self.client, index, {"_source": False})
        return self._call(f"reading index {index}", lambda: [hit["_id"] for hit in hits])

    def delete_documents(self, index: str, ids: list[str]) -> None:
        """Delete the documents ``ids`` (already gone: fine), by id: an id is not split
        back into a key, its values may be escaped or hashed (``document_id``)."""
        for first in range(0, len(ids), BULK_ROWS):
            actions = [
                {"delete": {"_index": index, "_id": i}} for i in ids[first : first + BULK_ROWS]
            ]
            answer = self._call(f"deleting from {index}", self.client.bulk, body=actions)
            for item in answer.get("items", []) if answer.get("errors") else []:
                result = item.get("delete", {})
                if result.get("status", 200) >= 300 and result.get("status") != 404:
                    raise answered_error(result.get("status"), {"error": result.get("error")},
                                         f"documents of {index}")  # fmt: skip

    def forget(self, index: str) -> None:
        """Remove the index's checkpoint (the next pass snapshots it again)."""
        positions = self.checkpoints()
        if positions.pop(index, None) is not None:
            self.save_checkpoints(positions)

    def ensure_index(self, index: str, schema: pa.Schema, key: tuple[str, ...]) -> None:
        """Create the index from the schema, or add the fields its mapping lacks.

        An index whose mapping already holds the schema is left alone; a field
        mapped otherwise raises SyncStoppedError quoting OpenSearch; an index missing though
        a checkpoint names it (deleted by hand) raises SyncError and forgets the checkpoint.
        """
        mapping = index_mapping(schema, key)
        if self._mapped.get(index) == mapping:
            return
        answer = self._call(f"reading the mapping of {index}", self.client.indices.get_mapping,
                            index=index, ignore=[404])  # fmt: skip
        if index not in answer:
            if index not in self._dropped and index in self.checkpoints():
                raise self._lost(index)  # a position for an index nobody here dropped
            self._create(index, mapping)
            self._dropped.discard(index)
        else:
            current = answer[index].get("mappings", {}).get("properties", {})
            if added := missing_properties(current, mapping["properties"]):
                if limits := mapping_limits({**current, **added}):
                    self._call(f"raising the mapping limits of {index}",
                               self.client.indices.put_settings, index=index, body=limits)  # fmt: skip
                self._put_mapping(index, added)
        self._mapped[index] = mapping

    def _create(self, index: str, mapping: dict[str, Any]) -> None:
        settings = {"number_of_shards": 1, "number_of_replicas": 0,
                    **mapping_limits(mapping["properties"])}  # fmt: skip
        body = {"settings": settings, "mappings": mapping}
        try:
            self.client.indices.create(index=index, body=body)
        except RequestError as exc:
            if exc.error != "resource_already_exists_exception":
                raise self._schema_error(index, exc) from exc
            self._put_mapping(index, mapping["properties"])  # created meanwhile: add to it
        except TransportError as exc:
            raise call_error(exc, f"creating index {index}") from exc

    def _put_mapping(self, index: str, properties: dict[str, Any]) -> None:
        try:
            self.client.indices.put_mapping(index=index, body={"properties": properties})
        except RequestError as exc:
            raise self._schema_error(index, exc) from exc
        except TransportError as exc:
            raise call_error(exc, f"changing the mapping of {index}") from exc

    def _schema_error(self, index: str, exc: RequestError) -> SyncStoppedError:
        return SyncStoppedError(
            f"The schema change cannot be applied to index {index}: OpenSearch answered "
            f"{server_answer(exc.status_code, exc.info)}",
            hint="Revert the column change in the source, or start the integration "
            "over (drops and re-snapshots its targets): "
            f"`lakehouse sync reset {self.integration}`.",
        )

    def apply(self, index: str, batch: TableBatch, position: str) -> list[DeadLetter]:
        """Index upserts and delete deletes; returns the rows OpenSearch refused."""
        actions: list[dict[str, Any]] = []
        rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
        refused: list[DeadLetter] = []
        for key, row in batch.upserts.items():
            key_values = dict(zip(batch.key, key, strict=True))
            try:
                source = document(row)
            except ValueError as exc:
                refused.append(self._dead(batch, key_values, row, str(exc), position))
                # Its old document must not stay as if current: the dead letter has the row.
                actions.append({"delete": {"_index": index, "_id": document_id(key)}})
                rows.append((key_values, {}))
                continue
            actions += [{"index": {"_index": index, "_id": document_id(key)}}, source]
            rows.append((key_values, row))
        for key_values in batch.deletes.values():
            actions.append({"delete": {"_index": index, "_id": document_id(key_values)}})
            rows.append((key_values, {}))
        if batch.truncated:
            self.drop(index)
            self.ensure_index(index, batch.schema, batch.key)
        if actions:
            refused_by_server = self._bulk(index, actions, rows, batch, position)
            refused += refused_by_server
            self._remove(index, [letter.key for letter in refused_by_server], batch, position)
        return refused

    def _remove(self, index: str, keys: list[dict[str, Any]], batch: TableBatch,
                position: str) -> None:  # fmt: skip
        """Delete the documents of rows whose new image OpenSearch refused (a document
        that failed to index leaves the old one in place)."""
        if keys:
            deletes = [{"delete": {"_index": index, "_id": document_id(key)}} for key in keys]
            self._bulk(index, deletes, [(key, {}) for key in keys], batch, position)

    def _bulk(self, index: str, actions: list[dict[str, Any]],
              rows: list[tuple[dict[str, Any], dict[str, Any]]], batch: TableBatch,
              position: str) -> list[DeadLetter]:  # fmt: skip
        """``actions`` in requests of at most BULK_ROWS rows (``rows``: one per row, in
        order; a row is an index action and its document, or a delete action)."""
        refused: list[DeadLetter] = []
        start = 0
        for first in range(0, len(rows), BULK_ROWS):
            chunk = rows[first : first + BULK_ROWS]
            end = start
            for _ in chunk:
                end += 2 if "index" in actions[end] else 1
            refused += self._bulk_request(index, actions[start:end], chunk, batch, position)
            start = end
        return refused

    def _bulk_request(self, index: str, actions: list[dict[str, Any]],
                      rows: list[tuple[dict[str, Any], dict[str, Any]]], batch: TableBatch,
                      position: str) -> list[DeadLetter]:  # fmt: skip
        answer = self._call(f"indexing into {index}", self.client.bulk, body=actions)
        refused = []
        if answer.get("errors"):
            for (key, row), item in zip(rows, answer["items"], strict=True):
                result = next(iter(item.values()))
                status = result.get("status", 200)
                error = result.get("error", {})
                if error.get("type") == "index_not_found_exception":
                    raise self._lost(index)
                if status < 300 or (status == 404 and "delete" in item):  # already gone
                    continue
                if status in BUSY_STATUSES or error.get("type") in INDEX_ERRORS:
                    raise answered_error(status, {"error": error}, f"documents for {index}")
                reason = f"OpenSearch refused the document: {server_answer(status, error)}"
                refused.append(self._dead(batch, key, row, reason, position))
        return refused

    def _lost(self, index: str) -> SyncError:
        """The index was deleted outside lakehouse: forget its checkpoint, so the next
        pass (retried) snapshots its table again into a fresh index."""
        self._mapped.pop(index, None)
        self.forget(index)
        return SyncError(
            f"Index {index} of {self.integration} is gone (deleted outside lakehouse); its "
            "table will be snapshotted again on the next pass.",
            hint="Nothing to do: the sync service retries; `lakehouse sync run "
            f"{self.integration}` does it at once.",
        )

    def _dead(self, batch: TableBatch, key: dict[str, Any], row: dict[str, Any], reason: str,
              position: str) -> DeadLetter:  # fmt: skip
        return DeadLetter(self.integration, batch.table, key, row, reason, position)

    @staticmethod
    def _call(what: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except TransportError as exc:
            raise call_error(exc, what) from exc

    def drop(self, index: str) -> None:
        self._call(f"deleting index {index}", self.client.indices.delete, index=index,
                   params={"ignore_unavailable": "true"})  # fmt: skip
        self._mapped.pop(index, None)
        self._dropped.add(index)
