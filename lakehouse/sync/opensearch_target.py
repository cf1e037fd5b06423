"""Writing change batches into OpenSearch indices.

Documents are indexed with the row key as ``_id``, so applying a change twice
gives the same index. The position a batch reaches is written to the
``lakehouse-sync-checkpoints`` index only after the batch's bulk request
succeeded: a crash in between replays the batch, which changes nothing.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OpenSearchConnectionError
from opensearchpy.exceptions import RequestError, TransportError

from lakehouse.errors import SyncError, SyncStoppedError
from lakehouse.sync.model import DeadLetter, TableBatch, document_id

CHECKPOINT_INDEX = "lakehouse-sync-checkpoints"
TEXT_WITH_KEYWORD = {
    "type": "text",
    "fields": {"keyword": {"type": "keyword", "ignore_above": 256}},
}


def field_mapping(kind: pa.DataType, is_key: bool = False) -> dict[str, Any]:
    """The OpenSearch mapping of one column, from its Arrow (Iceberg) type."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return {"type": "keyword"} if is_key else dict(TEXT_WITH_KEYWORD)
    if pa.types.is_boolean(kind):
        return {"type": "boolean"}
    if pa.types.is_int64(kind) or pa.types.is_uint32(kind):
        return {"type": "long"}
    if pa.types.is_integer(kind):
        return {"type": "integer"}
    if pa.types.is_float32(kind):
        return {"type": "float"}
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return {"type": "double"}
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return {"type": "date", "format": "strict_date_optional_time||epoch_millis"}
    if pa.types.is_binary(kind):
        return {"type": "binary"}
    return {"type": "keyword"}


def index_mapping(schema: pa.Schema, key: tuple[str, ...]) -> dict[str, Any]:
    # strict: a document with a column the mapping lacks is refused, so schema
    # changes go through put_mapping (and conflicting ones stop the sync).
    return {
        "dynamic": "strict",
        "properties": {f.name: field_mapping(f.type, f.name in key) for f in schema},
    }


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


