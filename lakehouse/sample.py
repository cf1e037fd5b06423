"""Loading the deterministic retail sample into the lake."""

from __future__ import annotations

from dataclasses import dataclass

from lakehouse.client import Lakehouse
from lakehouse.config import Settings


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


def load_landing(settings: Settings) -> SampleLoad:
    """Raw clickstream landed in s3://landing (when absent) and crawled into
    landing.clickstream by its declared crawler (see :mod:`lakehouse.sample_landing`)."""
    from lakehouse.sample_landing import load_landing_sample, sample_crawler

    _, rows = load_landing_sample(settings)
    spec = sample_crawler()
    return SampleLoad(f"{spec.namespace or 'landing'}.clickstream (crawler {spec.name})", rows,
                      rows > 0)  # fmt: skip


def load_shop_sample(settings: Settings, scale: float = 1.0, seed: int = 42,
                     declare_again: bool = False) -> list[SampleLoad]:  # fmt: skip
    """Load the shop database (when empty) and declare the sample's integrations: once
    per home, or again (those missing) with ``declare_again``."""
    import psycopg

    from lakehouse.sync.integrations import IntegrationStore, sample_integrations
    from sample_data.shop import load_shop

    with psycopg.connect(settings.postgres_dsn()) as conn:
        loaded = load_shop(conn, scale=scale, seed=seed)
    # Declared once per home: every `lakehouse up` (`up --services sync` too) declared
    # them again, so one the user had deleted came back and re-created its targets.
    offered = settings.home_dir / "sync" / "sample-integrations-declared"
    if declare_again or not offered.exists():
        store = IntegrationStore(settings)
        declared = store.all()
        for integration in sample_integrations():
            if integration.name not in declared:
                store.create(integration)
        offered.parent.mkdir(parents=True, exist_ok=True)
        offered.write_text("lakehouse up declared the shop sample's integrations once.\n")
    return [
        SampleLoad(f"{settings.postgres_db}.public.{table}", rows, rows > 0)
        for table, rows in loaded.items()
    ]
