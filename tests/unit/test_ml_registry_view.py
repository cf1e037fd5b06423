"""Lineage read back from a run's tags (lakehouse.ml.registry_view): pure logic."""

from __future__ import annotations

from lakehouse.ml.registry_view import lineage_of
from lakehouse.ml.tracking import lineage_tags


def test_lineage_round_trips_through_the_tags() -> None:
    inputs = {"retail.orders": 11, "retail.customers": 7, "ml.features_v2": 123456789012345}
    tags = lineage_tags(inputs) | {"mlflow.user": "me", "lakehouse.inputs": "x@1"}
    assert lineage_of(tags) == dict(sorted(inputs.items()))


def test_tags_that_are_not_lineage_are_ignored() -> None:
    tags = {"lakehouse.input.a.b.snapshot_id": "not-a-number", "lakehouse.input.": "1"}
    assert lineage_of(tags) == {}
