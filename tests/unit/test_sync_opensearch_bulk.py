"""How the OpenSearch target splits a batch into bulk requests (pure logic: the
client is a recorder of request bodies, no server)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from lakehouse.sync import opensearch_target
from lakehouse.sync.model import TableBatch
from lakehouse.sync.opensearch_target import OpenSearchTarget

SCHEMA = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("x", pa.float64())])


class BulkRecorder:
    """Answers every bulk request as fully applied, and keeps its body."""

    def __init__(self) -> None:
        self.bodies: list[list[dict[str, Any]]] = []

    def bulk(self, body: list[dict[str, Any]]) -> dict[str, Any]:
        self.bodies.append(body)
        return {"errors": False, "items": []}


def test_a_batch_goes_in_requests_of_at_most_bulk_rows_rows_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(opensearch_target, "BULK_ROWS", 4)
    batch = TableBatch("t", ("id",), SCHEMA)
    for ident in range(7):
        batch.upsert({"id": ident, "x": 1.0})
    batch.upsert({"id": 7, "x": float("nan")})  # refused by the mapping code: a delete action
    for ident in (20, 21):
        batch.delete({"id": ident})
    client = BulkRecorder()
    refused = OpenSearchTarget(client, "bulk").apply("idx", batch, "0/1")  # type: ignore[arg-type]
    assert [letter.key for letter in refused] == [{"id": 7}]
    # 10 rows: 4 + 4 + 2, each row's actions (index + document, or delete) in one request.
    per_request = [[a for a in body if "index" in a or "delete" in a] for body in client.bodies]
    assert [len(rows) for rows in per_request] == [4, 4, 2]
    assert sum(len(body) for body in client.bodies) == 7 * 2 + 1 + 2
    ids = [next(iter(a.values()))["_id"] for rows in per_request for a in rows]
    assert ids == [str(i) for i in range(8)] + ["20", "21"]
    for body in client.bodies:
        for action, following in zip(body, [*body[1:], None], strict=True):
            if "index" in action:
                assert following is not None and "index" not in following
                assert "delete" not in following
