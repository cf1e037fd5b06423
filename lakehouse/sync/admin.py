"""Deleting and resetting integrations (what `sync delete` and `sync reset` do)."""

from __future__ import annotations

from lakehouse.config import Settings
from lakehouse.sync.integrations import Integration, IntegrationStore
from lakehouse.sync.status import StatusStore


def _drop_source_position(settings: Settings, integration: Integration) -> str | None:
    if integration.source != "postgres":
        return None
    from lakehouse.sync.postgres_source import PostgresSource

    source = PostgresSource.for_integration(settings, integration)
    try:
        source.drop()
    finally:
        source.close()
    return f"dropped replication slot and publication {integration.slot_name()}"


def _drop_targets(settings: Settings, integration: Integration) -> list[str]:
    from lakehouse.sync.runner import build_pipeline

    pipeline = build_pipeline(settings, integration)
    writer = pipeline.writer
    dropped = []
    try:
        for table in integration.tables:
            writer.drop(table)
            dropped.append(f"dropped {integration.target} {writer.target_name(table)}")
    finally:
        pipeline.close()
    return dropped


def reset_integration(settings: Settings, name: str) -> list[str]:
    """Drop targets and source position; the next run snapshots everything again."""
    integration = IntegrationStore(settings).get(name)
    lines = _drop_targets(settings, integration)
    dropped = _drop_source_position(settings, integration)
    StatusStore(settings).remove(name)
    return [*lines, *([dropped] if dropped else []), f"{name} will snapshot again on its next run"]


def delete_integration(settings: Settings, name: str) -> list[str]:
    """Forget an integration; its targets stay, its slot goes (so WAL is not retained)."""
    store = IntegrationStore(settings)
    integration = store.get(name)
    dropped = _drop_source_position(settings, integration)
    store.remove(name)
    StatusStore(settings).remove(name)
    return [*([dropped] if dropped else []), f"deleted {name}"]