def json_value(value: Any) -> Any:
    """A JSON value OpenSearch stores for ``value``; ValueError when it cannot."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"OpenSearch cannot store the number {value}")
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"OpenSearch cannot store the number {value}")
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


class OpenSearchTarget:
    """The indices of one integration."""

    def __init__(self, client: OpenSearch, integration: str) -> None:
        self.client = client
        self.integration = integration
        self._mapped: dict[str, set[str]] = {}

    def checkpoints(self) -> dict[str, str]:
        found = self._call(self.client.get, index=CHECKPOINT_INDEX, id=self.integration,
                           ignore=[404])  # fmt: skip
        return dict(found.get("_source", {}).get("positions", {})) if found.get("found") else {}

    def save_checkpoints(self, positions: dict[str, str]) -> None:
        """Write the integration's positions, all of them (callers merge)."""
        body = {"integration": self.integration, "positions": positions}
        self._call(self.client.index, index=CHECKPOINT_INDEX, id=self.integration, body=body,
                   params={"refresh": "true"})  # fmt: skip

    def document_ids(self, index: str) -> list[str]:
        """Every document id in the index (for a full comparison with the source)."""
        if not self._call(self.client.indices.exists, index=index):
            return []
        hits = scroll_hits(self.client, index, {"_source": False})
        return self._call(lambda: [hit["_id"] for hit in hits])

    def forget(self, index: str) -> None:
        """Remove the index's checkpoint (the next pass snapshots it again)."""
        positions = self.checkpoints()
        if positions.pop(index, None) is not None:
            self.save_checkpoints(positions)

    def ensure_index(self, index: str, schema: pa.Schema, key: tuple[str, ...]) -> None:
        """Create the index from the schema, or add the schema's new fields to its mapping."""
        names = {f.name for f in schema}
        if self._mapped.get(index) == names:
            return
        mapping = index_mapping(schema, key)
        exists = self._call(self.client.indices.exists, index=index)
        try:
            if not exists:
                settings = {"number_of_shards": 1, "number_of_replicas": 0}
                self.client.indices.create(
                    index=index, body={"settings": settings, "mappings": mapping}
                )
            else:
                self.client.indices.put_mapping(index=index, body=mapping)
        except RequestError as exc:
            if "resource_already_exists_exception" not in str(exc):
                raise SyncStoppedError(
                    f"The schema change cannot be applied to index {index}: {exc.info}",
                    hint="Revert the column change in the source, or start the integration "
                    "over (drops and re-snapshots its targets): "
                    f"`lakehouse sync reset {self.integration}`.",
                ) from exc
        except (OpenSearchConnectionError, TransportError) as exc:
            raise SyncError(
                f"OpenSearch did not answer: {exc}",
                hint="Is OpenSearch up? `lakehouse status`; start it with `lakehouse up --services opensearch`.",
            ) from exc
        self._mapped[index] = names

    def apply(self, index: str, batch: TableBatch, position: str) -> list[DeadLetter]:
        """Index upserts and delete deletes; returns the rows OpenSearch refused."""
        actions: list[dict[str, Any]] = []
        rows: list[tuple[dict[str, Any], dict[str, Any]]] = []
        refused: list[DeadLetter] = []
        for key, row in batch.upserts.items():
            try:
                source = {name: json_value(value) for name, value in row.items()}
            except ValueError as exc:
                refused.append(self._dead(batch, dict(zip(batch.key, key, strict=True)), row,
                                          str(exc), position))  # fmt: skip
                continue
            actions += [{"index": {"_index": index, "_id": document_id(key)}}, source]
            rows.append((dict(zip(batch.key, key, strict=True)), row))
        for key_values in batch.deletes.values():
            actions.append({"delete": {"_index": index, "_id": document_id(key_values)}})
            rows.append((key_values, {}))
        if batch.truncated:
            self._call(self.client.delete_by_query, index=index, body={"query": {"match_all": {}}},
                       params={"refresh": "true", "conflicts": "proceed"})  # fmt: skip
        if actions:
            refused += self._bulk(actions, rows, batch, position)
        return refused

    def _bulk(self, actions: list[dict[str, Any]], rows: list[tuple[dict[str, Any], dict[str, Any]]],
              batch: TableBatch, position: str) -> list[DeadLetter]:  # fmt: skip
        answer = self._call(self.client.bulk, body=actions)
        refused = []
        if answer.get("errors"):
            for (key, row), item in zip(rows, answer["items"], strict=True):
                result = next(iter(item.values()))
                if result.get("status", 200) >= 300 and result.get("status") != 404:
                    error = result.get("error", {})
                    reason = f"{error.get('type')}: {error.get('reason')}"
                    if result.get("status") in (429, 503):
                        raise SyncError(
                            f"OpenSearch is overloaded ({reason}); will retry",
                            hint="Lower the batch size (LAKEHOUSE_SYNC_BATCH_ROWS) or give OpenSearch more heap "
                            "(LAKEHOUSE_OPENSEARCH_HEAP).",
                        )
                    refused.append(self._dead(batch, key, row, reason, position))
        return refused

    def _dead(self, batch: TableBatch, key: dict[str, Any], row: dict[str, Any], reason: str,
              position: str) -> DeadLetter:  # fmt: skip
        return DeadLetter(self.integration, batch.table, key, row, reason, position)

    @staticmethod
    def _call(method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except (OpenSearchConnectionError, TransportError) as exc:
            raise SyncError(
                f"OpenSearch did not answer: {exc}",
                hint="Is OpenSearch up? `lakehouse status`; start it with `lakehouse up --services opensearch`.",
            ) from exc

    def drop(self, index: str) -> None:
        self._call(self.client.indices.delete, index=index, params={"ignore_unavailable": "true"})
        self._mapped.pop(index, None)
