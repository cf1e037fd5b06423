"""Loading the deterministic retail sample into the lake."""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse.client import Lakehouse


@dataclass(frozen=True)
class SampleLoad:
    table: str
    rows: int
    loaded: bool


def load_sample(
    lake: Lakehouse, scale: float = 1.0, seed: int = 42, force: bool = False
) -> list[SampleLoad]:
    """Create each sample table that does not exist yet (all of them with ``force``)."""
    from sample_data import TABLES, generate

    missing = [name for name in TABLES if force or not lake.catalog.table_exists(name)]
    if not missing:
        return [SampleLoad(name, 0, False) for name in TABLES]
    data = generate(scale=scale, seed=seed)
    results = []
    for name in TABLES:
        if name in missing:
            lake.ingest(data[name], name, mode="overwrite")
        results.append(
            SampleLoad(name, data[name].num_rows if name in missing else 0, name in missing)
        )
    return results
